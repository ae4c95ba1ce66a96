"""/api/v1/sources/: name and alias search, classes with sub-classes, cone, detail, merge."""

from __future__ import annotations

import numpy as np
import pytest

from products.models import Product, ProductSource
from sources.sky import angular_distance_deg
from tests.factories import ProductFactory, SourceFactory
from tests.gallery.api.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/api/v1/sources/"


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


def test_search_matches_names_and_aliases_normalised(anon):
    SourceFactory(name="V404 Cyg", aliases=["GS 2023+338"])
    SourceFactory(name="Cyg X-1")
    SourceFactory(name="4U 1700-377")
    assert names(anon.get(URL, {"q": "v404cyg"})) == ["V404 Cyg"]
    assert names(anon.get(URL, {"q": "V404_CYG"})) == ["V404 Cyg"]
    assert names(anon.get(URL, {"q": "gs 2023"})) == ["V404 Cyg"]
    assert names(anon.get(URL, {"q": "cygx1"})) == ["Cyg X-1"]
    assert sorted(names(anon.get(URL, {"q": "cyg"}))) == ["Cyg X-1", "V404 Cyg"]
    # the sign of a declination is kept: 1700+377 is another source
    assert names(anon.get(URL, {"q": "1700+377"})) == []
    assert names(anon.get(URL, {"name": "GS 2023+338"})) == ["V404 Cyg"]


def test_search_lists_aliases_and_class(anon):
    SourceFactory(name="V404 Cyg", aliases=["GS 2023+338"], class_code="LMXB")
    row = anon.get(URL, {"q": "v404"}).json()["results"][0]
    assert row["aliases"] == ["GS 2023+338"]
    assert row["object_class"] == "LMXB"
    assert row["portal_url"].startswith("https://cdsportal")


def test_class_includes_sub_classes(anon):
    SourceFactory(name="NGC 4151", class_code="Seyfert1")
    SourceFactory(name="3C 279", class_code="FSRQ")
    SourceFactory(name="Mrk 421", class_code="BLLac")
    SourceFactory(name="Cyg X-1", class_code="HMXB")
    assert sorted(names(anon.get(URL, {"class": "AGN"}))) == ["3C 279", "Mrk 421", "NGC 4151"]
    assert sorted(names(anon.get(URL, {"class": "Blazar"}))) == ["3C 279", "Mrk 421"]
    assert names(anon.get(URL, {"class": "hmxb"})) == ["Cyg X-1"]
    response = anon.get(URL, {"class": "Dragon"})
    assert response.status_code == 400
    assert "unknown class" in response.json()["class"][0]


@pytest.mark.parametrize(
    ("ra", "dec"), [(0.5, 10.0), (359.5, -10.0), (0.0, 0.0), (180.0, 89.5), (45.0, -89.0)]
)
def test_cone_matches_brute_force_and_orders_by_distance(anon, ra, dec):
    rng = np.random.default_rng(int(ra * 10 + dec))
    sky = []
    for i in range(40):
        # half of them close to the centre, some across RA 0/360 or the pole
        d_ra = rng.uniform(-4, 4) / max(np.cos(np.radians(min(abs(dec), 85))), 0.1)
        s_ra = (ra + d_ra) % 360.0
        s_dec = float(np.clip(dec + rng.uniform(-4, 4), -90, 90))
        sky.append(SourceFactory(name=f"S{i}", ra_deg=s_ra, dec_deg=s_dec))
    radius = 3.0
    expected = {
        s.name: float(angular_distance_deg(ra, dec, s.ra_deg, s.dec_deg))
        for s in sky
        if angular_distance_deg(ra, dec, s.ra_deg, s.dec_deg) <= radius
    }
    response = anon.get(URL, {"ra": ra, "dec": dec, "radius": radius, "page_size": 100})
    got = names(response)
    assert set(got) == set(expected)
    # nearest first (ties, e.g. several sources at the pole, in any order)
    true = [expected[name] for name in got]
    assert all(b >= a - 1e-9 for a, b in zip(true, true[1:], strict=False))
    distances = [row["distance_deg"] for row in response.json()["results"]]
    assert distances == sorted(distances)
    assert all(d <= radius for d in distances)


