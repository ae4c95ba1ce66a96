"""Time the preview renderers on the real fixture products; run by hand.

    python bench/previews.py [--runs 15] [--out bench/results/previews.json]

Each kind is rendered once first (imports, font cache, colormap set-up are paid there), then
``--runs`` times; the median and 95th percentile of the wall time (``time.perf_counter``) are
written per product and per kind, with the floor of the same run: an empty 800x600 figure
drawn and encoded the same way, so a ratio can be read on a busy machine. The budget is
100 ms per preview.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from astropy.io import fits

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from ingest import previews  # noqa: E402
from ingest.fitting import FitParameter, FitResult  # noqa: E402
from ingest.readers.base import (  # noqa: E402
    DetectedSource,
    ImageData,
    LightCurveData,
    ResponseData,
    SpectrumData,
)

FIXTURES = PROJECT_DIR.parent / "shared" / "fixtures"
BUDGET_MS = 100.0


def significance_image(path: Path) -> ImageData:
    """The SIGNIFICANCE plane of a mosaic (told apart by IMATYPE), else the primary image."""
    with fits.open(path) as hdul:
        for hdu in hdul:
            if hdu.is_image and hdu.header.get("IMATYPE", "").strip() == "SIGNIFICANCE":
                return ImageData(header=hdu.header.copy(), significance=np.array(hdu.data))
        return ImageData(header=hdul[0].header.copy(), significance=np.array(hdul[0].data))


def lightcurve(path: Path) -> LightCurveData:
    """TIME (IJD), RATE, ERROR and the half bin widths from XAX_E or TIMEDEL (days)."""
    with fits.open(path) as hdul:
        hdu = next(h for h in hdul if h.name.endswith("-LCR"))
        data, names = hdu.data, hdu.columns.names
        if "XAX_E" in names:
            half = np.asarray(data["XAX_E"], dtype=float)
        elif "TIMEDEL" in names:
            half = np.asarray(data["TIMEDEL"], dtype=float) / 2
        else:
            half = np.full(len(data), float(hdu.header["TIMEDEL"]) / 2)
        return LightCurveData(
            time_ijd=np.asarray(data["TIME"], dtype=float),
            half_width_d=half,
            rate=np.asarray(data["RATE"], dtype=float),
            error=np.asarray(data["ERROR"], dtype=float),
        )


def synthetic_spectrum(n_channels: int, seed: int = 1) -> tuple[SpectrumData, FitResult]:
    """An ISGRI-like power-law spectrum (Γ = 2.1) with a fitted model and residuals."""
    rng = np.random.default_rng(seed)
    edges = np.geomspace(15.0, 1000.0, n_channels + 1)
    e_min, e_max = edges[:-1], edges[1:]
    width = e_max - e_min
    model = 30.0 * ((e_min + e_max) / 2 / 20.0) ** -2.1 * width * 0.02
    err = np.sqrt(model * 50 + 1e-3) / 50
    rate = model + rng.normal(0, err)
    quality = np.zeros(n_channels, dtype=int)
    quality[:2] = 3
    rate[:2] = np.nan
    used = quality == 0
    response = ResponseData(
        energ_lo=e_min, energ_hi=e_max, matrix=np.eye(n_channels),
        channel_e_min=e_min, channel_e_max=e_max,
    )  # fmt: skip
    spectrum = SpectrumData(
        channel=np.arange(n_channels), rate=rate, stat_err=err, sys_err=np.zeros(n_channels),
        quality=quality, e_min=e_min, e_max=e_max, exposure_s=1.0e5, response=response,
    )  # fmt: skip
    residuals = np.where(used, (rate - model) / err, np.nan)
    fit = FitResult(
        model="powerlaw",
        parameters=[
            FitParameter("index", 2.103, 0.021),
            FitParameter("norm", 1.2e-2, 4e-4, "ph cm-2 s-1 keV-1"),
        ],
        statistic="chi2", statistic_value=float(np.nansum(residuals**2)),
        dof=int(used.sum()) - 2, e_min_kev=20.0, e_max_kev=200.0,
        flux_erg_cm2_s=1.5e-9, flux_error=3e-11, used=used, model_rate=model,
        residuals=residuals, is_preferred=True,
    )  # fmt: skip
    return spectrum, fit


def cases() -> dict[str, list[tuple[str, Callable[[], bytes]]]]:
    crab = DetectedSource("Crab", 83.633, 22.014, significance=268.0)
    crab_field = [crab, DetectedSource("A0535+262", 84.727, 26.316, significance=9.0)]
    gc_field = [
        DetectedSource("1E 1740.7-2942", 265.978, -29.745, significance=60.0),
        DetectedSource("GX 1+4", 263.009, -24.746, significance=30.0),
        DetectedSource("IGR J17464-3213", 266.565, -32.234, significance=20.0),
        DetectedSource("SLX 1744-299", 266.858, -30.044, significance=15.0),
        DetectedSource("GRS 1758-258", 270.301, -25.743, significance=25.0),
    ]
    images = [
        ("isgri_mosaic_crab", "isgri/mosaic_crab_20-40keV.fits", crab_field, "ISGRI 20–40 keV"),
        ("jemx_mosaic_crab", "jemx/mosaic_jmx1_crab.fits.gz", crab_field, "JEM-X1 3–35 keV"),
        ("isgri_gc_1E1740", "isgri/significance_1E_1740.7-2942_25-40keV.fits.gz", gc_field,
         "ISGRI 25–40 keV"),
    ]  # fmt: skip
    lcs = [
        ("isgri_lc_OAO1657", "isgri/lc_OAO_1657-415.fits", "ISGRI"),
        ("jemx_lc_GRB221009A", "jemx/lc_GRB221009A_jmx1.fits", "JEM-X1"),
    ]
    out: dict[str, list[tuple[str, Callable[[], bytes]]]] = {
        "image": [],
        "spectrum": [],
        "lightcurve": [],
    }
    for name, rel, sources, footer in images:
        image = significance_image(FIXTURES / rel)
        out["image"].append(
            (
                name,
                lambda i=image, s=sources, f=footer, n=name: previews.render_image_preview(
                    i, s, n, footer=f
                ),
            )
        )
    for n_channels in (62, 256):
        spectrum, fit = synthetic_spectrum(n_channels)
        out["spectrum"].append(
            (
                f"synthetic_{n_channels}ch",
                lambda s=spectrum, f=fit, c=n_channels: previews.render_spectrum_preview(
                    s, [f], f"synthetic {c} channels", footer="ISGRI"
                ),
            )
        )
    for name, rel, footer in lcs:
        lc = lightcurve(FIXTURES / rel)
        out["lightcurve"].append(
            (
                name,
                lambda c=lc, n=name, f=footer: previews.render_lightcurve_preview(c, n, footer=f),
            )
        )
    return out


def wcsaxes_reference(image: ImageData) -> Callable[[], bytes]:
    """The same map drawn with astropy's WCSAxes and ``Figure.colorbar``, for comparison:
    the renderer draws its own sky ticks because this costs more."""
    from astropy.visualization.wcsaxes import WCSAxes

    def render() -> bytes:
        fig = previews._new_figure()
        ax = WCSAxes(fig, [0.1, 0.1, 0.7, 0.8], wcs=previews.celestial_wcs(image.header))
        fig.add_axes(ax)
        scale = previews._AsinhScale.for_map(image.significance)
        shown = ax.imshow(scale(image.significance), origin="lower", cmap="inferno", vmin=0, vmax=1)
        ax.coords.grid(True, color="white", alpha=0.35, linewidth=0.5)
        ax.coords[0].set_axislabel("RA (°)")
        ax.coords[1].set_axislabel("Dec (°)")
        fig.colorbar(shown, cax=fig.add_axes([0.85, 0.1, 0.03, 0.8]), label="significance (σ)")
        fig.text(0.5, 0.97, "reference", ha="center")
        return previews.figure_to_png(fig)

    return render


def floor_png() -> bytes:
    """An empty figure of the same size, drawn and encoded the same way."""
    fig = previews._new_figure()
    fig.add_axes([0.1, 0.1, 0.85, 0.8])
    return previews.figure_to_png(fig)


def _stats(wall_ms: list[float], cpu_ms: list[float]) -> dict:
    return {
        "median_ms": round(statistics.median(wall_ms), 2),
        "p95_ms": round(float(np.percentile(wall_ms, 95)), 2),
        "min_ms": round(min(wall_ms), 2),
        # CPU time of this process: less sensitive to other work on a shared machine
        "cpu_median_ms": round(statistics.median(cpu_ms), 2),
        "runs": len(wall_ms),
    }


def measure(render: Callable[[], bytes], runs: int) -> tuple[list[float], list[float], int]:
    """Wall and CPU times (ms) of ``runs`` calls after a first, untimed one; PNG size."""
    size = len(render())  # first call: imports, font cache, colour maps
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        render()
        wall.append((time.perf_counter() - start) * 1000.0)
        cpu.append((time.process_time() - start_cpu) * 1000.0)
    return wall, cpu, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "bench/results/previews.json")
    args = parser.parse_args()
    if not FIXTURES.is_dir():
        sys.exit(f"real fixtures not found: {FIXTURES} is absent")

    load_before = os.getloadavg()[0]
    floor_wall, floor_cpu, _ = measure(floor_png, args.runs)
    floor = _stats(floor_wall, floor_cpu)
    print(f"{'floor':10s} {'empty figure':24s} median {floor['median_ms']:6.1f} ms")
    kinds = {}
    for kind, items in cases().items():
        products = {}
        kind_wall: list[float] = []
        kind_cpu: list[float] = []
        for name, render in items:
            wall, cpu, size = measure(render, args.runs)
            kind_wall += wall
            kind_cpu += cpu
            products[name] = {**_stats(wall, cpu), "png_bytes": size}
            p = products[name]
            print(
                f"{kind:10s} {name:24s} median {p['median_ms']:6.1f} ms  p95 {p['p95_ms']:6.1f} ms"
                f"  cpu {p['cpu_median_ms']:6.1f} ms  {size / 1024:5.0f} KiB"
            )
        summary = _stats(kind_wall, kind_cpu)  # all runs of all products of this kind
        kinds[kind] = {
            **summary,
            "median_over_floor": round(summary["median_ms"] / floor["median_ms"], 2),
            "within_budget": summary["median_ms"] <= BUDGET_MS,
            "products": products,
        }

    crab = significance_image(FIXTURES / "isgri/mosaic_crab_20-40keV.fits")
    wall, cpu, _ = measure(wcsaxes_reference(crab), args.runs)
    reference = _stats(wall, cpu)
    print(f"{'reference':10s} {'WCSAxes, Crab mosaic':24s} median {reference['median_ms']:6.1f} ms")

    result = {
        "benchmark": "previews",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1min_before": load_before,
            "load_avg_1min_after": os.getloadavg()[0],
        },
        "budget_ms": BUDGET_MS,
        "floor_empty_figure": floor,
        "kinds": kinds,
        "reference_wcsaxes_crab_mosaic": reference,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
