"""``manage.py restore DIR``: a backup made by ``manage.py backup`` back into the Gallery."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from products.backup import BackupError, restore_backup
from products.integrity import ConsoleProgress


class Command(BaseCommand):
    # The URL and model checks import every view (and astropy): seconds of start-up that a
    # backup, a restore or a storage check does not need.
    requires_system_checks: list[str] = []
    help = (
        "Restore the backup in DIR (made by manage.py backup) into the configured database and "
        "storage. Every checksum of the backup is verified before anything is touched. The "
        "database must be empty (or only migrated) and the storage must hold no file under "
        "products/; --force instead DELETES every table of the database and every file under "
        "products/ first. Stop the web and worker processes before restoring. Ends with the "
        "checks of verify_storage: exits 0 when the restored Gallery is whole, 1 otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", metavar="DIR", help="folder of the backup")
        parser.add_argument(
            "--force",
            action="store_true",
            help="wipe the existing database and stored files before restoring (irreversible)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **opts):
        progress = ConsoleProgress(enabled=not opts["no_progress"])
        try:
            result = restore_backup(opts["directory"], force=opts["force"], progress=progress)
        except BackupError as exc:
            for line in exc.details[1:]:
                self.stderr.write(line)
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"restore failed: {exc}") from None
        finally:
            progress.close()
        self.stdout.write(result.summary())
        for problem in result.storage.problems:
            self.stdout.write(problem.line())
        self.stdout.write(result.storage.summary())
        for note in result.notes:
            self.stdout.write(f"note: {note}")
        if not result.storage.ok:
            sys.exit(1)
