from django.urls import path

from . import views

app_name = "pages"

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("products/<uuid:uuid>/", views.product_detail, name="product"),
    path("products/<uuid:uuid>/files/<int:file_id>/", views.download, name="download"),
    path(
        "products/<uuid:uuid>/files/<int:file_id>/<str:name>", views.download, name="download-named"
    ),
    path("sources/<slug:slug>/", views.source_detail, name="source"),
    path("revolutions/<int:number>/", views.revolution_detail, name="revolution"),
]
