"""Celery tasks of the pipeline: thin wrappers around ``service``, and the canvas of a run.

``run_revolution`` claims the run and plans it, then launches a group with one chain per
member: ``unit_step`` for mosaic, detect, extract and ingest, then ``finish_member``; the
GRB member is ``grb_lightcurves`` then ``finish_member``. The last member to finish enqueues
``publish_run``. The join is made in the database (``service.finish_member``) rather than
with a chord: a chord's counter lives in the result backend and would be lost with a
restarted Redis, while the run row survives. Every task is idempotent (steps already done are
skipped), acknowledged late and rejected when its worker dies; transient errors (database or
broker connections) are retried with backoff.

When tasks are lost anyway (a worker killed with SIGKILL keeps its message unacknowledged
until the broker's visibility timeout; a Redis restarted without persistence forgets its
queues), the run's heartbeat goes silent: ``watchdog`` (Celery beat, and
``process_revolutions`` while it follows a batch) enqueues ``run_revolution`` again, which
takes the run over and launches what is left.

Periodic tasks (``CELERY_BEAT_SCHEDULE``): ``process_new_revolutions`` starts runs for
revolutions that appeared in the archive (or whose data became consolidated);
``reprocess_recent_revolutions`` processes the last ones again every day (new versions
supersede the old where the data changed); ``watchdog`` revives stalled runs.
"""

from __future__ import annotations

import logging

from celery import chain, group, shared_task
from django.conf import settings
from django.db import transaction
from kombu.exceptions import ChannelError

from ..models import RevolutionRun
from . import runs, service
from .config import RunParameters

logger = logging.getLogger("ingest.pipeline")

TASK_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": service.TRANSIENT_ERRORS,
    "retry_backoff": True,
    "retry_backoff_max": 120,
    "max_retries": 8,
}


def enqueue_run(run: RevolutionRun) -> None:
    """Send the run to the workers once the transaction that made it has committed."""
    transaction.on_commit(lambda: run_revolution.delay(run.pk))


def member_signature(run_id: int, key: str):
    if key == service.GRB_MEMBER:
        return chain(grb_lightcurves.si(run_id), finish_member.si(run_id, key))
    steps = [unit_step.si(run_id, key, step) for step in service.UNIT_STEPS]
    return chain(*steps, finish_member.si(run_id, key))


def launch(run_id: int, keys: list[str]) -> None:
    group(member_signature(run_id, key) for key in keys).apply_async()


@shared_task(name="ingest.pipeline.run_revolution", **TASK_OPTIONS)
def run_revolution(run_id: int) -> dict:
    run, todo, why = service.begin(run_id)
    if run is None:
        return {"run": run_id, "state": why}
    if not todo:
        return {"run": run_id, "state": service.publish(run_id)}
    launch(run_id, todo)
    return {"run": run_id, "state": "launched", "members": todo}


@shared_task(name="ingest.pipeline.unit_step", **TASK_OPTIONS)
def unit_step(run_id: int, key: str, step: str) -> str:
    return service.unit_step(run_id, key, step)


@shared_task(name="ingest.pipeline.grb_lightcurves", **TASK_OPTIONS)
def grb_lightcurves(run_id: int) -> str:
    return service.grb_step(run_id)


@shared_task(name="ingest.pipeline.finish_member", **TASK_OPTIONS)
def finish_member(run_id: int, key: str) -> bool:
    if service.finish_member(run_id, key):
        publish_run.delay(run_id)
        return True
    return False


@shared_task(name="ingest.pipeline.publish_run", **TASK_OPTIONS)
def publish_run(run_id: int) -> str:
    return service.publish(run_id)


# ------------------------------------------------------------------------------- periodic


def start_runs(revolutions: list[int], params: RunParameters) -> list[RevolutionRun]:
    """Create and enqueue a run per revolution (one already active is left alone)."""
    started = []
    for revolution in revolutions:
        run, created = runs.create_run(revolution, params)
        if created:
            enqueue_run(run)
            started.append(run)
    return started


@shared_task(name="ingest.pipeline.process_new_revolutions", **TASK_OPTIONS)
def process_new_revolutions() -> list[int]:
    params = RunParameters.from_settings()
    room = settings.GALLERY_PIPELINE_MAX_ACTIVE_RUNS - RevolutionRun.objects.active().count()
    if room <= 0:
        return []
    todo = service.new_revolutions(params)[:room]
    return [run.revolution_id for run in start_runs(todo, params)]


@shared_task(name="ingest.pipeline.reprocess_recent_revolutions", **TASK_OPTIONS)
def reprocess_recent_revolutions() -> list[int]:
    params = RunParameters.from_settings()
    todo = service.recent_revolutions(params, settings.GALLERY_PIPELINE_REPROCESS_LAST)
    return [run.revolution_id for run in start_runs(todo, params)]


def queue_length() -> int | None:
    """Messages waiting in the default queue, or None when the broker cannot say."""
    from celery import current_app as app  # the project's app (loaded with Django)

    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            channel = connection.default_channel
            return channel.queue_declare(
                queue=app.conf.task_default_queue, passive=True
            ).message_count
    except ChannelError as exc:
        # Redis keeps no empty queues: "no queue" means nothing waits.
        return 0 if "NOT_FOUND" in str(exc) else None
    except Exception:  # noqa: BLE001 - an unreachable broker only means "unknown"
        logger.warning("cannot read the length of the task queue", exc_info=True)
        return None


def revive_stalled(length: int | None = None) -> list[int]:
    """Enqueue again the runs nobody works on; returns their ids."""
    revived = []
    for run in service.stalled_runs(queue_length() if length is None else length):
        if service.revive(run.pk):
            run_revolution.delay(run.pk)
            revived.append(run.pk)
    return revived


@shared_task(name="ingest.pipeline.watchdog", **TASK_OPTIONS)
def watchdog() -> list[int]:
    return revive_stalled()
