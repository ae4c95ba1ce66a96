"""``manage.py make_demo_data``: OSA-like products written by the project's own code, ingested.

The demo of the embedded default never reads ../shared: every file is generated here
(ingest.synthetic), so a fresh clone shows a working Gallery. Running it again adds nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ingest.readers.base import InputFile
from ingest.service import IngestOptions, ingest_files
from ingest.synthetic import write_demo_set
from products.models import Product


class Command(BaseCommand):
    help = "Generate a small set of OSA-like demo products and ingest them (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--out", default=None, help="folder for the generated files (default: <data dir>/demo)"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--no-pipeline",
            action="store_true",
            help="skip the demo revolution processed by the pipeline from a synthetic ScW archive",
        )

    def handle(self, *args, out, seed, no_pipeline, **opts):
        folder = Path(out) if out else settings.DATA_DIR / "demo"
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"writing demo files into {folder}")
        groups = write_demo_set(folder, seed=seed)
        created = present = 0
        rejected = []
        options = IngestOptions(produced_by="manage.py make_demo_data", tags=["demo"])
        for group in tqdm(
            groups, unit="product", desc="ingest", file=sys.stderr, disable=not sys.stderr.isatty()
        ):
            report = ingest_files(
                [InputFile(Path(p), "data", Path(p).name) for p in group], options
            )
            created += sum(o.created for o in report.outcomes)
            present += sum(not o.created for o in report.outcomes)
            rejected += report.rejected
        # Feature the first image of each instrument so the home page has highlights.
        for code in ("isgri", "jemx1"):
            first = (
                Product.objects.filter(kind__code="image", instrument__code=code, tags__name="demo")
                .order_by("pk")
                .first()
            )
            if first is not None and not first.is_highlight:
                first.is_highlight = True
                first.save(update_fields=["is_highlight"])
        self.stdout.write(f"demo data: {created} products created, {present} already present")
        if not no_pipeline:
            self._pipeline_revolution(folder / "archive", seed)
        if rejected:
            for name, reason in rejected:
                self.stderr.write(f"rejected {name}: {reason}")
            raise CommandError(f"{len(rejected)} demo files were rejected")

    def _pipeline_revolution(self, archive: Path, seed: int) -> None:
        """One revolution as the data centre makes them: ScW images → mosaics, detections,
        spectra and light curves, with its processing record on the revolution page."""
        from django.core.management import call_command

        from ingest.models import RevolutionRun

        if RevolutionRun.objects.filter(
            revolution=DEMO_REVOLUTION, status=RevolutionRun.Status.DONE
        ).exists():
            self.stdout.write(f"demo revolution {DEMO_REVOLUTION}: already processed")
            return
        call_command(
            "make_archive",
            str(archive),
            revolutions=str(DEMO_REVOLUTION),
            scws_per_revolution=12,
            seed=seed,
            stdout=self.stdout,
        )
        call_command(
            "process_revolutions", str(DEMO_REVOLUTION), archive=str(archive), stdout=self.stdout
        )


#: The revolution the demo processes with the pipeline (in 2015, after the demo's others).
DEMO_REVOLUTION = 1600
