"""An upload through the API ingested by a real Celery worker (PostgreSQL, Redis)."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from ingest import synthetic
from products.catalogue import INSTRUMENTS, PRODUCT_KINDS
from tests.conftest import shared_fixture
from tests.factories import InstrumentFactory, ProductKindFactory
from tests.gallery.api.conftest import client_for, make_user

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def contributor_client(celery_worker_thread):
    # transactional_db flushes the seeded rows between tests: put back what ingest needs
    for row in INSTRUMENTS:
        InstrumentFactory(code=row[0])
    for row in PRODUCT_KINDS:
        ProductKindFactory(code=row[0])
    return client_for(make_user("contributor"))


def poll(client, url: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["state"] in ("done", "failed"):
            return body
        time.sleep(0.25)
    raise AssertionError(f"job still {body['state']} after {timeout} s")


def post(client, paths, **data) -> dict:
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in paths]
    response = client.post("/api/v1/products/", {"files": files, **data}, format="multipart")
    assert response.status_code == 202, response.content
    return response.json()


def test_real_spectrum_with_responses_is_ingested(contributor_client):
    pha = shared_fixture("isgri/spectrum_1A_0535+262_osa11.fits.gz")
    paths = [
        pha,
        pha.with_name("spectrum_1A_0535+262_osa11_rmf.fits.gz"),
        pha.with_name("spectrum_1A_0535+262_osa11_arf.fits.gz"),
    ]
    job = post(contributor_client, paths, tags="osa11,api", source="1A 0535+262")
    job = poll(contributor_client, job["url"])
    assert job["state"] == "done", job["message"]
    [made] = job["products"]
    product = contributor_client.get(made["url"]).json()
    assert product["kind"] == "spectrum" and product["instrument"] == "isgri"
    assert [s["name"] for s in product["sources"]] == ["1A 0535+262"]
    assert sorted(product["tags"]) == ["api", "osa11"]
    assert {f["role"] for f in product["files"]} >= {"data", "rmf", "arf"}
    assert any(fit["is_preferred"] for fit in product["fits"])
    listed = contributor_client.get("/api/v1/products/", {"source": "1a0535+262"}).json()
    assert [p["uuid"] for p in listed["results"]] == [made["uuid"]]


def test_synthetic_spectrum_is_ingested(contributor_client, tmp_path):
    source = synthetic.SkySource("Synthetic X-2", 250.0, -40.0, 150.0)
    paths = synthetic.write_spectrum(
        tmp_path / "spec.fits",
        tmp_path / "spec_rmf.fits",
        tmp_path / "spec_arf.fits",
        source=source,
        t_start_ijd=6100.0,
        t_stop_ijd=6100.4,
        exposure_s=25000.0,
        osa="10",
        seed=3,
    )
    job = poll(contributor_client, post(contributor_client, paths, title="synthetic")["url"])
    assert job["state"] == "done", job["message"]
    product = contributor_client.get(job["products"][0]["url"]).json()
    assert product["title"] == "synthetic"
    assert product["sources"][0]["name"] == "Synthetic X-2"


def test_unreadable_upload_fails_the_job_with_a_reason(contributor_client, tmp_path):
    bad = tmp_path / "broken.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b" " * 50)  # a header cut short
    job = poll(contributor_client, post(contributor_client, [bad])["url"])
    assert job["state"] == "failed"
    assert "broken.fits" in job["message"]
    assert job["products"] == []
