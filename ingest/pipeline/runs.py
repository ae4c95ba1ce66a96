"""The run record as lock and journal: claiming, heartbeats, steps, log and errors.

Every change to a run is a short transaction on its row (``select_for_update``), so that the
unit tasks of one run, running in parallel on several workers, never lose each other's
updates of the JSON fields. A run is *stale* when its heartbeat is older than
``GALLERY_PIPELINE_STALE_SECONDS``: no worker is working on it any more (killed, or its
queued tasks lost with the broker), and the next claim takes it over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from products.models import Revolution

from ..models import RevolutionRun
from .config import RunParameters

logger = logging.getLogger("ingest.pipeline")

#: The log is kept to its last characters (a revolution writes a few hundred lines).
MAX_LOG_CHARS = 200_000
MAX_ERRORS = 500


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def stale_before():
    return timezone.now() - timedelta(seconds=settings.GALLERY_PIPELINE_STALE_SECONDS)


def is_stale(run: RevolutionRun) -> bool:
    return run.heartbeat is None or run.heartbeat < stale_before()


def create_run(revolution: int, params: RunParameters) -> tuple[RevolutionRun, bool]:
    """A new queued run, unless the revolution has an active one (then that one, False)."""
    rev = Revolution.for_number(int(revolution))
    active = RevolutionRun.objects.active().filter(revolution=rev).first()
    if active is not None:
        return active, False
    try:
        with transaction.atomic():
            run = RevolutionRun.objects.create(
                revolution=rev,
                backend=params.backend,
                parameters=params.to_json(),
                heartbeat=timezone.now(),
            )
    except IntegrityError:
        # Another process created the revolution's active run meanwhile: that one it is.
        return RevolutionRun.objects.active().get(revolution=rev), False
    append_log(run.pk, f"queued ({params.backend} backend, threshold {params.threshold:g})")
    return run, True


def update(run_id: int, change: Callable[[RevolutionRun], None]) -> RevolutionRun:
    with transaction.atomic():
        run = RevolutionRun.objects.select_for_update().get(pk=run_id)
        change(run)
        run.save()
    return run


def claim(run_id: int) -> tuple[RevolutionRun | None, str]:
    """Take the run to work on it: (run, '') or (None, why not)."""
    with transaction.atomic():
        run = RevolutionRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            return None, "no such run"
        if run.status not in RevolutionRun.ACTIVE:
            return None, f"run already {run.status}"
        me = worker_name()
        running = run.status == RevolutionRun.Status.RUNNING
        # A run released by the watchdog (no owner) is free whatever its heartbeat says.
        if running and run.owner and run.owner != me and not is_stale(run):
            return None, f"running on {run.owner}"
        if running and run.owner:
            note = f"taken over from {run.owner} (silent since {_hms(run.heartbeat)})"
        else:
            note = "resumed" if running else "started"
        run.attempts += 1
        if run.attempts > settings.GALLERY_PIPELINE_MAX_ATTEMPTS:
            run.status = RevolutionRun.Status.FAILED
            run.finished = timezone.now()
            run.errors = [*run.errors, {"step": "run", "message": "too many attempts"}]
            add_line(run, f"failed: taken {run.attempts - 1} times without finishing")
            run.save()
            return None, "too many attempts"
        run.status = RevolutionRun.Status.RUNNING
        run.owner = me
        run.heartbeat = timezone.now()
        run.started = run.started or run.heartbeat
        add_line(run, f"{note} by {me}")
        run.save()
    return run, ""


def _hms(value) -> str:
    return value.strftime("%H:%M:%S") if value else "never"


def beat(run_id: int) -> None:
    RevolutionRun.objects.filter(pk=run_id, status__in=RevolutionRun.ACTIVE).update(
        heartbeat=timezone.now()
    )


@contextmanager
def heartbeat(run_id: int):
    """Refresh the run's heartbeat from a thread while the block runs (every
    ``GALLERY_PIPELINE_HEARTBEAT_SECONDS``; 0 beats only at the start)."""
    beat(run_id)
    interval = settings.GALLERY_PIPELINE_HEARTBEAT_SECONDS
    if interval <= 0:
        yield
        return
    stop = threading.Event()

    def loop() -> None:
        try:
            while not stop.wait(interval):
                try:
                    beat(run_id)
                except Exception:  # noqa: BLE001 - a missed beat must not kill the step
                    logger.warning("heartbeat of run %s failed", run_id, exc_info=True)
        finally:
            connection.close()

    thread = threading.Thread(target=loop, name=f"heartbeat-run-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 5)


def add_line(run: RevolutionRun, message: str) -> None:
    """Append a time-stamped line to the log of ``run`` (saved by the caller)."""
    line = f"{timezone.now().strftime('%Y-%m-%dT%H:%M:%SZ')} {message}"
    text = f"{run.log}\n{line}" if run.log else line
    if len(text) > MAX_LOG_CHARS:
        text = text[-MAX_LOG_CHARS:].split("\n", 1)[-1]
    run.log = text
    logger.info("revolution %s run %s: %s", run.revolution_id, run.pk, message)


def append_log(run_id: int, message: str) -> None:
    update(run_id, lambda run: add_line(run, message))


def add_error(run_id: int, step: str, message: str, **where) -> None:
    def change(run: RevolutionRun) -> None:
        if len(run.errors) < MAX_ERRORS:
            run.errors = [*run.errors, {"step": step, "message": message[:500], **where}]
        place = " ".join(f"{k} {v}" for k, v in where.items())
        add_line(run, f"{step}{' ' + place if place else ''}: {message[:500]}")

    update(run_id, change)


def set_step(
    run_id: int,
    name: str,
    *,
    log: str | None = None,
    seconds: float | None = None,
    timing_key: str | None = None,
    **state,
) -> RevolutionRun:
    """Merge ``state`` into ``steps[name]``, add ``seconds`` to the timings, log a line."""

    def change(run: RevolutionRun) -> None:
        steps = dict(run.steps)
        steps[name] = {**steps.get(name, {}), **state}
        run.steps = steps
        if seconds is not None:
            timings = dict(run.timings)
            key = timing_key or name
            timings[key] = round(timings.get(key, 0.0) + seconds, 3)
            if timing_key and timing_key != name:
                timings[name] = round(timings.get(name, 0.0) + seconds, 3)
            run.timings = timings
        if log:
            add_line(run, log)
        run.heartbeat = timezone.now()

    return update(run_id, change)
