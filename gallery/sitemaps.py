"""The sitemap (``/sitemap.xml``): the fixed pages and every active source."""

from __future__ import annotations

from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from sources.models import Source


class SourceSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.6
    limit = 5000

    def items(self):
        return Source.objects.active().only("slug", "updated").order_by("name")

    def lastmod(self, source: Source):
        return source.updated


class StaticPagesSitemap(Sitemap):
    changefreq = "daily"
    priority = 0.8

    def items(self) -> list[str]:
        return [
            "pages:home",
            "pages:sources",
            "pages:revolutions",
            "pages:products",
            "pages:explore",
            "pages:statistics",
        ]

    def location(self, item: str) -> str:
        return reverse(item)


SITEMAPS = {"pages": StaticPagesSitemap, "sources": SourceSitemap}
