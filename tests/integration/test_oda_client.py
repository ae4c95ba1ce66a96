"""The unmodified ``oda_api`` client against a live Gallery, as against the MMODA service.

A real HTTP server (pytest-django's ``live_server``) serves ``/dispatch-data``; the client of
the ``oda-api`` package posts a spectrum with its responses and an image, reads it back by
source name and by conditions, posts a new version, an observation with a YAML attachment and
an astrophysical entity, converts a time and deletes the product. Every connection must stay
on this machine: the client is never allowed to reach the network.
"""

from __future__ import annotations

import io
import logging
import socket
from pathlib import Path

import pytest
import requests
from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from gallery.roles import ROLES, permissions_for
from products import timeline
from products.catalogue import INSTRUMENTS, PRODUCT_KINDS
from products.models import Observation, Product
from sources.models import Source
from tests.conftest import shared_fixture
from tests.factories import InstrumentFactory, ProductKindFactory, SourceFactory
from tests.gallery.compat.helpers import synthetic_spectrum, write_png

oda_api = pytest.importorskip("oda_api.gallery_api", reason="oda-api is not installed")

pytestmark = pytest.mark.django_db(transaction=True)

JWT_SECRET = "integration-secret-0123456789abcdef0123456789"
LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture(autouse=True)
def local_only(monkeypatch):
    """Fail on any connection that would leave this machine (name resolution included)."""
    connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else ""
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(LOOPBACK):
            raise AssertionError(f"the client tried to reach {address}")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.delenv("ODA_TOKEN", raising=False)


def seed_lookups() -> None:
    """What the migrations seed (instruments, kinds, roles with their permissions): a test
    with a real server commits, so it may run after another one emptied the tables."""
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    for row in INSTRUMENTS:
        InstrumentFactory(code=row[0])
    for row in PRODUCT_KINDS:
        ProductKindFactory(code=row[0])
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        codenames = [perm.split(".") for perm in permissions_for(role)]
        group.permissions.set(
            [Permission.objects.get(content_type__app_label=a, codename=c) for a, c in codenames]
        )


@pytest.fixture
def gallery(live_server, settings):
    settings.GALLERY_JWT_SECRET = JWT_SECRET
    seed_lookups()
    SourceFactory(
        name="1A 0535+262",
        ra_deg=84.727371,
        dec_deg=26.315779,
        class_code="HMXB",
        aliases=["A 0535+262", "V725 Tau"],
    )
    return f"{live_server.url}/dispatch-data"


