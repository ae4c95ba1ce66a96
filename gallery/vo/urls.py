"""Routes of the Virtual Observatory services, included at /vo/."""

from django.urls import re_path

from . import scs

app_name = "vo"

urlpatterns = [
    re_path(r"^scs/sources/?$", scs.source_cone, name="scs-sources"),
    re_path(r"^scs/products/?$", scs.product_cone, name="scs-products"),
]
