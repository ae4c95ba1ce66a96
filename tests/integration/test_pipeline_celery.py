"""The pipeline's Celery canvas through a real worker on PostgreSQL and Redis."""

from __future__ import annotations

import time

import pytest

from ingest.models import RevolutionRun
from ingest.pipeline import runs, service, tasks
from ingest.pipeline.config import RunParameters
from ingest.pipeline.generator import make_archive
from products.catalogue import INSTRUMENTS, PRODUCT_KINDS
from products.models import Product
from tests.factories import InstrumentFactory, ProductKindFactory, source_class

pytestmark = [pytest.mark.integration]

REVOLUTION = 1310


def seed_lookups() -> None:
    """Instruments, product kinds and source classes (a transactional test flushes the rows
    the migrations seeded)."""
    for row in INSTRUMENTS:
        InstrumentFactory(code=row[0])
    for row in PRODUCT_KINDS:
        ProductKindFactory(code=row[0])
    source_class("GRB")


def wait_for_run(run_id: int, timeout: float) -> RevolutionRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = RevolutionRun.objects.get(pk=run_id)
        if run.status not in RevolutionRun.ACTIVE:
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} still {run.status} after {timeout} s:\n{run.log}")


def test_a_revolution_runs_as_a_canvas_on_a_worker(celery_worker_thread, settings, tmp_path):
    settings.GALLERY_PIPELINE_WORK_DIR = tmp_path / "work"
    settings.GALLERY_PIPELINE_HEARTBEAT_SECONDS = 0.5
    seed_lookups()
    root = tmp_path / "archive"
    make_archive(
        root, [REVOLUTION], scws_per_revolution=20, seed=2, instruments=["isgri"], bands="image",
    )  # fmt: skip
    params = RunParameters(backend="local", archive=str(root), instruments=["isgri"])
    run, created = runs.create_run(REVOLUTION, params)
    assert created
    tasks.enqueue_run(run)  # on commit: at once outside a transaction
    run = wait_for_run(run.pk, timeout=150)
    assert run.status == RevolutionRun.Status.DONE, run.log
    plan = service.load_plan(run)
    assert len(plan.units) == 2 and plan.grbs  # two observations, one GRB trigger
    for unit in plan.units:
        assert run.steps[unit.key]["done"] == list(service.UNIT_STEPS)
    assert run.steps["grb"]["state"] == "done" and run.steps["publish"]["state"] == "done"
    products = list(run.products.all())
    assert products and all(p.status == Product.Status.PUBLISHED for p in products)
    assert Product.objects.filter(status=Product.Status.DRAFT).count() == 0
    assert tasks.queue_length() == 0  # Redis keeps no empty queue: read as nothing waiting
