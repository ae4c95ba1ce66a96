"""Latency and query counts of the HTML pages at mission scale; run by hand, not in CI.

    python bench/pages.py                       # against gallery_scale (read only)
    python bench/pages.py --database-url postgres://postgres@127.0.0.1:5432/gallery_scale_pages
    python bench/pages.py --runs 40 --skip-gunicorn

Pages: the source list, the page of the source with the most products (the Crab, ~1,200 at
the default scale), a revolution page (the revolution with the most products among a sample),
and product pages (an image, a spectrum, a light curve), plus the product list and Explore.

Two measurements, each beside a floor taken in the same run:

* in-process, with Django's test client: the number of queries of each page (counted by a
  database execute wrapper) and the time of ``--runs`` requests (p50, p95), beside a bare
  Django view (``/favicon.ico``, a redirect that reads no table) and, for the source page,
  the same rows fetched by raw SQL;
* over HTTP, with gunicorn (2 gthread workers) on 127.0.0.1 and one keep-alive connection,
  one request at a time (the service time without queueing), beside the same bare view.

Targets: p95 ≤ 100 ms and ≤ 15 queries per page. The database is only read (GET requests of
an anonymous visitor: no session is written). Results: ``bench/results/pages.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT / "bench" / "results" / "pages.json"
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/gallery_scale"
FLOOR_PATH = "/favicon.ico"
TARGET_P95_MS = 100.0
TARGET_QUERIES = 15


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
        "min_ms": round(ordered[0] * 1000, 2),
        "n": len(ordered),
    }


# --- what to ask for -------------------------------------------------------------------------


def choose_pages() -> dict[str, str]:
    """Paths of the benchmarked pages, picked from the database (read only)."""
    from django.contrib.auth.models import AnonymousUser
    from django.db import connection
    from django.db.models import Count

    from products import selectors
    from products.models import Product, ProductSource
    from sources.models import Source

    anonymous = AnonymousUser()
    source = Source.objects.filter(slug="crab").first()
    if source is None:
        top = (
            ProductSource.objects.values("source_id")
            .annotate(n=Count("pk"))
            .order_by("-n")
            .values_list("source_id", flat=True)
            .first()
        )
        source = Source.objects.get(pk=top)
    with connection.cursor() as cursor:
        # A sample of revolutions (the table is large): the busiest one among them.
        cursor.execute(
            "SELECT rev_first, count(*) FROM products_product TABLESAMPLE SYSTEM (2) "
            "WHERE rev_first IS NOT NULL AND rev_first = rev_last "
            "GROUP BY rev_first ORDER BY count(*) DESC LIMIT 1"
        )
        row = cursor.fetchone()
    revolution = row[0] if row else 1500
    visible = selectors.visible_products(anonymous).latest_versions()
    paths = {
        "source_list": "/sources/",
        "source_list_search": "/sources/?q=igr&cls=XRB&sort=-ra",
        "source_page": source.get_absolute_url(),
        "revolution_page": f"/revolutions/{revolution}/",
        "product_list": "/products/",
        "product_list_filtered": "/products/?instrument=isgri&kind=image&source=crab",
        "explore": "/explore/?name=crab&radius=5&kind=image",
        "home": "/",
    }
    for kind in ("image", "spectrum", "lightcurve"):
        product = (
            visible.filter(kind__code=kind, source_links__source=source)
            .order_by("-pk")
            .only("uuid")
            .first()
        )
        if product is None:
            product = Product.objects.filter(kind__code=kind).only("uuid").first()
        if product is not None:
            paths[f"product_page_{kind}"] = product.get_absolute_url()
    paths["source_products"] = str(source.products.count())
    return paths


def raw_source_rows(source_slug: str) -> None:
    """The floor of the source page: its first 50 rows by one raw SQL query."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT p.id, p.uuid, p.title, p.time_start, p.rev_first, p.rev_last
            FROM products_product p
            JOIN products_productsource l ON l.product_id = p.id
            JOIN sources_source s ON s.id = l.source_id
            WHERE s.slug = %s AND p.status = 'published' AND p.access = 'public'
              AND p.superseded_by_id IS NULL
            ORDER BY p.time_start DESC, p.id DESC LIMIT 50
            """,
            [source_slug],
        )
        cursor.fetchall()


# --- in process ------------------------------------------------------------------------------


class QueryCounter:
    """Counts the queries (and their time) of the wrapped database calls."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start


