"""Pipeline time per revolution with 1 and 2 Celery worker processes, and peak memory per
worker. Run by hand from the project root (PostgreSQL and Redis must answer):

    python bench/pipeline.py [--scws 100] [--bands image] [--revolutions-per-config 2]
        [--database-url postgres://postgres@127.0.0.1:5432/gallery_pipeline_bench]
        [--broker-url redis://127.0.0.1:6379/5]

A synthetic archive (``make_archive``) of revolutions of ``--scws`` ScWs with ISGRI and JEM-X
images is written to a temporary folder; each revolution observes two fields (two units per
instrument). For each worker count a fresh ``celery -A gallery worker --concurrency N`` is
started and ``manage.py process_revolutions --workers 1`` sends it the revolutions one after
the other, so that each run's duration (from the run record) is the time one revolution takes
on N processes. The peak resident memory (VmHWM) of every worker process is read from /proc
before the worker stops. The floor, measured in the same run, is the time to read every ScW
image of one revolution and sum its arrays in one process (the I/O and decoding any pipeline
must pay). Results go to bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(args: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, **kwargs
    )


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def peak_memory_mb(pid: int) -> dict[int, float]:
    """VmHWM (peak resident set) of a process and its children, in MB."""
    found = {}
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    found[p] = int(line.split()[1]) / 1024.0
        except OSError:
            continue
    return found


def read_floor(archive: Path, revolution: int) -> dict:
    """Read and sum every ScW image array of a revolution, as simply as it can be done."""
    import numpy as np

    from ingest.pipeline import fastfits

    started = time.perf_counter()
    total, n_files, n_bytes = 0.0, 0, 0
    for path in sorted((archive / "scw" / f"{revolution:04d}").glob("*/*.fits*")):
        with fastfits.opened(path) as buffer:
            n_bytes += len(buffer)
            for hdu in fastfits.scan(buffer):
                if hdu.is_image:
                    total += float(np.sum(fastfits.image_data(buffer, hdu), dtype=np.float64))
        n_files += 1
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "files": n_files,
        "megabytes": round(n_bytes / 1e6, 1),
    }


def start_worker(env: dict, concurrency: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gallery", "worker", "--pool", "prefork",
         "--concurrency", str(concurrency), "--hostname", f"bench{concurrency}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
        start_new_session=True,
    )  # fmt: skip
    time.sleep(5)  # imports and pool start-up
    return process


def stop_worker(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scws", type=int, default=100, help="ScWs per revolution")
    parser.add_argument("--bands", choices=["image", "spectral"], default="image")
    parser.add_argument("--revolutions-per-config", type=int, default=2)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/gallery_pipeline_bench"
    )
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--keep", action="store_true", help="keep the archive and work files")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.broker_url,
        "CELERY_RESULT_BACKEND": "",
        "GALLERY_DATA_DIR": str(folder / "data"),
        "MEDIA_ROOT": str(folder / "media"),
        "GALLERY_PIPELINE_WORK_DIR": str(folder / "work"),
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")
    recreate_database(args.database_url)
    run(["migrate", "-v0"], env)
    run(["load_reference_catalog"], env, stdout=subprocess.DEVNULL)

    import django

    django.setup()
    from ingest.models import RevolutionRun

    # Revolutions r with r % 3 == 1 observe the Galactic Centre then Cygnus: every
    # configuration gets the same fields (the Galactic Centre's dozen sources make the most
    # products).
    n = args.revolutions_per_config
    configs = {w: [1000 + 3 * (i + n * k) for i in range(n)] for k, w in enumerate(args.workers)}
    archive = folder / "archive"
    started = time.perf_counter()
    revolutions = sorted(r for revs in configs.values() for r in revs)
    run(
        ["make_archive", str(archive), "--revolutions", ",".join(map(str, revolutions)),
         "--scws-per-revolution", str(args.scws), "--bands", args.bands, "--seed", "1",
         "-v0"],
        env,
    )  # fmt: skip
    generation_s = time.perf_counter() - started
    floor = read_floor(archive, revolutions[0])

    results = []
    for workers, revs in configs.items():
        worker = start_worker(env, workers, folder / f"worker{workers}.log")
        wall = time.perf_counter()
        try:
            run(
                ["process_revolutions", ",".join(map(str, revs)), "--archive", str(archive),
                 "--workers", "1", "--poll", "0.5", "-v0"],
                env, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            wall = time.perf_counter() - wall
            memory = peak_memory_mb(worker.pid)
        finally:
            stop_worker(worker)
        done = list(RevolutionRun.objects.filter(revolution_id__in=revs).order_by("pk"))
        durations = [r.duration_s for r in done if r.duration_s]
        steps: dict[str, float] = {}
        for r in done:
            for key, seconds in r.timings.items():
                step = key.split(":")[-1] if ":" in key else key
                if ":" in key or key in ("plan", "grb", "publish"):
                    steps[step] = steps.get(step, 0.0) + seconds
        children = {p: m for p, m in memory.items() if p != worker.pid}
        results.append(
            {
                "worker_processes": workers,
                "revolutions": revs,
                "statuses": [r.status for r in done],
                "products": [r.products.count() for r in done],
                "seconds_per_revolution": round(statistics.mean(durations), 2),
                "seconds_per_revolution_each": [round(d, 2) for d in durations],
                "wall_seconds": round(wall, 2),
                "ratio_to_read_floor": round(statistics.mean(durations) / floor["seconds"], 2),
                "step_seconds_summed_over_workers": {
                    k: round(v / len(done), 2) for k, v in sorted(steps.items())
                },
                "peak_memory_mb_per_worker_process": round(max(children.values(), default=0), 1),
                "peak_memory_mb_main_process": round(memory.get(worker.pid, 0.0), 1),
            }
        )
        print(json.dumps(results[-1], indent=1))

    figures = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "input": {
            "scws_per_revolution": args.scws,
            "instruments": ["isgri", "jemx1"],
            "bands": args.bands,
            "units_per_revolution": 4,
            "archive_generation_seconds": round(generation_s, 1),
        },
        "floor_read_one_revolution": floor,
        "targets": {"seconds_per_revolution_on_2_cores": 60, "memory_mb_per_worker": 1536},
        "results": results,
    }
    # One entry per band set, so that a run with --bands spectral keeps the image-band one.
    out = ROOT / "bench" / "results" / "pipeline.json"
    output = json.loads(out.read_text()) if out.is_file() else {}
    if output.get("benchmark") != "pipeline":
        output = {"benchmark": "pipeline", "by_bands": {}}
    output["by_bands"][args.bands] = figures
    out.write_text(json.dumps(output, indent=1) + "\n")
    print(f"written {out}")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
