"""Long-term light curves and the transient monitor at mission scale. Run by hand:

    python bench/lightcurves.py [--database-url postgres://postgres@127.0.0.1:5432/gallery_scale]
                                [--source SLUG] [--repeat 60] [--full-refresh]

On a database filled by ``bench/generate.py`` (with the bins and summaries built by
``manage.py refresh_lightcurves``), it measures, in one run and interleaved so that a busy
machine weighs on both alike:

* the JSON response of ``/api/v1/sources/<slug>/lightcurve?bin=revolution`` for the source
  with the most flux points (through Django's full request stack, anonymous), p50 and p95;
* the floor: the same flux points of the light curve's band fetched by raw SQL (one SELECT
  through the same connection), p50 and p95, and their ratio; also the fetch of every point
  of the source (all bands), for scale;
* the time to refresh the transient monitor after a new revolution: the incremental refresh
  of the latest revolution (its products' bins rewritten, the summaries it touches updated,
  the statistics of its sources recomputed), as done when its products arrive;
* with ``--full-refresh``, the periodic full rebuild.

Results go to bench/results/lightcurves.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "lightcurves.json"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/gallery_scale"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "min_ms": round(min(ms), 2),
        "runs": len(ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--source", help="slug of the source (default: the most points)")
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--full-refresh", action="store_true")
    args = parser.parse_args()

    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver")
    import django

    django.setup()
    from django.db import connection
    from django.db.models import Count
    from django.test import Client

    from products import transients
    from products.lightcurves import light_curve
    from products.models import FluxBin, FluxPoint, LightCurveSummary
    from sources.models import Source

    if connection.vendor != "postgresql":
        sys.exit("run this benchmark on PostgreSQL (a database made by bench/generate.py)")
    if not FluxBin.objects.exists():
        sys.exit("no light-curve bins: run python manage.py refresh_lightcurves first")

    if args.source:
        source = Source.objects.get(slug=args.source)
    else:
        top = (
            FluxPoint.objects.order_by()
            .values("source_id")
            .annotate(n=Count("pk"))
            .order_by("-n")
            .first()
        )
        source = Source.objects.get(pk=top["source_id"])
    n_source = FluxPoint.objects.filter(source=source).count()
    url = f"/api/v1/sources/{source.slug}/lightcurve?bin=revolution"
    client = Client()
    document = json.loads(client.get(url).content)
    band = (document["instrument"], document["e_min_kev"], document["e_max_kev"])
    instrument_id = next(
        b.instrument_id for b in light_curve(source).available if b.instrument == band[0]
    )
    n_band = FluxPoint.objects.filter(
        source=source, instrument_id=instrument_id, e_min_kev=band[1], e_max_kev=band[2]
    ).count()
    print(
        f"{source.name}: {n_source} flux points in all, {n_band} in {band[0]} "
        f"{band[1]:g}-{band[2]:g} keV; {len(document['points'])} revolution bins"
    )

    raw_band_sql = (
        "SELECT t_start_ijd, t_stop_ijd, flux, flux_error, exposure_s, significance, "
        "is_upper_limit, revolution, product_id FROM products_fluxpoint "
        "WHERE source_id = %s AND instrument_id = %s AND e_min_kev = %s AND e_max_kev = %s"
    )
    raw_all_sql = (
        "SELECT t_start_ijd, t_stop_ijd, flux, flux_error, exposure_s, significance, "
        "is_upper_limit, revolution, product_id, instrument_id, e_min_kev, e_max_kev "
        "FROM products_fluxpoint WHERE source_id = %s"
    )

    def json_request() -> float:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        return elapsed

    def raw_fetch(sql: str, params: list) -> tuple[float, int]:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return time.perf_counter() - started, len(rows)

    band_params = [source.pk, instrument_id, band[1], band[2]]
    for _ in range(5):  # warm caches and connections
        json_request()
        raw_fetch(raw_band_sql, band_params)
        raw_fetch(raw_all_sql, [source.pk])
    json_times, band_times, all_times = [], [], []
    for _ in range(args.repeat):
        json_times.append(json_request())
        seconds, rows = raw_fetch(raw_band_sql, band_params)
        band_times.append(seconds)
        assert rows == n_band
        all_times.append(raw_fetch(raw_all_sql, [source.pk])[0])
    json_figures, band_figures = summary(json_times), summary(band_times)
    ratio = round(json_figures["p50_ms"] / band_figures["p50_ms"], 3)
    print(f"JSON light curve per revolution: {json_figures}")
    print(f"raw SQL fetch of the band's points: {band_figures} -> ratio {ratio}")
    print(f"raw SQL fetch of all the source's points: {summary(all_times)}")

    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT revolution, product_id, sum(n_points), "
            "sum(sum_w), sum(sum_wf), sum(sum_w2s2), min(t_start_ijd), max(t_stop_ijd) "
            "FROM products_fluxbin WHERE source_id = %s AND instrument_id = %s "
            "AND e_min_kev = %s AND e_max_kev = %s GROUP BY 1, 2",
            band_params,
        )
        plan = cursor.fetchone()[0][0]

    def node_types(node: dict) -> list[str]:
        own = [
            f"{node['Node Type']}" + (f" on {node['Index Name']}" if "Index Name" in node else "")
        ]
        return own + [t for child in node.get("Plans", []) for t in node_types(child)]

    latest = FluxBin.objects.filter(from_revolution=True).order_by("-revolution").first().revolution
    refreshes = []
    for _ in range(3):
        report = transients.refresh_revolution(latest)
        refreshes.append(report.seconds)
    rounded = [round(s, 2) for s in refreshes]
    print(f"refresh after revolution {latest}: {rounded} s; {report.summary()}")
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "database": connection.settings_dict["NAME"],
        },
        "scale": {
            "flux_points": FluxPoint.objects.count(),
            "flux_bins": FluxBin.objects.count(),
            "lightcurve_summaries": LightCurveSummary.objects.count(),
        },
        "lightcurve": {
            "source": source.name,
            "flux_points_of_source": n_source,
            "band": {"instrument": band[0], "e_min_kev": band[1], "e_max_kev": band[2]},
            "flux_points_of_band": n_band,
            "revolution_bins": len(document["points"]),
            "request": url,
            "json_response": json_figures,
            "raw_sql_fetch_of_band_points": band_figures,
            "raw_sql_fetch_of_all_source_points": summary(all_times),
            "ratio_json_p50_to_raw_band_p50": ratio,
            "bin_query_plan": node_types(plan["Plan"]),
            "bin_query_execution_ms": round(plan["Execution Time"], 2),
            "targets": {"p50_ms": 50, "ratio_to_raw": 2},
        },
        "monitor_refresh": {
            "revolution": latest,
            "seconds": [round(s, 3) for s in refreshes],
            "median_s": round(statistics.median(refreshes), 3),
            "series_updated": report.series_updated,
            "series_recomputed": report.series_recomputed,
            "sources_with_statistics": report.sources_with_statistics,
            "target_s": 10,
        },
    }
    if args.full_refresh:
        full = transients.refresh_all()
        print(f"full refresh: {full.summary()}")
        result["full_refresh"] = {
            "seconds": round(full.seconds, 1),
            "series": full.series_recomputed,
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
