"""REST API latency and throughput at mission scale, beside a constant DRF view (the floor).

Serves the Gallery with gunicorn (2 gthread workers) on 127.0.0.1 against the mission-scale
PostgreSQL database, drives it with a small load generator (threads, keep-alive
http.client connections, concurrency 8) and writes p50/p95 latency and requests/s of:

* source search (``sources/?q=``),
* product lists with three filters,
* product cone searches of 1° and 15° (centred on catalogue sources),
* deep pagination (the cursor of the 10,000th page of 50, and pages around it),

each at concurrency 8 and one request at a time (the service time, without queueing),
beside the floor: ``/api/v1/_bench/constant/`` (a bare DRF view returning a constant,
routed only when GALLERY_BENCH_ENDPOINTS is set) measured in the same run, before and after
the scenarios. Results go to ``bench/results/api.json``; the targets are p95 ≤ 50 ms and
p95 ≤ 2× the floor's.

    python bench/api.py                      # against gallery_scale (read only)
    python bench/api.py --database-url postgres://postgres@127.0.0.1:5432/gallery_scale_api

The database is only read. Run by hand, not in CI.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode

PROJECT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT / "bench" / "results" / "api.json"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/gallery_scale"
FLOOR_PATH = "/api/v1/_bench/constant/"
TARGET_P95_MS = 50.0
TARGET_RATIO = 2.0
PAGE = 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- inputs from the database --------------------------------------------------------------


def django_setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")
    sys.path.insert(0, str(PROJECT))
    import django

    django.setup()


def build_paths(rng: random.Random) -> dict[str, list[str]]:
    """The request paths of each scenario, drawn from the data (read-only queries)."""
    from django.contrib.auth.models import AnonymousUser

    from gallery.api.pagination import KeysetPagination
    from products.models import Product
    from sources.models import Source
    from sources.names import normalize_name

    sources = list(
        Source.objects.active()
        .filter(ra_deg__isnull=False)
        .order_by("?")
        .values_list("name", "ra_deg", "dec_deg")[:200]
    )
    if not sources:
        raise SystemExit("the database has no sources: generate the scale data first")
    fragments = sorted({normalize_name(name)[:4] for name, _, _ in sources if len(name) >= 4})
    paths: dict[str, list[str]] = {}
    paths["source_search"] = [f"/api/v1/sources/?q={quote(f)}" for f in fragments[:40]]

    revs = Product.objects.exclude(rev_first=None).order_by("rev_first")
    first = revs.values_list("rev_first", flat=True).first() or 1
    last = revs.order_by("-rev_first").values_list("rev_first", flat=True).first() or 2000
    three = []
    for name, _, _ in sources[:30]:
        three.append(
            "/api/v1/products/?"
            + urlencode({"instrument": "isgri", "kind": "spectrum", "source": name})
        )
        start = rng.randint(first, max(first, last - 100))
        three.append(
            "/api/v1/products/?"
            + urlencode(
                {"instrument": "jemx", "kind": "image", "rev_min": start, "rev_max": start + 100}
            )
        )
        three.append(
            "/api/v1/products/?"
            + urlencode({"instrument": "isgri", "kind": "lightcurve", "e_min": 15, "e_max": 100})
        )
    paths["products_three_filters"] = three
    for radius in (1, 15):
        paths[f"cone_{radius}deg"] = [
            "/api/v1/products/?"
            + urlencode({"ra": f"{ra:.4f}", "dec": f"{dec:.4f}", "radius": radius})
            for _, ra, dec in sources[:60]
        ]

    # Deep pages: the cursor after row N of the default order, as a client that followed
    # `next` N/50 times would hold it (rows from the same visibility rule as the API).
    visible = (
        Product.objects.visible_to(AnonymousUser()).latest_versions().order_by("-created", "-pk")
    )
    deep = []
    for page in (9_990, 10_000, 10_010):
        row = visible.values_list("created", "pk")[page * PAGE - 1 : page * PAGE].first()
        if row is not None:
            cursor = KeysetPagination._encode("-created", row[0], row[1], "n")
            deep.append(f"/api/v1/products/?cursor={cursor}")
    if not deep:
        raise SystemExit("fewer than 500,000 visible products: use the mission-scale database")
    paths["deep_pagination"] = deep
    return paths


# --- server ---------------------------------------------------------------------------------


def start_server(database_url: str, port: int, workers: int, threads: int):
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "GALLERY_BENCH_ENDPOINTS": "1",
            "CONN_MAX_AGE": "300",
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "ERROR",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")])),
        }
    )
    command = [
        sys.executable, "-m", "gunicorn", "gallery.wsgi:application",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--worker-class", "gthread",
        "--threads", str(threads),
        "--log-level", "warning",
        "--timeout", "120",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=PROJECT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", FLOOR_PATH)
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.3)
    stop_server(process)
    raise SystemExit("gunicorn did not answer within 60 s")


def stop_server(process) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


# --- load -----------------------------------------------------------------------------------


def drive(port: int, paths: list[str], requests: int, concurrency: int) -> dict:
    """Send ``requests`` GETs over ``concurrency`` keep-alive connections; latency stats."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local, local_errors = [], []
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            path = paths[(index + offset) % len(paths)]
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Accept": "application/json"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                local_errors.append(f"{type(exc).__name__} on {path}")
                continue
            local.append((time.perf_counter() - started) * 1000)
            if status != 200:
                local_errors.append(f"HTTP {status} on {path}")
        conn.close()
        with lock:
            latencies.extend(local)
            errors.extend(local_errors)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    return {
        "requests": len(latencies),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:5],
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None,
        "requests_per_s": round(len(latencies) / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--requests", type=int, default=400, help="per scenario")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    django_setup(args.database_url)
    print("choosing the requests from the database…", flush=True)
    paths = build_paths(random.Random(args.seed))
    port = free_port()
    print(f"starting gunicorn on 127.0.0.1:{port} ({args.workers} workers)…", flush=True)
    server = start_server(args.database_url, port, args.workers, args.threads)
    load_before = os.getloadavg()
    results: dict[str, dict] = {}
    try:
        warm = max(2 * args.concurrency, 16)
        scenarios = ["floor_before", *paths, "floor_after"]
        for name in scenarios:
            todo = [FLOOR_PATH] if name.startswith("floor") else paths[name]
            drive(port, todo, warm, args.concurrency)  # warm caches and connections
            print(f"  {name}: {args.requests} requests…", flush=True)
            results[name] = drive(port, todo, args.requests, args.concurrency)
            # The same requests one at a time: the service time, without queueing.
            alone = drive(port, todo, max(40, args.requests // 8), 1)
            results[name]["sequential"] = {
                k: alone[k] for k in ("requests", "p50_ms", "p95_ms", "requests_per_s")
            }
            print(
                f"    p50 {results[name]['p50_ms']} ms, p95 {results[name]['p95_ms']} ms, "
                f"{results[name]['requests_per_s']} req/s, {results[name]['errors']} errors",
                flush=True,
            )
    finally:
        stop_server(server)
    floor_p50 = statistics.fmean(
        [results["floor_before"]["p50_ms"], results["floor_after"]["p50_ms"]]
    )
    floor_p95 = statistics.fmean(
        [results["floor_before"]["p95_ms"], results["floor_after"]["p95_ms"]]
    )
    floor_seq_p50 = statistics.fmean(
        [
            results["floor_before"]["sequential"]["p50_ms"],
            results["floor_after"]["sequential"]["p50_ms"],
        ]
    )
    for name in paths:
        row = results[name]
        row["ratio_p50_to_floor"] = round(row["p50_ms"] / floor_p50, 2)
        row["ratio_p95_to_floor"] = round(row["p95_ms"] / floor_p95, 2)
        row["meets_p95_target"] = row["p95_ms"] <= TARGET_P95_MS
        row["meets_ratio_target"] = row["ratio_p95_to_floor"] <= TARGET_RATIO
        row["example_path"] = paths[name][0]
        row["sequential"]["ratio_p50_to_floor"] = round(
            row["sequential"]["p50_ms"] / floor_seq_p50, 2
        )
    report = {
        "benchmark": "REST API latency at mission scale, beside a constant DRF view",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "config": {
            "database": args.database_url.rsplit("/", 1)[-1],
            "server": f"gunicorn, {args.workers} gthread workers x {args.threads} threads",
            "concurrency": args.concurrency,
            "requests_per_scenario": args.requests,
            "page_size": PAGE,
        },
        "targets": {"p95_ms": TARGET_P95_MS, "p95_ratio_to_floor": TARGET_RATIO},
        "floor": {
            "path": FLOOR_PATH,
            "p50_ms": round(floor_p50, 2),
            "p95_ms": round(floor_p95, 2),
            "before": results.pop("floor_before"),
            "after": results.pop("floor_after"),
        },
        "scenarios": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
