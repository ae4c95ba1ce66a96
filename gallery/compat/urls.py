"""Routes of the oda_api-compatible endpoints, under ``/dispatch-data/`` as at the MMODA
service: the client builds ``<base>/<endpoint>`` with no trailing slash."""

from django.urls import path

from . import views

app_name = "compat"

_ENDPOINTS = (
    "get_parents_term",
    "get_list_terms",
    "resolve_name",
    "get_revnum",
    "get_data_product_list_by_source_name",
    "get_data_product_list_with_conditions",
    "post_product_to_gallery",
    "post_observation_to_gallery",
    "post_astro_entity_to_gallery",
    "delete_product_to_gallery",
    "get_observation_attachments",
)

urlpatterns = [path(name, getattr(views, name), name=name) for name in _ENDPOINTS] + [
    path(
        "observation_attachments/<int:pk>/<str:sha256>",
        views.observation_attachment,
        name="observation_attachment",
    ),
]
