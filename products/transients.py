"""The transient monitor and the maintained light-curve summaries behind it.

For every source, instrument and band, ``LightCurveSummary`` keeps the public light curve
binned per revolution (the binning of ``products.lightcurves``, for the points everyone may
see) summed up: the latest revolution bin, and the sums of the bins before it. From them:

* the long-term mean μ = Σ w·f / Σ w over the earlier points, and its error;
* the scatter s of the earlier revolution fluxes (sample standard deviation of the bins),
  which holds the source's own variability as well as the noise;
* the excess of the latest bin, (F_latest − μ) / √(σ_latest² + s²) (with a single earlier bin,
  whose scatter is unknown, the error of μ stands in for s).

A source is a transient candidate when that excess reaches N σ (default 5). Only points of
single-revolution products count here (``FluxPoint.revolution`` set): a mosaic over many
revolutions says nothing about the latest one.

Everything is read from the bin table (``FluxBin``, see ``products.lightcurves``), which the
refreshes rewrite first for the products concerned. ``refresh_revolution`` then updates the
summaries touched by one revolution incrementally (the old latest bin is folded into the
history when a newer revolution arrives; a change to an older revolution recomputes those
series from their bins) and the statistics of the sources it touched; ``refresh_all`` rebuilds
everything (run periodically: embargoes end and curators hide products without any ingest,
and sources get merged).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import groupby

from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.db.models import QuerySet

from sources import stats
from sources.models import Source

from .lightcurves import FLUXBIN_SUMS, source_statistics, summarise_products
from .models import FluxBin, LightCurveSummary, Product, visibility_q

DEFAULT_MIN_SIGMA = 5.0
#: A key of pg_advisory_xact_lock: refreshes of the summaries run one at a time.
_LOCK_KEY = 0x4C435355  # "LCSU"
_SERIES = ("source_id", "instrument_id", "e_min_kev", "e_max_kev")
_DERIVED = (
    "latest_flux",
    "latest_error",
    "mean_flux",
    "mean_error",
    "std_flux",
    "excess_sigma",
)
_STORED = (
    "e_min_kev",
    "e_max_kev",
    "n_revolutions",
    "sum_w",
    "sum_wf",
    "sum_w2s2",
    "sum_bin_flux",
    "sum_bin_flux2",
    "first_revolution",
    "latest_revolution",
    "latest_t_start_ijd",
    "latest_t_stop_ijd",
    "latest_n_points",
    "latest_sum_w",
    "latest_sum_wf",
    "latest_sum_w2s2",
    *_DERIVED,
    "flux_unit",
)


def band_key(e_min_kev: float | None, e_max_kev: float | None) -> str:
    """The exact band of a series as text (the unique key of its summary)."""
    return f"{e_min_kev!r}:{e_max_kev!r}"


@dataclass
class RevolutionBin:
    revolution: int
    n: int
    sw: float
    swf: float
    sw2s2: float
    t_start_ijd: float
    t_stop_ijd: float

    @property
    def flux(self) -> float:
        return self.swf / self.sw


@dataclass
class RefreshReport:
    """What a refresh did, and how long it took."""

    revolution: int | None = None
    series_updated: int = 0
    series_recomputed: int = 0
    series_deleted: int = 0
    sources_with_statistics: int = 0
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step of the refresh (reported by the benchmark)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.steps[name] = round(time.perf_counter() - started, 3)

    def summary(self) -> str:
        what = f"revolution {self.revolution}" if self.revolution is not None else "everything"
        return (
            f"{what}: {self.series_updated} series updated incrementally, "
            f"{self.series_recomputed} recomputed, {self.series_deleted} removed; statistics of "
            f"{self.sources_with_statistics} sources; {self.seconds:.2f} s"
        )


# --- summaries from bins ----------------------------------------------------------------------


def derive(summary: LightCurveSummary) -> LightCurveSummary:
    """Fill the derived fields (means, scatter, excess) from the stored sums."""
    s = summary
    s.latest_flux = s.latest_sum_wf / s.latest_sum_w
    s.latest_error = math.sqrt(s.latest_sum_w2s2) / s.latest_sum_w
    s.mean_flux = s.mean_error = s.std_flux = s.excess_sigma = None
    if s.n_revolutions >= 1 and s.sum_w > 0:
        s.mean_flux = s.sum_wf / s.sum_w
        s.mean_error = math.sqrt(s.sum_w2s2) / s.sum_w
        scatter2 = s.mean_error**2
        if s.n_revolutions >= 2:
            n = s.n_revolutions
            variance = (s.sum_bin_flux2 - s.sum_bin_flux**2 / n) / (n - 1)
            s.std_flux = math.sqrt(max(variance, 0.0))
            scatter2 = s.std_flux**2
        total = math.sqrt(s.latest_error**2 + scatter2)
        if total > 0:
            s.excess_sigma = (s.latest_flux - s.mean_flux) / total
    return s


def _set_latest(summary: LightCurveSummary, latest: RevolutionBin) -> None:
    summary.latest_revolution = latest.revolution
    summary.latest_t_start_ijd = latest.t_start_ijd
    summary.latest_t_stop_ijd = latest.t_stop_ijd
    summary.latest_n_points = latest.n
    summary.latest_sum_w = latest.sw
    summary.latest_sum_wf = latest.swf
    summary.latest_sum_w2s2 = latest.sw2s2


def _fold_latest(summary: LightCurveSummary) -> None:
    """Move the latest bin into the history (a newer revolution has arrived)."""
    flux = summary.latest_sum_wf / summary.latest_sum_w
    summary.n_revolutions += 1
    summary.sum_w += summary.latest_sum_w
    summary.sum_wf += summary.latest_sum_wf
    summary.sum_w2s2 += summary.latest_sum_w2s2
    summary.sum_bin_flux += flux
    summary.sum_bin_flux2 += flux * flux
    if summary.first_revolution is None:
        summary.first_revolution = summary.latest_revolution


def summary_from_bins(series: tuple, bins: list[RevolutionBin]) -> LightCurveSummary:
    """A summary built from all the revolution bins of a series (sorted by revolution)."""
    source_id, instrument_id, e_min, e_max = series
    history, latest = bins[:-1], bins[-1]
    summary = LightCurveSummary(
        source_id=source_id,
        instrument_id=instrument_id,
        e_min_kev=e_min,
        e_max_kev=e_max,
        band_key=band_key(e_min, e_max),
        n_revolutions=len(history),
        sum_w=sum(b.sw for b in history),
        sum_wf=sum(b.swf for b in history),
        sum_w2s2=sum(b.sw2s2 for b in history),
        sum_bin_flux=sum(b.flux for b in history),
        sum_bin_flux2=sum(b.flux**2 for b in history),
        first_revolution=bins[0].revolution,
    )
    _set_latest(summary, latest)
    return derive(summary)


# --- reading the bins -------------------------------------------------------------------------


def monitor_bins() -> QuerySet:
    """The bins the monitor uses: of products visible to everyone (newest versions), from
    points that carry their revolution (single-revolution products)."""
    return (
        FluxBin.objects.filter(
            from_revolution=True, n_points__gt=0, product__superseded_by__isnull=True
        )
        .filter(visibility_q(AnonymousUser(), prefix="product__"))
        .order_by()
    )


def revolution_bins(bins: QuerySet) -> Iterator[tuple[tuple, list[RevolutionBin]]]:
    """(series, bins sorted by revolution) of a queryset of FluxBins, streamed from one query."""
    group = (*_SERIES, "revolution")
    rows = (
        bins.values(*group)
        .annotate(**FLUXBIN_SUMS)
        .order_by(*group)
        .values_list(*group, *FLUXBIN_SUMS)
    )
    for series, items in groupby(rows.iterator(chunk_size=5000), key=lambda r: r[:4]):
        yield series, [RevolutionBin(*row[4:]) for row in items]


def _series_of(summary: LightCurveSummary) -> tuple:
    return (summary.source_id, summary.instrument_id, summary.e_min_kev, summary.e_max_kev)


def _lock() -> None:
    """Serialise refreshes (PostgreSQL; SQLite serialises writing transactions anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _try_lock() -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def summarise_now(product_ids: Iterable[int]) -> bool:
    """Write the bins of freshly stored products at once, so that light curves show them
    without waiting for the revolution's refresh. Returns False, doing nothing, while a refresh
    holds the lock: that refresh (or the revolution's, which follows) writes them."""
    with transaction.atomic():
        if not _try_lock():
            return False
        summarise_products(product_ids)
    return True


def _flux_units(product_ids: Iterable[int] | None = None) -> dict[tuple, str]:
    """The flux unit of each (source, instrument) in these products' bins (all when None)."""
    bins = FluxBin.objects.order_by()
    if product_ids is not None:
        bins = bins.filter(product_id__in=list(product_ids))
    return {
        (sid, iid): unit
        for sid, iid, unit in bins.values_list("source_id", "instrument_id", "flux_unit")
        .distinct()
        .iterator()
        if unit
    }


def _save(summaries: list[LightCurveSummary]) -> None:
    LightCurveSummary.objects.bulk_create(
        summaries,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["source", "instrument", "band_key"],
        update_fields=list(_STORED),
    )


def _delete(series: Iterable[tuple]) -> int:
    deleted = 0
    for source_id, instrument_id, e_min, e_max in series:
        deleted += LightCurveSummary.objects.filter(
            source_id=source_id, instrument_id=instrument_id, band_key=band_key(e_min, e_max)
        ).delete()[0]
    return deleted


# --- refreshing -------------------------------------------------------------------------------


def refresh_revolution(revolution: int, *, statistics: bool = True) -> RefreshReport:
    """Bring the bins, the monitor's summaries and the source statistics up to date after
    revolution ``revolution`` received products (or lost some to a newer version or a
    curator). Products spanning several revolutions count for their last one."""
    started = time.perf_counter()
    report = RefreshReport(revolution=revolution)
    with transaction.atomic():
        _lock()
        with report.step("bins"):
            products = list(
                Product.objects.filter(rev_last=revolution, rev_first__lte=revolution).values_list(
                    "pk", flat=True
                )
            )
            summarise_products(products)
        with report.step("revolution"):
            touched = set(
                FluxBin.objects.filter(revolution=revolution, from_revolution=True)
                .order_by()
                .values_list(*_SERIES)
                .distinct()
            )
            new_bins = {
                series: bins[0]
                for series, bins in revolution_bins(monitor_bins().filter(revolution=revolution))
            }
            source_ids = {s[0] for s in touched}
            existing = {
                _series_of(s): s
                for s in LightCurveSummary.objects.select_for_update().filter(
                    source_id__in=source_ids
                )
            }
            units = _flux_units(products)
        with report.step("summaries"):
            updated, recompute = [], set()
            for series in touched:
                summary, latest = existing.get(series), new_bins.get(series)
                if summary is None or latest is None or revolution < summary.latest_revolution:
                    recompute.add(series)
                    continue
                if revolution > summary.latest_revolution:
                    _fold_latest(summary)
                _set_latest(summary, latest)
                summary.flux_unit = units.get(series[:2], summary.flux_unit)
                updated.append(derive(summary))
            recomputed = _recompute(recompute, units)
            _save(updated + recomputed)
            report.series_deleted = _delete(recompute - {_series_of(s) for s in recomputed})
            report.series_updated, report.series_recomputed = len(updated), len(recomputed)
        if statistics:
            with report.step("statistics"):
                source_ids |= set(
                    FluxBin.objects.filter(product_id__in=products)
                    .order_by()
                    .values_list("source_id", flat=True)
                    .distinct()
                )
                report.sources_with_statistics = stats.store_statistics(
                    source_statistics(source_ids), source_ids
                )
    report.seconds = time.perf_counter() - started
    return report


def _recompute(series: set[tuple], units: dict[tuple, str]) -> list[LightCurveSummary]:
    if not series:
        return []
    of_sources = monitor_bins().filter(source_id__in={s[0] for s in series})
    out = []
    for key, bins in revolution_bins(of_sources):
        if key in series:
            summary = summary_from_bins(key, bins)
            summary.flux_unit = units.get(key[:2], "")
            out.append(summary)
    return out


def refresh_all(*, statistics: bool = True) -> RefreshReport:
    """Rebuild the bins, every summary and every source's statistics from the flux points."""
    started = time.perf_counter()
    report = RefreshReport()
    with transaction.atomic():
        _lock()
        with report.step("bins"):
            summarise_products(None)
        with report.step("summaries"):
            units = _flux_units()
            keep: set[tuple] = set()
            batch: list[LightCurveSummary] = []
            for series, bins in revolution_bins(monitor_bins()):
                summary = summary_from_bins(series, bins)
                summary.flux_unit = units.get(series[:2], "")
                batch.append(summary)
                keep.add((series[0], series[1], band_key(series[2], series[3])))
                if len(batch) >= 1000:
                    _save(batch)
                    report.series_recomputed += len(batch)
                    batch = []
            _save(batch)
            report.series_recomputed += len(batch)
            stale = [
                pk
                for pk, sid, iid, key in LightCurveSummary.objects.values_list(
                    "pk", "source_id", "instrument_id", "band_key"
                )
                if (sid, iid, key) not in keep
            ]
            report.series_deleted = LightCurveSummary.objects.filter(pk__in=stale).delete()[0]
        if statistics:
            with report.step("statistics"):
                all_ids = set(Source.objects.values_list("pk", flat=True))
                report.sources_with_statistics = stats.store_statistics(
                    source_statistics(), all_ids
                )
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # A rewritten table has no visibility map: index-only scans of the bins need one.
        with report.step("vacuum"), connection.cursor() as cursor:
            cursor.execute(f"VACUUM (ANALYZE) {FluxBin._meta.db_table}")
    report.seconds = time.perf_counter() - started
    return report


# --- the monitor ------------------------------------------------------------------------------


def transients(
    min_sigma: float = DEFAULT_MIN_SIGMA,
    *,
    since_revolution: int | None = None,
    instrument: str | None = None,
) -> QuerySet[LightCurveSummary]:
    """Series whose latest revolution exceeds the long-term mean by ``min_sigma``, newest
    first (then by excess)."""
    rows = LightCurveSummary.objects.filter(
        excess_sigma__gte=min_sigma, source__merged_into__isnull=True
    )
    if since_revolution is not None:
        rows = rows.filter(latest_revolution__gte=since_revolution)
    if instrument:
        rows = rows.filter(instrument__code=instrument)
    return rows.select_related("source", "instrument", "source__object_class").order_by(
        "-latest_revolution", "-excess_sigma", "source__name"
    )
