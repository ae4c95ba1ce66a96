"""Records of the work: ingest jobs (an upload waiting for or done by a worker)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class IngestJob(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    staged_files = models.JSONField(default=list, help_text="[{path, role, original_name}]")
    options = models.JSONField(default=dict, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    products = models.ManyToManyField("products.Product", blank=True, related_name="ingest_jobs")
    message = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"ingest job {self.uuid} ({self.state})"


class RevolutionRunQuerySet(models.QuerySet):
    def active(self) -> RevolutionRunQuerySet:
        """Runs that hold their revolution's lock (queued or running)."""
        return self.filter(status__in=RevolutionRun.ACTIVE)


class RevolutionRun(models.Model):
    """One processing of one revolution by the pipeline (``ingest.pipeline``).

    The row is the pipeline's lock and its record at once. At most one run per revolution is
    active (queued or running) — a partial unique constraint, so two workers can never both
    process a revolution — and the worker that owns it refreshes ``heartbeat`` while it works.
    A run whose heartbeat has gone stale (its worker was killed, or its queued tasks were lost)
    is taken over by the next worker, which resumes from the steps already done: every step is
    recorded in ``steps`` and skipped when done. Nothing here is ever deleted by the pipeline:
    reprocessing a revolution makes a new run and new product versions.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    revolution = models.ForeignKey(
        "products.Revolution", on_delete=models.CASCADE, related_name="pipeline_runs"
    )
    backend = models.CharField(max_length=20, help_text="local or mmoda")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    data_level = models.CharField(max_length=4, blank=True, help_text="NRT or CONS")
    parameters = models.JSONField(
        default=dict, blank=True, help_text="Bands, threshold, OSA-like label, archive, triggers."
    )
    steps = models.JSONField(
        default=dict,
        blank=True,
        help_text="State of each step: plan, one entry per observation and instrument, publish.",
    )
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds spent per step.")
    versions = models.JSONField(default=dict, blank=True, help_text="Versions of the code used.")
    log = models.TextField(blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="[{step, unit, scw, message}]")
    owner = models.CharField(max_length=200, blank=True, help_text="Worker holding the lock.")
    heartbeat = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Times a worker took the run.")
    products = models.ManyToManyField(
        "products.Product", blank=True, related_name="pipeline_runs"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    objects = RevolutionRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["revolution"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_run_per_revolution",
            )
        ]

    def __str__(self) -> str:
        return f"revolution {self.revolution_id} run {self.pk} ({self.status})"

    @property
    def duration_s(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return (self.finished - self.started).total_seconds()

    @property
    def step_rows(self) -> list[dict]:
        """The steps in order, for display: name, state, seconds, detail."""
        rows = []
        for name, state in (self.steps or {}).items():
            if not isinstance(state, dict):
                continue
            rows.append(
                {
                    "name": name,
                    "state": state.get("state", ""),
                    "seconds": (self.timings or {}).get(name),
                    "detail": state.get("detail", ""),
                }
            )
        return rows

    @property
    def log_tail(self) -> str:
        """The last lines of the log, as the revolution page shows them."""
        return "\n".join(self.log.splitlines()[-15:])
