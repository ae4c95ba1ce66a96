"""Uploads (POST), edits (PATCH) and hiding (DELETE): roles, validation, nothing half-written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile

from ingest import synthetic
from ingest.models import IngestJob
from products.models import Product
from tests.conftest import shared_fixture
from tests.factories import ObservationFactory, ProductFactory, ProductFileFactory, SourceFactory
from tests.gallery.api.conftest import client_for, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/products/"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def spectrum_files(tmp_path) -> list[Path]:
    """An ISGRI spectrum with its RMF and ARF, written by the project's own generator."""
    source = synthetic.SkySource("Synthetic X-1", 120.0, -30.0, 200.0)
    paths = synthetic.write_spectrum(
        tmp_path / "spec.fits",
        tmp_path / "spec_rmf.fits",
        tmp_path / "spec_arf.fits",
        source=source,
        t_start_ijd=6000.0,
        t_stop_ijd=6000.5,
        exposure_s=30000.0,
        osa="10",
        seed=1,
    )
    return list(paths)


def upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes())


def staging_contents(settings) -> list[Path]:
    root = Path(settings.GALLERY_STAGING_DIR)
    return sorted(root.rglob("*")) if root.exists() else []


def test_anonymous_upload_is_401(anon, spectrum_files):
    response = anon.post(URL, {"files": [upload(p) for p in spectrum_files]}, format="multipart")
    assert response.status_code == 401
    assert "detail" in response.json()
    assert response.has_header("WWW-Authenticate")


def test_reader_upload_is_403(reader, spectrum_files):
    response = client_for(reader).post(
        URL, {"files": [upload(p) for p in spectrum_files]}, format="multipart"
    )
    assert response.status_code == 403
    assert "contributor" in response.json()["detail"]


def test_bad_token_is_401(spectrum_files):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer glt_not-a-real-token")
    response = client.get(URL)
    assert response.status_code == 401
    assert "token" in response.json()["detail"].lower()