def in_process(paths: dict[str, str], runs: int) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()
    client = Client()
    out: dict = {}

    def timed(fn) -> list[float]:
        fn()  # warm-up: caches, plans, connection
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return samples

    floor = percentiles(timed(lambda: client.get(FLOOR_PATH)))
    out["floor_bare_view"] = floor
    slug = paths["source_page"].strip("/").split("/")[-1]
    out["floor_source_rows_raw_sql"] = percentiles(timed(lambda: raw_source_rows(slug)))
    for name, path in paths.items():
        if not path.startswith("/"):
            continue
        response = client.get(path)
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            response = client.get(path)
        stats = percentiles(timed(lambda p=path: client.get(p)))
        stats.update(
            {
                "path": path,
                "status": response.status_code,
                "queries": counter.count,
                "sql_ms": round(counter.seconds * 1000, 2),
                "bytes": len(response.content),
                "ratio_to_floor_p50": round(stats["p50_ms"] / max(floor["p50_ms"], 0.01), 1),
                "meets_targets": stats["p95_ms"] <= TARGET_P95_MS
                and counter.count <= TARGET_QUERIES,
            }
        )
        out[name] = stats
        print(
            f"  {name:26s} {stats['queries']:3d} queries  p50 {stats['p50_ms']:7.1f} ms  "
            f"p95 {stats['p95_ms']:7.1f} ms  ({stats['status']})",
            flush=True,
        )
    return out


# --- gunicorn --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(database_url: str, port: int):
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "CONN_MAX_AGE": "300",
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "ERROR",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")])),
        }
    )
    command = [
        sys.executable, "-m", "gunicorn", "gallery.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--worker-class", "gthread",
        "--threads", "2", "--log-level", "warning", "--timeout", "120",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=PROJECT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", FLOOR_PATH)
            conn.getresponse().read()
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


def over_http(database_url: str, paths: dict[str, str], runs: int) -> dict:
    port = free_port()
    print(f"starting gunicorn on 127.0.0.1:{port}…", flush=True)
    process = start_server(database_url, port)
    out: dict = {"server": "gunicorn, 2 gthread workers x 2 threads, one request at a time"}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def get(path: str) -> int:
            conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
            response = conn.getresponse()
            response.read()
            return response.status

        def timed(path: str) -> tuple[list[float], int]:
            status = 0
            for _ in range(3):  # both workers warm
                status = get(path)
            samples = []
            for _ in range(runs):
                start = time.perf_counter()
                get(path)
                samples.append(time.perf_counter() - start)
            return samples, status

        floor_samples, _ = timed(FLOOR_PATH)
        out["floor_bare_view"] = floor = percentiles(floor_samples)
        for name, path in paths.items():
            if not path.startswith("/"):
                continue
            samples, status = timed(path)
            stats = percentiles(samples)
            stats.update(
                {
                    "path": path,
                    "status": status,
                    "ratio_to_floor_p50": round(stats["p50_ms"] / max(floor["p50_ms"], 0.01), 1),
                    "meets_target": stats["p95_ms"] <= TARGET_P95_MS,
                }
            )
            out[name] = stats
            print(
                f"  {name:26s} p50 {stats['p50_ms']:7.1f} ms  p95 {stats['p95_ms']:7.1f} ms "
                f"({status})",
                flush=True,
            )
        out["floor_bare_view_after"] = percentiles(timed(FLOOR_PATH)[0])
    finally:
        stop_server(process)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DB)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--skip-gunicorn", action="store_true")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database_url
    # A kept connection, as in production: the figures are the pages', not the handshake's.
    os.environ.setdefault("CONN_MAX_AGE", "300")
    os.environ.setdefault("LOG_LEVEL", "ERROR")
    os.environ["DJANGO_SETTINGS_MODULE"] = "gallery.settings"
    sys.path.insert(0, str(PROJECT))
    import django

    django.setup()
    from products.models import Product

    n_products = Product.objects.count()
    paths = choose_pages()
    print(f"{n_products:,} products; the source page shows {paths['source_products']} products")
    print("in process (Django test client):", flush=True)
    results = {
        "what": "HTML pages at mission scale: queries per page and latency, beside floors",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "database": args.database_url.rsplit("/", 1)[-1],
        "products": n_products,
        "source_page_products": int(paths.pop("source_products")),
        "runs": args.runs,
        "targets": {"p95_ms": TARGET_P95_MS, "queries": TARGET_QUERIES},
        "in_process": in_process(paths, args.runs),
    }
    if not args.skip_gunicorn:
        print("over HTTP (gunicorn):", flush=True)
        results["gunicorn"] = over_http(args.database_url, paths, args.runs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
