"""Long-term light curves: the flux points of a source, rebinned over the whole mission.

Which points
    The flux points ``user`` may see: those of the products ``Product.objects.visible_to``
    lets them see (the rule ``FluxPoint.objects.visible_to`` applies), and of the newest
    version of each product (a consolidated reprocessing replaces the near-real-time points of
    the same data rather than adding to them), with a positive flux error (a point without an
    error cannot be combined) and a positive weight. Visibility is decided per request for the
    few products of the source (``visible_product_ids``) rather than by joining every point
    to its product. A light curve is one instrument and one energy band: bands never mix.

How bins are combined (exposure weighting)
    Each point has the weight w = its exposure in seconds, or its duration when no exposure is
    recorded, and the value f = its flux; for a point stored as an upper limit, whose flux
    column holds the limit, f = significance × error, its measurement. A bin's flux is the
    exposure-weighted mean F = Σ w·f / Σ w, and its error the propagated error of that mean
    with fixed weights, σ_F = √(Σ w²·σ²) / Σ w. Exposure weights are chosen over
    inverse-variance weights because they do not depend on the measured values: for count
    rates whose errors grow with the rate, inverse-variance weights pull the mean towards
    downward fluctuations. For background-dominated coded-mask data the two agree within the
    errors. The bin's significance is F / σ_F (a single point's too, so that
    ``bin=scw`` follows the same rule as every other binning).

Upper limits
    A bin whose significance is below ``DETECTION_SIGMA`` (3) is an upper limit: its flux is
    the 2σ upper limit max(F, 0) + 2·σ_F, ``upper_limit`` is true, and the measured mean stays
    recoverable as significance × error.

Bins
    ``scw``: every point as it is (one per ScW or observation). ``revolution``: the point's
    revolution, or, for a product spanning several revolutions, the revolution of the point's
    mid time. Fixed widths (``1d``, ``7d``, ``30d``, ``<n>d`` or a number of seconds): the
    point's mid time floor-divided by the width, bins starting at multiples of the width from
    IJD 0 (2000-01-01T00:00 TT). A bin's time range is that of its points (earliest start,
    latest stop), so that plots show where the data are; ``t_mid`` is its middle.

Where the sums come from
    ``FluxBin`` holds the points of each product summed per source, band, revolution and whole
    day (IJD), written by ``summarise_products`` when a product is ingested and rebuilt by the
    periodic refresh. Revolution and whole-day binnings (``1d``, ``7d``, ``30d``, ``<n>d``)
    add those sums up in SQL; ``scw`` and other widths group the points themselves. Either way
    one GROUP BY returns sums per bin and product; the sums of the products the user may see
    are then added per bin and finished here with numpy. Sums add exactly, so both routes give
    the numbers of a direct computation over the points (checked by the tests).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.io.votable.tree import VOTableFile
from astropy.table import Table
from astropy.time import Time
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    F,
    FloatField,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Floor

from sources.models import Source

from . import timeline
from .models import (
    FluxBin,
    FluxPoint,
    Instrument,
    Product,
    visibility_q,
)

#: Bins below this significance (σ) are upper limits.
DETECTION_SIGMA = 3.0
#: Upper limits are max(F, 0) + UPPER_LIMIT_SIGMA · σ_F.
UPPER_LIMIT_SIGMA = 2.0
#: Two energy bands are the same when both bounds agree to this (keV).
BAND_TOLERANCE_KEV = 0.05
#: Named binnings, and the fixed widths (days) of the named time bins.
NAMED_BINS = {"scw": None, "revolution": None, "1d": 1.0, "7d": 7.0, "30d": 30.0}
MIN_BIN_SECONDS = 1.0
MAX_BIN_SECONDS = 1e9
SECONDS_PER_DAY = 86400.0
FORMATS = ("json", "csv", "fits", "votable")

#: Columns of a light curve, in the order of every download format.
COLUMNS = (
    "t_start_ijd",
    "t_stop_ijd",
    "t_mid_utc",
    "flux",
    "error",
    "significance",
    "exposure_s",
    "n_points",
    "upper_limit",
)


class LightCurveError(ValueError):
    """A request for a light curve that cannot be answered (the message says why)."""


# --- parameters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Binning:
    """How points are grouped: ``kind`` is scw, revolution or time (``width_days`` then)."""

    label: str
    kind: str
    width_days: float | None = None


_DAYS = re.compile(r"^(\d+(?:\.\d+)?)d$")
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?(?:e\d+)?)s?$")


def parse_binning(text: str | None) -> Binning:
    """``scw``, ``revolution``, ``1d``/``7d``/``30d`` (any ``<n>d``) or a number of seconds."""
    label = (text or "revolution").strip().lower()
    if label in ("scw", "revolution"):
        return Binning(label, label)
    days = _DAYS.match(label)
    if days:
        width = float(days.group(1))
        seconds = width * SECONDS_PER_DAY
    else:
        match = _SECONDS.match(label)
        if not match:
            raise LightCurveError(
                f"bin must be scw, revolution, 1d, 7d, 30d or a number of seconds, not {text!r}"
            )
        seconds = float(match.group(1))
        label = f"{seconds:g}"
        width = seconds / SECONDS_PER_DAY
    if not (math.isfinite(seconds) and MIN_BIN_SECONDS <= seconds <= MAX_BIN_SECONDS):
        raise LightCurveError(
            f"a bin must last between {MIN_BIN_SECONDS:g} and {MAX_BIN_SECONDS:g} seconds"
        )
    return Binning(label, "time", width)


def parse_energy(value: str | None, name: str) -> float | None:
    """A band bound in keV from a query parameter (None when absent)."""
    if value is None or str(value).strip() == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise LightCurveError(f"{name} must be a number of keV, not {value!r}") from None
    if not math.isfinite(number) or number < 0 or number > 1e6:
        raise LightCurveError(f"{name} must be a positive number of keV")
    return number


@dataclass(frozen=True)
class Band:
    """An instrument and energy band that holds light-curve points."""

    instrument: str
    e_min_kev: float | None
    e_max_kev: float | None
    n_points: int
    instrument_id: int = field(default=0, compare=False)

    def as_dict(self) -> dict:
        return {
            "instrument": self.instrument,
            "e_min_kev": self.e_min_kev,
            "e_max_kev": self.e_max_kev,
            "n_points": self.n_points,
        }

    def matches(self, e_min_kev: float | None, e_max_kev: float | None) -> bool:
        def close(a, b):
            return b is None or (a is not None and abs(a - b) <= BAND_TOLERANCE_KEV)

        return close(self.e_min_kev, e_min_kev) and close(self.e_max_kev, e_max_kev)


def choose_band(
    bands: list[Band],
    instrument: str | None = None,
    e_min_kev: float | None = None,
    e_max_kev: float | None = None,
) -> Band | None:
    """The band asked for; where the request leaves a choice, the one with most points."""
    if e_min_kev is not None and e_max_kev is not None and e_min_kev >= e_max_kev:
        raise LightCurveError("e_min must be below e_max")
    candidates = [
        b
        for b in bands
        if (instrument is None or b.instrument == instrument) and b.matches(e_min_kev, e_max_kev)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda b: (b.n_points, -(b.e_min_kev or 0.0)))


def instrument_code(value: str | None) -> str | None:
    """A known instrument code from a query parameter (case-insensitive); None when absent."""
    if value is None or not str(value).strip():
        return None
    code = str(value).strip().lower()
    if not Instrument.objects.filter(code=code).exists():
        known = ", ".join(Instrument.objects.order_by("code").values_list("code", flat=True))
        raise LightCurveError(f"unknown instrument {value!r}; use one of {known}")
    return code


# --- the light curve --------------------------------------------------------------------------


@dataclass
class LightCurve:
    """A binned light curve: one numpy array per column, plus what it is of."""

    source_slug: str
    source_name: str
    band: Band | None
    binning: Binning
    t_start_ijd: np.ndarray
    t_stop_ijd: np.ndarray
    flux: np.ndarray
    error: np.ndarray
    significance: np.ndarray
    exposure_s: np.ndarray
    n_points: np.ndarray
    upper_limit: np.ndarray
    available: list[Band] = field(default_factory=list)
    flux_unit: str = ""
    ra_deg: float | None = None
    dec_deg: float | None = None

    def __len__(self) -> int:
        return len(self.flux)

    @property
    def t_mid_ijd(self) -> np.ndarray:
        return 0.5 * (self.t_start_ijd + self.t_stop_ijd)

    def t_mid_utc(self) -> list[str]:
        return ijd_to_utc_strings(self.t_mid_ijd)

    def rows(self) -> list[tuple]:
        """The light curve as tuples in ``COLUMNS`` order (plain Python values)."""
        return list(
            zip(
                self.t_start_ijd.tolist(),
                self.t_stop_ijd.tolist(),
                self.t_mid_utc(),
                self.flux.tolist(),
                self.error.tolist(),
                self.significance.tolist(),
                self.exposure_s.tolist(),
                self.n_points.tolist(),
                self.upper_limit.tolist(),
                strict=True,
            )
        )

    def as_json(self) -> dict:
        """The JSON document of the API (the shape the source page plots)."""
        return {
            "source": self.source_slug,
            "instrument": self.band.instrument if self.band else None,
            "e_min_kev": self.band.e_min_kev if self.band else None,
            "e_max_kev": self.band.e_max_kev if self.band else None,
            "bin": self.binning.label,
            "flux_unit": self.flux_unit or "count/s",
            "points": [dict(zip(COLUMNS, row, strict=True)) for row in self.rows()],
            "available": [b.as_dict() for b in self.available],
        }

    def json_text(self) -> str:
        """``as_json()`` serialised, the points written by one format string per row (a
        few milliseconds less than json.dumps for thousands of points; the same document)."""
        numbers = (self.t_start_ijd, self.t_stop_ijd, self.flux, self.error, self.significance)
        if not all(np.isfinite(column).all() for column in (*numbers, self.exposure_s)):
            return json.dumps(self.as_json(), separators=(",", ":"))
        head = self.as_json() | {"points": [], "available": []}
        text = json.dumps(head, separators=(",", ":"))
        flags = ["true" if flag else "false" for flag in self.upper_limit.tolist()]
        rows = zip(
            self.t_start_ijd.tolist(),
            self.t_stop_ijd.tolist(),
            self.t_mid_utc(),
            self.flux.tolist(),
            self.error.tolist(),
            self.significance.tolist(),
            self.exposure_s.tolist(),
            self.n_points.tolist(),
            flags,
            strict=True,
        )
        points = ",".join(_POINT_JSON % row for row in rows)
        available = json.dumps([b.as_dict() for b in self.available], separators=(",", ":"))
        return text.replace(
            '"points":[],"available":[]', f'"points":[{points}],"available":{available}'
        )


#: One point of the JSON document (floats by repr, as json.dumps writes them).
_POINT_JSON = (
    '{"t_start_ijd":%r,"t_stop_ijd":%r,"t_mid_utc":"%s","flux":%r,"error":%r,'
    '"significance":%r,"exposure_s":%r,"n_points":%d,"upper_limit":%s}'
)


def ijd_to_utc_strings(ijd: np.ndarray) -> list[str]:
    """ISO UTC strings (to the second) of IJD (TT) times, vectorised through astropy.time."""
    if len(ijd) == 0:
        return []
    utc = Time(np.asarray(ijd, dtype=float) + timeline.MJDREF_IJD, format="mjd", scale="tt").utc
    # Milliseconds since 1970 from the two-part JD keep the precision of the conversion.
    ms = np.round(((utc.jd1 - 2440587.5) + utc.jd2) * SECONDS_PER_DAY * 1000.0).astype("int64")
    return np.datetime_as_string(ms.astype("datetime64[ms]"), unit="s").tolist()


def revolutions_of_ijd(ijd: np.ndarray) -> np.ndarray:
    """The revolution of each IJD (TT) time, as ``timeline.revolution_of`` does one by one."""
    ijd = np.atleast_1d(np.asarray(ijd, dtype=float))
    if ijd.size == 0:
        return np.zeros(0, dtype="int64")
    table = timeline.revolution_table()
    mjd = Time(ijd + timeline.MJDREF_IJD, format="mjd", scale="tt").utc.mjd
    inside = np.searchsorted(table.start_mjd_utc, mjd + 1e-8, side="right") - 1
    beyond = table.last + np.floor((mjd - table.start_mjd_utc[-1]) / table.period_days + 1e-9)
    revs = np.where(mjd < table.start_mjd_utc[-1], table.numbers[np.maximum(inside, 0)], beyond)
    # Before revolution 1 there is no revolution; such points go to revolution 0.
    return np.where(mjd < table.start_mjd_utc[0], 0, revs).astype("int64")


def visible_product_ids(user, product_ids: Iterable[int]) -> set[int]:
    """Which of ``product_ids`` ``user`` may see in light curves: the products of
    ``Product.objects.visible_to`` (the rule ``FluxPoint.objects.visible_to`` applies to
    points), newest versions only. Asked once per request for the few products of a source,
    instead of joining every point or bin to its product."""
    ids = sorted(set(product_ids))
    visible: set[int] = set()
    for lo in range(0, len(ids), 5000):  # SQLite limits the parameters of one query
        visible.update(
            Product.objects.visible_to(user)
            .filter(pk__in=ids[lo : lo + 5000], superseded_by__isnull=True)
            .values_list("pk", flat=True)
        )
    return visible


def weight_expression():
    # Exposure in seconds, or the point's duration when the file recorded no exposure.
    return Coalesce(
        F("exposure_s"),
        (F("t_stop_ijd") - F("t_start_ijd")) * Value(SECONDS_PER_DAY),
        output_field=FloatField(),
    )


def measured_expression():
    # An upper limit's flux column holds the limit; its measurement is significance × error.
    return Case(
        When(
            is_upper_limit=True,
            significance__isnull=False,
            then=F("significance") * F("flux_error"),
        ),
        default=F("flux"),
        output_field=FloatField(),
    )


def _mid_expression():
    return (F("t_start_ijd") + F("t_stop_ijd")) / Value(2.0)


#: Per-group sums of points (after ``.annotate(w=weight_expression())``).
BIN_SUMS = dict(
    n=Count("pk"),
    sw=Sum("w"),
    swf=Sum(F("w") * measured_expression()),
    sw2s2=Sum(F("w") * F("w") * F("flux_error") * F("flux_error")),
    t0=Min("t_start_ijd"),
    t1=Max("t_stop_ijd"),
)
#: The same sums over FluxBin rows.
FLUXBIN_SUMS = dict(
    n=Sum("n_points"),
    sw=Sum("sum_w"),
    swf=Sum("sum_wf"),
    sw2s2=Sum("sum_w2s2"),
    t0=Min("t_start_ijd"),
    t1=Max("t_stop_ijd"),
)
_BAND = ("instrument_id", "e_min_kev", "e_max_kev")


def binnable_points(points: QuerySet | None = None) -> QuerySet:
    """Points that enter light curves (positive error and weight), with their weight ``w``."""
    points = points if points is not None else FluxPoint.objects.all()
    return (
        points.filter(flux_error__gt=0).order_by().annotate(w=weight_expression()).filter(w__gt=0)
    )


# --- the bin table ----------------------------------------------------------------------------

#: Columns of FluxBin written by ``summarise_products``, in order.
_FLUXBIN_COLUMNS = (
    "source_id",
    "instrument_id",
    "product_id",
    "e_min_kev",
    "e_max_kev",
    "revolution",
    "day",
    "n_points",
    "sum_w",
    "sum_wf",
    "sum_w2s2",
    "t_start_ijd",
    "t_stop_ijd",
    "n_all",
    "n_detections",
    "first_detection_ijd",
    "last_detection_ijd",
    "peak_significance",
    "flux_min",
    "flux_max",
    "flux_unit",
    "from_revolution",
)
_GROUP = ("source_id", "instrument_id", "product_id", "e_min_kev", "e_max_kev")
_ORDER = ("source_id", "instrument_id", "e_min_kev", "e_max_kev", "revolution")


def detection_threshold() -> float:
    return float(getattr(settings, "GALLERY_DETECTION_THRESHOLD", 7.0))


def _bin_aggregates() -> dict:
    """What a FluxBin holds, as aggregates over points annotated with their weight ``w``."""
    binnable = Q(flux_error__gt=0, w__gt=0)
    detected = Q(significance__gte=detection_threshold(), is_upper_limit=False)
    zero = Value(0.0)
    return dict(
        n=Count("pk", filter=binnable),
        sw=Coalesce(Sum("w", filter=binnable), zero),
        swf=Coalesce(Sum(F("w") * measured_expression(), filter=binnable), zero),
        sw2s2=Coalesce(
            Sum(F("w") * F("w") * F("flux_error") * F("flux_error"), filter=binnable), zero
        ),
        # The time range of the points light curves combine (of all, when none is).
        t0=Coalesce(Min("t_start_ijd", filter=binnable), Min("t_start_ijd")),
        t1=Coalesce(Max("t_stop_ijd", filter=binnable), Max("t_stop_ijd")),
        n_all=Count("pk"),
        n_detections=Count("pk", filter=detected),
        first_detection_ijd=Min("t_start_ijd", filter=detected),
        last_detection_ijd=Max("t_stop_ijd", filter=detected),
        peak_significance=Max("significance"),
        flux_min=Min("flux", filter=detected),
        flux_max=Max("flux", filter=detected),
        flux_unit=Max("flux_unit"),
    )


def summarise_products(product_ids: Iterable[int] | None = None) -> int:
    """Rewrite the FluxBins of these products (of every product when None) from their points.

    Points that carry their revolution are summed by the database into the table (INSERT …
    SELECT … GROUP BY); those of products spanning several revolutions come back one by one,
    get the revolution of their mid time here, and are summed and stored. Returns the number
    of bins written. Writers are serialised by the caller (see ``products.transients``).
    """
    points = FluxPoint.objects.order_by().annotate(w=weight_expression())
    stale = FluxBin.objects.all()
    if product_ids is not None:
        ids = sorted(set(product_ids))
        if not ids:
            return 0
        points, stale = points.filter(product_id__in=ids), stale.filter(product_id__in=ids)
    day = Cast(Floor(_mid_expression()), IntegerField())
    aggregates = _bin_aggregates()
    with transaction.atomic():
        stale.delete()
        grouped = (
            points.filter(revolution__isnull=False)
            .annotate(day=day)
            .values(*_GROUP, "revolution", "day")
            .annotate(**aggregates)
            .annotate(from_revolution=Value(True))
        )
        sql, params = grouped.query.sql_with_params()
        aliases = (*_GROUP, "revolution", "day", *aggregates, "from_revolution")
        qn = connection.ops.quote_name
        with connection.cursor() as cursor:
            # Identifiers come from the model; every value travels as a parameter.
            cursor.execute(
                f"INSERT INTO {qn(FluxBin._meta.db_table)} "  # noqa: S608
                f"({', '.join(qn(c) for c in _FLUXBIN_COLUMNS)}) "
                f"SELECT {', '.join(qn(a) for a in aliases)} FROM ({sql}) summed "
                # Stored in the order light curves read them: a source's bins stay together.
                f"ORDER BY {', '.join(qn(c) for c in _ORDER)}",
                params,
            )
            written = max(cursor.rowcount, 0)
        loose = list(points.filter(revolution__isnull=True).values_list(*_GROUP, *_LOOSE_FIELDS))
        written += len(FluxBin.objects.bulk_create(_loose_bins(loose), batch_size=2000))
        if product_ids is None and connection.vendor == "postgresql":
            # The whole table was rewritten: the planner needs its new statistics at once.
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {qn(FluxBin._meta.db_table)}")
        return written


_LOOSE_FIELDS = (
    "t_start_ijd",
    "t_stop_ijd",
    "w",
    "flux_error",
    "flux",
    "significance",
    "is_upper_limit",
    "flux_unit",
)


class _Accumulator:
    """The FluxBin of a group of points, added up one point at a time."""

    def __init__(self) -> None:
        self.n = self.n_all = self.n_detections = 0
        self.sw = self.swf = self.sw2s2 = 0.0
        self.t0 = self.t1 = self.all_t0 = self.all_t1 = None
        self.first = self.last = self.peak = self.flux_min = self.flux_max = None
        self.unit = ""

    def add(self, t0, t1, w, error, flux, significance, is_upper_limit, unit, threshold) -> None:
        self.n_all += 1
        self.all_t0 = t0 if self.all_t0 is None else min(self.all_t0, t0)
        self.all_t1 = t1 if self.all_t1 is None else max(self.all_t1, t1)
        self.unit = max(self.unit, unit or "")
        if significance is not None:
            self.peak = significance if self.peak is None else max(self.peak, significance)
            if significance >= threshold and not is_upper_limit:
                self.n_detections += 1
                self.first = t0 if self.first is None else min(self.first, t0)
                self.last = t1 if self.last is None else max(self.last, t1)
                self.flux_min = flux if self.flux_min is None else min(self.flux_min, flux)
                self.flux_max = flux if self.flux_max is None else max(self.flux_max, flux)
        if error is None or error <= 0 or w is None or w <= 0:
            return
        value = significance * error if is_upper_limit and significance is not None else flux
        self.n += 1
        self.sw += w
        self.swf += w * value
        self.sw2s2 += w * w * error * error
        self.t0 = t0 if self.t0 is None else min(self.t0, t0)
        self.t1 = t1 if self.t1 is None else max(self.t1, t1)


def _loose_bins(rows: list[tuple]) -> list[FluxBin]:
    """FluxBins of points without a revolution: assigned by mid time, summed per group."""
    if not rows:
        return []
    threshold = detection_threshold()
    mids = np.array([0.5 * (r[5] + r[6]) for r in rows])
    groups: dict[tuple, _Accumulator] = {}
    for row, mid, rev in zip(rows, mids.tolist(), revolutions_of_ijd(mids).tolist(), strict=True):
        key = (*row[:5], rev, math.floor(mid))
        groups.setdefault(key, _Accumulator()).add(*row[5:], threshold)
    return [
        FluxBin(
            source_id=key[0],
            instrument_id=key[1],
            product_id=key[2],
            e_min_kev=key[3],
            e_max_kev=key[4],
            revolution=key[5],
            day=key[6],
            n_points=acc.n,
            sum_w=acc.sw,
            sum_wf=acc.swf,
            sum_w2s2=acc.sw2s2,
            t_start_ijd=acc.t0 if acc.t0 is not None else acc.all_t0,
            t_stop_ijd=acc.t1 if acc.t1 is not None else acc.all_t1,
            n_all=acc.n_all,
            n_detections=acc.n_detections,
            first_detection_ijd=acc.first,
            last_detection_ijd=acc.last,
            peak_significance=acc.peak,
            flux_min=acc.flux_min,
            flux_max=acc.flux_max,
            flux_unit=acc.unit,
            from_revolution=False,
        )
        for key, acc in groups.items()
    ]


# --- binning ----------------------------------------------------------------------------------


@dataclass
class BinStatistics:
    """A bin's flux, error, significance and upper-limit flag from its sums (numpy arrays)."""

    flux: np.ndarray
    error: np.ndarray
    significance: np.ndarray
    upper_limit: np.ndarray
    mean: np.ndarray


