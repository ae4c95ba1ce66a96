"""``manage.py backup DIR``: the database and every stored file, with checksums."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from products.backup import BackupError, create_backup
from products.integrity import ConsoleProgress


class Command(BaseCommand):
    # The URL and model checks import every view (and astropy): seconds of start-up that a
    # backup, a restore or a storage check does not need.
    requires_system_checks: list[str] = []
    help = (
        "Back up the database (pg_dump --format=custom on PostgreSQL, SQLite's online backup "
        "on SQLite) and every stored file under products/ (orphans included) into the new or "
        "empty folder DIR, with manifest.json giving the SHA-256 of each. The backup is "
        "written into DIR.partial-<random> and renamed to DIR when complete. Exits 1 when a "
        "recorded file is missing or corrupt in the storage (the backup is written without it "
        "and its manifest lists it)."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", metavar="DIR", help="folder to create (or an empty one)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **opts):
        progress = ConsoleProgress(enabled=not opts["no_progress"])
        try:
            result = create_backup(opts["directory"], progress)
        except BackupError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"backup failed, nothing written: {exc}") from None
        finally:
            progress.close()
        for line in result.problems:
            self.stderr.write(f"not backed up: {line}")
        self.stdout.write(result.summary())
        if result.problems:
            sys.exit(1)