def test_contributor_upload_is_staged_and_enqueued(
    contributor, spectrum_files, settings, django_capture_on_commit_callbacks
):
    Group.objects.create(name="v404-team")
    files = [upload(p) for p in spectrum_files]
    files[0].name = "../../etc/passwd"  # a hostile name is never a path
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_for(contributor).post(
            URL,
            {
                "files": files,
                "attachments": [SimpleUploadedFile("quick look.png", PNG)],
                "source": "Synthetic X-1",
                "tags": "osa10,synthetic",
                "access": "proprietary",
                "embargo_until": "2030-01-01T00:00:00Z",
                "granted_groups": ["v404-team"],
                "provenance": json.dumps({"pipeline": "test"}),
                "external_id": "pipe-42",
            },
            format="multipart",
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "pending"
    assert response["Location"] == body["url"]
    assert len(callbacks) == 1  # the ingest task is sent once the job is committed
    job = IngestJob.objects.get(uuid=body["uuid"])
    assert job.submitted_by == contributor
    assert [f["original_name"] for f in job.staged_files] == [
        "passwd",
        "spec_rmf.fits",
        "spec_arf.fits",
        "quick look.png",
    ]
    assert [f["role"] for f in job.staged_files] == ["data", "data", "data", "preview"]
    staging = Path(settings.GALLERY_STAGING_DIR).resolve()
    for staged in job.staged_files:
        path = Path(staged["path"]).resolve()
        assert path.parent.parent == staging
        assert path.name.isdigit()
        assert path.is_file()
    assert job.options["tags"] == ["osa10", "synthetic"]
    assert job.options["granted_groups"] == ["v404-team"]
    assert job.options["provenance"] == {"pipeline": "test"}
    assert job.options["access"] == "proprietary"
    assert job.options["source_name"] == "Synthetic X-1"
    # the submitter polls the job
    poll = client_for(contributor).get(body["url"])
    assert poll.status_code == 200
    assert poll.json()["files"][0] == "passwd"


def test_job_is_private_to_its_submitter_and_curators(contributor, curator, spectrum_files):
    job = IngestJob.objects.create(submitted_by=contributor, staged_files=[])
    url = f"/api/v1/jobs/{job.uuid}/"
    assert client_for(contributor).get(url).status_code == 200
    assert client_for(curator).get(url).status_code == 200
    assert client_for(make_user("contributor")).get(url).status_code == 404
    assert client_for().get(url).status_code == 401


@pytest.mark.parametrize(
    ("field", "name", "content", "status", "reason"),
    [
        ("files", "preview.png", PNG, 415, "attachments"),
        ("files", "page.html", b"<!DOCTYPE html><html></html>", 415, "attachments"),
        ("files", "notes.txt", b"just some words", 415, "not FITS"),
        ("files", "empty.fits", b"", 400, "empty"),
        ("files", "data.json", b'{"a": 1}', 400, "not an MMODA"),
        ("files", "bad.json", b"{not json", 400, "JSON"),
        ("files", "binary.fits", bytes(range(256)) * 4, 415, "not FITS"),
        ("attachments", "x.fits", b"SIMPLE  =" + b" " * 100, 415, "PNG, HTML or YAML"),
    ],
)
def test_sniffed_content_is_refused_naming_the_field(
    contributor, spectrum_files, settings, field, name, content, status, reason
):
    data = {"files": [upload(spectrum_files[0])]}
    if field == "files":
        data["files"] = [SimpleUploadedFile(name, content)]
    else:
        data["attachments"] = [SimpleUploadedFile(name, content)]
    response = client_for(contributor).post(URL, data, format="multipart")
    assert response.status_code == status, response.content
    messages = response.json()[field]
    assert reason in messages[0]
    assert IngestJob.objects.count() == 0
    assert staging_contents(settings) == []


def test_oversized_upload_is_413_and_leaves_nothing(contributor, spectrum_files, settings):
    settings.GALLERY_UPLOAD_MAX_BYTES = 4096
    response = client_for(contributor).post(
        URL, {"files": [upload(p) for p in spectrum_files]}, format="multipart"
    )
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert IngestJob.objects.count() == 0
    assert staging_contents(settings) == []


def test_each_file_is_checked_against_the_limit(contributor, settings):
    from gallery.api import uploads

    settings.GALLERY_UPLOAD_MAX_BYTES = 100
    big = SimpleUploadedFile("big.fits", b"SIMPLE  =" + b" " * 200)
    with pytest.raises(uploads.PayloadTooLarge) as caught:
        uploads.stage([big], [])
    assert "big.fits" in str(caught.value.detail["files"][0])
    assert staging_contents(settings) == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "files"),
        ({"access": "secret"}, "access"),
        ({"tags": "no spaces allowed"}, "tags"),
        ({"granted_groups": "nobody-here"}, "granted_groups"),
        ({"provenance": "[1, 2]"}, "provenance"),
        ({"provenance": "{broken"}, "provenance"),
        ({"source": "bad\x07name"}, "source"),
        ({"observation": "00000000000"}, "observation"),
        ({"embargo_until": "2030-01-01T00:00:00Z"}, "embargo_until"),
        ({"status": "hidden"}, "status"),
    ],
)
def test_bad_metadata_is_400_naming_the_field(contributor, spectrum_files, settings, data, field):
    body = {"files": [upload(spectrum_files[0])], **data}
    if field == "files":
        body.pop("files")
    response = client_for(contributor).post(URL, body, format="multipart")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()
    assert IngestJob.objects.count() == 0
    assert staging_contents(settings) == []


def test_real_fixture_upload_is_accepted(contributor, settings):
    pha = shared_fixture("isgri/spectrum_1A_0535+262_osa11.fits.gz")
    files = [
        upload(pha),
        upload(pha.with_name("spectrum_1A_0535+262_osa11_rmf.fits.gz")),
        upload(pha.with_name("spectrum_1A_0535+262_osa11_arf.fits.gz")),
        upload(shared_fixture("catalogs/api_catalog_gx5-1.json")),
    ]
    ObservationFactory(obsid="19600010008")
    response = client_for(contributor).post(
        URL, {"files": files, "observation": "19600010008"}, format="multipart"
    )
    assert response.status_code == 202, response.content


# --- PATCH and DELETE -------------------------------------------------------------------