def finish_bins(sw, swf, sw2s2) -> BinStatistics:
    """Weighted mean, its error, significance and upper limits from the per-bin sums."""
    sw, swf, sw2s2 = (np.asarray(a, dtype=float) for a in (sw, swf, sw2s2))
    mean = swf / sw
    error = np.sqrt(sw2s2) / sw
    with np.errstate(divide="ignore", invalid="ignore"):
        significance = np.where(error > 0, mean / error, 0.0)
    upper = significance < DETECTION_SIGMA
    flux = np.where(upper, np.maximum(mean, 0.0) + UPPER_LIMIT_SIGMA * error, mean)
    return BinStatistics(flux, error, significance, upper, mean)


def _whole_days(binning: Binning) -> int | None:
    """The width in whole days, when the bin table can serve it."""
    width = binning.width_days
    if binning.kind == "time" and width is not None and width >= 1 and width == int(width):
        return int(width)
    return None


def _bin_sums(source_ids: list[int], band: Band, binning: Binning) -> np.ndarray:
    """Per (bin, product) sums of a band: columns key, product, n, Σw, Σwf, Σw²σ², t0, t1.

    Revolutions and whole days come from the bin table; ScWs and other widths from the points.
    """
    days = _whole_days(binning)
    if binning.kind == "revolution" or days is not None:
        rows = FluxBin.objects.filter(source_id__in=source_ids, n_points__gt=0)
        rows = rows.filter(_band_filter(band))
        key = F("revolution") if days is None else Floor(F("day") / Value(float(days)))
        rows = rows.order_by().annotate(k=key).values("k", "product_id").annotate(**FLUXBIN_SUMS)
    else:
        points = binnable_points().filter(source_id__in=source_ids).filter(_band_filter(band))
        key = (
            F("id")
            if binning.kind == "scw"
            else Floor(_mid_expression() / Value(binning.width_days))
        )
        rows = points.annotate(k=key).values("k", "product_id").annotate(**BIN_SUMS)
    # Plain rows straight from the cursor: thousands of bins need no model conversion.
    sql, params = rows.values_list("k", "product_id", *FLUXBIN_SUMS).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        values = cursor.fetchall()
    return np.array(values, dtype=float).reshape(-1, 8)


