"""Top-level routes: pages, the REST API, the oda_api-compatible endpoints and VO services."""

from django.contrib import admin
from django.urls import include, path

from gallery import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("health/", health.view, name="health"),
    path("api/v1/", include("gallery.api.urls")),
    path("api/v1/", include("gallery.api.lightcurve_urls")),
    path("api/", include("gallery.api.schema_urls")),
    path("dispatch-data/", include("gallery.compat.urls")),
    path("vo/", include("gallery.vo.urls")),
    path("", include("gallery.pages.monitor_urls")),
    path("", include("gallery.pages.urls")),
]
