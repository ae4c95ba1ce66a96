"""``manage.py refresh_lightcurves``: rebuild the light-curve bins, the transient monitor and
the per-source statistics."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from products import transients


class Command(BaseCommand):
    help = (
        "Bring the light-curve bins, the summaries of the transient monitor and the "
        "per-source statistics up to date from the flux points: all of them (the periodic "
        "task's work; needed once after flux points were loaded by other means than the "
        "ingest), or those touched by some revolutions (what an ingest triggers)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--revolution",
            type=int,
            action="append",
            metavar="N",
            help="refresh incrementally after revolution N (repeatable); default: everything",
        )
        parser.add_argument(
            "--no-statistics",
            action="store_true",
            help="leave the per-source statistics as they are",
        )

    def handle(self, *args, revolution, no_statistics, **options):
        if revolution and any(r < 1 for r in revolution):
            raise CommandError("revolutions are numbered from 1")
        reports = (
            [transients.refresh_revolution(r, statistics=not no_statistics) for r in revolution]
            if revolution
            else [transients.refresh_all(statistics=not no_statistics)]
        )
        for report in reports:
            self.stdout.write(report.summary())
