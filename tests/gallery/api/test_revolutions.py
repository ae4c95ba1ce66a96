"""/api/v1/revolutions/, /api/v1/observations/ and /api/v1/time/convert."""

from __future__ import annotations

import pytest

from products import timeline
from products.models import Revolution
from tests.factories import ObservationFactory, ProductFactory, RevolutionFactory

pytestmark = pytest.mark.django_db


def test_revolution_list_and_filters(anon):
    for number in (10, 11, 12, 500):
        RevolutionFactory(number=number)
    body = anon.get("/api/v1/revolutions/").json()
    assert [r["number"] for r in body["results"]] == [500, 12, 11, 10]
    assert body["count"] == 4
    body = anon.get("/api/v1/revolutions/", {"number_min": 11, "number_max": 12}).json()
    assert [r["number"] for r in body["results"]] == [12, 11]


def test_revolution_detail_with_observations_and_counts(anon):
    obs = ObservationFactory(revolution=RevolutionFactory(number=1555), title="V404 Cyg ToO")
    ProductFactory(rev_first=1555, rev_last=1555, kind__code="image")
    ProductFactory(rev_first=1550, rev_last=1560, kind__code="spectrum")
    ProductFactory(rev_first=1556, rev_last=1556, kind__code="image")
    ProductFactory(rev_first=1555, rev_last=1555, kind__code="image", access="proprietary")
    body = anon.get("/api/v1/revolutions/1555/").json()
    assert body["start"].startswith(
        timeline.to_datetime(timeline.revolution_start(1555)).strftime("%Y-%m-%dT%H:%M")
    )
    assert [o["title"] for o in body["observations"]] == ["V404 Cyg ToO"]
    assert body["observations"][0]["id"] == obs.pk
    counts = {(c["instrument"], c["kind"]): c["count"] for c in body["product_counts"]}
    assert counts == {("isgri", "image"): 1, ("isgri", "spectrum"): 1}
    listed = anon.get(body["products_url"]).json()["results"]
    assert len(listed) == 2


def test_revolution_not_in_the_table_is_built_from_the_timeline(anon):
    body = anon.get("/api/v1/revolutions/2485/").json()
    assert body["number"] == 2485
    assert body["product_counts"] == []
    assert not Revolution.objects.filter(number=2485).exists()  # a GET writes nothing
    assert anon.get("/api/v1/revolutions/0/").status_code == 404
    assert anon.get("/api/v1/revolutions/123456/").status_code == 404


def test_observation_detail_and_filters(anon):
    near = ObservationFactory(
        ra_deg=10.0, dec_deg=0.0, pi_name="Kuulkers", revolution=RevolutionFactory(number=100)
    )
    ObservationFactory(ra_deg=200.0, dec_deg=0.0, revolution=RevolutionFactory(number=101))
    ProductFactory(observation=near)
    rows = anon.get("/api/v1/observations/", {"ra": 10.5, "dec": 0, "radius": 1}).json()
    assert [r["id"] for r in rows["results"]] == [near.pk]
    rows = anon.get("/api/v1/observations/", {"pi": "kuul"}).json()
    assert [r["id"] for r in rows["results"]] == [near.pk]
    rows = anon.get("/api/v1/observations/", {"revolution": 101}).json()
    assert [r["revolution"] for r in rows["results"]] == [101]
    body = anon.get(f"/api/v1/observations/{near.pk}/").json()
    assert body["product_counts"] == [{"instrument": "isgri", "kind": "image", "count": 1}]
    assert anon.get("/api/v1/observations/99999/").status_code == 404


@pytest.mark.parametrize(
    ("value", "fmt", "to", "expected"),
    [
        ("2022-03-29T15:51:01", "isot", "revnum", 2485),
        ("1", "revnum", "isot", "2002-10-17T05:47:25"),
        ("51544.0", "mjd", "isot", "2000-01-01T00:00:00"),
        ("0", "ijd", "mjd", 51544.0 - 64.184 / 86400),  # IJD is TT: UTC + 64.184 s in 2000
    ],
)
def test_time_convert_known_values(anon, value, fmt, to, expected):
    response = anon.get("/api/v1/time/convert", {"value": value, "from": fmt, "to": to})
    assert response.status_code == 200, response.content
    result = response.json()["results"][to]
    if isinstance(expected, float):
        assert result == pytest.approx(expected, abs=1e-8)
    else:
        assert result == expected


def test_time_convert_gives_every_format_by_default(anon):
    body = anon.get("/api/v1/time/convert/", {"value": "1555", "from": "revnum"}).json()
    assert set(body["results"]) == set(timeline.TIME_FORMATS)
    assert body["results"]["revnum"] == 1555


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"value": "soon", "from": "isot"}, "value"),
        ({"value": "2020-01-01", "from": "jd"}, "from"),
        ({"value": "2020-01-01", "from": "isot", "to": "gps"}, "to"),
        ({"from": "isot"}, "value"),
        ({"value": "1000-01-01", "from": "isot", "to": "revnum"}, "value"),
        ({"value": "nan", "from": "mjd"}, "value"),
        ({"value": "0", "from": "revnum"}, "value"),
    ],
)
def test_time_convert_bad_input_is_400(anon, params, field):
    response = anon.get("/api/v1/time/convert", params)
    assert response.status_code == 400, response.content
    assert field in response.json()