def test_curator_edits_every_field(curator):
    Group.objects.create(name="pi-team")
    crab, pulsar = SourceFactory(name="Crab"), SourceFactory(name="PSR B0531+21")
    product = ProductFactory(sources=[crab])
    response = client_for(curator).patch(
        f"{URL}{product.uuid}/",
        {
            "title": "Crab with the pulsar",
            "tags": ["featured", "crab"],
            "status": "draft",
            "is_highlight": True,
            "access": "proprietary",
            "embargo_until": "2031-01-01T00:00:00Z",
            "granted_groups": ["pi-team"],
            "sources": [{"name": "crab"}, {"name": "PSR B0531+21", "role": "in_field"}],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["title"] == "Crab with the pulsar"
    assert sorted(body["tags"]) == ["crab", "featured"]
    assert body["granted_groups"] == ["pi-team"]
    assert {(s["name"], s["role"]) for s in body["sources"]} == {
        ("Crab", "target"),
        ("PSR B0531+21", "in_field"),
    }
    product.refresh_from_db()
    assert (product.status, product.is_highlight, product.access) == (
        "draft",
        True,
        "proprietary",
    )
    assert product.history.first().history_user == curator
    assert pulsar.products.get() == product


def test_contributor_edits_title_and_tags_of_own_products_only(contributor):
    own = ProductFactory(submitted_by=contributor)
    other = ProductFactory()
    client = client_for(contributor)
    ok = client.patch(f"{URL}{own.uuid}/", {"title": "Better title", "tags": ["a"]}, format="json")
    assert ok.status_code == 200, ok.content
    assert client.patch(f"{URL}{own.uuid}/", {"status": "hidden"}, format="json").status_code == (
        403
    )
    response = client.patch(f"{URL}{other.uuid}/", {"title": "Mine now"}, format="json")
    assert response.status_code == 403
    assert "submitted" in response.json()["detail"]
    assert client.delete(f"{URL}{own.uuid}/").status_code == 403
    other.refresh_from_db()
    assert other.title != "Mine now"


def test_reader_and_anonymous_cannot_edit(reader, anon):
    product = ProductFactory()
    assert anon.patch(f"{URL}{product.uuid}/", {"title": "x"}, format="json").status_code == 401
    response = client_for(reader).patch(f"{URL}{product.uuid}/", {"title": "x"}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"status": "deleted"}, "status"),
        ({"granted_groups": ["no-such-group"]}, "granted_groups"),
        ({"sources": [{"name": "Nowhere X-9"}]}, "sources"),
        ({"title": "   "}, "title"),
        ({}, "detail"),
    ],
)
def test_bad_patch_is_400(curator, data, field):
    product = ProductFactory()
    response = client_for(curator).patch(f"{URL}{product.uuid}/", data, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_put_is_not_offered(curator):
    product = ProductFactory()
    response = client_for(curator).put(f"{URL}{product.uuid}/", {"title": "x"}, format="json")
    assert response.status_code == 405
    assert "detail" in response.json()


def test_delete_hides_and_keeps_the_files(curator, anon):
    stored = ProductFileFactory()
    product = stored.product
    assert client_for(curator).delete(f"{URL}{product.uuid}/").status_code == 204
    product.refresh_from_db()
    assert product.status == Product.Status.HIDDEN
    assert product.files.count() == 1
    assert Path(stored.file.path).is_file()
    assert anon.get(f"{URL}{product.uuid}/").status_code == 404
    assert client_for(curator).get(f"{URL}{product.uuid}/").json()["status"] == "hidden"
    # shown again by a PATCH of its status
    client_for(curator).patch(f"{URL}{product.uuid}/", {"status": "published"}, format="json")
    assert anon.get(f"{URL}{product.uuid}/").status_code == 200


def test_json_upload_without_files_is_400(contributor):
    response = client_for(contributor).post(URL, {"title": "x"}, format="json")
    assert response.status_code == 400
    assert "files" in response.json()


def test_malformed_multipart_is_a_json_400(contributor):
    body = io.BytesIO(b'--x\r\nContent-Disposition: form-data; name="files"\r\n')
    response = client_for(contributor).generic(
        "POST", URL, body.getvalue(), content_type="multipart/form-data; boundary=x"
    )
    assert 400 <= response.status_code < 500
    assert isinstance(response.json(), dict)


def test_size_is_watched_while_reading_a_body_without_length(settings):
    from gallery.api import uploads

    settings.GALLERY_UPLOAD_MAX_BYTES = 1000
    handler = uploads.SizeLimitHandler()
    assert handler.receive_data_chunk(b"x" * 600, 0) == b"x" * 600
    with pytest.raises(uploads.PayloadTooLarge):
        handler.receive_data_chunk(b"x" * 600, 600)


def test_session_uploads_need_csrf_and_respect_the_limit(contributor, spectrum_files, settings):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(contributor)
    response = browser.post(URL, {"files": [upload(spectrum_files[0])]})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    settings.GALLERY_UPLOAD_MAX_BYTES = 2048
    relaxed = Client()
    relaxed.force_login(contributor)
    response = relaxed.post(URL, {"files": [upload(spectrum_files[0])]})
    assert response.status_code == 413
    assert IngestJob.objects.count() == 0
    assert staging_contents(settings) == []
