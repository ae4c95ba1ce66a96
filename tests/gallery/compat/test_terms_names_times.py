"""Terms, name resolution and revolution numbers."""

from __future__ import annotations

import socket

import pytest

from gallery.compat import terms
from products import timeline
from tests.factories import SourceFactory

from .conftest import BASE, body, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(db):
    """V404 Cyg as the reference catalogue has it, and a neighbour."""
    SourceFactory(
        name="V404 Cyg",
        ra_deg=306.015917,
        dec_deg=33.867194,
        class_code="LMXB",
        aliases=["1RXS J202405.3+335157", "GS 2023+338", "V404 Cygni"],
    )
    SourceFactory(name="Cyg X-1", class_code="HMXB")


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails the test (name resolution must stay local)."""

    def refuse(*args, **kwargs):
        raise AssertionError("the endpoint tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# --- terms ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "parents"),
    [
        ("isgri_spectrum", ["spectrum"]),
        ("jemx_spectrum", ["spectrum"]),
        ("isgri_lc", ["lightcurve"]),
        ("spi_acs_lc", ["lightcurve"]),
        ("jemx_image", ["image"]),
        ("ISGRI_Image", ["image"]),
        ("isgri_catalog", ["catalog"]),
        ("spectrum", []),
        ("polar_lc", []),
    ],
)
def test_parents_of_product_types(client, token, term, parents):
    response = client.get(
        f"{BASE}/get_parents_term", {"term": term, "group": "products", "token": token}
    )
    assert body(response) == parents


def test_parents_need_a_term(client, token):
    error_of(client.get(f"{BASE}/get_parents_term", {"token": token}), 400)


def test_list_terms(client, token, catalogue):
    def terms_of(**query):
        return body(client.get(f"{BASE}/get_list_terms", {**query, "token": token}))

    assert terms_of(group="instruments") == ["isgri", "jemx1", "jemx2", "spi_acs", "jemx"]
    assert terms_of(group="products", parent="isgri") == [
        "isgri_image",
        "isgri_spectrum",
        "isgri_lc",
        "isgri_catalog",
    ]
    assert terms_of(group="products", parent="jemx2") == terms_of(group="products", parent="jemx")
    assert "spi_acs_lc" in terms_of(group="products")
    sources = terms_of(group="sources")
    assert "V404 Cyg" in sources and "1RXS J202405.3+335157" not in sources
    error_of(client.get(f"{BASE}/get_list_terms", {"group": "nothing", "token": token}), 400)
    error_of(
        client.get(
            f"{BASE}/get_list_terms", {"group": "products", "parent": "xmm", "token": token}
        ),
        400,
    )


def test_product_type_mapping(db):
    assert terms.parse_product_type("isgri_lc") == terms.ProductType(
        "isgri_lc", "lightcurve", "isgri"
    )
    assert terms.parse_product_type("lightcurve") == terms.ProductType(
        "lightcurve", "lightcurve", None
    )
    assert terms.product_type_of("jemx", "spectrum") == "jemx_spectrum"
    assert terms.product_type_of("spi_acs", "lightcurve") == "spi_acs_lc"
    with pytest.raises(terms.TermError, match="isgri_image"):
        terms.parse_product_type("Dummy")
    assert terms.instrument_codes("jemx") == ["jemx1", "jemx2"]
    assert terms.family_of("jemx2") == "jemx"


@pytest.mark.parametrize(
    ("otype", "code"),
    [
        ("HXB", "HMXB"),
        ("HighMassXBin", "HMXB"),
        ("LXB", "LMXB"),
        ("LowMassXBin", "LMXB"),
        ("XB*", "XRB"),
        ("BLL", "BLLac"),
        ("Sy1", "Seyfert1"),
        ("Psr", "Pulsar"),
        ("gammaBurst", "GRB"),
        ("SNRemnant", "SNR"),
        ("CataclyV*", "CV"),
        ("HMXB", "HMXB"),
        ("Blazar", "Blazar"),
        ("PN", None),
        ("", None),
    ],
)
def test_simbad_object_types(otype, code):
    assert terms.class_for_otype(otype) == code


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["V404 Cyg", "V404_Cyg", "1RXS J202405.3+335157", "gs 2023+338"])
def test_resolve_known_names_locally(client, catalogue, no_network, name):
    resolved = body(client.get(f"{BASE}/resolve_name", {"name": name}))
    assert resolved["message"] == f"{name.replace('_', ' ')} successfully resolved"
    assert resolved["RA"] == pytest.approx(306.015917)
    assert resolved["DEC"] == pytest.approx(33.867194)
    assert resolved["object_type"] == "LMXB"
    assert {"V404 Cyg", "1RXS J202405.3+335157"} <= set(resolved["object_ids"])
    assert resolved["entity_portal_link"] == "https://cdsportal.u-strasbg.fr/?target=V404%20Cyg"


@pytest.mark.parametrize("name", ["No Such Source 42", "<script>", "+++"])
def test_unknown_names_are_not_resolved(client, catalogue, no_network, name):
    resolved = body(client.get(f"{BASE}/resolve_name", {"name": name}))
    assert resolved["message"].endswith("could not be resolved")
    assert "RA" not in resolved and "DEC" not in resolved


def test_resolve_needs_a_name(client):
    error_of(client.get(f"{BASE}/resolve_name"), 400)


# --- revolutions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "revnum"),
    [
        ("2022-03-29T15:51:01", 2485),
        ("2022-03-29T15:51:01.250", 2485),
        ("2002-10-17T05:47:25", 1),
        (timeline.format_time(timeline.revolution_start(1000), "isot"), 1000),
        ("2015-01-01", timeline.revolution_of(timeline.parse_time("2015-01-01", "isot"))),
    ],
)
def test_get_revnum(client, when, revnum):
    assert body(client.get(f"{BASE}/get_revnum", {"time_to_convert": when})) == {"revnum": revnum}


def test_get_revnum_without_a_time_is_now(client):
    assert body(client.get(f"{BASE}/get_revnum"))["revnum"] > 2485


@pytest.mark.parametrize("when", ["yesterday", "2022-13-01T00:00:00", "1999-01-01T00:00:00"])
def test_get_revnum_refuses_bad_times(client, when):
    assert "time_to_convert" in error_of(
        client.get(f"{BASE}/get_revnum", {"time_to_convert": when}), 400
    )
