"""Admin for the records of the work: ingest jobs and pipeline runs (read-mostly)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html

from .models import IngestJob, RevolutionRun


@admin.register(IngestJob)
class IngestJobAdmin(admin.ModelAdmin):
    list_display = ("uuid", "state", "submitted_by", "attempts", "created", "updated")
    list_filter = ("state",)
    search_fields = ("uuid", "message")
    readonly_fields = (
        "uuid",
        "state",
        "staged_files",
        "options",
        "submitted_by",
        "products",
        "message",
        "attempts",
        "created",
        "updated",
    )
    date_hierarchy = "created"


@admin.register(RevolutionRun)
class RevolutionRunAdmin(admin.ModelAdmin):
    list_display = (
        "pk",
        "revolution",
        "status",
        "backend",
        "data_level",
        "started",
        "duration",
        "n_products",
        "n_errors",
        "owner",
        "heartbeat",
    )
    list_filter = ("status", "backend", "data_level")
    search_fields = ("=revolution__number", "owner", "log")
    date_hierarchy = "created"
    readonly_fields = (
        "revolution",
        "backend",
        "status",
        "data_level",
        "pretty_parameters",
        "pretty_steps",
        "pretty_timings",
        "pretty_versions",
        "pretty_errors",
        "log",
        "owner",
        "heartbeat",
        "attempts",
        "created",
        "started",
        "finished",
    )
    exclude = ("parameters", "steps", "timings", "versions", "errors", "products")
    actions = ("mark_failed",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_n_products=Count("products"))

    def has_add_permission(self, request) -> bool:
        return False  # runs are made by the pipeline (process_revolutions, Celery beat)

    @admin.display(description="products", ordering="_n_products")
    def n_products(self, run: RevolutionRun) -> int:
        return run._n_products

    @admin.display(description="errors")
    def n_errors(self, run: RevolutionRun) -> int:
        return len(run.errors or [])

    @admin.display(description="duration (s)")
    def duration(self, run: RevolutionRun) -> str:
        return "—" if run.duration_s is None else f"{run.duration_s:.1f}"

    def _json(self, value) -> str:
        return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))

    @admin.display(description="parameters")
    def pretty_parameters(self, run: RevolutionRun) -> str:
        return self._json(run.parameters)

    @admin.display(description="steps")
    def pretty_steps(self, run: RevolutionRun) -> str:
        # The stored plan lists every ScW: show its summary only.
        steps = {
            name: {k: v for k, v in state.items() if k != "plan"}
            if isinstance(state, dict)
            else state
            for name, state in (run.steps or {}).items()
        }
        return self._json(steps)

    @admin.display(description="timings (s)")
    def pretty_timings(self, run: RevolutionRun) -> str:
        return self._json(run.timings)

    @admin.display(description="versions")
    def pretty_versions(self, run: RevolutionRun) -> str:
        return self._json(run.versions)

    @admin.display(description="errors")
    def pretty_errors(self, run: RevolutionRun) -> str:
        return self._json(run.errors)

    @admin.action(description="Mark the selected active runs as failed (releases the lock)")
    def mark_failed(self, request, queryset):
        from .pipeline.service import fail

        active = list(queryset.filter(status__in=RevolutionRun.ACTIVE))
        for run in active:
            fail(run.pk, f"marked failed by {request.user} in the admin")
        self.message_user(request, f"{len(active)} run(s) marked failed.", messages.SUCCESS)
