"""Celery tasks: thin wrappers that fetch a job by id and call the ingest service.

Tasks are idempotent (a product is identified by its files' SHA-256, so a redelivered task
finds the product already there), acknowledged late and rejected when the worker is lost, so a
worker killed mid-task hands the job to another worker instead of losing it.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from celery import shared_task
from django.db import OperationalError, transaction

from .models import IngestJob
from .readers.base import InputFile
from .service import IngestOptions, ingest_files

log = logging.getLogger(__name__)


def enqueue_ingest(job: IngestJob) -> None:
    """Send the job to a worker once the transaction that created it has committed."""
    transaction.on_commit(lambda: ingest_job.delay(job.pk))


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, ConnectionError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=8,
)
def ingest_job(self, job_id: int) -> dict:
    job = IngestJob.objects.filter(pk=job_id).first()
    if job is None:
        log.warning("ingest job %s does not exist (deleted?)", job_id)
        return {"state": "missing"}
    if job.state == IngestJob.State.DONE:
        return {"state": job.state, "products": [str(p.uuid) for p in job.products.all()]}
    IngestJob.objects.filter(pk=job.pk).update(
        state=IngestJob.State.RUNNING, attempts=job.attempts + 1
    )
    files = [
        InputFile(Path(f["path"]), f.get("role", "data"), f.get("original_name", ""))
        for f in job.staged_files
    ]
    data_files = [f for f in files if f.role == "data"]
    attachments = [f for f in files if f.role != "data"]
    options = IngestOptions.from_json(
        job.options, attachments=attachments, submitted_by=job.submitted_by, job_id=str(job.uuid)
    )
    report = ingest_files(data_files, options)
    job.products.add(*[o.product for o in report.outcomes])
    if report.rejected or not report.outcomes:
        job.state = IngestJob.State.FAILED
        job.message = "; ".join(f"{name}: {reason}" for name, reason in report.rejected) or (
            "no product found in the files"
        )
    else:
        job.state = IngestJob.State.DONE
        job.message = "; ".join(
            f"{o.product.uuid} {'created' if o.created else 'already present'}"
            for o in report.outcomes
        )
    job.save(update_fields=["state", "message", "updated"])
    _discard_staging(files)
    return {"state": job.state, "products": [str(o.product.uuid) for o in report.outcomes]}


def _discard_staging(files: list[InputFile]) -> None:
    """Staged uploads are copies; once ingested (or refused) they are no longer needed."""
    folders = {f.path.parent for f in files}
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
from .pipeline import tasks as pipeline_tasks  # noqa: E402,F401  (registers the pipeline tasks)
