from django.contrib.sitemaps.views import sitemap
from django.urls import path
from django.views.decorators.cache import cache_page

from gallery.sitemaps import SITEMAPS

from . import views

app_name = "pages"

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("sources/", views.source_list, name="sources"),
    path("sources/<slug:slug>/", views.source_detail, name="source"),
    path("revolutions/", views.revolution_index, name="revolutions"),
    path("revolutions/<int:number>/", views.revolution_detail, name="revolution"),
    path("products/", views.product_list, name="products"),
    path("products/<uuid:uuid>/", views.product_detail, name="product"),
    path("products/<uuid:uuid>/plot.json", views.product_plot, name="product-plot"),
    path("products/<uuid:uuid>/files/<int:file_id>/", views.download, name="download"),
    path(
        "products/<uuid:uuid>/files/<int:file_id>/<str:name>", views.download, name="download-named"
    ),
    path("p/<int:pk>/", views.product_redirect, name="product-short"),
    path("explore/", views.explore, name="explore"),
    path("resolve", views.resolve_name, name="resolve"),
    path("statistics/", views.statistics, name="statistics"),
    path("favicon.ico", views.favicon, name="favicon"),
    path(
        "sitemap.xml",
        cache_page(600)(sitemap),
        {"sitemaps": SITEMAPS},
        name="sitemap",
    ),
]
