"""Routes of the REST API, included at /api/v1/ (namespace ``api``)."""

from django.conf import settings
from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from . import views

app_name = "api"


class Router(DefaultRouter):
    include_format_suffixes = False


# Trailing slash optional: /api/v1/sources and /api/v1/sources/ are the same list.
router = Router(trailing_slash="/?")
router.register("sources", views.SourceViewSet, basename="source")
router.register("revolutions", views.RevolutionViewSet, basename="revolution")
router.register("observations", views.ObservationViewSet, basename="observation")
router.register("products", views.ProductViewSet, basename="product")
router.register("jobs", views.JobViewSet, basename="job")

urlpatterns = [
    re_path(r"^time/convert/?$", views.TimeConvertView.as_view(), name="time-convert"),
    *router.urls,
]

if settings.GALLERY_BENCH_ENDPOINTS:
    urlpatterns.append(
        path("_bench/constant/", views.BenchConstantView.as_view(), name="bench-constant")
    )
