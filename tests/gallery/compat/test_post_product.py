"""Posting data products: from metadata alone, through the ingest readers, and as versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError

from ingest import posting
from ingest.posting import external_series_key
from ingest.synthetic import write_lightcurve
from products.models import Observation, Product, ProductFile, SpectralFit
from sources.models import Source
from tests.conftest import shared_fixture
from tests.factories import SourceFactory

from .conftest import BASE, body, error_of, make_user, png_upload, stored_files, token_for, upload
from .helpers import PULSAR, T0_IJD, synthetic_spectrum

pytestmark = pytest.mark.django_db
URL = f"{BASE}/post_product_to_gallery"


@pytest.fixture
def sources(db):
    SourceFactory(
        name="V404 Cyg",
        ra_deg=306.015917,
        dec_deg=33.867194,
        class_code="LMXB",
        aliases=["1RXS J202405.3+335157"],
    )
    SourceFactory(name="1A 0535+262", ra_deg=84.727371, dec_deg=26.315779, class_code="HMXB")


def image_post(token, **extra) -> dict:
    """A product made of a PNG and metadata (what a notebook often posts)."""
    return {
        "token": token,
        "content_type": "data_product",
        "product_title": "V404 Cyg ISGRI image",
        "instrument": "isgri",
        "product_type": "isgri_image",
        "src_name": "V404 Cyg",
        "E1_keV": "28",
        "E2_keV": "40",
        "RA": "306.0159",
        "DEC": "33.8672",
        "T1": "2015-06-20T12:00:00",
        "T2": "2015-06-21T12:00:00",
        "in_evidence": "0",
        "insert_new_source": "False",
        "img": png_upload(),
        **extra,
    }


def spectrum_post(token, paths, **extra) -> dict:
    pha, rmf, arf = paths
    return {
        "token": token,
        "instrument": "isgri",
        "product_type": "isgri_spectrum",
        "src_name": "1A 0535+262",
        "in_evidence": "0",
        "fits_file_0": upload(pha),
        "fits_file_1": upload(rmf),
        "fits_file_2": upload(arf),
        "img": png_upload(7),
        **extra,
    }


def post(client, data) -> dict:
    response = client.post(URL, data)
    assert response.status_code == 200, response.content[:1000]
    return body(response)


def link(node: dict, field: str) -> list:
    return next((v for k, v in node["_links"].items() if k.split("/")[-1] == field), [])


# --- products made from metadata ------------------------------------------------------------


def test_image_and_metadata_make_a_product(client, token, sources):
    node = post(client, image_post(token, time_bin="1000", additional_information="a test"))
    product = Product.objects.get()
    assert node["_links"]["self"]["href"] == f"http://testserver{product.get_absolute_url()}"
    assert node["created"][0]["value"] == node["changed"][0]["value"]
    assert node["nid"][0]["value"] == product.pk
    assert node["title"][0]["value"] == "V404 Cyg ISGRI image"
    assert node["field_e1_kev"][0]["value"] == 28 and node["field_e2_kev"][0]["value"] == 40
    assert node["field_time_bin"][0]["value"] == 1000
    assert node["field_additional_information"][0]["value"] == "a test"
    assert link(node, "field_instrumentused")[0]["title"] == "isgri"
    assert link(node, "field_data_product_type")[0]["title"] == "isgri_image"
    assert [x["title"] for x in link(node, "field_describes_astro_entity")] == ["V404 Cyg"]
    assert link(node, "field_image_png") and not link(node, "field_fits_file")

    assert (product.kind.code, product.instrument.code) == ("image", "isgri")
    assert (product.e_min_kev, product.e_max_kev) == (28.0, 40.0)
    assert (product.rev_first, product.rev_last) == (1555, 1555)
    assert product.ra_deg == pytest.approx(306.0159) and product.healpix is not None
    assert product.time_start.isoformat() == "2015-06-20T12:00:00+00:00"
    assert product.observation.title == "observation_2015-06-20T12:00:00_2015-06-21T12:00:00"
    assert list(product.sources.values_list("name", flat=True)) == ["V404 Cyg"]
    assert product.submitted_by.username == "pipeline"
    preview = product.files.get()
    assert (preview.role, preview.content_type, preview.extension) == (
        "preview",
        "image/png",
        ".png",
    )
    assert preview.original_name == "preview.png"
    assert not list(Path(settings.GALLERY_STAGING_DIR).glob("*"))


def test_same_post_twice_is_one_product(client, token, sources):
    first = post(client, image_post(token))
    second = post(client, image_post(token))
    assert Product.objects.count() == 1
    assert first["nid"] == second["nid"] and second["created"] == second["changed"]


def test_a_different_post_without_product_id_is_another_product(client, token, sources):
    post(client, image_post(token))
    post(client, image_post(token, img=png_upload(seed=5)))
    assert Product.objects.filter(superseded_by__isnull=True).count() == 2


def test_metadata_products_are_their_files_and_metadata(client, token, sources):
    """Without FITS data, the same image with other metadata is another product."""
    post(client, image_post(token))
    post(client, image_post(token, product_title="the same image, another title"))
    assert Product.objects.filter(superseded_by__isnull=True).count() == 2


def test_mmoda_default_title(client, token, sources):
    data = image_post(token, src_name="V404 Cyg,1RXS J202405.3+335157,Crab Nebula 2")
    del data["product_title"]
    node = post(client, data)
    assert node["title"][0]["value"] == "V404 Cyg_1RXS J202405.3+335157_Crab Nebula 2_isgri_image"
    product = Product.objects.get()
    # The alias names V404 Cyg; an unknown name is kept but links nothing.
    assert list(product.sources.values_list("name", flat=True)) == ["V404 Cyg"]
    assert product.metadata["posted"]["unlinked_sources"] == ["Crab Nebula 2"]


def test_new_sources_are_created_when_asked(client, token, sources):
    data = image_post(
        token,
        src_name="GX 1+4",
        insert_new_source="True",
        entity_portal_link_list="https://cdsportal.u-strasbg.fr/?target=GX%201%2B4",
        source_coord_list='[{"source_ra": 263.0090, "source_dec": -24.7456}]',
        object_ids_list='[["GX 1+4", "V2116 Oph", "4U 1728-24"]]',
        object_type_list='["LXB"]',
    )
    post(client, data)
    source = Source.objects.get(name="GX 1+4")
    assert source.ra_deg == pytest.approx(263.009) and source.object_class.code == "LMXB"
    assert source.catalogue_url.endswith("GX%201%2B4")
    assert set(source.aliases) == {"V2116 Oph", "4U 1728-24"}
    assert Product.objects.get().sources.get() == source


def test_unknown_kind_fits_is_kept_as_data(client, token, sources, tmp_path):
    table = fits.BinTableHDU.from_columns([fits.Column(name="X", format="E", array=np.ones(3))])
    path = tmp_path / "odd.fits"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
    node = post(client, image_post(token, fits_file=upload(path)))
    product = Product.objects.get()
    assert sorted(product.files.values_list("role", flat=True)) == ["data", "preview"]
    assert len(link(node, "field_fits_file")) == 1


def test_html_and_yaml_attachments(client, token, sources):
    table = b'<table class="table"><tr><td>Crab</td><td>75.1</td></tr></table>'
    node = post(
        client,
        image_post(
            token,
            html_file=SimpleUploadedFile("additional_html_file_1a2b.html", table),
            yaml_file_0=SimpleUploadedFile("params.yaml", b"radius: 8\nthreshold: 7.0\n"),
        ),
    )
    assert len(node["field_html_file"]) == 1 and len(node["field_attachments"]) == 1
    html = Product.objects.get().files.get(original_name="additional_html_file_1a2b.html")
    # Served as a download, never as a page of the site.
    assert html.role == "other" and html.content_type != "text/html"
    response = client.get(node["field_html_file"][0]["url"])
    assert response["Content-Disposition"].startswith("attachment")


def test_in_evidence_and_extra_parameters(client, token, sources):
    node = post(client, image_post(token, in_evidence="1", job_id="abc123", osa_version="11.2"))
    product = Product.objects.get()
    assert product.is_highlight and node["field_in_evidence"][0]["value"] is True
    assert node["field_job_id"][0]["value"] == "abc123"
    assert product.osa_version == "11.2"


def test_observation_by_title_and_by_time_range(client, token, sources):
    observation = Observation.objects.create(title="my observation", obsid="19600010008")
    post(client, image_post(token, observation_id="my observation"))
    assert Product.objects.get().observation == observation
    Product.objects.all().delete()
    post(client, image_post(token, obsid="19600010008", img=png_upload(3)))
    assert Product.objects.get().observation == observation
    assert Observation.objects.count() == 1


# --- versions -----------------------------------------------------------------------------------


def test_product_id_makes_new_versions(client, token, sources):
    first = post(client, image_post(token, product_id="img-1"))
    second = post(client, image_post(token, product_id="img-1", img=png_upload(seed=9)))
    assert second["nid"] == first["nid"]
    assert second["created"][0]["value"] == first["created"][0]["value"]
    assert second["changed"][0]["value"] != second["created"][0]["value"]
    assert second["vid"][0]["value"] == 2
    v1, v2 = Product.objects.order_by("version")
    assert v1.superseded_by == v2 and v2.is_latest
    assert v1.series_key == v2.series_key == external_series_key("img-1")
    assert v1.file("preview").sha256 != v2.file("preview").sha256

    # The same post again changes nothing; the first content again is a third version.
    again = post(client, image_post(token, product_id="img-1", img=png_upload(seed=9)))
    assert again["vid"][0]["value"] == 2 and Product.objects.count() == 2
    post(client, image_post(token, product_id="img-1"))
    assert Product.objects.count() == 3


def test_an_update_keeps_what_it_does_not_name(client, token, sources):
    post(client, image_post(token, product_id="img-2", additional_information="kept"))
    update = {"token": token, "product_id": "img-2", "product_title": "renamed", "in_evidence": "1"}
    node = post(client, update)
    assert node["title"][0]["value"] == "renamed" and node["vid"][0]["value"] == 2
    latest = Product.objects.get(superseded_by__isnull=True)
    first = Product.objects.get(version=1)
    assert latest.is_highlight and not first.is_highlight
    assert (latest.e_min_kev, latest.e_max_kev, latest.rev_first) == (28.0, 40.0, 1555)
    assert latest.file("preview").sha256 == first.file("preview").sha256
    assert list(latest.sources.values_list("name", flat=True)) == ["V404 Cyg"]
    assert latest.observation == first.observation
    assert node["field_additional_information"][0]["value"] == "kept"


def test_only_the_submitter_or_a_curator_versions_a_product(client, token, sources):
    post(client, image_post(token, product_id="mine"))
    other = token_for(make_user("someone"))
    message = error_of(
        client.post(URL, image_post(other, product_id="mine", img=png_upload(2))), 403
    )
    assert "submitter" in message
    curator = token_for(make_user("curator", "curator"))
    assert post(client, image_post(curator, product_id="mine", img=png_upload(2)))["vid"][0] == {
        "value": 2
    }


# --- products read from FITS ------------------------------------------------------------------


def test_spectrum_with_responses_goes_through_ingest(client, token, sources, tmp_path):
    paths = synthetic_spectrum(tmp_path / "v1")
    node = post(client, spectrum_post(token, paths, product_id="spec-1", E1_keV="20", E2_keV="40"))
    product = Product.objects.get()
    assert product.kind.code == "spectrum" and product.instrument.code == "isgri"
    assert node["title"][0]["value"] == "1A 0535+262_isgri_spectrum"
    assert sorted(product.files.values_list("role", flat=True)) == ["arf", "data", "preview", "rmf"]
    assert product.fits.exists()
    assert list(product.sources.values_list("name", flat=True)) == ["1A 0535+262"]
    # The files' band and times win; the posted band is noted.
    assert product.e_min_kev < 20 and product.rev_first == 1516
    assert any(n.startswith("posted E1_keV/E2_keV") for n in product.metadata["notes"])
    assert len(link(node, "field_fits_file")) == 3

    # A new image with the same product_id: a new version that reuses the stored data.
    files_before = len(stored_files(settings.MEDIA_ROOT))
    node2 = post(client, spectrum_post(token, paths, product_id="spec-1", img=png_upload(8)))
    assert node2["nid"] == node["nid"] and node2["vid"][0]["value"] == 2
    assert len(stored_files(settings.MEDIA_ROOT)) == files_before + 1  # the new PNG only
    v2 = Product.objects.get(version=2)
    assert SpectralFit.objects.filter(product=v2).count() == product.fits.count()

    # Different spectrum files: a new version read from them.
    new_paths = synthetic_spectrum(tmp_path / "v3", seed=11)
    node3 = post(client, spectrum_post(token, new_paths, product_id="spec-1"))
    assert node3["vid"][0]["value"] == 3 and node3["nid"] == node["nid"]
    latest = Product.objects.get(superseded_by__isnull=True)
    assert latest.version == 3 and latest.series_key == external_series_key("spec-1")
    assert latest.file("data").sha256 != product.file("data").sha256

    listed = body(
        client.get(
            f"{BASE}/get_data_product_list_with_conditions",
            {"product_type": "isgri_spectrum", "src_name": "1A 0535+262", "rev1_value": 1516,
             "rev2_value": 1516},
        )
    )  # fmt: skip
    assert [item["version"] for item in listed] == [3]


def test_real_osa11_spectrum(client, token, sources):
    pha = shared_fixture("isgri/spectrum_1A_0535+262_osa11.fits.gz")
    paths = [pha, pha.with_name(pha.name.replace(".fits", "_rmf.fits")),
             pha.with_name(pha.name.replace(".fits", "_arf.fits"))]  # fmt: skip
    node = post(client, spectrum_post(token, paths, product_id="osa11", src_name="V725 Tau"))
    product = Product.objects.get()
    assert product.kind.code == "spectrum" and product.fits.exists()
    assert node["field_rev1"][0]["value"] < node["field_rev2"][0]["value"]
    assert list(product.sources.values_list("name", flat=True)) == ["1A 0535+262"]


def test_the_posted_product_type_picks_among_several_products(client, token, sources, tmp_path):
    paths = synthetic_spectrum(tmp_path / "s")
    lc = write_lightcurve(
        tmp_path / "lc.fits", source=PULSAR, t_start_ijd=T0_IJD, n_bins=5, bin_s=1000, seed=1
    )
    data = spectrum_post(token, paths, fits_file_3=upload(lc))
    del data["product_type"]
    assert "product_type" in error_of(client.post(URL, data), 400)
    post(client, spectrum_post(token, synthetic_spectrum(tmp_path / "s"), fits_file_3=upload(lc)))
    product = Product.objects.get()
    assert product.kind.code == "spectrum" and product.file("other").original_name == "lc.fits"
    data = spectrum_post(token, paths, product_type="isgri_image")
    assert "does not match" in error_of(client.post(URL, data), 400)


# --- refusals leave nothing behind --------------------------------------------------------------


def truncated_fits(folder: Path) -> Path:
    path = folder / "cut.fits"
    pha, _, _ = synthetic_spectrum(folder / "full")
    path.write_bytes(pha.read_bytes()[:5000])
    return path


BAD_POSTS = {
    "E1 not a number": ({"E1_keV": "abc"}, "E1_keV"),
    "band upside down": ({"E1_keV": "40", "E2_keV": "28"}, "E1_keV"),
    "half a band": ({"E2_keV": None}, "E1_keV"),
    "T1 with fraction": ({"T1": "2015-06-20T12:00:00.5"}, "T1"),
    "T1 date only": ({"T1": "2015-06-20"}, "T1"),
    "T1 after T2": ({"T1": "2015-06-22T00:00:00"}, "T1"),
    "before the mission": ({"T1": "2001-01-01T00:00:00"}, "first revolution"),
    "Dec off the sky": ({"DEC": "95"}, "Dec"),
    "RA alone": ({"DEC": None}, "RA"),
    "hostile name": ({"src_name": "<script>alert(1)</script>"}, "not allowed"),
    "unknown product type": ({"product_type": "Dummy"}, "product_type"),
    "type of another instrument": ({"product_type": "jemx_image"}, "jemx_image"),
    "unknown instrument": ({"instrument": "xmm"}, "instrument"),
    "jemx unit unknown": ({"instrument": "jemx", "product_type": "jemx_image"}, "jemx1"),
    "title too long": ({"product_title": "x" * 201}, "200"),
    "control characters": ({"product_title": "a\x07b"}, "control"),
    "not a data product": ({"content_type": "article"}, "content_type"),
    "revolutions upside down": ({"rev1": "20", "rev2": "10"}, "rev1"),
    "unknown observation": ({"observation_id": "nowhere", "T1": None, "T2": None}, "nowhere"),
    "negative time bin": ({"time_bin": "-1"}, "time_bin"),
    "bad field name": ({"Bad-Field": "1"}, "field"),
    "bad coordinates list": ({"source_coord_list": "{"}, "source_coord_list"),
    "bad obsid": ({"obsid": "1960;drop"}, "obsid"),
}


@pytest.mark.parametrize("case", BAD_POSTS)
def test_bad_metadata_is_refused(client, token, sources, case):
    changes, expected = BAD_POSTS[case]
    data = {k: v for k, v in image_post(token, **changes).items() if v is not None}
    assert expected in error_of(client.post(URL, data), 400)
    assert not Product.objects.exists() and not Observation.objects.exists()
    assert stored_files(settings.MEDIA_ROOT) == []


@pytest.mark.parametrize("case", ["png as fits", "text as img", "truncated", "empty", "lonely rmf"])
def test_bad_files_are_refused(client, token, sources, tmp_path, case):
    paths = synthetic_spectrum(tmp_path / "s")
    files = {
        "png as fits": {"fits_file": png_upload()},
        "text as img": {"img": SimpleUploadedFile("a.png", b"hello")},
        "truncated": {"fits_file": upload(truncated_fits(tmp_path))},
        "empty": {"fits_file": SimpleUploadedFile("e.fits", b"")},
        "lonely rmf": {"fits_file": upload(paths[1])},
    }[case]
    error_of(client.post(URL, image_post(token, **files)), 400)
    assert not Product.objects.exists()
    assert stored_files(settings.MEDIA_ROOT) == []
    assert not list(Path(settings.GALLERY_STAGING_DIR).glob("*"))


def test_unknown_file_parts_are_refused(client, token, sources):
    data = image_post(token, document=SimpleUploadedFile("a.txt", b"x"))
    assert "document" in error_of(client.post(URL, data), 400)


def test_oversized_uploads_are_refused(client, token, sources, settings):
    settings.GALLERY_UPLOAD_MAX_BYTES = 2000
    data = image_post(token, img=SimpleUploadedFile("big.png", b"\x89PNG\r\n\x1a\n" + b"0" * 4000))
    assert "limited" in error_of(client.post(URL, data), 413)
    assert not Product.objects.exists() and stored_files(settings.MEDIA_ROOT) == []


def test_a_failure_after_ingest_rolls_everything_back(client, token, sources, tmp_path):
    """The spectrum is read and stored, then the post names an unknown observation."""
    data = spectrum_post(token, synthetic_spectrum(tmp_path / "s"), observation_id="nowhere")
    assert "nowhere" in error_of(client.post(URL, data), 400)
    assert not Product.objects.exists() and not SpectralFit.objects.exists()
    assert not ProductFile.objects.exists()
    assert stored_files(settings.MEDIA_ROOT) == []


def test_light_curve_through_ingest(client, token, sources, tmp_path):
    lc = write_lightcurve(
        tmp_path / "lc.fits", source=PULSAR, t_start_ijd=T0_IJD, n_bins=8, bin_s=1000, seed=3
    )
    data = {"token": token, "instrument": "isgri", "product_type": "isgri_lc",
            "src_name": "1A 0535+262", "fits_file": upload(lc), "obsid": "19600010008",
            "T1": "2015-03-08T12:00:00", "T2": "2015-03-09T12:00:00"}  # fmt: skip
    node = post(client, data)
    product = Product.objects.get()
    assert product.kind.code == "lightcurve" and product.flux_points.count() == 8
    assert set(product.flux_points.values_list("observation", flat=True)) == {
        product.observation_id
    }
    assert product.observation.obsid == "19600010008"
    assert [o["value"] for o in node["field_obsid"]] == ["19600010008"]
    assert link(node, "field_image_png")  # drawn by the ingest service


def test_same_files_from_another_user_never_supersede_theirs(client, token, sources, tmp_path):
    paths = synthetic_spectrum(tmp_path / "s")
    post(client, spectrum_post(token, paths))
    theirs = Product.objects.get()
    other = token_for(make_user("someone"))
    post(client, spectrum_post(other, paths, product_title="my copy"))
    theirs.refresh_from_db()
    mine = Product.objects.exclude(pk=theirs.pk).get()
    assert theirs.is_latest and mine.is_latest and mine.series_key != theirs.series_key
    assert mine.file("data").file.name == theirs.file("data").file.name  # stored once
    assert mine.title == "my copy" and mine.submitted_by.username == "someone"


def test_a_new_version_inherits_restricted_access(client, token, contributor, sources):
    post(client, image_post(token, product_id="private-1"))
    first = Product.objects.get()
    first.access = Product.Access.PROPRIETARY
    first.save()
    post(client, image_post(token, product_id="private-1", product_title="v2"))
    assert Product.objects.get(version=2).access == Product.Access.PROPRIETARY


def test_posting_again_after_a_delete_publishes_a_new_version(client, token, sources):
    post(client, image_post(token, product_id="again"))
    assert client.post(f"{BASE}/delete_product_to_gallery",
                       {"token": token, "product_id": "again"}).status_code == 200  # fmt: skip
    node = post(client, image_post(token, product_id="again"))
    assert node["vid"][0]["value"] == 2 and node["status"][0]["value"] is True
    assert Product.objects.get(version=2).status == Product.Status.PUBLISHED


def test_a_concurrent_insert_is_retried(client, token, sources, monkeypatch):
    """The first attempt loses a race (IntegrityError); the second one succeeds cleanly."""
    real, calls = posting._post, []

    def racing(plan, post):
        calls.append(1)
        if len(calls) == 1:
            real(plan, post)
            raise IntegrityError("duplicate key")
        return real(plan, post)

    monkeypatch.setattr(posting, "_post", racing)
    node = post(client, image_post(token))
    assert len(calls) == 2 and Product.objects.count() == 1
    assert node["nid"][0]["value"] == Product.objects.get().pk
    assert len(stored_files(settings.MEDIA_ROOT)) == 1


def test_files_ingested_meanwhile_are_never_edited_in_place(
    client, token, sources, tmp_path, monkeypatch
):
    """If the same files became a product between the check and the ingest, the post makes a
    new version of it instead of changing it."""
    paths = synthetic_spectrum(tmp_path / "s")
    post(client, spectrum_post(token, paths, product_id="race"))
    first = Product.objects.get()
    real = posting._plan

    def stale(fits, meta):
        plan = real(fits, meta)
        plan.data_key = "0" * 64  # the check finds nothing; the ingest finds the product
        return plan

    monkeypatch.setattr(posting, "_plan", stale)
    node = post(client, spectrum_post(token, paths, product_id="race", product_title="renamed"))
    first.refresh_from_db()
    assert first.title != "renamed" and not first.is_latest
    assert node["vid"][0]["value"] == 2 and node["title"][0]["value"] == "renamed"
