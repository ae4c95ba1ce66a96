"""Structured logs that carry the request id (web) or the task id (Celery workers).

Every request gets an id (the caller's ``X-Request-ID`` when it is a sane token, else a new
one), echoed in the response header, so a user's report can be found in the logs; every
task's log lines carry its task id.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
current_task_id: contextvars.ContextVar[str] = contextvars.ContextVar("task_id", default="-")

_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class ContextFilter(logging.Filter):
    """Adds request_id and task_id to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        record.task_id = current_task_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: easy to ship to any log store."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
            "task_id": getattr(record, "task_id", "-"),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _SANE_ID.match(incoming) else uuid.uuid4().hex
        token = current_request_id.set(rid)
        request.request_id = rid
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = rid
        return response


def connect_celery_signals() -> None:
    """Bind the running task's id to the log context of the worker."""
    from celery.signals import task_postrun, task_prerun

    tokens: dict[str, contextvars.Token] = {}

    @task_prerun.connect(weak=False)
    def _bind(task_id=None, **kwargs):  # noqa: ANN001 - Celery's signature
        tokens[task_id] = current_task_id.set(task_id or "-")

    @task_postrun.connect(weak=False)
    def _unbind(task_id=None, **kwargs):  # noqa: ANN001
        token = tokens.pop(task_id, None)
        if token is not None:
            current_task_id.reset(token)
