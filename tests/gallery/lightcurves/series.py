"""Helpers of the light-curve tests: flux points laid out over revolutions, and the direct
(one point at a time, pure Python) computation of the binning rules they are checked against."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from products import timeline
from products.lightcurves import summarise_products
from products.models import FluxPoint, Product
from tests.factories import FluxPointFactory, ProductFactory


def revolution_ijd(revolution: int) -> float:
    return timeline.time_to_ijd(timeline.revolution_start(revolution))


def add_revolution(
    source,
    revolution: int,
    fluxes,
    errors,
    *,
    instrument: str = "isgri",
    band: tuple[float, float] = (20.0, 40.0),
    exposures=None,
    store_limits: bool = False,
    **product_fields,
) -> Product:
    """A light-curve product of ``revolution`` with one ScW-like point per flux (1 h apart).

    ``store_limits``: a point below 3σ is stored as the pipelines store upper limits, its flux
    column holding the limit max(flux, 0) + 2σ and ``is_upper_limit`` set.
    """
    product = ProductFactory(
        kind__code="lightcurve",
        instrument__code=instrument,
        e_min_kev=band[0],
        e_max_kev=band[1],
        rev_first=revolution,
        sources=[source],
        **product_fields,
    )
    start = revolution_ijd(revolution) + 0.1
    exposures = (
        exposures if exposures is not None else [1800.0 + 100 * i for i in range(len(fluxes))]
    )
    for i, (flux, error, exposure) in enumerate(zip(fluxes, errors, exposures, strict=True)):
        t0 = start + i / 24.0
        significance = flux / error if error else None
        limit = store_limits and significance is not None and significance < 3.0
        FluxPointFactory(
            product=product,
            source=source,
            t_start_ijd=t0,
            t_stop_ijd=t0 + 0.03,
            flux=max(flux, 0.0) + 2 * error if limit else flux,
            flux_error=error,
            significance=significance,
            exposure_s=exposure,
            revolution=revolution,
            is_upper_limit=limit,
        )
    # What the ingest does once a product is stored: its points are binned.
    summarise_products([product.pk])
    return product


def random_series(source, revolutions, rng, *, per_revolution=(2, 6), level=10.0, **kwargs):
    """Points in each of ``revolutions`` with random fluxes, errors and exposures."""
    products = []
    for rev in revolutions:
        n = int(rng.integers(*per_revolution))
        fluxes = rng.normal(level, 2.0, n)
        errors = rng.uniform(0.5, 3.0, n)
        exposures = rng.uniform(500.0, 3500.0, n)
        products.append(add_revolution(source, rev, fluxes, errors, exposures=exposures, **kwargs))
    return products


def weight(point: FluxPoint) -> float:
    if point.exposure_s is not None:
        return point.exposure_s
    return (point.t_stop_ijd - point.t_start_ijd) * 86400.0


def measured(point: FluxPoint) -> float:
    if point.is_upper_limit and point.significance is not None:
        return point.significance * point.flux_error
    return point.flux


def direct_bins(points, key) -> list[dict]:
    """The binning rules computed point by point: exposure-weighted mean and its error."""
    groups = defaultdict(list)
    for p in points:
        groups[key(p)].append(p)
    out = []
    for k in sorted(groups, key=lambda k: min(p.t_start_ijd for p in groups[k])):
        ps = groups[k]
        sw = sum(weight(p) for p in ps)
        mean = sum(weight(p) * measured(p) for p in ps) / sw
        error = math.sqrt(sum(weight(p) ** 2 * p.flux_error**2 for p in ps)) / sw
        significance = mean / error
        upper = significance < 3.0
        out.append(
            {
                "key": k,
                "t_start_ijd": min(p.t_start_ijd for p in ps),
                "t_stop_ijd": max(p.t_stop_ijd for p in ps),
                "flux": max(mean, 0.0) + 2 * error if upper else mean,
                "error": error,
                "significance": significance,
                "exposure_s": sw,
                "n_points": len(ps),
                "upper_limit": upper,
                "mean": mean,
            }
        )
    return out


def assert_bins_equal(points: list[dict], expected: list[dict]) -> None:
    assert len(points) == len(expected)
    for got, want in zip(points, expected, strict=True):
        for name in ("t_start_ijd", "t_stop_ijd", "flux", "error", "significance", "exposure_s"):
            assert got[name] == pytest_approx(want[name]), (name, got, want)
        assert got["n_points"] == want["n_points"]
        assert got["upper_limit"] == want["upper_limit"]


def pytest_approx(value):
    return pytest.approx(value, rel=1e-9, abs=1e-12)


def rng(seed: int = 1) -> np.random.Generator:
    return np.random.default_rng(seed)
