"""The OpenAPI schema and its Swagger UI (served offline from drf-spectacular-sidecar),
included at /api/; last, a JSON 404 for any other path under /api/."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .exceptions import api_not_found

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script, so the
    # site's Content Security Policy (script-src 'self') holds on this page too.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^[\s\S]*$", api_not_found),  # any path, with newlines too
]
