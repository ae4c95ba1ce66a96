"""Ingest through a real Celery worker on PostgreSQL and Redis."""

from __future__ import annotations

import shutil
import time
import uuid

import pytest
from django.conf import settings

from ingest.models import IngestJob
from ingest.tasks import ingest_job
from products.models import Product
from tests.conftest import shared_fixture

pytestmark = [pytest.mark.integration]


def stage(*paths) -> list[dict]:
    folder = settings.GALLERY_STAGING_DIR / uuid.uuid4().hex
    folder.mkdir(parents=True)
    staged = []
    for index, path in enumerate(paths):
        target = folder / f"{index:02d}"
        shutil.copyfile(path, target)
        staged.append({"path": str(target), "role": "data", "original_name": path.name})
    return staged


def wait_for(job: IngestJob, timeout: float = 60) -> IngestJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.state in (IngestJob.State.DONE, IngestJob.State.FAILED):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job still {job.state} after {timeout} s")


def test_worker_ingests_a_spectrum_with_its_responses(celery_worker_thread):
    from sources.catalog import load_reference_catalog

    load_reference_catalog()
    pha = shared_fixture("isgri/spectrum_1A_0535+262_osa11.fits.gz")
    files = stage(
        pha,
        pha.with_name("spectrum_1A_0535+262_osa11_rmf.fits.gz"),
        pha.with_name("spectrum_1A_0535+262_osa11_arf.fits.gz"),
    )
    job = IngestJob.objects.create(staged_files=files, options={"tags": ["osa11"]})
    ingest_job.delay(job.pk)
    job = wait_for(job)
    assert job.state == IngestJob.State.DONE, job.message
    product = job.products.get()
    assert product.sources.get().name == "1A 0535+262"
    assert product.fits.filter(is_preferred=True).exists()
    assert list(product.tags.values_list("name", flat=True)) == ["osa11"]

    # the same files again (a redelivered or repeated job): still one product
    again = IngestJob.objects.create(
        staged_files=stage(
            pha,
            pha.with_name("spectrum_1A_0535+262_osa11_rmf.fits.gz"),
            pha.with_name("spectrum_1A_0535+262_osa11_arf.fits.gz"),
        )
    )
    ingest_job.delay(again.pk)
    again = wait_for(again)
    assert again.state == IngestJob.State.DONE
    assert "already present" in again.message
    assert Product.objects.count() == 1


def test_worker_reports_bad_files_without_writing(celery_worker_thread, tmp_path):
    bad = tmp_path / "bad.fits"
    bad.write_text("not a FITS file")
    job = IngestJob.objects.create(staged_files=stage(bad))
    ingest_job.delay(job.pk)
    job = wait_for(job)
    assert job.state == IngestJob.State.FAILED
    assert "not a FITS file" in job.message
    assert Product.objects.count() == 0
