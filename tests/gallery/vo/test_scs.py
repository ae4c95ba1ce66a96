"""IVOA Simple Cone Search of sources and products: queried with pyvo against a live server,
checked against brute force, and valid under STILTS votlint."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse
from django.utils import timezone

from products.models import Product
from tests.factories import ProductFactory, SourceFactory
from tests.gallery.lightcurves.series import add_revolution

pyvo = pytest.importorskip("pyvo", reason="pyvo is needed for the cone-search tests")

STILTS = shutil.which("stilts")
NO_STILTS = "STILTS is not installed (apt-get install stilts): votlint checks skipped"


def votlint(content: bytes, tmp_path: Path, version: str | None = None) -> list[str]:
    """The errors and warnings votlint reports on a document (empty when valid)."""
    path = tmp_path / "doc.vot"
    path.write_bytes(content)
    command = [STILTS, "votlint", f"votable={path}"]
    if version:
        command.append(f"version={version}")
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.startswith(("ERROR", "WARNING"))]


@pytest.fixture
def session():
    """An HTTP session that closes its connections: a kept-alive connection would outlive the
    test, and the live server's thread would then close the test database's connection."""
    import requests

    with requests.Session() as http:
        http.headers["Connection"] = "close"
        yield http


def scs(live_server, path: str, session):
    return pyvo.dal.SCSService(f"{live_server.url}{path}", session=session)


def brute_force(rows, ra: float, dec: float, radius: float) -> set:
    if not rows:
        return set()
    coords = SkyCoord([r.ra_deg for r in rows], [r.dec_deg for r in rows], unit="deg")
    inside = coords.separation(SkyCoord(ra, dec, unit="deg")).deg <= radius
    return {r for r, keep in zip(rows, inside, strict=True) if keep}


@pytest.fixture
def sky(db):
    generator = np.random.default_rng(8)
    sources = [SourceFactory(name="Crab", ra_deg=83.633, dec_deg=22.0145)]
    # Clusters near the Crab, across RA 0/360 and at the pole.
    for i, (ra0, dec0) in enumerate([(83.6, 22.0)] * 25 + [(0.1, 5.0)] * 25 + [(45.0, 89.5)] * 20):
        sources.append(
            SourceFactory(
                name=f"Sky {i}",
                ra_deg=(ra0 + generator.uniform(-3, 3)) % 360.0,
                dec_deg=min(89.999, dec0 + generator.uniform(-2, 2))
                if dec0 < 89
                else 89.5 + generator.uniform(-2, 0.49),
            )
        )
    return sources


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("ra", "dec", "radius"),
    [(83.633, 22.0145, 2.0), (359.9, 5.0, 1.5), (200.0, 90.0, 1.0), (10.0, -60.0, 1.0)],
)
def test_pyvo_finds_the_sources_brute_force_finds(
    live_server, session, sky, ra, dec, radius
) -> None:
    service = scs(live_server, "/vo/scs/sources", session)
    results = service.search(pos=(ra, dec), radius=radius)
    expected = brute_force(sky, ra, dec, radius)
    assert {str(name) for name in results["id"]} == {s.name for s in expected}
    if expected:
        # The record reads its id and position through the SCS 1.03 UCDs.
        first = results.getrecord(0)
        nearest = min(
            expected,
            key=lambda s: (
                SkyCoord(s.ra_deg, s.dec_deg, unit="deg")
                .separation(SkyCoord(ra, dec, unit="deg"))
                .deg
            ),
        )
        assert str(first.id) == nearest.name
        assert (
            first.pos.separation(SkyCoord(nearest.ra_deg, nearest.dec_deg, unit="deg")).arcsec < 1
        )
        distances = np.array(results["distance"])
        assert np.all(np.diff(distances) >= 0)  # nearest first


@pytest.mark.django_db(transaction=True)
def test_pyvo_reads_products_visible_to_everyone(live_server, session) -> None:
    crab = SourceFactory(name="Crab", ra_deg=83.633, dec_deg=22.0145)
    public = ProductFactory(title="public mosaic", ra_deg=83.7, dec_deg=22.1, sources=[crab])
    ProductFactory(
        title="private mosaic",
        ra_deg=83.6,
        dec_deg=22.0,
        access=Product.Access.PROPRIETARY,
        embargo_until=timezone.now() + timedelta(days=30),
    )
    ProductFactory(title="hidden", ra_deg=83.6, dec_deg=22.0, status=Product.Status.HIDDEN)
    old = ProductFactory(title="old version", ra_deg=83.6, dec_deg=22.0)
    new = ProductFactory(title="new version", ra_deg=83.6, dec_deg=22.0)
    Product.objects.filter(pk=old.pk).update(superseded_by=new)
    ProductFactory(title="elsewhere", ra_deg=200.0, dec_deg=-40.0)
    service = scs(live_server, "/vo/scs/products", session)
    results = service.search(pos=(83.633, 22.0145), radius=1.0, verbosity=3)
    assert {str(v) for v in results["id"]} == {str(public.uuid), str(new.uuid)}
    assert {str(v) for v in results["title"]} == {"public mosaic", "new version"}
    row = results.to_table()
    assert "sources" in row.colnames and "Crab" in {str(v) for v in row["sources"]}


@pytest.mark.django_db(transaction=True)
def test_errors_reach_pyvo(live_server, session) -> None:
    service = scs(live_server, "/vo/scs/sources", session)
    with pytest.raises(pyvo.dal.DALQueryError, match="SR"):
        service.search(pos=(10.0, 10.0), radius=500.0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"RA": 10, "DEC": 10},
        {"RA": "x", "DEC": 1, "SR": 1},
        {"RA": 10, "DEC": 95, "SR": 1},
        {"RA": 10, "DEC": 10, "SR": -1},
        {"RA": 10, "DEC": 10, "SR": 1, "VERB": 7},
    ],
)
def test_bad_requests_answer_an_error_votable(client, params) -> None:
    response = client.get("/vo/scs/sources", params)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    votable = parse(io.BytesIO(response.content))
    status = [i for i in votable.infos if i.name == "QUERY_STATUS"]
    assert [(i.value, bool(i.content)) for i in status] == [("ERROR", True)]


@pytest.mark.django_db
def test_verbosity_and_required_fields(client, sky) -> None:
    def fields(verb):
        response = client.get("/vo/scs/sources", {"RA": 83.6, "DEC": 22, "SR": 1, "VERB": verb})
        table = parse(io.BytesIO(response.content)).get_first_table()
        return {f.name: f for f in table.fields}, table

    minimal, table = fields(1)
    assert list(minimal) == ["id", "ra", "dec"]
    assert [f.ucd for f in minimal.values()] == ["ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"]
    assert minimal["ra"].datatype == "double" and minimal["dec"].datatype == "double"
    assert len(table.array) > 0
    medium, _ = fields(2)
    full, _ = fields(3)
    assert "object_class" in medium and "aliases" not in medium and "aliases" in full
    # SR=0 asks for the metadata only.
    response = client.get("/vo/scs/sources", {"ra": 83.6, "dec": 22, "sr": 0})
    assert len(parse(io.BytesIO(response.content)).get_first_table().array) == 0


@pytest.mark.django_db
def test_votlint_finds_no_error(client, sky, tmp_path) -> None:
    if STILTS is None:
        pytest.skip(NO_STILTS)
    crab = sky[0]
    add_revolution(crab, 300, [10.0, 0.1], [1.0, 1.0])
    ProductFactory(title="a product", ra_deg=83.6, dec_deg=22.0)
    documents = {
        "sources": client.get("/vo/scs/sources", {"RA": 83.6, "DEC": 22, "SR": 3, "VERB": 3}),
        "products": client.get("/vo/scs/products", {"RA": 83.6, "DEC": 22, "SR": 3, "VERB": 3}),
        "empty": client.get("/vo/scs/products", {"RA": 200, "DEC": -40, "SR": 0.1}),
        "error": client.get("/vo/scs/sources", {"RA": 83.6}),
        "lightcurve": client.get(f"/api/v1/sources/{crab.slug}/lightcurve?format=votable&bin=scw"),
    }
    for name, response in documents.items():
        assert response.status_code == 200, name
        assert votlint(response.content, tmp_path) == [], name
