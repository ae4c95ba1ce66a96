"""``manage.py import_catalog FILE``: create or update sources from a catalogue file."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from sources.catalog import FORMATS, CatalogImportError, import_catalog, load_class_map

#: Files with more rows than this report their progress (on stderr, ten steps).
PROGRESS_ROWS = 1000
#: Likely duplicates listed after the summary (all of them: ``find_duplicates``).
SHOWN_DUPLICATES = 20


class Command(BaseCommand):
    help = (
        "Import a source catalogue (CSV, FITS, VOTable or MMODA JSON; the format is guessed from "
        "the content) in one transaction: a bad row aborts the whole import."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", metavar="FILE")
        parser.add_argument(
            "--format",
            dest="fmt",
            choices=FORMATS,
            default=None,
            help="the file's format (default: guessed from its content)",
        )
        parser.add_argument(
            "--class-map",
            metavar="FILE.json",
            default=None,
            help="JSON object mapping catalogue classes (e.g. ISDC codes) to Gallery classes, "
            'e.g. {"1500": "LMXB"}',
        )
        parser.add_argument(
            "--update-positions",
            action="store_true",
            help="move existing sources to the file's positions and error radii",
        )

    def handle(self, *args, path, fmt, class_map, update_positions, **options):
        verbosity = options.get("verbosity", 1)
        try:
            mapping = load_class_map(class_map) if class_map else None
            report = import_catalog(
                path,
                fmt=fmt,
                class_map=mapping,
                update_positions=update_positions,
                progress=self._progress if verbosity >= 1 else None,
            )
        except CatalogImportError as exc:
            raise CommandError(f"nothing imported: {exc}") from exc
        if verbosity >= 2:
            for warning in report.warnings:
                self.stderr.write(f"warning: {warning}")
        elif report.warnings:
            self.stderr.write(
                f"{len(report.warnings)} position warnings (run with -v 2 to see them)"
            )
        self.stdout.write(report.summary())
        for candidate in report.duplicates[:SHOWN_DUPLICATES]:
            self.stdout.write(
                f"  likely duplicate: {candidate.merge.name} -> {candidate.keep.name} "
                f"({candidate.separation_arcmin:.2f} arcmin apart, error circles "
                f"{candidate.limit_arcmin:.2f} arcmin); merge them in the admin"
            )
        if len(report.duplicates) > SHOWN_DUPLICATES:
            self.stdout.write("  more: python manage.py find_duplicates")

    def _progress(self, done: int, total: int) -> None:
        step = max(1, total // 10)
        if total > PROGRESS_ROWS and (done % step == 0 or done == total):
            self.stderr.write(f"  {done}/{total} rows stored")
