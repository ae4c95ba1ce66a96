"""The Celery side without a broker: task registration, the beat schedule, and the canvas of a
run executed eagerly (the worker-process tests are in tests/integration)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from ingest.models import RevolutionRun
from ingest.pipeline import runs, service, tasks
from products.models import Product

from .conftest import SMALL, parameters


@pytest.fixture
def eager(monkeypatch):
    """Tasks sent with delay() run at once, and the groups run_revolution launches are kept
    to be run by ``work`` (a worker's job: each task of each chain in turn)."""
    from gallery.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)
    monkeypatch.setitem(app.conf, "task_eager_propagates", True)
    launched: list[tuple[int, list[str]]] = []
    monkeypatch.setattr(tasks, "launch", lambda run_id, keys: launched.append((run_id, keys)))
    return launched


def work(launched: list) -> None:
    while launched:
        run_id, keys = launched.pop(0)
        for key in keys:
            for signature in tasks.member_signature(run_id, key).tasks:
                signature.apply()


def test_tasks_are_registered_and_scheduled():
    from gallery.celery import app

    app.loader.import_default_modules()
    for name in (
        "ingest.pipeline.run_revolution",
        "ingest.pipeline.unit_step",
        "ingest.pipeline.finish_member",
        "ingest.pipeline.publish_run",
        "ingest.pipeline.grb_lightcurves",
    ):
        assert name in app.tasks
        assert app.tasks[name].acks_late and app.tasks[name].reject_on_worker_lost
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        if entry["task"].startswith("ingest.pipeline."):
            assert entry["task"] in app.tasks
    scheduled = {e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "ingest.pipeline.process_new_revolutions",
        "ingest.pipeline.reprocess_recent_revolutions",
        "ingest.pipeline.watchdog",
    } <= scheduled


def test_the_canvas_of_a_run(eager, reference_catalog, pipeline_settings, small_archive):
    run, _ = runs.create_run(SMALL, parameters(small_archive, instruments=["isgri"]))
    result = tasks.run_revolution.delay(run.pk).result
    assert result["state"] == "launched" and len(result["members"]) == 1
    (key,) = result["members"]
    chain = tasks.member_signature(run.pk, key)
    assert [t.name for t in chain.tasks] == ["ingest.pipeline.unit_step"] * 4 + [
        "ingest.pipeline.finish_member"
    ]
    assert [t.args[2] for t in chain.tasks[:4]] == list(service.UNIT_STEPS)
    work(eager)
    run.refresh_from_db()
    assert run.status == RevolutionRun.Status.DONE, run.log
    assert run.steps[key]["done"] == list(service.UNIT_STEPS)
    assert run.steps["publish"]["state"] == "done"
    assert all(p.status == Product.Status.PUBLISHED for p in run.products.all())
    # A second delivery of the same task finds the run finished and does nothing.
    assert tasks.run_revolution.delay(run.pk).result == {"run": run.pk, "state": "run already done"}
    # Neither does a late delivery of a step.
    assert tasks.unit_step.delay(run.pk, key, "mosaic").result == "skipped"


def test_the_watchdog_finishes_a_stalled_run(
    eager,
    reference_catalog,
    pipeline_settings,
    small_archive,
):
    run, _ = runs.create_run(SMALL, parameters(small_archive, instruments=["isgri"]))
    service.begin(run.pk)  # planned, then its worker vanished
    RevolutionRun.objects.filter(pk=run.pk).update(
        owner="gone:1", heartbeat=timezone.now() - timedelta(hours=1)
    )
    assert tasks.revive_stalled(length=0) == [run.pk]
    work(eager)
    run.refresh_from_db()
    assert run.status == RevolutionRun.Status.DONE
    assert "stalled on gone:1" in run.log


def test_new_revolutions_are_started_once(
    reference_catalog,
    pipeline_settings,
    small_archive,
    django_capture_on_commit_callbacks,
):
    pipeline_settings.GALLERY_ARCHIVE_DIR = small_archive
    pipeline_settings.GALLERY_PIPELINE_MAX_ACTIVE_RUNS = 4
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert tasks.process_new_revolutions() == [SMALL]
        assert tasks.process_new_revolutions() == []  # the active run holds the lock
    assert len(callbacks) == 1
    assert RevolutionRun.objects.get().status == RevolutionRun.Status.QUEUED