def _combine(sums: np.ndarray, visible: set[int]) -> np.ndarray:
    """Sums of the visible products' rows per bin key, in time order (same 8 columns)."""
    sums = sums[np.isin(sums[:, 1], np.fromiter(visible, dtype=float, count=len(visible)))]
    if len(sums) == 0:
        return sums
    keys, index = np.unique(sums[:, 0], return_inverse=True)
    out = np.zeros((len(keys), 8))
    out[:, 0] = keys
    for column in (2, 3, 4, 5):
        out[:, column] = np.bincount(index, weights=sums[:, column], minlength=len(keys))
    out[:, 6], out[:, 7] = np.inf, -np.inf
    np.minimum.at(out[:, 6], index, sums[:, 6])
    np.maximum.at(out[:, 7], index, sums[:, 7])
    return out[np.lexsort((out[:, 7], out[:, 6]))]


def source_ids_of(source) -> list[int]:
    """The source and the sources merged into it (their bins follow at the next rebuild)."""
    merged = Source.objects.filter(merged_into=source).values_list("pk", flat=True)
    return [source.pk, *merged]


def bands_of(source_ids: list[int], user) -> tuple[list[Band], set[int]]:
    """The bands of the sources' points ``user`` may see, and the visible product ids."""
    rows = list(
        FluxBin.objects.filter(source_id__in=source_ids, n_points__gt=0)
        .order_by()
        .values(*_BAND, "product_id")
        .annotate(n=Sum("n_points"))
        .values_list(*_BAND, "product_id", "n")
    )
    visible = visible_product_ids(user, {row[3] for row in rows})
    counts: dict[tuple, int] = {}
    for iid, e_min, e_max, product_id, n in rows:
        if product_id in visible:
            counts[(iid, e_min, e_max)] = counts.get((iid, e_min, e_max), 0) + n
    codes = dict(Instrument.objects.values_list("pk", "code"))
    bands = [
        Band(codes.get(iid, str(iid)), e_min, e_max, n, instrument_id=iid)
        for (iid, e_min, e_max), n in counts.items()
    ]
    bands.sort(key=lambda b: (b.instrument, b.e_min_kev or 0.0, b.e_max_kev or 0.0))
    return bands, visible


