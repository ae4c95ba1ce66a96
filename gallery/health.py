"""``GET /health/``: can the Gallery reach its database, its task broker and its storage?

For load balancers, container orchestrators and monitoring: HTTP 200 with ``"status": "ok"``
when all three answer, 503 with ``"status": "degraded"`` otherwise, and each check's outcome::

    {"status": "degraded",
     "checks": {"database": {"status": "ok", "ms": 0.8},
                "broker": {"status": "error", "error": "OperationalError: …", "ms": 2.1},
                "storage": {"status": "ok", "ms": 1.5}}}

The checks run side by side in daemon threads and each gets ``GALLERY_HEALTH_TIMEOUT_S``
seconds (default 3): a database or broker host that does not answer, or a hung network
mount, makes the check fail instead of hanging the probe. The page needs no login, so it
says no more than needed: error messages are one short line with any URL password masked,
and the full error goes to the log.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 3.0
PROBE_FOLDER = "health-probes"
_PASSWORD_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]*@", re.IGNORECASE)


class CheckFailed(Exception):
    """A check that ran and found a fault (its message is shown as is)."""


def check_database() -> dict:
    """A ``SELECT 1`` on a connection of its own (this thread's), closed afterwards."""
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    if row is None or row[0] != 1:
        raise CheckFailed("SELECT 1 did not return 1")
    return {"engine": connection.vendor}


def check_broker() -> dict:
    """Connect to the Celery broker; for kombu's filesystem transport (the embedded default)
    check that its folders exist and take a file."""
    url = settings.CELERY_BROKER_URL
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    timeout = _timeout_s()
    if url.split(":", 1)[0].lower() == "filesystem":
        folders = {
            "queue": options.get("data_folder_in"),
            "outgoing queue": options.get("data_folder_out"),
            "control": options.get("control_folder"),
        }
        if options.get("store_processed"):
            folders["processed"] = options.get("processed_folder")
        for role, folder in folders.items():
            _check_writable_folder(role, folder)
        return {"transport": "filesystem"}

    from kombu import Connection

    with Connection(
        url,
        connect_timeout=timeout,
        transport_options=options,
        ssl=getattr(settings, "CELERY_BROKER_USE_SSL", None) or False,
    ) as connection:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, interval_max=0, timeout=timeout
        )
        return {"transport": connection.transport.driver_type}


def _check_writable_folder(role: str, folder: str | None) -> None:
    if not folder:
        raise CheckFailed(f"the broker's {role} folder is not configured")
    path = Path(folder)
    if not path.is_dir():
        raise CheckFailed(f"the broker's {role} folder does not exist")
    try:
        # A real write: os.access says yes to root even on a read-only file system.
        with tempfile.NamedTemporaryFile(dir=path, prefix=".health-"):
            pass
    except OSError as exc:
        raise CheckFailed(f"the broker's {role} folder is not writable ({exc.strerror})") from None


def check_storage() -> dict:
    """Write, read back and delete a small probe file through the default storage."""
    payload = uuid.uuid4().hex.encode()
    saved = default_storage.save(
        f"{PROBE_FOLDER}/probe-{payload.decode()}.txt", ContentFile(payload)
    )
    try:
        with default_storage.open(saved, "rb") as handle:
            if handle.read() != payload:
                raise CheckFailed("the probe file read back differs from what was written")
    finally:
        default_storage.delete(saved)
    return {}


CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "broker": check_broker,
    "storage": check_storage,
}


@never_cache
@require_safe
def view(request: HttpRequest) -> JsonResponse:
    """The state of the database, the broker and the storage; 503 when one is not ok."""
    checks = run_checks()
    healthy = all(result["status"] == "ok" for result in checks.values())
    body = {"status": "ok" if healthy else "degraded", "checks": checks}
    return JsonResponse(body, status=200 if healthy else 503)


def run_checks() -> dict[str, dict]:
    """Run every check in its own daemon thread and wait at most the timeout for all."""
    timeout = _timeout_s()
    results: dict[str, dict] = {}
    threads = {}
    for name, check in CHECKS.items():
        thread = threading.Thread(
            target=_run_one, args=(name, check, results), name=f"health-{name}", daemon=True
        )
        thread.start()
        threads[name] = thread
    deadline = time.monotonic() + timeout
    outcome = {}
    for name, thread in threads.items():
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive() or name not in results:
            # The thread keeps running until its call returns; a daemon never blocks exit.
            log.warning("health check %s: no answer within %g s", name, timeout)
            outcome[name] = {"status": "error", "error": f"no answer within {timeout:g} s"}
        else:
            outcome[name] = results[name]
    return outcome


def _run_one(name: str, check: Callable[[], dict], results: dict[str, dict]) -> None:
    started = time.perf_counter()
    try:
        result = {"status": "ok", **check()}
    except Exception as exc:
        log.warning("health check %s failed", name, exc_info=True)
        result = {"status": "error", "error": brief_error(exc)}
    finally:
        # Connections are per thread: this one's would otherwise stay open.
        connections.close_all()
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    results[name] = result


def brief_error(exc: BaseException) -> str:
    """One short line: the exception's type and message, no traceback, no file path of an
    OSError, no password of a URL."""
    if isinstance(exc, CheckFailed):
        text = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        text = f"{type(exc).__name__}: {exc.strerror}"
    else:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    text = _PASSWORD_IN_URL.sub(r"\g<scheme>***@", text)
    return text if len(text) <= 200 else text[:199] + "…"


def _timeout_s() -> float:
    return float(getattr(settings, "GALLERY_HEALTH_TIMEOUT_S", DEFAULT_TIMEOUT_S))
