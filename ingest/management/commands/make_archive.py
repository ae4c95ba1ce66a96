"""``manage.py make_archive OUTDIR --revolutions 100-101``: a synthetic ScW archive."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ingest.pipeline.config import DEFAULT_INSTRUMENTS, INSTRUMENTS
from ingest.pipeline.generator import BAND_SETS, make_archive


def parse_revolutions(text: str) -> list[int]:
    """'100-103,110' -> [100, 101, 102, 103, 110] (each revolution once, in order)."""
    numbers: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            raise CommandError(f"{part!r} is not a revolution or a range such as 100-500") from None
        if lo < 1 or hi < lo or hi - lo > 5000:
            raise CommandError(f"{part!r} is not a valid range of revolutions")
        numbers.update(range(lo, hi + 1))
    if not numbers:
        raise CommandError("no revolution given")
    return sorted(numbers)


class Command(BaseCommand):
    help = (
        "Write a synthetic archive of ISGRI and JEM-X ScW sky images for chosen revolutions "
        "(ISDC layout: scw/RRRR/RRRRPPPPSSSF.VVV/isgri_sky_ima.fits), with observation "
        "indexes, GRB triggers with SPI-ACS rates, and the truth in truth.json."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "outdir", help="archive folder (created; existing revolutions rewritten)"
        )
        parser.add_argument("--revolutions", required=True, help="e.g. 100-101 or 100,105-107")
        parser.add_argument("--scws-per-revolution", type=int, default=20)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--instruments",
            default=",".join(DEFAULT_INSTRUMENTS),
            help=f"comma-separated, among {', '.join(INSTRUMENTS)}",
        )
        parser.add_argument(
            "--bands",
            choices=sorted(BAND_SETS),
            default="spectral",
            help="spectral: ~10 bands per instrument (spectra possible); image: 3 broad bands",
        )
        parser.add_argument("--data-level", choices=["CONS", "NRT"], default="CONS")
        parser.add_argument("--gzip", action="store_true", help="write .fits.gz files")
        parser.add_argument("--no-grbs", action="store_true", help="no GRB triggers")

    def handle(self, *args, **options):
        revolutions = parse_revolutions(options["revolutions"])
        instruments = [c.strip() for c in options["instruments"].split(",") if c.strip()]
        unknown = [c for c in instruments if c not in INSTRUMENTS]
        if unknown:
            raise CommandError(f"unknown instrument(s): {', '.join(unknown)}")
        if options["scws_per_revolution"] < 1:
            raise CommandError("--scws-per-revolution must be at least 1")
        total = len(revolutions) * options["scws_per_revolution"]
        with tqdm(total=total, unit="ScW", disable=options["verbosity"] < 1) as bar:
            try:
                summary = make_archive(
                    Path(options["outdir"]),
                    revolutions,
                    scws_per_revolution=options["scws_per_revolution"],
                    seed=options["seed"],
                    instruments=instruments,
                    bands=options["bands"],
                    data_level=options["data_level"],
                    compress=options["gzip"],
                    grbs=not options["no_grbs"],
                    progress=lambda _: bar.update(1),
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{summary.n_scw} ScWs ({summary.n_files} images) for revolution(s) "
            f"{revolutions[0]}–{revolutions[-1]} in {summary.root}; truth in "
            f"{summary.root / 'truth.json'}"
        )