def issue_token(username: str, role: str) -> str:
    out = io.StringIO()
    call_command("issue_token", username, "--role", role, "--oda", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


@pytest.fixture(params=["osa11", "synthetic"])
def spectrum(request, tmp_path):
    """(PHA, RMF, ARF, T1, T2) of a real OSA 11 spectrum or of one the project writes."""
    if request.param == "osa11":
        pha = shared_fixture("isgri/spectrum_1A_0535+262_osa11.fits.gz")
        rmf = pha.with_name("spectrum_1A_0535+262_osa11_rmf.fits.gz")
        arf = pha.with_name("spectrum_1A_0535+262_osa11_arf.fits.gz")
        return pha, rmf, arf, "2019-02-17T00:00:00", "2019-10-15T00:00:00"
    pha, rmf, arf = synthetic_spectrum(tmp_path / "synthetic")
    start = timeline.revolution_start(1516)
    t1 = timeline.format_time(start, "isot")
    t2 = timeline.format_time(timeline.revolution_start(1517), "isot")
    return pha, rmf, arf, t1, t2


def test_the_oda_api_client_works_against_the_gallery(gallery, spectrum, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="oda_api")
    pha, rmf, arf, t1, t2 = spectrum
    token = issue_token("pipeline", "contributor")
    disp = oda_api.GalleryDispatcherAPI(url=gallery)
    product_id = f"spectrum-{pha.name}"

    # --- post a spectrum with its responses and an image ---------------------------------------
    posted = disp.post_data_product_to_gallery(
        product_id=product_id,
        gallery_image_path=str(write_png(tmp_path / "spectrum.png", seed=1)),
        fits_file_path=[str(pha), str(rmf), str(arf)],
        token=token,
        insert_new_source=True,
        validate_source=True,
        instrument="isgri",
        product_type="isgri_spectrum",
        src_name="1A 0535+262",
        E1_keV=30,
        E2_keV=80,
        T1=t1,
        T2=t2,
        produced_by="https://example.org/notebooks/spectra.ipynb",
    )
    assert "error_message" not in posted, posted
    assert posted["created"][0]["value"] == posted["changed"][0]["value"]
    page = posted["_links"]["self"]["href"]
    assert (
        page.startswith(gallery.rsplit("/", 1)[0])
        and requests.get(page, timeout=30).status_code == 200
    )
    assert "Product successfully posted on the gallery" in caplog.text
    product = Product.objects.get(external_id=product_id)
    assert product.kind.code == "spectrum" and product.fits.exists()
    assert sorted(product.files.values_list("role", flat=True)) == [
        "arf",
        "data",
        "preview",
        "rmf",
    ]
    rev1, rev2 = product.rev_first, product.rev_last

    # --- read it back -------------------------------------------------------------------------
    for name in ("1A 0535+262", "V725 Tau"):
        found = disp.get_list_products_by_source_name(source_name=name, token=token)
        assert [(p["product_id"], p["instrument_name"]) for p in found] == [(product_id, "isgri")]
    found = disp.get_list_products_with_conditions(
        token=token,
        instrument_name="isgri",
        product_type="isgri_spectrum",
        src_name="1A 0535+262",
        rev1_value=rev1,
        rev2_value=rev2,
    )
    assert [p["product_id"] for p in found] == [product_id]
    found = disp.get_list_spectra_with_conditions(
        token=token,
        instrument="isgri",
        source_name="1A 0535+262",
        t1=timeline.format_time(timeline.revolution_start(rev1 - 3), "isot"),
        t2=timeline.format_time(timeline.revolution_start(rev2 + 3), "isot"),
    )
    assert [p["product_id"] for p in found] == [product_id]

    # --- the same product_id with a changed file: a new version ---------------------------------
    updated = disp.post_data_product_to_gallery(
        product_id=product_id,
        gallery_image_path=str(write_png(tmp_path / "spectrum2.png", seed=2)),
        fits_file_path=[str(pha), str(rmf), str(arf)],
        token=token,
        instrument="isgri",
        product_type="isgri_spectrum",
        src_name="1A 0535+262",
    )
    assert updated["nid"] == posted["nid"]
    assert updated["changed"][0]["value"] != updated["created"][0]["value"]
    assert "Product successfully updated on the gallery" in caplog.text
    versions = Product.objects.filter(external_id=product_id).order_by("version")
    assert [p.version for p in versions] == [1, 2] and versions[0].superseded_by == versions[1]
    found = disp.get_list_products_with_conditions(token=token, product_id=product_id)
    assert [p["version"] for p in found] == [2]

    # --- a product made of an image and metadata, for a source the Gallery did not know -------
    image = disp.post_data_product_to_gallery(
        product_title="New Transient 1 ISGRI mosaic",
        gallery_image_path=str(write_png(tmp_path / "mosaic.png", seed=3)),
        token=token,
        insert_new_source=True,
        instrument="isgri",
        product_type="isgri_image",
        src_name="New Transient 1",
        E1_keV=28,
        E2_keV=40,
        RA=300.5,
        DEC=-20.25,
        T1="2022-03-29T10:00:00",
        T2="2022-03-29T20:00:00",
        html_image="<table><tr><td>New Transient 1</td><td>12.3</td></tr></table>",
    )
    assert image["title"][0]["value"] == "New Transient 1 ISGRI mosaic"
    assert len(image["field_html_file"]) == 1
    assert Source.objects.get(name="New Transient 1").products.get().rev_first == 2485

    # --- an observation, updated, with its YAML attachment ---------------------------------------
    description = tmp_path / "rev2485.yaml"
    description.write_text("scw_ids:\n  - 248500010010\n  - 248500020010\n")
    observation = disp.post_observation_to_gallery(
        observation_title="Crab Rev. 2485",
        T1="2022-03-29T10:00:00",
        T2="2022-03-30T10:00:00",
        obsid=["19600010008", "19600010009"],
        yaml_file_path=str(description),
        token=token,
    )
    assert observation["title"][0]["value"] == "Crab Rev. 2485"
    assert observation["field_rev1"][0]["value"] == 2485
    renewed = disp.update_observation_with_title(
        observation_title="Crab Rev. 2485", obsid=[19600010010], token=token, create_new=True
    )
    assert [o["value"] for o in renewed["field_obsid"]] == ["19600010010"]
    attachments = disp.get_yaml_files_observation_with_title(
        observation_title="Crab Rev. 2485", token=token
    )
    assert description.read_text().strip() in attachments["file_content"]
    assert Observation.objects.get(title="Crab Rev. 2485").obsid == "19600010010"

    # --- an astrophysical entity: curators may change one ---------------------------------------
    refused = disp.update_source_with_name(source_name="V725 Tau", token=token, source_dec=26.3)
    assert "curator" in refused["error_message"]
    curator = issue_token("curator", "curator")
    entity = disp.update_source_with_name(
        source_name="V725 Tau",
        token=curator,
        source_ra=84.7274,
        source_dec=26.3158,
        object_type="HXB",
    )
    assert entity["title"][0]["value"] == "1A 0535+262"
    assert Source.objects.get(name="1A 0535+262").dec_deg == pytest.approx(26.3158)

    # --- terms, times, deletion -----------------------------------------------------------------
    assert "isgri" in disp.get_list_terms_gallery(group="instruments", token=token)
    assert disp.get_revnum(time_to_convert="2022-03-29T15:51:01", token=token) == 2485
    assert disp.delete_data_product_from_gallery_via_product_id(product_id, token=token) == {}
    assert disp.get_list_products_with_conditions(token=token, product_id=product_id) == []
    assert set(Product.objects.filter(external_id=product_id).values_list("status", flat=True)) == {
        "hidden"
    }


def test_the_client_reads_refusals_as_errors(gallery, tmp_path):
    """A refused post answers an error the client reports, and leaves nothing behind."""
    disp = oda_api.GalleryDispatcherAPI(url=gallery)
    token = issue_token("pipeline", "contributor")
    answer = disp.post_data_product_to_gallery(
        gallery_image_path=str(write_png(tmp_path / "x.png")),
        token=token,
        instrument="isgri",
        product_type="isgri_image",
        E1_keV=40,
        E2_keV=28,
    )
    assert "E1_keV" in answer["error_message"]
    with pytest.raises(oda_api.UserError):
        # The client itself refuses times with fractions of seconds, before sending anything.
        disp.post_data_product_to_gallery(token=token, T1="2022-03-29T15:51:01.5")
    reader = issue_token("reader", "reader")
    answer = disp.post_data_product_to_gallery(
        gallery_image_path=str(write_png(tmp_path / "y.png")),
        token=reader,
        instrument="isgri",
        product_type="isgri_image",
    )
    assert "gallery contributor" in answer["error_message"]
    assert not Product.objects.exists()
    assert not list(Path(tmp_path / "media").rglob("*.png"))
