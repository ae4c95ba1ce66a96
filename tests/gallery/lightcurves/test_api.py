"""``/api/v1/sources/<id or slug>/lightcurve``: the JSON the source page plots, and downloads in
CSV, FITS and VOTable that astropy reads and that agree with it."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.table import Table
from django.contrib.auth.models import Group, User
from django.utils import timezone

from gallery.models import ApiToken
from products.models import FluxPoint, Product
from tests.factories import SourceFactory
from tests.gallery.lightcurves.series import add_revolution, random_series, rng

pytestmark = pytest.mark.django_db

POINT_KEYS = {
    "t_start_ijd",
    "t_stop_ijd",
    "t_mid_utc",
    "flux",
    "error",
    "significance",
    "exposure_s",
    "n_points",
    "upper_limit",
}


@pytest.fixture
def crab():
    source = SourceFactory(name="Crab", ra_deg=83.633, dec_deg=22.0145)
    random_series(source, range(200, 212), rng(2))
    add_revolution(source, 215, [0.3, 0.1], [1.0, 1.0], store_limits=True)
    add_revolution(source, 216, [30.0], [3.0], instrument="jemx1", band=(3.0, 10.0))
    return source


def url(source, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/sources/{source.slug}/lightcurve" + (f"?{query}" if query else "")


def get_json(client, path: str) -> dict:
    response = client.get(path)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def test_json_shape(client, crab) -> None:
    document = get_json(client, url(crab, instrument="isgri", e_min=20, e_max=40, bin="revolution"))
    assert set(document) == {
        "source",
        "instrument",
        "e_min_kev",
        "e_max_kev",
        "bin",
        "flux_unit",
        "points",
        "available",
    }
    assert document["flux_unit"] == "count/s"
    assert (document["source"], document["instrument"], document["bin"]) == (
        "crab",
        "isgri",
        "revolution",
    )
    assert (document["e_min_kev"], document["e_max_kev"]) == (20.0, 40.0)
    assert len(document["points"]) == 13
    assert all(set(p) == POINT_KEYS for p in document["points"])
    assert document["points"][-1]["upper_limit"] is True
    assert document["points"][0]["t_mid_utc"].startswith("2004-")
    n_isgri = FluxPoint.objects.filter(source=crab, instrument__code="isgri").count()
    assert document["available"] == [
        {"instrument": "isgri", "e_min_kev": 20.0, "e_max_kev": 40.0, "n_points": n_isgri},
        {"instrument": "jemx1", "e_min_kev": 3.0, "e_max_kev": 10.0, "n_points": 1},
    ]
    # By id, with a trailing slash, and without parameters (the band with most points).
    assert get_json(client, f"/api/v1/sources/{crab.pk}/lightcurve/") == document


@pytest.mark.parametrize("bin_text", ["scw", "revolution", "7d", "3600"])
def test_downloads_parse_and_agree_with_the_json(client, crab, bin_text) -> None:
    document = get_json(client, url(crab, bin=bin_text))
    points = document["points"]
    columns = {k: np.array([p[k] for p in points]) for k in POINT_KEYS if k != "t_mid_utc"}

    csv_response = client.get(url(crab, bin=bin_text, format="csv"))
    assert csv_response["Content-Type"].startswith("text/csv")
    assert f"crab_isgri_20-40keV_{document['bin']}.csv" in csv_response["Content-Disposition"]
    table = Table.read(csv_response.content.decode(), format="ascii.csv", comment="#")
    for name, values in columns.items():
        got = np.array(table[name])
        if name == "upper_limit":
            got = np.array([str(v) == "True" for v in got])
        np.testing.assert_array_equal(got, values, err_msg=name)
    assert list(table["t_mid_utc"]) == [p["t_mid_utc"] for p in points]

    fits_response = client.get(url(crab, bin=bin_text, format="fits"))
    assert fits_response["Content-Type"] == "application/fits"
    with fits.open(io.BytesIO(fits_response.content)) as hdul:
        hdu = hdul["RATE"]
        header = hdu.header
        assert (header["HDUCLAS1"], header["TIMESYS"], header["TIMEUNIT"]) == (
            "LIGHTCURVE",
            "TT",
            "d",
        )
        assert header["MJDREF"] == 51544.0 and header["HDUCLASS"] == "OGIP"
        data = hdu.data
        assert hdu.columns["RATE"].unit == "count/s"
        np.testing.assert_allclose(data["TIME"] - data["TIMEDEL"] / 2, columns["t_start_ijd"])
        np.testing.assert_allclose(data["TIME"] + data["TIMEDEL"] / 2, columns["t_stop_ijd"])
        np.testing.assert_array_equal(data["RATE"], columns["flux"])
        np.testing.assert_array_equal(data["ERROR"], columns["error"])
        np.testing.assert_array_equal(data["UPPER_LIMIT"], columns["upper_limit"])
        assert np.all((data["FRACEXP"] > 0) & (data["FRACEXP"] <= 1))
        np.testing.assert_allclose(
            data["FRACEXP"],
            np.minimum(1, columns["exposure_s"] / (data["TIMEDEL"] * 86400)),
        )

    vot_response = client.get(url(crab, bin=bin_text, format="votable"))
    assert vot_response["Content-Type"] == "application/x-votable+xml"
    vot = parse_single_table(io.BytesIO(vot_response.content))
    assert vot.get_field_by_id("flux").ucd == "phot.flux"
    assert vot.get_field_by_id("t_start_ijd").ucd == "time.start"
    assert str(vot.get_field_by_id("exposure_s").unit) == "s"
    vtable = vot.to_table()
    for name, values in columns.items():
        np.testing.assert_array_equal(np.array(vtable[name]), values, err_msg=name)


def test_errors(client, crab) -> None:
    assert client.get("/api/v1/sources/nowhere/lightcurve").status_code == 404
    assert client.get("/api/v1/sources/999999/lightcurve").json()["detail"]
    for params, word in [
        ({"bin": "fortnight"}, "bin"),
        ({"format": "pdf"}, "format"),
        ({"instrument": "xmm"}, "instrument"),
        ({"e_min": "x"}, "e_min"),
        ({"e_min": 40, "e_max": 20}, "e_min"),
        ({"bin": "0"}, "bin"),
    ]:
        response = client.get(url(crab, **params))
        assert response.status_code == 400, params
        assert word in response.json()["detail"]


def test_merged_source_serves_its_target(client, crab) -> None:
    old = SourceFactory(name="Old name")
    old.merged_into = crab
    old.save()
    assert get_json(client, url(old))["source"] == "crab"


def test_visibility_follows_the_user(client, crab) -> None:
    add_revolution(
        crab,
        230,
        [50.0],
        [1.0],
        access=Product.Access.PROPRIETARY,
        embargo_until=timezone.now() + timedelta(days=100),
    ).granted_groups.add(Group.objects.create(name="pi"))
    member = User.objects.create_user("pi-member")
    member.groups.add(Group.objects.get(name="pi"))

    def revolutions(document):
        return len(document["points"])

    anonymous = get_json(client, url(crab))
    client.force_login(member)
    member_view = get_json(client, url(crab))
    assert revolutions(member_view) == revolutions(anonymous) + 1
    client.logout()
    _, plain = ApiToken.issue(member, name="test")
    tokened = client.get(url(crab), HTTP_AUTHORIZATION=f"Token {plain}")
    assert revolutions(json.loads(tokened.content)) == revolutions(member_view)


def test_empty_light_curve(client) -> None:
    lonely = SourceFactory(name="Lonely")
    document = get_json(client, url(lonely))
    assert document["points"] == [] and document["available"] == []
    assert document["instrument"] is None
    csv_text = client.get(url(lonely, format="csv")).content.decode()
    assert Table.read(csv_text, format="ascii.csv", comment="#") is not None
