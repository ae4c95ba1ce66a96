from django.urls import path

from . import views

app_name = "pages"

urlpatterns = [
    path("", views.home, name="home"),
    path("products/<uuid:uuid>/", views.product_detail, name="product"),
    path("sources/<slug:slug>/", views.source_detail, name="source"),
    path("revolutions/<int:number>/", views.revolution_detail, name="revolution"),
]