def _band_filter(band: Band) -> Q:
    q = Q(instrument_id=band.instrument_id)
    for name, value in (("e_min_kev", band.e_min_kev), ("e_max_kev", band.e_max_kev)):
        q &= Q(**{f"{name}__isnull": True}) if value is None else Q(**{name: value})
    return q


def light_curve(
    source,
    user=None,
    *,
    binning: Binning | str | None = None,
    instrument: str | None = None,
    e_min_kev: float | None = None,
    e_max_kev: float | None = None,
) -> LightCurve:
    """The light curve of ``source`` as ``user`` may see it, in the band asked for.

    Three small queries: the source's bands and products (bin table), which of those products
    the user may see, and the chosen band's sums per bin and product (bin table for
    revolutions and whole days, points otherwise). Sums of visible products are then added
    up per bin.
    """
    if not isinstance(binning, Binning):
        binning = parse_binning(binning)
    user = user if user is not None else AnonymousUser()
    source_ids = source_ids_of(source)
    bands, visible = bands_of(source_ids, user)
    band = choose_band(bands, instrument, e_min_kev, e_max_kev)
    common = dict(available=bands, ra_deg=source.ra_deg, dec_deg=source.dec_deg)
    if band is None:
        empty = np.zeros(0)
        curve = LightCurve(source.slug, source.name, None, binning, *([empty] * 8), **common)
        if instrument is not None:
            curve.band = Band(instrument, e_min_kev, e_max_kev, 0)
        return curve
    _, _, n, sw, swf, sw2s2, t0, t1 = _combine(_bin_sums(source_ids, band, binning), visible).T
    stats = finish_bins(sw, swf, sw2s2)
    return LightCurve(
        source_slug=source.slug,
        source_name=source.name,
        band=band,
        binning=binning,
        t_start_ijd=t0,
        t_stop_ijd=t1,
        flux=stats.flux,
        error=stats.error,
        significance=stats.significance,
        exposure_s=sw,
        n_points=n.astype("int64"),
        upper_limit=stats.upper_limit,
        **common,
    )