def test_cone_across_ra_zero(anon):
    SourceFactory(name="East", ra_deg=359.8, dec_deg=0.0)
    SourceFactory(name="West", ra_deg=0.2, dec_deg=0.0)
    SourceFactory(name="Far", ra_deg=180.0, dec_deg=0.0)
    assert names(anon.get(URL, {"ra": 0, "dec": 0, "radius": 0.5})) in (
        ["East", "West"],
        ["West", "East"],
    )
    assert sorted(names(anon.get(URL, {"ra": 360, "dec": 0, "radius": 0.5}))) == [
        "East",
        "West",
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"ra": 10, "dec": 10}, "radius"),
        ({"ra": 10, "dec": 95, "radius": 1}, "dec"),
        ({"ra": 10, "dec": 0, "radius": -1}, "radius"),
        ({"ra": "nan", "dec": 0, "radius": 1}, "ra"),
        ({"ra": "x", "dec": 0, "radius": 1}, "ra"),
        ({"ordering": "distance"}, "ordering"),
        ({"ordering": "bogus"}, "ordering"),
    ],
)
def test_bad_cone_is_a_400_naming_the_field(anon, params, field):
    response = anon.get(URL, params)
    assert response.status_code == 400
    assert field in response.json()


def test_detail_by_id_and_slug_with_visible_counts(anon):
    crab = SourceFactory(name="Crab", aliases=["M 1"], class_code="Pulsar")
    for kind in ("image", "image", "spectrum"):
        ProductFactory(kind__code=kind, sources=[crab])
    ProductFactory(kind__code="spectrum", instrument__code="jemx1", sources=[crab])
    ProductFactory(kind__code="spectrum", sources=[crab], access="proprietary")
    ProductFactory(kind__code="spectrum", sources=[crab], status="hidden")
    by_id = anon.get(f"{URL}{crab.pk}/").json()
    by_slug = anon.get(f"{URL}{crab.slug}/").json()
    assert by_id == by_slug
    assert by_id["aliases"] == ["M 1"]
    assert by_id["class_label"] == "Pulsar"
    counts = {(c["instrument"], c["kind"]): c["count"] for c in by_id["product_counts"]}
    assert counts == {("isgri", "image"): 2, ("isgri", "spectrum"): 1, ("jemx1", "spectrum"): 1}
    products = anon.get(by_id["products_url"]).json()["results"]
    assert len(products) == 4


def test_unknown_source_is_a_json_404(anon):
    for path in (f"{URL}999999/", f"{URL}no-such-source/"):
        response = anon.get(path)
        assert response.status_code == 404
        assert "detail" in response.json()


def test_merged_source_redirects_to_its_target(anon, curator):
    target = SourceFactory(name="IGR J17091-3624")
    new = SourceFactory(name="NEW J170906.0-362420")
    response = client_for(curator).post(f"{URL}{new.pk}/merge/", {"into": "IGR J17091-3624"})
    assert response.status_code == 200, response.content
    assert response.json()["id"] == target.pk
    assert "NEW J170906.0-362420" in response.json()["aliases"]
    redirect = anon.get(f"{URL}{new.slug}/")
    assert redirect.status_code == 301
    assert redirect["Location"].endswith(f"{URL}{target.pk}/")
    # the merged name now finds the target, and the merged source leaves the list
    assert names(anon.get(URL, {"q": "NEW J170906"})) == ["IGR J17091-3624"]


def test_merge_moves_products_and_needs_a_curator(anon, reader, contributor, curator):
    target, new = SourceFactory(name="GX 339-4"), SourceFactory(name="NEW J1702-4848")
    product = ProductFactory(sources=[new])
    url = f"{URL}{new.pk}/merge/"
    assert anon.post(url, {"into": target.pk}).status_code == 401
    assert client_for(reader).post(url, {"into": target.pk}).status_code == 403
    assert client_for(contributor).post(url, {"into": target.pk}).status_code == 403
    response = client_for(curator).post(url, {"into": target.pk})
    assert response.status_code == 200
    assert list(ProductSource.objects.filter(product=product).values_list("source", flat=True)) == [
        target.pk
    ]
    again = client_for(curator).post(url, {"into": target.pk})
    assert again.status_code == 400
    assert "already merged" in again.json()["into"][0]
    assert client_for(curator).post(f"{URL}{target.pk}/merge/", {"into": "nobody"}).status_code == (
        400
    )
    assert Product.objects.filter(source_links__source=target).count() == 1


def test_cached_counts_are_kept_per_audience(anon, reader, curator):
    from django.contrib.auth.models import Group

    from tests.gallery.api.conftest import make_user

    team = Group.objects.create(name="team")
    granted = make_user("reader", groups=("team",))
    source = SourceFactory(name="GX 5-1")
    ProductFactory(sources=[source])
    private = ProductFactory(sources=[source], access="proprietary")
    private.granted_groups.add(team)
    ProductFactory(sources=[source], status="hidden")

    def total(client) -> int:
        counts = client.get(f"{URL}{source.pk}/").json()["product_counts"]
        return sum(c["count"] for c in counts)

    # the order matters: each audience first sees what an earlier one left in the cache
    assert total(anon) == 1
    assert total(client_for(granted)) == 2
    assert total(client_for(curator)) == 3
    assert total(client_for(reader)) == 1
    assert total(anon) == 1
    assert total(client_for(granted)) == 2
