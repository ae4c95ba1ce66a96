"""``manage.py load_reference_catalog``: load the Gallery's shipped list of INTEGRAL sources."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from sources.catalog import CatalogImportError, load_reference_catalog


class Command(BaseCommand):
    help = (
        "Load sources/data/reference_catalog.csv: well-known INTEGRAL sources, their classes "
        "and alternative names. Safe to run again: existing sources are matched, not doubled."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--update-positions",
            action="store_true",
            help="move existing sources to the reference positions and error radii",
        )

    def handle(self, *args, update_positions, **options):
        try:
            report = load_reference_catalog(update_positions=update_positions)
        except CatalogImportError as exc:
            raise CommandError(f"nothing imported: {exc}") from exc
        if options.get("verbosity", 1) >= 2:
            for warning in report.warnings:
                self.stderr.write(f"warning: {warning}")
        self.stdout.write(report.summary())
