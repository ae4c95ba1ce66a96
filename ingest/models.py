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
