"""The pages, server-rendered: lists, filters, search, the product page, explore, statistics."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from products.models import Product
from tests.factories import (
    ObservationFactory,
    ProductFactory,
    ProductFileFactory,
    SourceFactory,
)

pytestmark = pytest.mark.django_db


def html(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def titles(page_html: str) -> list[str]:
    return re.findall(r'<a href="/products/[0-9a-f-]{36}/">([^<]+)</a>', page_html)


# --- home and navigation ---------------------------------------------------------------------


def test_home_shows_latest_revolutions_highlights_and_search(client, sky):
    page = html(client.get("/"))
    assert 'action="/search/"' in page
    assert '<a href="/revolutions/1600/">1600</a>' in page
    assert "Crab long-term mosaic" in page  # the highlight
    assert "<title>Home · INTEGRAL Gallery</title>" in page


def test_navigation_marks_the_current_page(client, sky):
    page = html(client.get("/sources/"))
    assert 'href="/sources/" aria-current="page"' in page
    assert 'href="/products/" aria-current' not in page


def test_search_box_goes_to_the_source_or_to_the_list(client, sky):
    assert client.get("/search/", {"q": "tau_a"})["Location"] == "/sources/crab/"
    listed = client.get("/search/", {"q": "cyg"})
    assert listed.status_code == 302 and listed["Location"] == "/sources/?q=cyg"


# --- sources ---------------------------------------------------------------------------------


def test_source_list_searches_names_and_aliases_normalised(client, sky):
    page = html(client.get("/sources/", {"q": "TAU-A"}))
    assert ">Crab</a>" in page and "Cyg X-1" not in page
    page = html(client.get("/sources/", {"q": "cygx"}))
    assert "Cyg X-1" in page and ">Crab</a>" not in page


def test_source_list_filters_by_class_with_sub_classes(client, sky):
    blazars = html(client.get("/sources/", {"cls": "Blazar"}))
    assert "Mrk 421" in blazars and "3C 279" in blazars and "Cyg X-1" not in blazars
    xrbs = html(client.get("/sources/", {"cls": "XRB"}))
    assert "Cyg X-1" in xrbs and "GX 5-1" in xrbs and "Mrk 421" not in xrbs


def test_source_list_sorts_and_shows_catalogue_links(client, sky):
    page = html(client.get("/sources/", {"sort": "-ra"}))
    names = re.findall(r'<a href="/sources/[^/]+/">([^<]+)</a>', page)
    assert names[:2] == ["Cyg X-1", "GX 5-1"]
    assert 'aria-sort="descending"' in page
    assert "cdsportal.u-strasbg.fr/?target=Crab" in page


def test_source_list_paginates(client, db):
    for n in range(60):
        SourceFactory(name=f"Paged {n:02d}")
    first = html(client.get("/sources/"))
    assert "Page 1 of 2" in first and "Paged 49" in first and "Paged 50" not in first
    second = html(client.get("/sources/", {"page": 2}))
    assert "Paged 50" in second


def test_source_page_shows_span_counts_highlights_and_long_baseline(client, sky):
    page = html(client.get("/sources/crab/"))
    assert "Tau A" in page and "Pulsar" in page and "CDS portal" in page
    assert "Long-baseline products" in page and "Crab long-term mosaic" in page
    assert "Highlights" in page
    assert "1500</a>–<a" in page and "1560</a>" in page  # revolution span
    assert "JEM-X2 spectrum</a>: 1" in page
    only_jemx = html(client.get("/sources/crab/", {"instrument": "jemx1"}))
    table = only_jemx.split('id="products-h"')[1]
    assert "Crab field JEM-X1 image" in table and "Crab field ISGRI image" not in table


def test_source_page_without_light_curve_says_so(client, sky):
    page = html(client.get("/sources/mrk-421/"))  # a spectrum only
    assert "No long-term light curve for this source." in page
    assert "data-lightcurve-url" not in page and "plotly" not in page


def test_source_page_offers_the_light_curve_in_the_bands_of_its_products(client, sky):
    page = html(client.get("/sources/crab/"))
    assert 'data-lightcurve-url="/api/v1/sources/crab/lightcurve' in page
    assert "source-lightcurve.js" in page and "vendor/plotly.min.js" in page
    # ISGRI first, in the band of its images; JEM-X1 offered too.
    assert '<option value="isgri" selected>' in page and '<option value="jemx1"' in page
    assert 'value="20.0:40.0" data-instrument="isgri" selected' in page


def test_merged_source_redirects(client, sky):
    sources, _ = sky
    dup = SourceFactory(name="Crab Nebula duplicate", merged_into=sources["crab"])
    response = client.get(dup.get_absolute_url())
    assert response.status_code == 301 and response["Location"] == "/sources/crab/"


# --- revolutions -----------------------------------------------------------------------------


def test_revolution_form_and_neighbours(client, sky):
    assert client.get("/revolutions/", {"number": "1516"})["Location"] == "/revolutions/1516/"
    assert "Revolution number" in html(client.get("/revolutions/", {"number": "x"}))
    page = html(client.get("/revolutions/1516/"))
    assert "/revolutions/1515/" in page and "/revolutions/1517/" in page
    assert client.get("/revolutions/0/").status_code == 404


def test_revolution_filters_by_instrument_family_unit_and_kind(client, sky):
    everything = titles(html(client.get("/revolutions/1516/")))
    assert set(everything) == {"Crab field ISGRI image", "Crab field JEM-X1 image",
                               "Crab JEM-X2 spectrum"}  # fmt: skip
    jemx = titles(html(client.get("/revolutions/1516/", {"instrument": "jemx"})))
    assert set(jemx) == {"Crab field JEM-X1 image", "Crab JEM-X2 spectrum"}
    jemx2 = titles(html(client.get("/revolutions/1516/", {"instrument": "jemx2"})))
    assert jemx2 == ["Crab JEM-X2 spectrum"]
    images = titles(html(client.get("/revolutions/1516/", {"kind": "image"})))
    assert set(images) == {"Crab field ISGRI image", "Crab field JEM-X1 image"}


def test_revolution_groups_by_observation_with_detected_sources(client, crab):
    observation = ObservationFactory(title="Crab ToO", obsid="19600010008", revolution__number=1516)
    image = ProductFactory(
        title="Obs image",
        rev_first=1516,
        observation=observation,
        sources=[crab],
        sources__role="detected",
        metadata={"detected_sources": [
            {"name": "Crab", "source": "crab", "ra_deg": 83.63, "dec_deg": 22.01,
             "significance": 268.3, "flux": 142.0, "flux_error": 0.5},
            {"name": "NEW J0535+2300", "ra_deg": 83.9, "dec_deg": 23.0, "significance": 8.1,
             "is_new": True},
        ]},
    )  # fmt: skip
    ProductFileFactory(product=image, role="preview", original_name="preview.png")
    page = html(client.get("/revolutions/1516/"))
    assert "Observation Crab ToO" in page and "obsid 19600010008" in page
    assert "268.3" in page and "NEW J0535+2300" in page and ">new<" in page
    assert f"/products/{image.uuid}/files/" in page  # the mosaic preview


def test_revolution_page_includes_the_processing_log_when_installed(client, sky, monkeypatch):
    from gallery.pages import selectors as page_selectors

    monkeypatch.setattr(page_selectors, "revolution_runs_template", lambda: None)
    assert "Processing log" not in html(client.get("/revolutions/1516/"))
    monkeypatch.setattr(
        page_selectors, "revolution_runs_template", lambda: "includes/pagination.html"
    )
    assert "Processing log" in html(client.get("/revolutions/1516/"))


def test_revolution_runs_template_is_detected():
    from django.template import TemplateDoesNotExist
    from django.template.loader import get_template

    from gallery.pages.selectors import REVOLUTION_RUNS_TEMPLATE, revolution_runs_template

    try:
        get_template(REVOLUTION_RUNS_TEMPLATE)
        exists = True
    except TemplateDoesNotExist:
        exists = False
    assert (revolution_runs_template() is not None) == exists


# --- products --------------------------------------------------------------------------------


def test_product_list_filters(client, sky):
    def listed(**params):
        return set(titles(html(client.get("/products/", params))))

    assert listed(instrument="jemx") == {"Crab field JEM-X1 image", "Crab JEM-X2 spectrum"}
    assert listed(kind="lightcurve") == {"Cyg X-1 ISGRI light curve"}
    assert listed(source="tau a") == {
        "Crab field ISGRI image", "Crab field JEM-X1 image", "Crab JEM-X2 spectrum",
        "Crab long-term mosaic",
    }  # fmt: skip
    assert listed(cls="Blazar") == {"Mrk 421 ISGRI spectrum"}
    assert listed(cls="XRB") == {"Cyg X-1 ISGRI light curve"}
    assert listed(e_min=2, e_max=25) == {"Crab field JEM-X1 image"}
    assert listed(rev_min=1516, rev_max=1516) == {
        "Crab field ISGRI image", "Crab field JEM-X1 image", "Crab JEM-X2 spectrum",
    }  # fmt: skip
    assert listed(t_start=1550, t_end=1560, t_unit="revnum") == {"Cyg X-1 ISGRI light curve"}


def test_product_list_time_units_agree(client, sky):
    from products import timeline

    start = timeline.revolution_start(1555)
    end = timeline.revolution_end(1555)
    expected = {"Cyg X-1 ISGRI light curve"}
    for unit in ("isot", "mjd", "ijd"):
        params = {
            "t_start": timeline.format_time(start, unit),
            "t_end": timeline.format_time(end, unit),
            "t_unit": unit,
        }
        assert set(titles(html(client.get("/products/", params)))) == expected, unit


def test_product_list_reports_bad_input_beside_the_field(client, sky):
    page = html(client.get("/products/", {"t_start": "yesterday", "t_unit": "isot"}))
    assert "is not an ISO time" in page and 'role="alert"' in page
    page = html(client.get("/products/", {"source": "no such source"}))
    assert "No source is called" in page and "No products." in page


def test_product_list_pages_by_keyset_without_duplicates(client, db):
    for n in range(120):
        ProductFactory(title=f"Listed {n:03d}")
    seen, url, pages = [], "/products/", 0
    while url and pages < 5:
        page = html(client.get(url))
        seen += titles(page)
        match = re.search(r'href="\?(cursor=[^"]+)" rel="next"', page)
        url = f"/products/?{match.group(1)}" if match else None
        pages += 1
    assert pages == 3 and len(seen) == 120 and len(set(seen)) == 120
    assert seen[0] == "Listed 119"  # newest first
    # Back from the last page.
    match = re.search(r'href="\?(cursor=[^"]+)" rel="prev"', page)
    back = titles(html(client.get(f"/products/?{match.group(1)}")))
    assert back == seen[50:100]


def test_product_list_count_is_limited(client, db, monkeypatch):
    from gallery.pages import selectors

    real = selectors.bounded_count
    monkeypatch.setattr(selectors, "bounded_count", lambda qs: real(qs, limit=5))
    for n in range(7):
        ProductFactory(title=f"Counted {n}")
    assert "More than 5 products" in html(client.get("/products/"))


def test_hidden_and_proprietary_products_never_listed(client, sky, crab):
    ProductFactory(title="Hidden one", status=Product.Status.HIDDEN, sources=[crab])
    ProductFactory(
        title="Private one",
        access=Product.Access.PROPRIETARY,
        embargo_until=timezone.now() + timedelta(days=9),
        sources=[crab],
    )
    for url in ("/products/", "/sources/crab/", "/revolutions/1516/", "/", "/explore/?name=crab"):
        page = html(client.get(url))
        assert "Hidden one" not in page and "Private one" not in page, url


def test_product_page_metadata_snippets_and_versions(client, sky):
    _, products = sky
    product = products["crab_image"]
    data = ProductFileFactory(product=product, original_name="mosaic.fits")
    newer = ProductFactory(
        title="Crab field ISGRI image v2", series_key=product.series_key, version=2,
        rev_first=1516, osa_version="11.2",
    )  # fmt: skip
    product.superseded_by = newer
    product.save()
    page = html(client.get(product.get_absolute_url()))
    assert "IJD" in page and "MJD" in page and "UTC" in page
    assert "superseded" in page and newer.get_absolute_url() in page
    assert f"/api/v1/products/{product.uuid}/" in page
    assert "GalleryDispatcherAPI" in page and "product_type=&#x27;isgri_image&#x27;" in page
    assert f"/products/{product.uuid}/files/{data.pk}/mosaic.fits" in page
    assert f"http://testserver/products/{product.uuid}/" in page  # the permanent link
    assert f'data-plot-url="/products/{product.uuid}/plot.json"' in page
    assert "<script>" not in page.replace("<script type=", "")  # no inline script


def test_short_link_redirects_to_the_permanent_link(client, sky):
    _, products = sky
    product = products["crab_image"]
    response = client.get(f"/p/{product.pk}/")
    assert response.status_code == 301 and response["Location"] == product.get_absolute_url()


# --- explore and resolve ---------------------------------------------------------------------


def test_resolve_finds_names_and_aliases_locally(client, sky):
    found = client.get("/resolve", {"name": "tau_a"}).json()
    assert found["resolved"] and found["name"] == "Crab" and found["url"] == "/sources/crab/"
    assert abs(found["ra_deg"] - 83.633) < 1e-6 and "successfully resolved" in found["message"]
    unknown = client.get("/resolve", {"name": "Nowhere X-9"}).json()
    assert unknown == {
        "name": "Nowhere X-9",
        "resolved": False,
        "message": "Nowhere X-9 could not be resolved",
    }


def test_resolve_never_goes_online_unless_enabled(client, db, settings, monkeypatch):
    from astropy.coordinates import SkyCoord

    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(SkyCoord, "from_name", refuse)
    settings.GALLERY_ONLINE_RESOLVER = False
    assert client.get("/resolve", {"name": "Betelgeuse"}).json()["resolved"] is False

    settings.GALLERY_ONLINE_RESOLVER = True
    monkeypatch.setattr(
        SkyCoord,
        "from_name",
        classmethod(lambda cls, name, **kw: SkyCoord(88.79, 7.41, unit="deg")),
    )
    online = client.get("/resolve", {"name": "Betelgeuse"}).json()
    assert online["resolved"] and "CDS Sesame" in online["message"]


def test_explore_by_name_position_time_and_kind(client, sky):
    page = html(client.get("/explore/", {"name": "Crab", "radius": "2"}))
    found = set(titles(page))
    assert "Crab field ISGRI image" in found and "Cyg X-1 ISGRI light curve" not in found
    assert 'value="83.633000"' in page  # the resolved position is shown in the form
    by_position = set(titles(html(client.get("/explore/", {"ra": 299.6, "dec": 35.2}))))
    assert by_position == {"Cyg X-1 ISGRI light curve"}
    images = set(titles(html(client.get("/explore/", {"name": "crab", "kind": "image"}))))
    assert images == {"Crab field ISGRI image", "Crab field JEM-X1 image"}
    timed = html(client.get("/explore/", {"t_start": "1555", "t_end": "1555", "t_unit": "revnum"}))
    assert set(titles(timed)) == {"Cyg X-1 ISGRI light curve"}


def test_explore_reports_unknown_names_and_half_positions(client, sky):
    page = html(client.get("/explore/", {"name": "Nowhere X-9"}))
    assert "could not be resolved" in page and "Matching products" not in page
    page = html(client.get("/explore/", {"ra": "10"}))
    assert "Give both RA and Dec" in page


def test_explore_works_across_ra_zero(client, db):
    near_zero = SourceFactory(name="Near Zero", ra_deg=359.9, dec_deg=1.0)
    ProductFactory(title="Across zero", ra_deg=0.2, dec_deg=1.0, sources=[near_zero])
    found = titles(html(client.get("/explore/", {"ra": "359.8", "dec": "1.0", "radius": "1"})))
    assert found == ["Across zero"]


# --- statistics and sitemap ------------------------------------------------------------------


def test_statistics_aggregates_and_caches(client, sky, django_assert_max_num_queries):
    cache.clear()
    page = html(client.get("/statistics/"))
    assert 'id="statistics-data" type="application/json"' in page
    assert "2015" in page  # revolutions 1516-1600 were observed in 2015
    with django_assert_max_num_queries(0):
        client.get("/statistics/")


def test_sitemap_lists_active_sources(client, sky):
    sources, _ = sky
    SourceFactory(name="Merged away", merged_into=sources["crab"])
    xml = client.get("/sitemap.xml").content.decode()
    assert "http://testserver/sources/crab/" in xml and "/sources/cyg-x-1/" in xml
    assert "merged-away" not in xml and "http://testserver/explore/" in xml


def test_favicon_redirects_to_the_static_icon(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("gallery/favicon.svg")


def test_plotly_is_served_from_the_installed_package(client, db):
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    head = b"".join(response.streaming_content)[:2000]
    assert b"plotly" in head.lower()


def test_counts_give_up_quietly_when_too_slow(db, monkeypatch):
    from django.db import connection

    from gallery.pages.selectors import bounded_count
    from products import selectors

    for n in range(3):
        ProductFactory(title=f"Counted {n}")
    assert bounded_count(Product.objects.all()) == (3, False)
    if connection.vendor != "postgresql":
        pytest.skip("the statement timeout is PostgreSQL's")

    def slow(queryset, limit):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(1)")
        raise AssertionError("the timeout did not stop the count")

    monkeypatch.setattr(selectors, "limited_count", slow)
    assert bounded_count(Product.objects.all(), timeout_ms=50) == (None, True)
    with connection.cursor() as cursor:  # the setting did not outlive the count
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"
