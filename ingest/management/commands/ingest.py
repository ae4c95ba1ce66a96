"""``manage.py ingest FILE...``: turn OSA/MMODA product files into Gallery products."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from ingest.readers.base import IngestError, InputFile
from ingest.service import IngestOptions, ingest_files


def parse_embargo(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--embargo {value!r} is not a date (YYYY-MM-DD[THH:MM:SS])")
        parsed = datetime(day.year, day.month, day.day)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Ingest OSA/MMODA product files (sky images, spectra with their RMF/ARF, light curves, "
        "source catalogues). Each file's kind is read from its headers. A spectrum's RMF and "
        "ARF are paired by its RESPFILE/ANCRFILE keywords or by following it on the command "
        "line. Prints one line per product; exits 1 if any file was rejected."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--source", help="source the spectra/light curves are of")
        parser.add_argument("--observation", help="observation id (obsid) or title to link to")
        parser.add_argument("--access", choices=["public", "proprietary"], default="public")
        parser.add_argument("--embargo", help="end of the proprietary period (UTC date)")
        parser.add_argument(
            "--group",
            action="append",
            default=[],
            help="group granted access to proprietary products (repeatable)",
        )
        parser.add_argument("--title", help="title of the product (one product only)")
        parser.add_argument("--tag", action="append", default=[], help="tag (repeatable)")
        parser.add_argument("--data-level", choices=["NRT", "CONS"], default="")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        options = IngestOptions(
            source_name=opts["source"],
            observation=opts["observation"],
            title=opts["title"],
            access=opts["access"],
            granted_groups=opts["group"],
            tags=opts["tag"],
            data_level=opts["data_level"],
            embargo_until=parse_embargo(opts["embargo"]) if opts["embargo"] else None,
            produced_by="manage.py ingest",
        )
        if options.embargo_until and options.access != "proprietary":
            raise CommandError("--embargo applies to --access proprietary only")
        files = [InputFile(Path(f), "data", Path(f).name) for f in opts["files"]]
        show = not opts["no_progress"] and sys.stderr.isatty()
        bar = tqdm(
            total=len(files), unit="product", disable=not show, file=sys.stderr, desc="ingest"
        )
        try:
            report = ingest_files(files, options, progress=lambda group: bar.update(len(group)))
        except IngestError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        base = settings.GALLERY_BASE_URL.rstrip("/")
        for outcome in report.outcomes:
            p = outcome.product
            band = f"{p.e_min_kev:g}-{p.e_max_kev:g} keV" if p.e_min_kev is not None else "-"
            names = ", ".join(sorted(s.name for s in p.sources.all()[:6]))
            more = p.sources.count() - 6
            if more > 0:
                names += f" (+{more})"
            state = "new" if outcome.created else "already present"
            self.stdout.write(
                f"{p.uuid}  {state:15}  {p.kind.code:10} {p.instrument.code:7} {band:16} "
                f"[{names}]  {base}{p.get_absolute_url()}"
            )
        for name, reason in report.rejected:
            self.stderr.write(f"rejected {name}: {reason}")
        if report.rejected:
            sys.exit(1)