def flux_unit_of(source, band: Band | None) -> str:
    """The flux unit of a band's points (they share one; the first found is taken)."""
    if band is None or not band.instrument_id:
        return ""
    unit = (
        FluxBin.objects.filter(source_id__in=source_ids_of(source))
        .filter(_band_filter(band))
        .exclude(flux_unit="")
        .order_by()
        .values_list("flux_unit", flat=True)[:1]
    )
    return next(iter(unit), "")


# --- downloads --------------------------------------------------------------------------------

_NOTES = (
    "times: IJD = MJD - 51544.0 in TT; t_mid_utc is the middle of the bin in UTC",
    "flux: exposure-weighted mean of the points, error sqrt(sum(w^2 sigma^2))/sum(w)",
    f"upper_limit: significance < {DETECTION_SIGMA:g}; flux is then the "
    f"{UPPER_LIMIT_SIGMA:g}-sigma upper limit max(mean,0)+{UPPER_LIMIT_SIGMA:g}*error and the "
    "measured mean is significance*error",
)


def _describe(curve: LightCurve) -> list[str]:
    band = curve.band
    what = "no points"
    if band is not None:
        what = f"instrument {band.instrument}"
        if band.e_min_kev is not None and band.e_max_kev is not None:
            what += f", {band.e_min_kev:g}-{band.e_max_kev:g} keV"
    return [
        f"INTEGRAL Gallery light curve of {curve.source_name} ({curve.source_slug})",
        f"{what}; bin {curve.binning.label}; flux unit {curve.flux_unit or 'unknown'}",
        *_NOTES,
    ]


