"""/api/v1/products/ filters against expectations built with factories."""

from __future__ import annotations

from datetime import timedelta

import pytest

from products import timeline
from tests.factories import (
    ObservationFactory,
    ProductFactory,
    SourceFactory,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/products/"


def titles(client, **params) -> set[str]:
    params.setdefault("page_size", 500)
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return {row["title"] for row in response.json()["results"]}


def test_revolution_span_inside_the_asked_span(anon):
    ProductFactory(title="one", rev_first=100, rev_last=100)
    ProductFactory(title="inside", rev_first=101, rev_last=105)
    ProductFactory(title="overlaps", rev_first=95, rev_last=101)
    ProductFactory(title="after", rev_first=200, rev_last=210)
    assert titles(anon, rev_min=100, rev_max=105) == {"one", "inside"}
    assert titles(anon, rev_min=96) == {"inside", "after", "one"}
    assert titles(anon, rev_max=101) == {"one", "overlaps"}
    # a revolution picks the products whose span includes it
    assert titles(anon, revolution=101) == {"inside", "overlaps"}
    # span length
    assert titles(anon, min_span=1) == {"inside", "overlaps", "after"}
    assert titles(anon, max_span=0) == {"one"}
    assert titles(anon, min_span=5, max_span=6) == {"overlaps"}


def test_energy_band_inside_the_asked_band(anon):
    ProductFactory(title="isgri 20-40", e_min_kev=20, e_max_kev=40)
    ProductFactory(title="isgri 28-80", e_min_kev=28, e_max_kev=80)
    ProductFactory(title="jemx 3-20", e_min_kev=3, e_max_kev=20, instrument__code="jemx1")
    assert titles(anon, e_min=15, e_max=50) == {"isgri 20-40"}
    assert titles(anon, e_min=20, e_max=100) == {"isgri 20-40", "isgri 28-80"}
    assert titles(anon, e_max=30) == {"jemx 3-20"}
    assert titles(anon, e_min=25) == {"isgri 28-80"}


def test_time_overlap_in_every_format(anon):
    # revolutions 1000, 1001 and 1002 (about three days each)
    for number in (1000, 1001, 1002):
        ProductFactory(title=f"rev {number}", rev_first=number, rev_last=number)
    middle = timeline.to_datetime(timeline.revolution_start(1001)) + timedelta(hours=12)
    iso = middle.strftime("%Y-%m-%dT%H:%M:%S")
    mjd = timeline.from_datetime(middle).utc.mjd
    ijd = timeline.time_to_ijd(timeline.from_datetime(middle))
    for value, fmt in ((iso, "isot"), (mjd, "mjd"), (ijd, "ijd")):
        assert titles(anon, time_min=value, time_max=value, time_format=fmt) == {"rev 1001"}
    # a range over the boundary overlaps both revolutions
    end_1001 = timeline.to_datetime(timeline.revolution_end(1001))
    before, after = end_1001 - timedelta(hours=1), end_1001 + timedelta(hours=1)
    assert titles(
        anon,
        time_min=before.strftime("%Y-%m-%dT%H:%M:%S"),
        time_max=after.strftime("%Y-%m-%dT%H:%M:%S"),
    ) == {"rev 1001", "rev 1002"}
    # a revolution number means its start: [start of 1001, start of 1002] touches 1000's end
    assert titles(anon, time_min=1001, time_max=1001, time_format="revnum") >= {"rev 1001"}
    assert titles(anon, time_min="2003-01-01", time_max="2003-01-02") == set()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"time_min": "yesterday"}, "time_min"),
        ({"time_min": "57000", "time_format": "jd"}, "time_format"),
        ({"time_min": "0000-01-01"}, "time_min"),
        ({"time_min": "-900000", "time_format": "mjd"}, "time_min"),
        ({"time_min": "2010-01-02", "time_max": "2010-01-01"}, "time_max"),
        ({"rev_min": 10, "rev_max": 5}, "rev_max"),
        ({"rev_min": -1}, "rev_min"),
        ({"e_min": "inf"}, "e_min"),
        ({"instrument": "xmm"}, "instrument"),
        ({"kind": "movie"}, "kind"),
        ({"ra": 1, "dec": 2}, "radius"),
        ({"status": "gone"}, "status"),
        ({"ordering": "title"}, "ordering"),
        ({"page_size": 0}, "page_size"),
        ({"role": "target"}, "role"),
        ({"source": "a" * 101}, "source"),
    ],
)
def test_bad_filters_are_400s_naming_the_parameter(anon, params, field):
    response = anon.get(URL, params)
    assert response.status_code == 400, response.content
    body = response.json()
    assert field in body, body


def test_instrument_code_and_family(anon):
    ProductFactory(title="isgri", instrument__code="isgri")
    ProductFactory(title="jemx1", instrument__code="jemx1")
    ProductFactory(title="jemx2", instrument__code="jemx2")
    assert titles(anon, instrument="jemx") == {"jemx1", "jemx2"}
    assert titles(anon, instrument="jemx2") == {"jemx2"}
    assert titles(anon, instrument="isgri,jemx1") == {"isgri", "jemx1"}


