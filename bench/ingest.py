"""Ingest throughput (products/s, previews and fits included) on SQLite and PostgreSQL, and
the time to draw each kind of preview. Run by hand:

    python bench/ingest.py [--copies 8] [--workers 1 2] [--backends sqlite postgres]

The input is the real fixture products of ../shared/fixtures (or, without them, OSA-like files
written by ingest.synthetic), each copied ``--copies`` times with one header card changed so
that every copy is a new product. Every run starts from an empty database. Results go to
bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"
sys.path.insert(0, str(ROOT))

# (data file, response files...) relative to the fixtures folder
GROUPS = [
    ["isgri/mosaic_crab_20-40keV.fits"],
    ["jemx/mosaic_jmx1_crab.fits.gz"],
    ["isgri/significance_1E_1740.7-2942_25-40keV.fits.gz"],
    [
        "isgri/spectrum_1A_0535+262_osa11.fits.gz",
        "isgri/spectrum_1A_0535+262_osa11_rmf.fits.gz",
        "isgri/spectrum_1A_0535+262_osa11_arf.fits.gz",
    ],
    [
        "isgri/spectrum_3C_279_osa10.fits",
        "isgri/spectrum_3C_279_osa10_rmf.fits.gz",
        "isgri/spectrum_3C_279_osa10_arf.fits.gz",
    ],
    [
        "jemx/spectrum_crab_jmx1.fits.gz",
        "jemx/spectrum_crab_jmx1_rmf.fits.gz",
        "jemx/spectrum_crab_jmx1_arf.fits.gz",
    ],
    ["isgri/lc_OAO_1657-415.fits"],
    ["jemx/lc_GRB221009A_jmx1.fits"],
    ["jemx/lc_jmx1_96_bins.fits.gz"],
    ["isgri/catalog_crab_field.fits"],
    ["jemx/sloc_res_jmx1_crab.fits.gz"],
]


def make_copies(out: Path, copies: int) -> list[list[Path]]:
    """Copies of each group whose data file differs by one header card (responses shared)."""
    from astropy.io import fits

    groups = []
    for copy in range(copies):
        for group in GROUPS:
            data = FIXTURES / group[0]
            target = out / f"{copy:03d}_{Path(group[0]).name.replace('.gz', '')}"
            with fits.open(data) as hdul:
                hdul[0].header["BENCHID"] = (copy, "benchmark copy number")
                hdul.writeto(target)
            groups.append([target] + [FIXTURES / g for g in group[1:]])
    return groups


def _setup_django(env: dict) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")
    import django

    django.setup()


def _worker(args) -> int:
    env, groups = args
    _setup_django(env)
    from django.db import connection

    from ingest.readers.base import InputFile
    from ingest.service import IngestOptions, ingest_files

    made = 0
    for group in groups:
        report = ingest_files(
            [InputFile(Path(p), "data", Path(p).name) for p in group], IngestOptions()
        )
        if report.rejected:
            raise RuntimeError(f"rejected: {report.rejected}")
        made += sum(1 for o in report.outcomes if o.created)
    connection.close()
    return made


def run_backend(name: str, env: dict, groups: list[list[Path]], workers: int) -> dict:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
    )
    subprocess.run(
        [sys.executable, "manage.py", "load_reference_catalog"],
        cwd=ROOT,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    chunks = [groups[i::workers] for i in range(workers)]
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        # warm up each process (imports, fonts) on nothing, outside the timing
        pool.map(_warm, [env] * workers)
        start = time.perf_counter()
        made = sum(pool.map(_worker, [(env, chunk) for chunk in chunks]))
        elapsed = time.perf_counter() - start
    return {
        "backend": name,
        "workers": workers,
        "products": made,
        "seconds": round(elapsed, 3),
        "products_per_s": round(made / elapsed, 2),
    }


def _warm(env) -> None:
    _setup_django(env)
    import ingest.service  # noqa: F401  (imports matplotlib, astropy, scipy)
    from ingest import previews  # noqa: F401


def preview_times(groups: list[list[Path]], repeats: int = 5) -> dict:
    """Median/p95 ms to draw each kind of preview (reading and fitting excluded)."""
    _setup_django({})
    from ingest import fitting, previews
    from ingest.readers import classify_file, read_product

    times: dict[str, list[float]] = {}
    seen = set()
    for group in groups:
        key = Path(group[0]).name.split("_", 1)[1]
        if key in seen:
            continue
        seen.add(key)
        infos = [classify_file(Path(p), Path(p).name) for p in group]
        parsed = read_product(infos)
        fits = fitting.fit_spectrum(parsed.spectrum, None) if parsed.kind == "spectrum" else []
        for attempt in range(repeats + 1):
            start = time.perf_counter()
            if parsed.kind == "image":
                previews.render_image_preview(parsed.image, parsed.detected[:10], "bench")
            elif parsed.kind == "spectrum":
                previews.render_spectrum_preview(parsed.spectrum, fits, "bench")
            elif parsed.kind == "lightcurve":
                previews.render_lightcurve_preview(parsed.lightcurve, "bench")
            else:
                break
            if attempt:  # the first draw pays for font caches
                times.setdefault(parsed.kind, []).append((time.perf_counter() - start) * 1000)
    return {
        kind: {
            "median_ms": round(statistics.median(v), 1),
            "p95_ms": round(sorted(v)[int(0.95 * (len(v) - 1))], 1),
            "samples": len(v),
        }
        for kind, v in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument(
        "--postgres-url", default="postgres://postgres@127.0.0.1:5432/gallery_bench"
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ingest.json"))
    args = parser.parse_args()
    if not FIXTURES.is_dir():
        sys.exit("bench/ingest.py needs ../shared/fixtures beside the project")
    work = Path(tempfile.mkdtemp(prefix="gallery-bench-"))
    results = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "copies": args.copies,
        "groups_per_copy": len(GROUPS),
        "runs": [],
    }
    try:
        groups = make_copies(work, args.copies)
        results["preview_ms"] = preview_times(groups)
        print("previews:", json.dumps(results["preview_ms"]))
        for backend in args.backends:
            for workers in args.workers:
                run_dir = work / f"{backend}-{workers}"
                env = {"GALLERY_DATA_DIR": str(run_dir), "CELERY_BROKER_URL": "memory://"}
                if backend == "postgres":
                    subprocess.run(
                        [
                            "dropdb",
                            "-h",
                            "127.0.0.1",
                            "-U",
                            "postgres",
                            "--if-exists",
                            "gallery_bench",
                        ],
                        check=True,
                    )
                    subprocess.run(
                        ["createdb", "-h", "127.0.0.1", "-U", "postgres", "gallery_bench"],
                        check=True,
                    )
                    env["DATABASE_URL"] = args.postgres_url
                else:
                    env["DATABASE_URL"] = f"sqlite:///{run_dir}/bench.sqlite3"
                run_dir.mkdir(parents=True, exist_ok=True)
                result = run_backend(backend, env, groups, workers)
                print(json.dumps(result))
                results["runs"].append(result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
