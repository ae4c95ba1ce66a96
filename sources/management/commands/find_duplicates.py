"""``manage.py find_duplicates``: list pairs of sources that are probably one object."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from sources.stats import duplicate_candidates


class Command(BaseCommand):
    help = (
        "List likely duplicate sources: active sources whose error circles overlap (a "
        "provisional detection next to a catalogued source, or two catalogue entries). "
        "Nothing is changed: merge them in the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-radius",
            type=float,
            default=30.0,
            metavar="ARCMIN",
            help="cap on the error radius used (default 30 arcmin)",
        )

    def handle(self, *args, max_radius, **options):
        candidates = duplicate_candidates(max_radius_arcmin=max_radius)
        for c in candidates:
            self.stdout.write(
                f"{c.merge.name} ({c.merge.slug}) -> {c.keep.name} ({c.keep.slug}): "
                f"{c.separation_arcmin:.3f} arcmin apart, error circles {c.limit_arcmin:.3f}; "
                f"{c.reason}"
            )
        self.stdout.write(f"{len(candidates)} likely duplicates")