def test_kind_tag_level_highlight_observation(anon):
    obs = ObservationFactory()
    a = ProductFactory(title="a", kind__code="spectrum", data_level="NRT", observation=obs)
    b = ProductFactory(title="b", kind__code="image", data_level="CONS", is_highlight=True)
    ProductFactory(title="c", kind__code="lightcurve")
    a.tags.create(name="outburst")
    b.tags.create(name="survey")
    assert titles(anon, kind="spectrum,image") == {"a", "b"}
    assert titles(anon, tag="outburst") == {"a"}
    assert titles(anon, tag="outburst,survey") == {"a", "b"}
    assert titles(anon, data_level="CONS") == {"b"}
    assert titles(anon, highlight="true") == {"b"}
    assert titles(anon, observation=obs.pk) == {"a"}


def test_source_by_name_or_alias_normalised(anon):
    v404 = SourceFactory(name="V404 Cyg", aliases=["GS 2023+338"])
    crab = SourceFactory(name="Crab")
    ProductFactory(title="v404 spectrum", sources=[v404])
    ProductFactory(title="crab image", sources=[crab, v404], sources__role="in_field")
    ProductFactory(title="crab spectrum", sources=[crab])
    assert titles(anon, source="v404cyg") == {"v404 spectrum", "crab image"}
    assert titles(anon, source="GS_2023+338") == {"v404 spectrum", "crab image"}
    assert titles(anon, source="V404 Cyg", role="target") == {"v404 spectrum"}
    assert titles(anon, source_id=crab.pk) == {"crab image", "crab spectrum"}
    assert titles(anon, source="Unknown thing") == set()


def test_cone_on_product_positions_across_ra_zero(anon):
    ProductFactory(title="east", ra_deg=359.9, dec_deg=-0.1)
    ProductFactory(title="west", ra_deg=0.1, dec_deg=0.1)
    ProductFactory(title="far", ra_deg=10.0, dec_deg=0.0)
    ProductFactory(title="nowhere")
    assert titles(anon, ra=0, dec=0, radius=1) == {"east", "west"}
    assert titles(anon, ra=359.95, dec=0, radius=0.2) == {"east", "west"}
    assert titles(anon, ra=5, dec=0, radius=15) == {"east", "west", "far"}


def test_latest_versions_by_default(anon):
    new = ProductFactory(title="v2", series_key="s", version=2)
    ProductFactory(title="v1", series_key="s", version=1, superseded_by=new)
    assert titles(anon) == {"v2"}
    assert titles(anon, all_versions="true") == {"v1", "v2"}
    detail = anon.get(f"{URL}{new.uuid}/").json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]


def test_filters_combine(anon):
    crab = SourceFactory(name="Crab")
    ProductFactory(title="hit", sources=[crab], kind__code="spectrum", rev_first=50, rev_last=50)
    ProductFactory(
        title="wrong kind", sources=[crab], kind__code="image", rev_first=50, rev_last=50
    )
    ProductFactory(
        title="wrong rev", sources=[crab], kind__code="spectrum", rev_first=60, rev_last=60
    )
    assert titles(anon, source="crab", kind="spectrum", rev_min=40, rev_max=55) == {"hit"}


def test_list_and_detail_rows_match_their_declared_fields(anon):
    from gallery.api.serializers import ProductDetailSerializer, ProductSerializer

    crab, pulsar, nebula = SourceFactory(name="Crab"), SourceFactory(), SourceFactory()
    product = ProductFactory(sources=[crab])
    product.source_links.create(source=pulsar, role="in_field", significance=3.0)
    product.source_links.create(source=nebula, role="detected", significance=9.0)
    product.tags.create(name="b-tag")
    product.tags.create(name="a-tag")
    row = anon.get(URL).json()["results"][0]
    assert list(row) == list(ProductSerializer.Meta.fields)
    assert [s["role"] for s in row["sources"]] == ["target", "detected", "in_field"]
    assert row["tags"] == ["a-tag", "b-tag"]
    assert row["time_start"].endswith("Z") and row["is_latest"] is True
    detail = anon.get(row["url"]).json()
    assert list(detail) == list(ProductDetailSerializer.Meta.fields)
    assert {k: detail[k] for k in row} == row


@pytest.mark.parametrize("threshold", [0, 1, 1000])
def test_cone_gives_the_same_rows_by_either_access_path(anon, monkeypatch, threshold):
    """Sparse cones are answered from their ids, dense ones by the ordered scan."""
    import numpy as np

    from sources.sky import angular_distance_deg

    monkeypatch.setattr("gallery.api.filters.SPARSE_CONE_PRODUCTS", threshold)
    rng = np.random.default_rng(7)
    products = [
        ProductFactory(ra_deg=float(rng.uniform(355, 365) % 360), dec_deg=float(rng.uniform(-5, 5)))
        for _ in range(25)
    ]
    ProductFactory(ra_deg=0.5, dec_deg=0.5, status="hidden")
    expected = {
        p.title for p in products if angular_distance_deg(0.0, 0.0, p.ra_deg, p.dec_deg) <= 3.0
    }
    assert expected
    assert titles(anon, ra=0, dec=0, radius=3, page_size=7) <= expected
    rows, url = [], URL + "?ra=0&dec=0&radius=3&page_size=7"
    while url:
        body = anon.get(url).json()
        rows += [r["title"] for r in body["results"]]
        url = body["next"]
    assert sorted(rows) == sorted(expected)
