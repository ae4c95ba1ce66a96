"""Product lists: by source name and with conditions, as the previous gallery answered them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from gallery.compat import queries
from products.models import Product
from tests.factories import ProductFactory, ProductFileFactory, SourceFactory

from .conftest import BASE, body, error_of, make_user, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def sky(db):
    """Sources and products whose lists are easy to tell apart."""
    v404 = SourceFactory(
        name="V404 Cyg", ra_deg=306.016, dec_deg=33.867, aliases=["1RXS J202405.3+335157"]
    )
    crab = SourceFactory(name="Crab", ra_deg=83.633, dec_deg=22.014, aliases=["M 1"])
    p = {}
    p["image_100"] = ProductFactory(
        title="isgri image 100",
        rev_first=100,
        e_min_kev=20,
        e_max_kev=40,
        sources=[crab],
        ra_deg=83.6,
        dec_deg=22.0,
    )
    p["image_100_110"] = ProductFactory(
        title="isgri image 100-110", rev_first=100, rev_last=110, e_min_kev=20, e_max_kev=40,
        sources=[crab],
    )  # fmt: skip
    p["jemx_spectrum"] = ProductFactory(
        title="jemx1 spectrum",
        kind__code="spectrum",
        instrument__code="jemx1",
        rev_first=105,
        e_min_kev=3,
        e_max_kev=35,
        sources=[v404],
    )
    p["isgri_lc"] = ProductFactory(
        title="isgri lc", kind__code="lightcurve", rev_first=200, e_min_kev=25, e_max_kev=80,
        sources=[v404], external_id="lc-v404",
    )  # fmt: skip
    p["no_band"] = ProductFactory(
        title="no band", kind__code="lightcurve", rev_first=300, e_min_kev=None, e_max_kev=None,
        sources=[v404],
    )  # fmt: skip
    # Not listed: an older version, a hidden product, a product under embargo.
    old = ProductFactory(title="old version", rev_first=150, sources=[v404], series_key="v")
    new = ProductFactory(
        title="new version", rev_first=150, sources=[v404], series_key="v", version=2
    )
    old.superseded_by = new
    old.save()
    p["new_version"] = new
    ProductFactory(title="hidden", status=Product.Status.HIDDEN, sources=[v404])
    p["embargoed"] = ProductFactory(
        title="embargoed",
        sources=[v404],
        access=Product.Access.PROPRIETARY,
        embargo_until=timezone.now() + timedelta(days=30),
    )
    return p


def titles(response) -> list[str]:
    return sorted(item["title"] for item in body(response))


def listed(client, **query) -> list[str]:
    return titles(client.get(f"{BASE}/get_data_product_list_with_conditions", query))


V404_TITLES = ["isgri lc", "jemx1 spectrum", "new version", "no band"]


@pytest.mark.parametrize(
    "name", ["V404 Cyg", "1RXS J202405.3+335157", "v404_cyg", "1RXS J202405.3+335157 "]
)
def test_by_source_name_matches_names_and_aliases(client, sky, name):
    response = client.get(f"{BASE}/get_data_product_list_by_source_name", {"src_name": name})
    assert titles(response) == V404_TITLES


def test_by_source_name_unknown_and_missing(client, sky):
    url = f"{BASE}/get_data_product_list_by_source_name"
    assert body(client.get(url, {"src_name": "No Such Source"})) == []
    error_of(client.get(url), 400)


def test_aliases_give_the_same_products_with_conditions(client, sky):
    assert listed(client, src_name="V404 Cyg") == V404_TITLES
    assert listed(client, src_name="1RXS J202405.3+335157") == V404_TITLES
    assert listed(client, src_name="Crab,1RXS J202405.3+335157") == sorted(
        V404_TITLES + ["isgri image 100", "isgri image 100-110"]
    )


def test_instrument_and_product_type(client, sky):
    assert listed(client, instrument_name="jemx1") == ["jemx1 spectrum"]
    assert listed(client, instrument_name="jemx") == ["jemx1 spectrum"]
    assert listed(client, instrument_name="jemx2") == []
    assert listed(client, product_type="jemx_spectrum") == ["jemx1 spectrum"]
    assert listed(client, product_type="isgri_spectrum") == []
    assert listed(client, product_type="spectrum") == ["jemx1 spectrum"]
    assert listed(client, product_type="isgri_lc") == ["isgri lc", "no band"]
    assert listed(client, instrument_name="isgri", product_type="image") == [
        "isgri image 100",
        "isgri image 100-110",
        "new version",
    ]


def test_energy_band_must_lie_inside(client, sky):
    assert listed(client, e1_kev_value=15, e2_kev_value=50) == [
        "isgri image 100",
        "isgri image 100-110",
        "new version",
    ]
    assert listed(client, e1_kev_value=25, e2_kev_value=50) == []
    assert listed(client, e1_kev_value=20, e2_kev_value=40) == [
        "isgri image 100",
        "isgri image 100-110",
        "new version",
    ]
    # One bound alone; products without a band never match a band condition.
    assert listed(client, e1_kev_value=21) == ["isgri lc"]
    assert listed(client, e2_kev_value=36) == ["jemx1 spectrum"]


def test_revolution_range_must_contain_the_products_range(client, sky):
    assert listed(client, rev1_value=100, rev2_value=105) == ["isgri image 100", "jemx1 spectrum"]
    assert listed(client, rev1_value=100, rev2_value=110) == [
        "isgri image 100",
        "isgri image 100-110",
        "jemx1 spectrum",
    ]
    assert listed(client, rev1_value=101, rev2_value=110) == ["jemx1 spectrum"]
    assert listed(client, rev1_value=150) == ["isgri lc", "new version", "no band"]


def test_span_filters(client, sky):
    assert listed(client, rev1_value=100, rev2_value=110, max_span_rev_value=0) == [
        "isgri image 100",
        "jemx1 spectrum",
    ]
    assert listed(client, min_span_rev_value=1) == ["isgri image 100-110"]
    assert listed(client, min_span_rev_value=5, max_span_rev_value=9) == []
    assert listed(client, min_span_rev_value=10, max_span_rev_value=10) == ["isgri image 100-110"]


def test_product_id(client, sky):
    assert listed(client, product_id="lc-v404") == ["isgri lc"]
    assert listed(client, product_id="nothing") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"E1_kev": "25"}, "e1_kev"),
        ({"instrument_name": "xmm"}, "xmm"),
        ({"product_type": "Dummy"}, "Dummy"),
        ({"e1_kev_value": "abc"}, "e1_kev_value"),
        ({"e1_kev_value": "nan"}, "e1_kev_value"),
        ({"rev1_value": "12.5"}, "rev1_value"),
    ],
)
def test_bad_conditions_are_refused(client, sky, query, field):
    response = client.get(f"{BASE}/get_data_product_list_with_conditions", query)
    assert field in error_of(response, 400)


def test_visibility_follows_the_token(client, sky):
    assert "embargoed" not in listed(client)
    group = Group.objects.create(name="pi-team")
    member = make_user("pi", "reader")
    member.groups.add(group)
    sky["embargoed"].granted_groups.add(group)
    assert "embargoed" in listed(client, token=token_for(member, roles=()))
    assert "embargoed" not in listed(client, token=token_for(make_user("other", "reader")))


def test_hidden_products_are_not_listed_even_for_curators(client, sky):
    curator = make_user("curator", "curator")
    seen = listed(client, token=token_for(curator, roles=()))
    assert "hidden" not in seen and "old version" not in seen and "embargoed" in seen


def test_item_shape(client, sky):
    preview = ProductFileFactory(product=sky["image_100"], role="preview", content=b"\x89PNG..")
    ProductFileFactory(product=sky["image_100"], original_name="mosaic.fits")
    items = body(
        client.get(
            f"{BASE}/get_data_product_list_with_conditions", {"rev1_value": 100, "rev2_value": 100}
        )
    )
    assert len(items) == 1
    item = items[0]
    product = sky["image_100"]
    assert item["nid"] == product.pk and item["uuid"] == str(product.uuid)
    assert item["title"] == "isgri image 100"
    assert item["instrument"] == item["instrument_name"] == "isgri"
    assert item["product_type"] == item["product_type_name"] == "isgri_image"
    assert (item["e1_kev"], item["e2_kev"]) == (20.0, 40.0)
    assert (item["ra"], item["dec"]) == (pytest.approx(83.6), pytest.approx(22.0))
    assert (item["rev1"], item["rev2"], item["span_rev"]) == (100, 100, 0)
    assert item["src_name"] == "Crab"
    assert item["url"] == f"http://testserver{product.get_absolute_url()}"
    assert item["image_png"].endswith(f"/files/{preview.pk}/")
    assert item["file_name"] == "mosaic.fits" and len(item["fits_file"]) == 1
    assert item["in_evidence"] is False
    assert item["created"] == item["changed"]
    # Nothing unknown is sent as null: the key is left out.
    assert "product_id" not in item and "produced_by" not in item
    no_band = body(client.get(f"{BASE}/get_data_product_list_with_conditions", {"rev1_value": 300}))
    assert "e1_kev" not in no_band[0] and "e2_kev" not in no_band[0]


def test_versions_keep_the_first_versions_nid(client, sky):
    item = body(
        client.get(
            f"{BASE}/get_data_product_list_with_conditions", {"rev1_value": 150, "rev2_value": 150}
        )
    )[0]
    first = Product.objects.get(title="old version")
    assert item["title"] == "new version" and item["nid"] == first.pk
    assert item["created"] != item["changed"]


def test_listing_takes_a_fixed_number_of_queries(client, sky, django_assert_max_num_queries):
    source = SourceFactory(name="Busy Source")
    for _ in range(30):
        product = ProductFactory(sources=[source])
        ProductFileFactory(product=product)
    with django_assert_max_num_queries(12):
        response = client.get(
            f"{BASE}/get_data_product_list_by_source_name", {"src_name": "Busy Source"}
        )
    assert len(body(response)) == 30


def test_too_many_products_is_a_clear_error(client, sky, monkeypatch):
    monkeypatch.setattr(queries, "MAX_PRODUCTS", 3)
    assert "narrow" in error_of(client.get(f"{BASE}/get_data_product_list_with_conditions"), 400)
    assert len(listed(client, instrument_name="jemx1")) == 1
