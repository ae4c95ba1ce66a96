"""``manage.py verify_storage``: is every stored file there, intact, and accounted for?"""

from __future__ import annotations

import sys

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand

from products.integrity import ConsoleProgress, StorageReport, check_storage, format_bytes


class Command(BaseCommand):
    # The URL and model checks import every view (and astropy): seconds of start-up that a
    # backup, a restore or a storage check does not need.
    requires_system_checks: list[str] = []
    help = (
        "Check every stored product file against the SHA-256 recorded in the database, and "
        "look for orphaned files (under products/ in the storage, with no file record). Prints "
        "one line per problem (missing, corrupt, orphan) and a summary; exits 0 when the "
        "storage is whole, 1 otherwise. Nothing is changed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--fix-orphans-dry-run",
            action="store_true",
            help="also say what removing the orphaned files would delete and free (nothing "
            "is deleted: a file stored by an ingest still in progress looks orphaned too)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **opts):
        progress = ConsoleProgress(enabled=not opts["no_progress"])
        try:
            report = check_storage(progress)
        finally:
            progress.close()
        for problem in report.problems:
            self.stdout.write(problem.line())
        if opts["fix_orphans_dry_run"]:
            self.write_dry_run(report)
        self.stdout.write(report.summary())
        if not report.ok:
            sys.exit(1)

    def write_dry_run(self, report: StorageReport) -> None:
        freed = 0
        for orphan in report.orphans:
            freed += orphan.size_bytes or 0
            self.stdout.write(f"would delete {orphan.name}{_modified(orphan.name)}")
        self.stdout.write(
            f"dry run: removing {len(report.orphans)} orphaned files would free "
            f"{format_bytes(freed)}; nothing was deleted"
        )


def _modified(name: str) -> str:
    """`` (modified 2025-01-31 12:00 UTC)``: a recent orphan may be an ingest in progress."""
    try:
        when = default_storage.get_modified_time(name)
    except (NotImplementedError, OSError):
        return ""
    return f" (modified {when:%Y-%m-%d %H:%M} UTC)"
