"""The transient monitor as a page, an API list and an Atom feed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from products import transients
from tests.factories import SourceFactory
from tests.gallery.lightcurves.series import add_revolution, random_series, rng

pytestmark = pytest.mark.django_db
ATOM = "{http://www.w3.org/2005/Atom}"


def entries_of(content: bytes) -> list:
    # The feed is this server's own output.
    return ET.fromstring(content).findall(f"{ATOM}entry")  # noqa: S314


@pytest.fixture
def flares():
    generator = rng(21)
    quiet = SourceFactory(name="Quiet One")
    early = SourceFactory(name="GX 339-4", class_code="LMXB")
    late = SourceFactory(name="V404 Cyg", class_code="LMXB")
    for source in (quiet, early, late):
        random_series(source, range(100, 108), generator, level=10.0)
    add_revolution(early, 108, [90.0, 95.0], [1.0, 1.0])
    add_revolution(late, 109, [300.0], [2.0])
    add_revolution(quiet, 109, [10.0], [1.0])
    transients.refresh_all()
    return quiet, early, late


def test_api_lists_flares_newest_first(client, flares) -> None:
    quiet, early, late = flares
    data = client.get("/api/v1/transients/").json()
    assert data["min_sigma"] == 5.0 and data["count"] == 2
    names = [row["source"]["name"] for row in data["results"]]
    assert names == ["V404 Cyg", "GX 339-4"]
    first = data["results"][0]
    assert first["revolution"] == 109 and first["excess_sigma"] >= 5.0
    assert first["source"]["class"] == "LMXB" and first["instrument"] == "isgri"
    assert first["flux"] == pytest.approx(300.0) and first["t_mid_utc"].startswith("2003-")
    curve = client.get(first["lightcurve"]).json()
    assert curve["points"][-1]["flux"] == pytest.approx(300.0)
    # Thresholds, filters and limits.
    assert client.get("/api/v1/transients", {"min_sigma": 1e3}).json()["count"] == 0
    only_late = client.get("/api/v1/transients/", {"since_revolution": 109}).json()
    assert [r["source"]["name"] for r in only_late["results"]] == ["V404 Cyg"]
    assert client.get("/api/v1/transients/", {"limit": 1}).json()["count"] == 1
    assert client.get("/api/v1/transients/", {"instrument": "jemx1"}).json()["count"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"min_sigma": "x"},
        {"min_sigma": "-1"},
        {"limit": "0"},
        {"since_revolution": "a"},
        {"instrument": "nope"},
    ],
)
def test_api_refuses_bad_parameters(client, params) -> None:
    response = client.get("/api/v1/transients/", params)
    assert response.status_code == 400 and response.json()["detail"]


def test_page(client, flares) -> None:
    response = client.get("/monitor/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Transient monitor" in html and "V404 Cyg" in html and "GX 339-4" in html
    assert "Quiet One" not in html
    assert html.index("V404 Cyg") < html.index("GX 339-4")
    assert 'type="application/atom+xml"' in html and "/monitor/feed.atom" in html
    assert "/revolutions/109/" in html
    empty = client.get("/monitor/", {"min_sigma": 1000}).content.decode()
    assert "No source is 1000.0σ above" in empty
    assert client.get("/monitor/", {"min_sigma": "abc"}).status_code == 400


def test_atom_feed(client, flares) -> None:
    response = client.get("/monitor/feed.atom")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    entries = entries_of(response.content)
    titles = [e.find(f"{ATOM}title").text for e in entries]
    assert len(titles) == 2 and titles[0].startswith("V404 Cyg: ")
    assert "revolution 109" in titles[0]
    ids = {e.find(f"{ATOM}id").text for e in entries}
    assert len(ids) == 2
    link = entries[0].find(f"{ATOM}link").get("href")
    assert link.endswith(flares[2].get_absolute_url())
    assert entries[0].find(f"{ATOM}updated").text.startswith("2003-")
    assert client.get("/monitor/feed.atom", {"min_sigma": "x"}).status_code == 400
    none = client.get("/monitor/feed.atom", {"min_sigma": 1e3})
    assert entries_of(none.content) == []