def to_csv(curve: LightCurve) -> str:
    """CSV with '#' comment lines, full float precision (the numbers of the JSON)."""
    out = io.StringIO()
    for line in _describe(curve):
        out.write(f"# {line}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in curve.rows():
        writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return out.getvalue()


def _header_common(curve: LightCurve) -> dict:
    band = curve.band
    instrument = band.instrument.upper() if band else ""
    cards = {
        "TELESCOP": ("INTEGRAL", "mission"),
        "INSTRUME": (instrument, "instrument code of the Gallery"),
        "OBJECT": (curve.source_name[:68], "source name"),
        "ORIGIN": ("INTEGRAL Gallery", ""),
        "BINNING": (curve.binning.label, "scw, revolution, <n>d or seconds"),
    }
    if curve.ra_deg is not None:
        cards["RA_OBJ"] = (curve.ra_deg, "[deg] source RA (ICRS)")
        cards["DEC_OBJ"] = (curve.dec_deg, "[deg] source Dec (ICRS)")
    if band is not None and band.e_min_kev is not None:
        cards["E_MIN"] = (band.e_min_kev, "[keV] lower bound of the band")
        cards["E_MAX"] = (band.e_max_kev, "[keV] upper bound of the band")
    return cards


def to_fits(curve: LightCurve) -> bytes:
    """An OGIP light-curve file: extension RATE with TIME, TIMEDEL, RATE, ERROR, FRACEXP."""
    timedel = curve.t_stop_ijd - curve.t_start_ijd
    with np.errstate(divide="ignore", invalid="ignore"):
        fracexp = np.where(timedel > 0, curve.exposure_s / (timedel * SECONDS_PER_DAY), 1.0).clip(
            0.0, 1.0
        )
    unit = curve.flux_unit or "count/s"
    columns = [
        fits.Column("TIME", "D", unit="d", array=curve.t_mid_ijd),
        fits.Column("TIMEDEL", "D", unit="d", array=timedel),
        fits.Column("RATE", "D", unit=unit, array=curve.flux),
        fits.Column("ERROR", "D", unit=unit, array=curve.error),
        fits.Column("FRACEXP", "D", array=fracexp),
        fits.Column("SIGNIFICANCE", "D", array=curve.significance),
        fits.Column("EXPOSURE", "D", unit="s", array=curve.exposure_s),
        fits.Column("NPOINTS", "J", array=curve.n_points.astype("int32")),
        fits.Column("UPPER_LIMIT", "L", array=curve.upper_limit.astype(bool)),
    ]
    hdu = fits.BinTableHDU.from_columns(columns, name="RATE")
    header = hdu.header
    for key, (value, comment) in {
        **_header_common(curve),
        "HDUCLASS": ("OGIP", "format conforms to OGIP standard"),
        "HDUCLAS1": ("LIGHTCURVE", "light curve dataset"),
        "HDUCLAS2": ("NET", "background-subtracted (deconvolved) rates"),
        "HDUCLAS3": ("RATE", "rates, not counts"),
        "MJDREF": (timeline.MJDREF_IJD, "[d] MJD of IJD 0: TIME is IJD"),
        "TIMESYS": ("TT", "time scale"),
        "TIMEUNIT": ("d", "unit of TIME, TIMEDEL, TSTART, TSTOP"),
        "TIMEREF": ("LOCAL", "times as recorded by the spacecraft"),
        "TIMEPIXR": (0.5, "TIME is the middle of the bin"),
        "TSTART": (float(curve.t_start_ijd.min()) if len(curve) else 0.0, "[d] first start"),
        "TSTOP": (float(curve.t_stop_ijd.max()) if len(curve) else 0.0, "[d] last stop"),
        "DETSIGMA": (DETECTION_SIGMA, "bins below this significance are upper limits"),
        "ULSIGMA": (UPPER_LIMIT_SIGMA, "upper limit RATE = max(mean,0)+ULSIGMA*ERROR"),
    }.items():
        header[key] = (value, comment)
    for line in _NOTES:
        header.add_comment(line)
    primary = fits.PrimaryHDU()
    for key, (value, comment) in _header_common(curve).items():
        primary.header[key] = (value, comment)
    buffer = io.BytesIO()
    fits.HDUList([primary, hdu]).writeto(buffer)
    return buffer.getvalue()


#: UCD and unit of each light-curve column in the VOTable.
_VOTABLE_FIELDS = {
    "t_start_ijd": ("time.start", "d", "Start of the bin (IJD: MJD - 51544, TT)"),
    "t_stop_ijd": ("time.end", "d", "End of the bin (IJD: MJD - 51544, TT)"),
    "t_mid_utc": ("time.epoch", None, "Middle of the bin, ISO 8601 UTC"),
    "flux": ("phot.flux", None, "Exposure-weighted mean flux, or the upper limit"),
    "error": ("stat.error;phot.flux", None, "1-sigma error of the mean flux"),
    "significance": ("stat.snr", None, "Mean flux over its error"),
    "exposure_s": ("time.duration;obs.exposure", "s", "Exposure of the bin's points"),
    "n_points": ("meta.number", None, "Flux points in the bin"),
    "upper_limit": ("meta.code", None, "True: flux is an upper limit"),
}


def vo_unit(unit: str) -> str | None:
    """A unit in the VOUnit syntax VOTable readers parse (None when astropy cannot read it)."""
    try:
        return u.Unit(unit).to_string("vounit")
    except ValueError:
        return None


def to_votable(curve: LightCurve) -> bytes:
    """A VOTable with UCDs and units (astropy.io.votable)."""
    table = Table(
        {
            "t_start_ijd": curve.t_start_ijd,
            "t_stop_ijd": curve.t_stop_ijd,
            "t_mid_utc": np.array(curve.t_mid_utc(), dtype="U19").reshape(-1),
            "flux": curve.flux,
            "error": curve.error,
            "significance": curve.significance,
            "exposure_s": curve.exposure_s,
            "n_points": curve.n_points.astype("int32"),
            "upper_limit": curve.upper_limit.astype(bool),
        }
    )
    votable = VOTableFile.from_table(table)
    votable.version = "1.4"
    resource = votable.resources[0]
    resource.description = "; ".join(_describe(curve))
    vot_table = resource.tables[0]
    vot_table.name = "lightcurve"
    for vo_field in vot_table.fields:
        ucd, unit, description = _VOTABLE_FIELDS[vo_field.name]
        vo_field.ucd = ucd
        unit = unit or (
            curve.flux_unit if vo_field.name in ("flux", "error") and curve.flux_unit else None
        )
        if unit:
            vo_field.unit = vo_unit(unit)
        vo_field.description = description
    buffer = io.BytesIO()
    votable.to_xml(buffer)
    return buffer.getvalue()


# --- per-source statistics --------------------------------------------------------------------


def source_statistics(source_ids: Iterable[int] | None = None) -> dict[int, dict[str, dict]]:
    """Per source and instrument, the statistics of the points everyone may see.

    Read from the bin table (the bins of products visible to everyone, newest versions). A
    detection is a point at or above ``GALLERY_DETECTION_THRESHOLD`` σ that is not an upper
    limit. Returns {source_id: {instrument_code: {n_points, n_detections,
    first_detection_ijd, last_detection_ijd, peak_significance, flux_min, flux_max,
    flux_unit}}} (see ``sources.stats.store_statistics``).
    """
    bins = FluxBin.objects.filter(product__superseded_by__isnull=True).filter(
        visibility_q(AnonymousUser(), prefix="product__")
    )
    if source_ids is not None:
        bins = bins.filter(source_id__in=list(source_ids))
    rows = (
        bins.order_by()
        .values("source_id", "instrument_id")
        .annotate(
            n_points=Sum("n_all"),
            n_detections=Sum("n_detections"),
            first_detection_ijd=Min("first_detection_ijd"),
            last_detection_ijd=Max("last_detection_ijd"),
            peak_significance=Max("peak_significance"),
            flux_min=Min("flux_min"),
            flux_max=Max("flux_max"),
            flux_unit=Max("flux_unit"),
        )
    )
    codes = dict(Instrument.objects.values_list("pk", "code"))
    out: dict[int, dict[str, dict]] = {}
    for row in rows.iterator():
        source_id = row.pop("source_id")
        code = codes.get(row.pop("instrument_id"), "?")
        out.setdefault(source_id, {})[code] = row
    return out
