"""Routes of the light-curve and transient endpoints, included at /api/v1/."""

from django.urls import re_path

from .lightcurves import LightCurveView
from .transients import TransientListView

app_name = "lightcurves"

urlpatterns = [
    re_path(
        r"^sources/(?P<source>[-\w]{1,120})/lightcurve/?$",
        LightCurveView.as_view(),
        name="source-lightcurve",
    ),
    re_path(r"^transients/?$", TransientListView.as_view(), name="transients"),
]
