#!/usr/bin/env python
"""Mission-scale data for the benchmarks of the API, the pages and the long-term light curves.

    python bench/generate.py --database-url postgres://postgres@127.0.0.1:5432/gallery_scale
    python bench/generate.py --database-url postgres://... --small --reset
    python bench/generate.py --database-url postgres://... --sources 3000 --revolutions 2900 \\
        --scws 200000 --products 1000000 --flux-points 10000000 --seed 0

The database is created (and migrated with ``manage.py migrate``) when missing; ``--reset``
drops and recreates it; a database that already holds products or sources is refused. The
defaults are the mission's scale: 3,000 sources, 2,900 revolutions, 200,000 ScWs, 1,000,000
products and 10,000,000 flux points. ``--small`` is a preset for quick trials.

What the data look like (all synthetic, deterministic for a seed):

* the 229 sources of the reference catalogue plus generated "IGR J…" sources, most of them
  along the Galactic plane, a fifth with aliases, classes from the SourceClass table;
* every revolution with its real start and end (products.timeline); a few observations per
  revolution (about 70 ScWs per revolution on average), each pointed at a source or a field,
  with ScW ids, obsid/expid, PI and times inside the revolution;
* per observation and instrument (ISGRI always, JEM-X1/JEM-X2 as they were operated): an image
  in each band and a source catalogue, linked to the detected sources and a few others in the
  field; per detected source a spectrum (with its SpectralFit) and a light curve per band;
  about 2 % long-baseline mosaics, stacked spectra and yearly light curves of monitored
  sources spanning up to hundreds of revolutions; some NRT products superseded by their CONS
  version; a few % proprietary (embargo in the past, in the future, or open-ended, granted to
  PI groups), hidden or draft; 0.5 % highlights;
* a flux point per ScW, detected source, instrument and band, with exposure, significance and
  upper limits; Crab, Cyg X-1, GRS 1915+105, 4U 1700-377 and GX 5-1 are monitored along the
  whole mission (over 1 % of the points each, i.e. over 100,000 at the default scale) and the
  Crab has about 1,200 products (the "source page with 1,000 products" benchmark);
* one small real PNG preview and one small FITS file, stored once through Django's storage
  (content-addressed like products.storage) and shared by every ProductFile row.

Speed: rows are generated as numpy columns and written with PostgreSQL's binary
``COPY … FROM STDIN`` (psycopg 3); the big tables get their secondary indexes and constraints
dropped and rebuilt inside the same transaction (so a failure leaves them as they were), and
everything is one transaction. On another database (SQLite) the same rows go through plain
INSERTs, slowly, which is enough for tests. Then sequences are reset, tables vacuumed and
analysed, and the light-curve summaries and source statistics that the archive keeps from the
flux points rebuilt (products.transients). Timings and sizes are printed and written to
bench/results/generate.json.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS_PATH = ROOT / "bench" / "results" / "generate.json"


@dataclass(frozen=True)
class Scale:
    """How many rows of each kind to generate."""

    sources: int
    revolutions: int
    scws: int
    products: int
    flux_points: int


FULL = Scale(
    sources=3000, revolutions=2900, scws=200_000, products=1_000_000, flux_points=10_000_000
)
# The reference catalogue alone holds 229 sources, hence 300 rather than fewer.
SMALL = Scale(sources=300, revolutions=50, scws=2_000, products=5_000, flux_points=50_000)

# --- the instruments as the generator models them -------------------------------------------

UNITS = ("isgri", "jemx1", "jemx2")
UNIT_NAMES = ("IBIS/ISGRI", "JEM-X1", "JEM-X2")
BANDS_KEV = (
    ((20.0, 40.0), (40.0, 80.0), (80.0, 200.0)),
    ((3.0, 10.0), (10.0, 20.0)),
    ((3.0, 10.0), (10.0, 20.0)),
)
N_BANDS = np.array([len(b) for b in BANDS_KEV])
SPECTRUM_BAND_KEV = ((20.0, 300.0), (3.0, 35.0), (3.0, 35.0))
FIT_BAND_KEV = ((30.0, 300.0), (3.0, 30.0), (3.0, 30.0))
CATALOG_BAND_KEV = ((20.0, 40.0), (3.0, 20.0), (3.0, 20.0))
SPECTRUM_CHANNELS = (58, 14, 14)
#: Off-axis angle (deg) where the coded fraction starts to fall, and where it reaches zero.
FOV_FULL_DEG = np.array([4.5, 2.4, 2.4])
FOV_ZERO_DEG = np.array([14.5, 6.6, 6.6])
#: Significance of a 1 mCrab source on axis in 1 Ms of exposure.
SENSITIVITY = np.array([5.0, 1.8, 1.8])
LIVE_FRACTION = np.array([0.85, 0.9, 0.9])
#: Significance in each band relative to the first, count rate per mCrab and the 1-sigma error
#: of a rate times the square root of the exposure (count/s * s^0.5), per unit and band.
BAND_SIGNIFICANCE = ((1.0, 0.6, 0.25), (1.0, 0.45), (1.0, 0.45))
RATE_PER_MCRAB = ((0.10, 0.055, 0.025), (0.06, 0.02), (0.06, 0.02))
RATE_NOISE = ((22.0, 20.0, 25.0), (27.0, 15.0), (27.0, 15.0))
#: Energy flux (erg/cm2/s) of 1 mCrab in each unit's fit band.
FLUX_PER_MCRAB = (2.4e-11, 3.4e-11, 3.4e-11)
DETECTION_SIGMA = 7.0
UPPER_LIMIT_SIGMA = 3.0
#: In-field (undetected) sources linked to an image, at most.
IN_FIELD_LINKS = 5

#: Sources monitored along the whole mission; the first is the Crab.
MONITORED = ("Crab", "Cyg X-1", "GRS 1915+105", "4U 1700-377", "GX 5-1")
#: (ISGRI 20-40 keV mCrab, JEM-X 3-10 keV mCrab, variability amplitude, photon index)
KNOWN_SOURCES = {
    "Crab": (1000.0, 1000.0, 0.02, 2.1),
    "Cyg X-1": (900.0, 500.0, 0.4, 1.7),
    "GRS 1915+105": (300.0, 1200.0, 0.8, 2.6),
    "4U 1700-377": (250.0, 150.0, 0.5, 2.3),
    "GX 5-1": (60.0, 1500.0, 0.15, 3.0),
    "GX 339-4": (150.0, 300.0, 1.2, 1.8),
    "Cyg X-3": (200.0, 400.0, 0.4, 3.0),
    "Sco X-1": (300.0, 10000.0, 0.2, 3.5),
    "Vela X-1": (300.0, 200.0, 0.6, 2.2),
    "1A 0535+262": (100.0, 60.0, 1.5, 2.0),
    "V404 Cyg": (20.0, 20.0, 2.0, 1.8),
}
#: Products of the Crab per million products, and each monitored source's share of the points.
CRAB_PRODUCTS_PER_MILLION = 1200
MONITORED_POINTS_FRACTION = 0.0115
#: No observation but the Crab's own points closer than this to the Crab, so that its product
#: count is under control.
CRAB_EXCLUSION_DEG = FOV_ZERO_DEG[0] + 1.5

# Shares of the product mix.
PREDECESSOR_FRACTION = 0.03
LONG_BASELINE_FRACTION = 0.02
PROPRIETARY_OBS_FRACTION = 0.05
HIDDEN_FRACTION = 0.02
DRAFT_FRACTION = 0.01
HIGHLIGHT_FRACTION = 0.005
PI_GROUPS = 20

#: Synthetic PI surnames (common ones, standing for nobody in particular).
PI_SURNAMES = (
    "Andersen",
    "Baker",
    "Costa",
    "Dubois",
    "Eriksson",
    "Fischer",
    "García",
    "Horvat",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Laine",
    "Moreau",
    "Novak",
    "Olsen",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Virtanen",
    "Weber",
    "Young",
)

# --- small numpy helpers -------------------------------------------------------------------

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
US_PER_DAY = 86_400_000_000
_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def to_us(value: datetime) -> int:
    """Microseconds since 2000-01-01 UTC (PostgreSQL's epoch), the generator's time unit."""
    delta = value - PG_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return PG_EPOCH + timedelta(microseconds=int(value))


def ragged(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The ranges [start, start + count) concatenated, without a Python loop."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.repeat(np.asarray(starts, dtype=np.int64) - offsets, counts) + np.arange(total)


def allocate(total: int, weights: np.ndarray, minimum: Any = 0) -> np.ndarray:
    """Integers that sum to ``total``, each at least ``minimum``, the rest shared by weight."""
    weights = np.asarray(weights, dtype=float)
    minimum = np.broadcast_to(np.asarray(minimum, dtype=np.int64), weights.shape)
    rest = int(total) - int(minimum.sum())
    if rest < 0:
        raise ValueError(f"cannot share {total} with a minimum of {int(minimum.sum())}")
    share = weights / weights.sum() * rest
    base = np.floor(share).astype(np.int64)
    left = rest - int(base.sum())
    if left:
        base[np.argsort(-(share - base), kind="stable")[:left]] += 1
    return minimum + base


def group_starts(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unique keys, first index, count) of runs in a sorted key array."""
    if sorted_keys.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return sorted_keys[:0], empty, empty
    change = np.flatnonzero(np.diff(sorted_keys)) + 1
    starts = np.concatenate([[0], change])
    counts = np.diff(np.concatenate([starts, [sorted_keys.size]]))
    return sorted_keys[starts], starts, counts


def rank_in_groups(sorted_keys: np.ndarray) -> np.ndarray:
    """0, 1, 2… within each run of equal keys of a sorted array."""
    _, starts, counts = group_starts(sorted_keys)
    return np.arange(sorted_keys.size) - np.repeat(starts, counts)


def random_hex(rng: np.random.Generator, n: int, nbytes: int = 32) -> np.ndarray:
    """``n`` random hexadecimal strings of ``2 * nbytes`` characters (dtype S)."""
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    return np.ascontiguousarray(_HEX[raw]).view(f"S{2 * nbytes}").ravel()


def random_uuid4(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` version-4 UUIDs as rows of 16 bytes."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(n, 3) unit vectors, the formula of sources.sky.unit_vector."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=1)


def position_columns(ra_deg: np.ndarray, dec_deg: np.ndarray) -> dict[str, np.ndarray]:
    """The stored position columns (sources.sky.position_fields) for arrays of positions."""
    import astropy.units as u
    from astropy.coordinates import Latitude, Longitude
    from astropy_healpix import HEALPix

    from sources.sky import STORAGE_ORDER

    ra = np.mod(np.asarray(ra_deg, dtype=float), 360.0)
    ra[ra >= 360.0] = 0.0
    dec = np.asarray(dec_deg, dtype=float)
    healpix = HEALPix(nside=2**STORAGE_ORDER, order="nested").lonlat_to_healpix(
        Longitude(ra * u.deg), Latitude(dec * u.deg)
    )
    xyz = unit_vectors(ra, dec)
    return {
        "ra_deg": ra,
        "dec_deg": dec,
        "healpix": np.asarray(healpix, dtype=np.int64),
        "cx": xyz[:, 0],
        "cy": xyz[:, 1],
        "cz": xyz[:, 2],
    }


def angular_separation_deg(xyz: np.ndarray, ref_xyz: np.ndarray) -> np.ndarray:
    """Separation (deg) of each row of ``xyz`` from each row of ``ref_xyz``: (n, m)."""
    return np.degrees(np.arccos(np.clip(xyz @ ref_xyz.T, -1.0, 1.0)))


def coded_fraction(offaxis_deg: np.ndarray, unit: np.ndarray | int) -> np.ndarray:
    """Fraction of the mask pattern seen at an off-axis angle (1 in the fully coded field)."""
    full, zero = FOV_FULL_DEG[unit], FOV_ZERO_DEG[unit]
    return np.clip((zero - offaxis_deg) / (zero - full), 0.0, 1.0)


def offset_positions(
    rng: np.random.Generator, ra: np.ndarray, dec: np.ndarray, sigma_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Positions scattered around (ra, dec) by a Gaussian of ``sigma_deg`` on the sky."""
    dd = rng.normal(0.0, sigma_deg, ra.size)
    dr = rng.normal(0.0, sigma_deg, ra.size) / np.maximum(np.cos(np.radians(dec)), 0.05)
    return np.mod(ra + dr, 360.0), np.clip(dec + dd, -89.9, 89.9)


def galactic_to_icrs(l_deg: np.ndarray, b_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    icrs = SkyCoord(l=l_deg * u.deg, b=b_deg * u.deg, frame="galactic").icrs
    return icrs.ra.deg, icrs.dec.deg


# --- writers -------------------------------------------------------------------------------


@dataclass
class Null:
    """Column values with a null mask (null rows hold any value of the right type, or None)."""

    values: Any
    mask: np.ndarray


@dataclass
class TableTiming:
    table: str
    rows: int
    seconds: float
    index_seconds: float = 0.0
    encode_seconds: float = 0.0


_PG_FIXED = {
    "bigint": ">i8",
    "integer": ">i4",
    "smallint": ">i2",
    "double precision": ">f8",
    "real": ">f4",
    "timestamp with time zone": ">i8",  # microseconds since 2000-01-01 UTC, as given
}
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_BINARY_TRAILER = (-1).to_bytes(2, "big", signed=True)


@dataclass
class _Encoded:
    """One column of a batch: ``values`` (1-D, of the wire dtype, e.g. '>f8' or 'S16') when
    every row holds a value of the same size, else per-row lengths (-1 for NULL) and
    payloads."""

    values: np.ndarray | None = None
    lengths: np.ndarray | None = None
    items: list | None = None


def _encode_text(values: Any, jsonb: bool) -> tuple[np.ndarray, list]:
    prefix = b"\x01" if jsonb else b""  # the jsonb binary format's version byte
    if isinstance(values, np.ndarray):
        values = values.tolist()  # bytes (trailing NULs dropped) or str
    items = [
        b"" if v is None else prefix + (v.encode() if isinstance(v, str) else bytes(v))
        for v in values
    ]
    return np.fromiter(map(len, items), dtype=np.int64, count=len(items)), items


def _encode_column(pgtype: str, values: Any, n: int) -> _Encoded:
    mask = None
    if isinstance(values, Null):
        mask = np.asarray(values.mask, dtype=bool)
        values = values.values
        if not mask.any():
            mask = None
    if pgtype == "uuid":
        wire = np.ascontiguousarray(values, dtype=np.uint8).reshape(n, 16).view("V16").ravel()
    elif pgtype == "boolean":
        wire = np.asarray(values, dtype=bool).astype(np.uint8)
    elif pgtype in _PG_FIXED:
        array = np.asarray(values)
        if mask is not None and array.dtype.kind == "f" and np.dtype(_PG_FIXED[pgtype]).kind == "i":
            array = np.where(mask, 0, array)  # NaN under the mask cannot become an integer
        wire = array.astype(_PG_FIXED[pgtype])
    elif (
        isinstance(values, np.ndarray)
        and values.dtype.kind == "S"
        and mask is None
        and pgtype != "jsonb"
        and n
        and bool((np.char.str_len(values) == values.dtype.itemsize).all())
    ):
        # Fixed-width strings (hashes, ScW ids) need no per-row work.
        wire = values
    else:
        lengths, items = _encode_text(values, jsonb=pgtype == "jsonb")
        if mask is not None:
            lengths = np.where(mask, -1, lengths)
            items = [b"" if m else v for v, m in zip(items, mask.tolist(), strict=True)]
            return _Encoded(lengths=lengths, items=items)
        if n and bool((lengths == lengths[0]).all()):
            # Text of one length in every row (a constant, an empty string): fixed size.
            width = int(lengths[0])
            wire = (
                np.frombuffer(b"".join(items), dtype=f"V{width}")
                if width
                else np.zeros(n, dtype="V0")
            )
            return _Encoded(values=wire)
        return _Encoded(lengths=lengths, items=items)
    if mask is None:
        return _Encoded(values=wire)
    raw = np.ascontiguousarray(wire).tobytes()
    width = wire.dtype.itemsize
    items = [b"" if m else raw[i * width : (i + 1) * width] for i, m in enumerate(mask.tolist())]
    return _Encoded(lengths=np.where(mask, -1, width), items=items)


def _fixed_run(columns: list[_Encoded], n: int, count: int | None) -> np.ndarray:
    """Columns of equal-size values as one packed record per row, preceded by the field
    count when ``count`` is given. The length words are the same in every row: they are
    written once into a template row that is broadcast, and numpy then copies whole typed
    values rather than single bytes."""
    fields: list[tuple[str, Any]] = [("count", ">i2")] if count is not None else []
    for i, c in enumerate(columns):
        fields.append((f"l{i}", ">i4"))
        if c.values.dtype.itemsize:
            fields.append((f"v{i}", c.values.dtype))
    dtype = np.dtype(fields)
    template = np.zeros(1, dtype=dtype)
    if count is not None:
        template["count"] = count
    for i, c in enumerate(columns):
        template[f"l{i}"] = c.values.dtype.itemsize
    rows = np.empty(n, dtype=dtype)
    rows.view(np.uint8).reshape(n, dtype.itemsize)[:] = template.view(np.uint8)
    for i, c in enumerate(columns):
        if c.values.dtype.itemsize:
            rows[f"v{i}"] = c.values
    return rows


def encode_binary_rows(columns: list[_Encoded], n: int) -> bytes | memoryview:
    """Rows of PostgreSQL's binary COPY format.

    When every column has values of one size, the rows are records of a packed numpy dtype.
    Otherwise each row is joined from segments: runs of such columns (records again, the
    field count in the first) and the length and payload of each other column. Putting the
    fixed-size columns first (see ``PostgresCopyWriter``) makes that one run.
    """
    import itertools
    import operator
    import struct

    ncols = len(columns)
    if all(c.values is not None for c in columns):
        return memoryview(_fixed_run(columns, n, count=ncols).view(np.uint8))
    segments: list[list] = []
    run: list[_Encoded] = []

    def flush() -> None:
        if run or not segments:
            rows = _fixed_run(run, n, count=None if segments else ncols)
            raw, width = rows.tobytes(), rows.dtype.itemsize
            segments.append([raw[i : i + width] for i in range(0, n * width, width)])
            run.clear()

    pack = struct.Struct(">i").pack
    for c in columns:
        if c.values is not None:
            run.append(c)
            continue
        flush()
        segments.append(list(map(operator.add, map(pack, c.lengths.tolist()), c.items)))
    if run:
        flush()
    return b"".join(itertools.chain.from_iterable(zip(*segments, strict=True)))


def prefetch(items: Iterable[Any], depth: int = 2) -> Iterator[Any]:
    """Iterate ``items`` in a thread, ``depth`` ahead: numpy builds and encodes the next batch
    while the database ingests the current one (two cores do two things)."""
    import queue
    import threading

    done = object()
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                slots.put(item)
            slots.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put(exc)

    thread = threading.Thread(target=produce, name="bench-generate-batches", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def _batch_length(batch: dict[str, Any]) -> int:
    first = next(iter(batch.values()))
    if isinstance(first, Null):
        first = first.values
    return len(first)


@dataclass(frozen=True)
class JsonConstant:
    """A JSON value written as the same text in every row."""

    text: str


class Writer:
    """Writes batches of column arrays into a model's table.

    A NOT NULL column the batches do not give (a field added to the model since this script
    was written) gets the field's default in every row, and the log says so; a nullable one
    stays NULL.
    """

    def __init__(self, connection, log: Callable[[str], None]) -> None:
        self.connection = connection
        self.log = log
        self.timings: list[TableTiming] = []

    def load(self, model, batches: Iterable[dict[str, Any]], rows: int) -> TableTiming:
        iterator = iter(batches)
        first = next(iterator, None)
        if first is None:
            return self._write(model, [], iter(()), 0)
        fills = self._defaults(model, list(first))

        def completed() -> Iterator[dict[str, Any]]:
            batch = first
            while batch is not None:
                n = _batch_length(batch)
                extra = {
                    c: ([v.text] * n if isinstance(v, JsonConstant) else _full(v, n))
                    for c, v in fills.items()
                }
                yield {**batch, **extra}
                batch = next(iterator, None)

        return self._write(model, list(first) + list(fills), completed(), rows)

    def _write(
        self, model, names: list[str], batches: Iterator[dict[str, Any]], rows: int
    ) -> TableTiming:
        raise NotImplementedError

    def _defaults(self, model, names: list[str]) -> dict[str, Any]:
        fills: dict[str, Any] = {}
        for f in model._meta.concrete_fields:
            if f.column in names or f.null or getattr(f, "generated", False):
                continue
            if f.has_default():
                value = f.get_default()
            elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                value = datetime.now(UTC)
            else:
                raise RuntimeError(
                    f"{model._meta.db_table}.{f.column} is required and has no default: "
                    "bench/generate.py must be taught to fill it"
                )
            if f.get_internal_type() == "JSONField":
                value = JsonConstant(json.dumps(value))
            elif isinstance(value, datetime):
                value = to_us(value)
            fills[f.column] = value
        if fills:
            self.log(
                f"  {model._meta.db_table}: {', '.join(fills)} filled with the model's defaults"
            )
        return fills

    def _report(self, timing: TableTiming) -> TableTiming:
        self.timings.append(timing)
        rate = timing.rows / timing.seconds if timing.seconds > 0 else float("inf")
        extra = ""
        if timing.encode_seconds:
            extra += f" (encoding {timing.encode_seconds:.1f} s)"
        if timing.index_seconds:
            extra += f"; indexes and constraints {timing.index_seconds:.1f} s"
        self.log(
            f"  {timing.table:<34} {timing.rows:>11,} rows {timing.seconds:7.1f} s "
            f"{rate:>10,.0f} rows/s{extra}"
        )
        return timing

    def finish(self, models: list) -> None:
        """Move each table's id sequence past the explicit ids written."""
        from django.core.management.color import no_style

        statements = self.connection.ops.sequence_reset_sql(no_style(), models)
        with self.connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


class PostgresCopyWriter(Writer):
    """Binary ``COPY … FROM STDIN`` through psycopg 3, in batches.

    Tables of at least ``detach_min_rows`` rows have their secondary indexes, unique and
    foreign-key constraints dropped for the copy and rebuilt after it, in the caller's
    transaction: a failure rolls the drop back with everything else.
    """

    def __init__(
        self, connection, log: Callable[[str], None], detach_min_rows: int = 200_000
    ) -> None:
        super().__init__(connection, log)
        self.detach_min_rows = detach_min_rows

    def _columns(self, cursor, table: str) -> dict[str, tuple[str, bool]]:
        cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod), attnotnull, attgenerated <> '', "
            "atthasdef FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped",
            [table],
        )
        return {
            name: (typ.split("(")[0], notnull and not generated and not hasdef)
            for name, typ, notnull, generated, hasdef in cursor.fetchall()
        }

    def _detach(self, cursor, table: str) -> list[str]:
        """Drop the table's secondary indexes and its unique and foreign-key constraints;
        return the statements that restore them."""
        # Rows written earlier in the transaction may have deferred foreign-key checks
        # pending, which forbid ALTER TABLE: run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute(
            "SELECT c.conname, pg_get_constraintdef(c.oid), c.contype FROM pg_constraint c "
            "WHERE c.conrelid = %s::regclass AND c.contype IN ('u', 'f') AND NOT EXISTS ("
            "  SELECT 1 FROM pg_constraint r WHERE c.contype = 'u' AND r.contype = 'f' "
            "  AND r.confrelid = c.conrelid AND r.conindid = c.conindid)",
            [table],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass "
            "AND NOT x.indisprimary AND NOT EXISTS ("
            "  SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid "
            "  AND c.conrelid = x.indrelid)",
            [table],
        )
        indexes = cursor.fetchall()
        quoted = self.connection.ops.quote_name(table)
        for name, _, _ in constraints:
            cursor.execute(
                f"ALTER TABLE {quoted} DROP CONSTRAINT {self.connection.ops.quote_name(name)}"
            )
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {self.connection.ops.quote_name(name)}")
        restore = [definition for _, definition in indexes]
        # Unique constraints before foreign keys; a foreign key is checked when it is added.
        for kind in ("u", "f"):
            restore += [
                f"ALTER TABLE {quoted} ADD CONSTRAINT {self.connection.ops.quote_name(name)} "
                f"{definition}"
                for name, definition, contype in constraints
                if contype == kind
            ]
        return restore

    def _write(
        self, model, names: list[str], batches: Iterator[dict[str, Any]], rows: int
    ) -> TableTiming:
        table = model._meta.db_table
        quote = self.connection.ops.quote_name
        t0 = time.perf_counter()
        written = 0
        encoding = 0.0
        restore: list[str] = []
        with self.connection.cursor() as wrapper:
            cursor = wrapper.cursor  # the psycopg cursor under Django's wrapper
            types = self._columns(cursor, table)
            if rows >= self.detach_min_rows:
                restore = self._detach(cursor, table)
            first = next(batches, None)
            if first is not None:
                missing = [c for c, (_, required) in types.items() if required and c not in names]
                unknown = [c for c in names if c not in types]
                if missing or unknown:
                    raise RuntimeError(
                        f"{table}: the generator does not match the model (columns missing: "
                        f"{missing}, unknown: {unknown}); update bench/generate.py"
                    )

                def encode(batch: dict[str, Any]) -> tuple[int, dict[str, _Encoded], float]:
                    if list(batch) != names:
                        raise RuntimeError(f"{table}: batches must have the same columns")
                    n = _batch_length(batch)
                    t_enc = time.perf_counter()
                    columns = {c: _encode_column(types[c][0], batch[c], n) for c in names}
                    return n, columns, time.perf_counter() - t_enc

                # Fixed-size columns first, so that they make one packed run per row.
                n0, columns0, seconds0 = encode(first)
                order = [c for c in names if columns0[c].values is not None] + [
                    c for c in names if columns0[c].values is None
                ]

                def encoded() -> Iterator[tuple[int, Any, float]]:
                    n, columns, seconds = n0, columns0, seconds0
                    while True:
                        t_enc = time.perf_counter()
                        data = encode_binary_rows([columns[c] for c in order], n)
                        yield n, data, seconds + time.perf_counter() - t_enc
                        batch = next(batches, None)
                        if batch is None:
                            return
                        n, columns, seconds = encode(batch)

                sql = (
                    f"COPY {quote(table)} ({', '.join(quote(c) for c in order)}) "
                    "FROM STDIN (FORMAT BINARY)"
                )
                last_report = time.perf_counter()
                with cursor.copy(sql) as copy:
                    copy.write(_BINARY_HEADER)
                    for n, data, seconds in prefetch(encoded()):
                        copy.write(data)
                        written += n
                        encoding += seconds
                        if time.perf_counter() - last_report > 30:
                            last_report = time.perf_counter()
                            elapsed = last_report - t0
                            self.log(
                                f"    {table}: {written:,} of {rows:,} rows, "
                                f"{written / elapsed:,.0f} rows/s"
                            )
                    copy.write(_BINARY_TRAILER)
            copied = time.perf_counter()
            if restore:
                # Transaction-local: sorts for the indexes and the joins that check the
                # foreign keys run in memory.
                cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
                cursor.execute("SET LOCAL work_mem = '256MB'")
                for statement in restore:
                    cursor.execute(statement)
        done = time.perf_counter()
        return self._report(
            TableTiming(table, written, copied - t0, done - copied if restore else 0.0, encoding)
        )


class InsertWriter(Writer):
    """Plain INSERTs through Django's connection, with each value prepared by its model field:
    the slow path for databases other than PostgreSQL (tests on SQLite)."""

    def _write(
        self, model, names: list[str], batches: Iterator[dict[str, Any]], rows: int
    ) -> TableTiming:
        import uuid

        table = model._meta.db_table
        quote = self.connection.ops.quote_name
        fields = {f.column: f for f in model._meta.concrete_fields}
        t0 = time.perf_counter()
        written = 0
        with self.connection.cursor() as cursor:
            for batch in batches:
                n = _batch_length(batch)
                columns = []
                for name in names:
                    f = fields[name]
                    values, mask = batch[name], None
                    if isinstance(values, Null):
                        values, mask = values.values, np.asarray(values.mask, dtype=bool)
                    internal = f.get_internal_type()
                    if internal == "UUIDField":
                        items = [
                            f.get_db_prep_value(uuid.UUID(bytes=bytes(r)), self.connection)
                            for r in np.asarray(values, dtype=np.uint8).reshape(n, 16)
                        ]
                    elif internal == "DateTimeField":
                        items = [
                            f.get_db_prep_value(from_us(v), self.connection)
                            for v in np.asarray(values).astype(np.int64).tolist()
                        ]
                    elif isinstance(values, np.ndarray) and values.dtype.kind == "S":
                        items = [v.decode() for v in values.tolist()]
                    elif isinstance(values, np.ndarray):
                        items = values.tolist()
                    else:
                        items = list(values)  # text and JSON text, stored as given
                    if mask is not None:
                        items = [
                            None if m else v for v, m in zip(items, mask.tolist(), strict=True)
                        ]
                    columns.append(items)
                # Table and column names come from the model, values go as parameters.
                sql = (
                    f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in names)}) "  # noqa: S608
                    f"VALUES ({', '.join(['%s'] * len(names))})"
                )
                cursor.executemany(sql, list(zip(*columns, strict=True)))
                written += n
        return self._report(TableTiming(table, written, time.perf_counter() - t0))


def writer_for(connection, log: Callable[[str], None], detach_min_rows: int = 200_000) -> Writer:
    if connection.vendor == "postgresql":
        return PostgresCopyWriter(connection, log, detach_min_rows)
    return InsertWriter(connection, log)


def batched(columns: dict[str, Any], n: int, size: int) -> Iterator[dict[str, Any]]:
    """Slices of ``size`` rows of a dict of equally long columns."""

    def cut(values, lo, hi):
        if isinstance(values, Null):
            return Null(cut(values.values, lo, hi), values.mask[lo:hi])
        if np.isscalar(values) or values is None:
            return values
        return values[lo:hi]

    for lo in range(0, n, size):
        hi = min(n, lo + size)
        yield {k: _full(cut(v, lo, hi), hi - lo) for k, v in columns.items()}


def _full(values: Any, n: int) -> Any:
    """A scalar stands for a constant column."""
    if isinstance(values, str):
        return np.array([values.encode()] * n, dtype=f"S{max(1, len(values.encode()))}")
    if isinstance(values, bool | int | float | np.generic):
        return np.full(n, values)
    return values


# --- the generated world -------------------------------------------------------------------


@dataclass
class Sky:
    """All sources (reference and generated), in id order."""

    ids: np.ndarray
    names: list[str]
    slugs: list[str]
    ra: np.ndarray
    dec: np.ndarray
    xyz: np.ndarray
    bright: np.ndarray  # (n, 3): mCrab in ISGRI 20-40 keV, JEM-X1, JEM-X2 3-10 keV
    variability: np.ndarray
    photon_index: np.ndarray
    monitored: np.ndarray  # indices, MONITORED order; [0] is the Crab

    @property
    def crab(self) -> int:
        return int(self.monitored[0])


@dataclass
class Revolutions:
    number: np.ndarray
    start_us: np.ndarray
    end_us: np.ndarray
    units: np.ndarray  # (R, 3) bool: ISGRI, JEM-X1, JEM-X2 operated
    year: np.ndarray
    has_data: np.ndarray
    nrt: np.ndarray


@dataclass
class Plan:
    """Observations, their ScWs and the (observation, unit, source) detections."""

    # observations, in time order
    obs_rev: np.ndarray  # revolution index (0-based)
    obs_nscw: np.ndarray
    obs_scw0: np.ndarray
    obs_ra: np.ndarray
    obs_dec: np.ndarray
    obs_xyz: np.ndarray
    obs_target: np.ndarray  # source index or -1 for a field
    obs_is_crab: np.ndarray
    obs_t0: np.ndarray
    obs_t1: np.ndarray
    obs_exposure: np.ndarray  # seconds of pointing, before live time and coding
    # ScWs, in time order
    scw_obs: np.ndarray
    scw_ptg: np.ndarray
    scw_t0: np.ndarray
    scw_t1: np.ndarray
    # candidates: a source in the field of view of a unit during an observation
    cand_obs: np.ndarray
    cand_src: np.ndarray
    cand_unit: np.ndarray
    cand_coding: np.ndarray
    cand_sig: np.ndarray  # significance scaled so that the weakest detection is 7 sigma
    cand_sel: np.ndarray  # detected (spectrum + light curves, or monitored points)
    cand_mon: np.ndarray  # a monitored source (points go to its yearly light curves)
    products_per_obs: int = 0
    predicted_products: int = 0
    crab_obs_products: int = 0


@dataclass
class Context:
    scale: Scale
    seed: int
    log: Callable[[str], None]
    writer: Writer
    now_us: int
    lookups: dict[str, dict[str, int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def rng(self, *stream: int) -> np.random.Generator:
        """An independent random stream per step, so that steps do not shift each other."""
        return np.random.default_rng([self.seed, *stream])


def _next_id(model) -> int:
    from django.db.models import Max

    return int(model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1


# --- lookups, groups -----------------------------------------------------------------------


def ensure_lookups(ctx: Context) -> None:
    """Instruments, product kinds and source classes (seeded by migrations, but gone after a
    test flush), and the PI groups and their members."""
    from django.contrib.auth.models import Group, User

    from products.catalogue import INSTRUMENTS, PRODUCT_KINDS
    from products.models import Instrument, ProductKind
    from sources.classes import SOURCE_CLASSES
    from sources.models import SourceClass

    for code, name, family, e_min, e_max, radius, band in INSTRUMENTS:
        Instrument.objects.get_or_create(
            code=code,
            defaults=dict(
                name=name,
                family=family,
                e_min_kev=e_min,
                e_max_kev=e_max,
                match_radius_arcmin=radius,
                default_fit_band_kev=band,
            ),
        )
    for code, name, category in PRODUCT_KINDS:
        ProductKind.objects.get_or_create(code=code, defaults=dict(name=name, category=category))
    for code, label, parent in SOURCE_CLASSES:
        SourceClass.objects.get_or_create(
            code=code,
            defaults=dict(label=label, parent=SourceClass.objects.filter(code=parent).first()),
        )
    groups = []
    for i in range(1, PI_GROUPS + 1):
        group, _ = Group.objects.get_or_create(name=f"bench-pi-{i:02d}")
        user, created = User.objects.get_or_create(username=f"bench-pi-{i:02d}")
        if created:
            user.set_unusable_password()
            user.save()
        user.groups.add(group)
        groups.append(group.pk)
    ctx.lookups = {
        "instrument": dict(Instrument.objects.values_list("code", "pk")),
        "kind": dict(ProductKind.objects.values_list("code", "pk")),
        "class": dict(SourceClass.objects.values_list("code", "pk")),
        "group": {str(i): pk for i, pk in enumerate(groups)},
    }


# --- sources -------------------------------------------------------------------------------


def _igr_name(ra: float, dec: float) -> str:
    hours = ra / 15.0
    hh = int(hours)
    tenths = int((hours - hh) * 600)  # minutes and tenths: 17h09.1m -> 091
    sign = "-" if dec < 0 else "+"
    adec = abs(dec)
    dd = int(adec)
    dm = int((adec - dd) * 60)
    return f"IGR J{hh:02d}{tenths:03d}{sign}{dd:02d}{dm:02d}"


def _swift_name(ra: float, dec: float) -> str:
    hours = ra / 15.0
    hh = int(hours)
    minutes = (hours - hh) * 60
    sign = "-" if dec < 0 else "+"
    adec = abs(dec)
    dd = int(adec)
    dm = int((adec - dd) * 60)
    return f"SWIFT J{hh:02d}{int(minutes):02d}.{int(minutes * 10) % 10}{sign}{dd:02d}{dm:02d}"


def _rosat_name(ra: float, dec: float) -> str:
    seconds = ra / 15.0 * 3600
    hh, rest = divmod(seconds, 3600)
    mm, ss = divmod(rest, 60)
    sign = "-" if dec < 0 else "+"
    arcsec = abs(dec) * 3600
    dd, rest = divmod(arcsec, 3600)
    dm, ds = divmod(rest, 60)
    return (
        f"1RXS J{int(hh):02d}{int(mm):02d}{int(ss * 10) // 10:02d}.{int(ss * 10) % 10}"
        f"{sign}{int(dd):02d}{int(dm):02d}{int(ds):02d}"
    )


def make_sources(ctx: Context) -> Sky:
    """The reference catalogue through the ORM, then the generated sources by COPY."""
    from django.utils.text import slugify

    from sources.catalog import load_reference_catalog
    from sources.models import Source, SourceName
    from sources.names import normalize_name

    t0 = time.perf_counter()
    load_reference_catalog()
    reference = list(
        Source.objects.order_by("pk").values_list("pk", "name", "slug", "ra_deg", "dec_deg")
    )
    ctx.log(
        f"  reference catalogue: {len(reference)} sources through the ORM in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    rng = ctx.rng(1)
    n_gen = max(0, ctx.scale.sources - len(reference))
    if ctx.scale.sources < len(reference):
        ctx.notes.append(
            f"{len(reference)} sources: the reference catalogue alone exceeds "
            f"--sources {ctx.scale.sources}"
        )
    taken = set(SourceName.objects.values_list("normalized", flat=True))
    taken_slugs = set(Source.objects.values_list("slug", flat=True))

    # Two populations: Galactic (plane and bulge) and extragalactic (isotropic).
    galactic = rng.random(n_gen) < 0.65

    def draw(count: int, gal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inner = rng.random(count) < 0.5
        l_deg = np.where(inner, rng.normal(0.0, 25.0, count), rng.uniform(-180, 180, count))
        b_deg = np.clip(rng.laplace(0.0, 1.5, count), -20, 20)
        ra_g, dec_g = galactic_to_icrs(l_deg, b_deg)
        ra_x = rng.uniform(0, 360, count)
        dec_x = np.degrees(np.arcsin(rng.uniform(-1, 1, count)))
        return np.where(gal, ra_g, ra_x), np.where(gal, dec_g, dec_x)

    ra, dec = draw(n_gen, galactic)
    names = [""] * n_gen
    todo = np.arange(n_gen)
    for _ in range(50):
        if todo.size == 0:
            break
        retry = []
        for i in todo.tolist():
            name = _igr_name(ra[i], dec[i])
            key = normalize_name(name)
            if key in taken:
                retry.append(i)
                continue
            taken.add(key)
            names[i] = name
        todo = np.array(retry, dtype=np.int64)
        if todo.size:
            ra[todo], dec[todo] = draw(todo.size, galactic[todo])
    if todo.size:
        raise RuntimeError("could not find free names for the generated sources")
    slugs = []
    for name in names:
        base = slugify(name.replace("+", "p"))[:100] or "source"
        slug, k = base, 2
        while slug in taken_slugs:
            slug, k = f"{base}-{k}", k + 1
        taken_slugs.add(slug)
        slugs.append(slug)

    codes = ctx.lookups["class"]
    plane_classes = (
        ("LMXB", 0.2),
        ("HMXB", 0.25),
        ("CV", 0.1),
        ("Pulsar", 0.05),
        ("Magnetar", 0.02),
        ("SNR", 0.03),
        ("X", 0.2),
        ("", 0.15),
    )
    extragalactic = (
        ("Seyfert1", 0.2),
        ("Seyfert2", 0.25),
        ("BLLac", 0.08),
        ("FSRQ", 0.07),
        ("QSO", 0.05),
        ("RadioGalaxy", 0.05),
        ("ClG", 0.03),
        ("CV", 0.05),
        ("X", 0.1),
        ("", 0.12),
    )

    def classes(table, count):
        labels, weights = zip(*table, strict=True)
        ids = np.array([codes.get(c, -1) if c else -1 for c in labels])
        return ids[rng.choice(len(labels), size=count, p=np.array(weights) / sum(weights))]

    class_id = np.where(galactic, classes(plane_classes, n_gen), classes(extragalactic, n_gen))
    first_id = _next_id(Source)
    ids = np.arange(first_id, first_id + n_gen)
    created = ctx.now_us - rng.integers(1, 400, n_gen) * US_PER_DAY
    pos = position_columns(ra, dec)
    ctx.writer.load(
        Source,
        batched(
            {
                "id": ids,
                **pos,
                "name": names,
                "slug": slugs,
                "error_radius_arcmin": np.round(rng.uniform(0.3, 2.5, n_gen), 2),
                "catalogue_url": "",
                "is_provisional": rng.random(n_gen) < 0.05,
                "description": "",
                "created": created,
                "updated": created,
                "object_class_id": Null(np.maximum(class_id, 0), class_id < 0),
            },
            n_gen,
            50_000,
        ),
        n_gen,
    )

    # Names: the canonical ones, SWIFT aliases for a fifth, 1RXS ones for some more.
    name_rows: list[tuple[int, str, bool]] = [
        (int(i), n, True) for i, n in zip(ids, names, strict=True)
    ]
    with_alias = rng.random(n_gen) < 0.2
    second = with_alias & (rng.random(n_gen) < 0.25)
    for i in np.flatnonzero(with_alias).tolist():
        for make in (_swift_name, _rosat_name) if second[i] else (_swift_name,):
            alias = make(ra[i], dec[i])
            key = normalize_name(alias)
            if key not in taken:
                taken.add(key)
                name_rows.append((int(ids[i]), alias, False))
    first_name = _next_id(SourceName)
    ctx.writer.load(
        SourceName,
        batched(
            {
                "id": np.arange(first_name, first_name + len(name_rows)),
                "name": [r[1] for r in name_rows],
                "normalized": [normalize_name(r[1]) for r in name_rows],
                "is_canonical": np.array([r[2] for r in name_rows]),
                "source_id": np.array([r[0] for r in name_rows], dtype=np.int64),
            },
            len(name_rows),
            50_000,
        ),
        len(name_rows),
    )

    # Brightness: catalogued sources are the famous ones; generated ones follow a logN-logS.
    n_ref = len(reference)
    all_names = [r[1] for r in reference] + names
    all_ra = np.concatenate([np.array([r[3] for r in reference], dtype=float), pos["ra_deg"]])
    all_dec = np.concatenate([np.array([r[4] for r in reference], dtype=float), pos["dec_deg"]])
    bright = np.empty((n_ref + n_gen, 3))
    bright[:n_ref, 0] = rng.lognormal(np.log(25.0), 0.9, n_ref)
    bright[n_ref:, 0] = np.minimum(0.6 * rng.random(n_gen) ** (-1 / 1.2), 400.0)
    bright[n_ref:, 0] *= np.where(galactic, 1.0, 0.5)
    soft = np.where(np.concatenate([np.ones(n_ref, bool), galactic]), 0.0, -0.7)
    bright[:, 1] = bright[:, 0] * rng.lognormal(soft, 0.6)
    variability = np.minimum(rng.lognormal(np.log(0.5), 0.6, n_ref + n_gen), 2.0)
    photon_index = np.clip(rng.normal(2.0, 0.4, n_ref + n_gen), 1.2, 3.5)
    by_key = {normalize_name(n): i for i, n in enumerate(all_names)}
    for name, (b_i, b_j, var, gamma) in KNOWN_SOURCES.items():
        i = by_key.get(normalize_name(name))
        if i is not None:
            bright[i, 0], bright[i, 1], variability[i], photon_index[i] = b_i, b_j, var, gamma
    bright[:, 2] = bright[:, 1]
    monitored = []
    for name in MONITORED:
        i = by_key.get(normalize_name(name))
        if i is None:
            # A reference catalogue without it: monitor the brightest source not taken yet.
            order = np.argsort(-bright[:, 0])
            i = int(next(k for k in order if k not in monitored))
            ctx.notes.append(
                f"{name} is not in the reference catalogue: monitoring {all_names[i]} instead"
            )
        monitored.append(i)
    all_slugs = [r[2] for r in reference] + slugs
    ctx.counts["sources"] = n_ref + n_gen
    return Sky(
        ids=np.concatenate([np.array([r[0] for r in reference], dtype=np.int64), ids]),
        names=all_names,
        slugs=all_slugs,
        ra=all_ra,
        dec=all_dec,
        xyz=unit_vectors(all_ra, all_dec),
        bright=bright,
        variability=variability,
        photon_index=photon_index,
        monitored=np.array(monitored, dtype=np.int64),
    )


# --- revolutions ---------------------------------------------------------------------------


def make_revolutions(ctx: Context) -> Revolutions:
    from products import timeline
    from products.models import Revolution

    n = ctx.scale.revolutions
    starts = np.array(
        [to_us(timeline.to_datetime(timeline.revolution_start(k))) for k in range(1, n + 2)],
        dtype=np.int64,
    )
    number = np.arange(1, n + 1)
    units = np.zeros((n, 3), dtype=bool)
    units[:, 0] = True
    # JEM-X2 alone at first, then JEM-X1 alone, then both (as operated, roughly).
    units[:, 1] = number >= 170
    units[:, 2] = (number < 170) | (number >= 1000)
    rng = ctx.rng(2)
    has_data = rng.random(n) >= 0.02  # safe modes and solar flares leave a few without data
    nrt = number > n - max(1, min(4, n // 10))
    has_data[nrt] = True
    year = np.array([from_us(s).year for s in starts[:-1]])
    level = np.where(~has_data, "", np.where(nrt, "NRT", "CONS"))
    ctx.writer.load(
        Revolution,
        batched(
            {
                "number": number,
                "start": starts[:-1],
                "end": starts[1:],
                "data_level": [str(x) for x in level],
            },
            n,
            50_000,
        ),
        n,
    )
    ctx.counts["revolutions"] = n
    return Revolutions(number, starts[:-1], starts[1:], units, year, has_data, nrt)


# --- observations and detections -----------------------------------------------------------


def _crab_schedule(ctx: Context, revs: Revolutions) -> tuple[np.ndarray, int]:
    """Revolutions of the Crab's own observations and their ScW count: enough observations
    for about CRAB_PRODUCTS_PER_MILLION products, long enough for the monitored points."""
    scale = ctx.scale
    data_revs = np.flatnonzero(revs.has_data)
    njemx = revs.units[:, 1:].sum(axis=1)
    per_obs = float(np.mean(5 + 4 * njemx[data_revs]))  # ISGRI 3 images, catalogue, spectrum
    bands = 3 + 2 * njemx
    years = np.unique(revs.year[data_revs]).size
    target = CRAB_PRODUCTS_PER_MILLION * scale.products / 1e6
    yearly = years * float(np.mean(bands[data_revs]))
    n_obs = int(round((target - yearly) / (per_obs * (1 + PREDECESSOR_FRACTION))))
    n_obs = max(1, min(n_obs, max(1, data_revs.size // 4)))
    picks = np.unique(np.round(np.linspace(0, data_revs.size - 1, n_obs + 2)[1:-1]).astype(int))
    crab_revs = data_revs[picks]
    need = MONITORED_POINTS_FRACTION * scale.flux_points
    nscw = int(math.ceil(need / bands[crab_revs].sum()))
    nscw = max(1, min(nscw, 400, int(0.25 * scale.scws / crab_revs.size)))
    return crab_revs, nscw


def plan_observations(
    ctx: Context, sky: Sky, revs: Revolutions, n_regular: int, crab_revs: np.ndarray, crab_nscw: int
) -> Plan:
    """Observations, ScWs and detections for ``n_regular`` observations besides the Crab's."""
    scale = ctx.scale
    rng = ctx.rng(3)
    regular_revs = np.setdiff1d(np.flatnonzero(revs.has_data), crab_revs)
    w_regular = scale.scws - crab_revs.size * crab_nscw
    if w_regular < regular_revs.size:
        # Fewer ScWs than revolutions: some revolutions stay without observations.
        regular_revs = np.sort(rng.choice(regular_revs, size=max(1, w_regular), replace=False))
    n_regular = min(max(n_regular, regular_revs.size), w_regular)

    # Observations per revolution (at least one), ScWs per revolution and per observation.
    rev_weight = np.clip(rng.normal(1.0, 0.25, regular_revs.size), 0.3, 2.0)
    obs_per_rev = 1 + rng.multinomial(n_regular - regular_revs.size, rev_weight / rev_weight.sum())
    scw_per_rev = allocate(w_regular, rev_weight, minimum=obs_per_rev)
    obs_rev = np.repeat(regular_revs, obs_per_rev)
    obs_nscw = np.empty(obs_rev.size, dtype=np.int64)
    first = np.cumsum(obs_per_rev) - obs_per_rev
    share = rng.gamma(1.5, size=obs_rev.size)
    for k, (lo, m) in enumerate(zip(first.tolist(), obs_per_rev.tolist(), strict=True)):
        obs_nscw[lo : lo + m] = allocate(int(scw_per_rev[k]), share[lo : lo + m], minimum=1)
    obs_rev = np.concatenate([obs_rev, crab_revs])
    obs_nscw = np.concatenate([obs_nscw, np.full(crab_revs.size, crab_nscw)])
    is_crab = np.concatenate([np.zeros(n_regular, bool), np.ones(crab_revs.size, bool)])
    order = np.lexsort((rng.random(obs_rev.size), obs_rev))
    obs_rev, obs_nscw, is_crab = obs_rev[order], obs_nscw[order], is_crab[order]
    n_obs = obs_rev.size

    # ScW times: the revolution's usable part (out of the radiation belts) cut into equal
    # steps; a pointing lasts 93 % of its step, the slew the rest.
    obs_scw0 = np.cumsum(obs_nscw) - obs_nscw
    scw_obs = np.repeat(np.arange(n_obs), obs_nscw)
    scw_rev = obs_rev[scw_obs]
    rev_scw_first = np.full(revs.number.size, -1, dtype=np.int64)
    _, firsts, counts = group_starts(scw_rev)
    rev_scw_first[scw_rev[firsts]] = firsts
    rev_scw_count = np.zeros(revs.number.size, dtype=np.int64)
    rev_scw_count[scw_rev[firsts]] = counts
    j = np.arange(scw_obs.size) - rev_scw_first[scw_rev]
    duration = revs.end_us[scw_rev] - revs.start_us[scw_rev]
    window0 = revs.start_us[scw_rev] + duration * 6 // 100
    step = duration * 88 // 100 // rev_scw_count[scw_rev]
    scw_t0 = window0 + j * step
    scw_t1 = scw_t0 + step * 93 // 100
    scw_ptg = j + 1
    obs_t0 = scw_t0[obs_scw0]
    obs_t1 = scw_t1[obs_scw0 + obs_nscw - 1]
    obs_exposure = np.bincount(scw_obs, weights=(scw_t1 - scw_t0) / 1e6, minlength=n_obs)

    # Targets: sources (bright and Galactic ones more often) or fields; none near the Crab
    # except the Crab's own observations.
    crab_sep = angular_separation_deg(sky.xyz, sky.xyz[[sky.crab]])[:, 0]
    weight = sky.bright[:, 0] ** 0.6
    weight[sky.monitored[1:]] *= 20
    weight[crab_sep < CRAB_EXCLUSION_DEG] = 0
    regular = np.flatnonzero(~is_crab)
    on_source = rng.random(regular.size) < 0.75
    target = np.full(n_obs, -1, dtype=np.int64)
    target[regular[on_source]] = rng.choice(
        sky.ids.size, size=int(on_source.sum()), p=weight / weight.sum()
    )
    target[is_crab] = sky.crab
    ra = np.zeros(n_obs)
    dec = np.zeros(n_obs)
    has_target = target >= 0
    ra[has_target], dec[has_target] = sky.ra[target[has_target]], sky.dec[target[has_target]]
    fields = regular[~on_source]
    todo = fields
    crab_xyz = sky.xyz[[sky.crab]]
    while todo.size:
        plane = rng.random(todo.size) < 0.5
        l_deg = rng.uniform(-180, 180, todo.size)
        b_deg = np.where(
            plane, rng.normal(0, 5, todo.size), np.degrees(np.arcsin(rng.uniform(-1, 1, todo.size)))
        )
        ra[todo], dec[todo] = galactic_to_icrs(l_deg, b_deg)
        sep = angular_separation_deg(unit_vectors(ra[todo], dec[todo]), crab_xyz)[:, 0]
        todo = todo[sep < CRAB_EXCLUSION_DEG]
    ra, dec = offset_positions(rng, ra, dec, 0.5)
    xyz = unit_vectors(ra, dec)

    njemx_units = revs.units[obs_rev, 1:].sum(axis=1)
    # Every monitored source gets its share of the points: observations of fields are
    # pointed at it until it has them (the Crab has its own observations).
    need = MONITORED_POINTS_FRACTION * scale.flux_points
    for m in sky.monitored[1:].tolist():
        sep = angular_separation_deg(xyz, sky.xyz[[m]])[:, 0]
        points = obs_nscw * (
            3 * (coded_fraction(sep, 0) >= 0.05)
            + 2 * njemx_units * (coded_fraction(sep, 1) >= 0.05)
        )
        short = need - points.sum()
        if short <= 0:
            continue
        movable = regular[(target[regular] < 0) | ~np.isin(target[regular], sky.monitored)]
        movable = movable[points[movable] == 0]
        movable = rng.permutation(movable)
        gain = obs_nscw[movable] * (3 + 2 * njemx_units[movable])
        take = movable[: int(np.searchsorted(np.cumsum(gain), short)) + 1]
        target[take] = m
        ra[take], dec[take] = offset_positions(
            rng, np.full(take.size, sky.ra[m]), np.full(take.size, sky.dec[m]), 0.5
        )
        xyz[take] = unit_vectors(ra[take], dec[take])

    # Candidates: every source in a unit's field of view.
    cand = {k: [] for k in ("obs", "src", "unit", "coding")}
    for lo in range(0, n_obs, 1000):
        sep = angular_separation_deg(xyz[lo : lo + 1000], sky.xyz)
        for unit in range(3):
            obs_i, src_i = np.nonzero(sep < FOV_ZERO_DEG[unit])
            obs_i = obs_i + lo
            keep = revs.units[obs_rev[obs_i], unit]
            obs_i, src_i = obs_i[keep], src_i[keep]
            coding = coded_fraction(sep[obs_i - lo, src_i], unit)
            keep = coding >= 0.05
            cand["obs"].append(obs_i[keep])
            cand["src"].append(src_i[keep])
            cand["unit"].append(np.full(int(keep.sum()), unit, dtype=np.int8))
            cand["coding"].append(coding[keep])
    c_obs, c_src, c_unit, c_coding = (
        np.concatenate(cand[k]) for k in ("obs", "src", "unit", "coding")
    )
    order = np.lexsort((c_src, c_unit, c_obs))
    c_obs, c_src, c_unit, c_coding = c_obs[order], c_src[order], c_unit[order], c_coding[order]
    exposure = obs_exposure[c_obs] * LIVE_FRACTION[c_unit]
    raw_sig = (
        SENSITIVITY[c_unit]
        * sky.bright[c_src, c_unit]
        * np.sqrt(exposure / 1e6)
        * c_coding
        * rng.lognormal(0.0, 0.25, c_obs.size)
    )
    is_mon = np.isin(c_src, sky.monitored)
    weight = obs_nscw[c_obs] * N_BANDS[c_unit]
    mon_points = int(weight[is_mon].sum())
    pool = 1.03 * max(0, scale.flux_points - mon_points)
    ranked = np.flatnonzero(~is_mon)
    ranked = ranked[np.argsort(-raw_sig[ranked], kind="stable")]
    cum = np.cumsum(weight[ranked])
    k = min(ranked.size, int(np.searchsorted(cum, pool)) + 1)
    selected = np.zeros(c_obs.size, dtype=bool)
    selected[ranked[:k]] = True
    selected[is_mon] = True
    threshold = raw_sig[ranked[k - 1]] if k else 1.0
    sig = raw_sig * (DETECTION_SIGMA / threshold)

    plan = Plan(
        obs_rev=obs_rev,
        obs_nscw=obs_nscw,
        obs_scw0=obs_scw0,
        obs_ra=ra,
        obs_dec=dec,
        obs_xyz=xyz,
        obs_target=target,
        obs_is_crab=is_crab,
        obs_t0=obs_t0,
        obs_t1=obs_t1,
        obs_exposure=obs_exposure,
        scw_obs=scw_obs,
        scw_ptg=scw_ptg,
        scw_t0=scw_t0,
        scw_t1=scw_t1,
        cand_obs=c_obs,
        cand_src=c_src,
        cand_unit=c_unit,
        cand_coding=c_coding,
        cand_sig=sig,
        cand_sel=selected,
        cand_mon=is_mon,
    )
    per_obs = 4 + 3 * njemx_units
    per_cand = np.where(is_mon, 1, 1 + N_BANDS[c_unit]) * selected
    plan.products_per_obs = int(per_obs.sum())
    plan.predicted_products = int(per_obs.sum() + per_cand.sum())
    plan.crab_obs_products = int(per_obs[is_crab].sum() + per_cand[is_crab[c_obs]].sum())
    if k == ranked.size and cum.size and cum[-1] < pool:
        ctx.notes.append(
            "the sources in the fields of view cannot give the flux points "
            "asked for: fewer were generated"
        )
    return plan


def make_plan(ctx: Context, sky: Sky, revs: Revolutions) -> tuple[Plan, np.ndarray]:
    """Find the number of observations that gives the product mix asked for (the per-
    observation products take 95 % of the total; NRT predecessors and long-baseline products
    the rest)."""
    crab_revs, crab_nscw = _crab_schedule(ctx, revs)
    goal = (1 - PREDECESSOR_FRACTION - LONG_BASELINE_FRACTION) * ctx.scale.products
    n_regular = max(1, int(ctx.scale.products / 75))
    plan = None
    for _ in range(6):
        plan = plan_observations(ctx, sky, revs, n_regular, crab_revs, crab_nscw)
        fixed = plan.crab_obs_products
        if abs(plan.predicted_products - goal) < 0.003 * ctx.scale.products:
            break
        n_regular = max(
            1, int(round(n_regular * (goal - fixed) / max(1, plan.predicted_products - fixed)))
        )
    ctx.log(
        f"  plan: {plan.obs_rev.size:,} observations ({crab_revs.size} of the Crab, "
        f"{crab_nscw} ScWs each), {int(plan.cand_sel.sum()):,} detections among "
        f"{plan.cand_obs.size:,} sources in fields of view"
    )
    return plan, crab_revs


def write_observations(ctx: Context, sky: Sky, revs: Revolutions, plan: Plan) -> np.ndarray:
    """Observation rows; returns their ids."""
    from products.models import Observation

    rng = ctx.rng(4)
    n = plan.obs_rev.size
    rev_number = revs.number[plan.obs_rev]
    year = revs.year[plan.obs_rev]
    ao = np.clip(year - 2002 + 1, 1, 99)
    target_key = np.where(plan.obs_target >= 0, plan.obs_target, sky.ids.size + np.arange(n))
    key = ao * 10_000_000 + target_key
    uniq, inverse = np.unique(key, return_inverse=True)
    proposal = inverse % 99_999 + 1
    by_key = np.argsort(inverse, kind="stable")
    seq = np.empty(n, dtype=np.int64)
    seq[by_key] = rank_in_groups(inverse[by_key]) + 1
    obs_in_rev = rank_in_groups(plan.obs_rev)
    pi_of_key = rng.integers(0, len(PI_SURNAMES) * 26, uniq.size)[inverse]
    obsids = [
        f"{a:02d}{p:05d}{s % 10_000:04d}"
        for a, p, s in zip(ao.tolist(), proposal.tolist(), seq.tolist(), strict=True)
    ]
    # Several targets can share a proposal number modulo 99,999: the sequence keeps obsids
    # unique, and the title carries the expid as well.
    expids = [
        f"{r:04d}{k + 1:04d}" for r, k in zip(rev_number.tolist(), obs_in_rev.tolist(), strict=True)
    ]
    labels = [
        sky.names[t] if t >= 0 else f"RA {r:.1f} Dec {d:+.1f}"
        for t, r, d in zip(
            plan.obs_target.tolist(), plan.obs_ra.tolist(), plan.obs_dec.tolist(), strict=True
        )
    ]
    titles = [
        f"{lab}, Rev. {r} ({e})"
        for lab, r, e in zip(labels, rev_number.tolist(), expids, strict=True)
    ]
    pis = [
        "INTEGRAL Science Operations" if crab else f"{chr(65 + p % 26)}. {PI_SURNAMES[p // 26]}"
        for crab, p in zip(plan.obs_is_crab.tolist(), pi_of_key.tolist(), strict=True)
    ]
    scw_text = scw_id_strings(plan, revs)
    scw_json = [
        json.dumps([s.decode() for s in scw_text[lo : lo + m].tolist()])
        for lo, m in zip(plan.obs_scw0.tolist(), plan.obs_nscw.tolist(), strict=True)
    ]
    first_id = _next_id(Observation)
    ids = np.arange(first_id, first_id + n)
    created = np.minimum(plan.obs_t1 + US_PER_DAY, ctx.now_us)
    ctx.writer.load(
        Observation,
        batched(
            {
                "id": ids,
                **position_columns(plan.obs_ra, plan.obs_dec),
                "title": titles,
                "obsid": obsids,
                "expid": expids,
                "pi_name": pis,
                "revolution_id": rev_number,
                "rev_first": rev_number,
                "rev_last": rev_number,
                "time_start": plan.obs_t0,
                "time_end": plan.obs_t1,
                "scw_ids": scw_json,
                "created": created,
            },
            n,
            20_000,
        ),
        n,
    )
    ctx.counts["observations"] = n
    ctx.counts["scws"] = int(plan.obs_nscw.sum())
    return ids


def scw_id_strings(plan: Plan, revs: Revolutions) -> np.ndarray:
    """``RRRRPPPPSSSF.VVV`` of every ScW (pointings; .000 in NRT revolutions), dtype S16."""
    rev_index = plan.obs_rev[plan.scw_obs]
    numbers = revs.number[rev_index]
    nrt = revs.nrt[rev_index]
    return np.array(
        [
            f"{r:04d}{p:04d}0010.00{0 if v else 1}".encode()
            for r, p, v in zip(numbers.tolist(), plan.scw_ptg.tolist(), nrt.tolist(), strict=True)
        ],
        dtype="S16",
    )


# --- products ------------------------------------------------------------------------------

KIND_CODES = ("image", "spectrum", "lightcurve", "catalog")
IMAGE, SPECTRUM, LIGHTCURVE, CATALOG = range(4)
PRODUCT_FIELDS = (
    "kind",
    "unit",
    "lo",
    "hi",
    "obs",
    "rev0",
    "rev1",
    "t0",
    "t1",
    "exposure",
    "ra",
    "dec",
    "target",
    "cand",
    "band",
    "segment",
    "nrt",
    "title",
    "created",
    "category",
)
PER_OBS, MONITORED_LC, LONG_MOSAIC, LONG_SPECTRUM, PREDECESSOR = range(5)


def _concat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for key in PRODUCT_FIELDS:
        values = [p[key] for p in parts]
        out[key] = (
            sum((list(v) for v in values), [])
            if key == "title"
            else np.concatenate([np.asarray(v) for v in values])
        )
    return out


def _part(n: int, **values: Any) -> dict[str, Any]:
    defaults = {"obs": -1, "target": -1, "cand": -1, "band": -1, "segment": -1, "nrt": False}
    out = {}
    for key in PRODUCT_FIELDS:
        value = values.get(key, defaults.get(key))
        if value is None:
            raise KeyError(key)
        out[key] = value if key == "title" else np.broadcast_to(np.asarray(value), (n,)).copy()
    return out


def _band_text(lo: float, hi: float) -> str:
    return f"{lo:g}–{hi:g} keV"


def build_products(
    ctx: Context, sky: Sky, revs: Revolutions, plan: Plan, obs_labels: list[str]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every product as columns (pre-order: not yet sorted by creation), and the links."""
    rng = ctx.rng(5)
    scale = ctx.scale
    units = revs.units[plan.obs_rev]
    nrt_obs = revs.nrt[plan.obs_rev]
    rev_no = revs.number[plan.obs_rev]
    cons_delay = rng.uniform(20, 60, plan.obs_rev.size) * US_PER_DAY
    nrt_delay = rng.uniform(2, 12, plan.obs_rev.size) * 3_600_000_000
    obs_created = plan.obs_t1 + np.where(nrt_obs, nrt_delay, cons_delay).astype(np.int64)
    parts = []

    # Images (one per band) and catalogues per observation and unit.
    ou_obs, ou_unit = np.nonzero(units)
    for unit in range(3):
        o = ou_obs[ou_unit == unit]
        for b, (lo, hi) in enumerate(BANDS_KEV[unit]):
            parts.append(
                _part(
                    o.size,
                    kind=IMAGE,
                    unit=unit,
                    lo=lo,
                    hi=hi,
                    obs=o,
                    rev0=rev_no[o],
                    rev1=rev_no[o],
                    t0=plan.obs_t0[o],
                    t1=plan.obs_t1[o],
                    exposure=plan.obs_exposure[o] * LIVE_FRACTION[unit],
                    ra=plan.obs_ra[o],
                    dec=plan.obs_dec[o],
                    band=b,
                    nrt=nrt_obs[o],
                    created=obs_created[o],
                    category=PER_OBS,
                    title=[
                        f"{obs_labels[i]} field, {UNIT_NAMES[unit]} {_band_text(lo, hi)} "
                        f"image, Rev. {r}"
                        for i, r in zip(o.tolist(), rev_no[o].tolist(), strict=True)
                    ],
                )
            )
        lo, hi = CATALOG_BAND_KEV[unit]
        in_unit = (plan.cand_unit == unit) & plan.cand_sel
        detected = np.bincount(plan.cand_obs[in_unit], minlength=plan.obs_rev.size)
        parts.append(
            _part(
                o.size,
                kind=CATALOG,
                unit=unit,
                lo=lo,
                hi=hi,
                obs=o,
                rev0=rev_no[o],
                rev1=rev_no[o],
                t0=plan.obs_t0[o],
                t1=plan.obs_t1[o],
                exposure=plan.obs_exposure[o] * LIVE_FRACTION[unit],
                ra=plan.obs_ra[o],
                dec=plan.obs_dec[o],
                nrt=nrt_obs[o],
                created=obs_created[o],
                category=PER_OBS,
                title=[
                    f"{UNIT_NAMES[unit]} source catalogue ({d} sources), {obs_labels[i]} field, "
                    f"Rev. {r}"
                    for i, d, r in zip(
                        o.tolist(), detected[o].tolist(), rev_no[o].tolist(), strict=True
                    )
                ],
            )
        )

    # A spectrum per detection, and a light curve per band for sources not monitored.
    sel = np.flatnonzero(plan.cand_sel)
    c_obs, c_unit, c_src = plan.cand_obs[sel], plan.cand_unit[sel], plan.cand_src[sel]
    c_exp = plan.obs_exposure[c_obs] * LIVE_FRACTION[c_unit] * plan.cand_coding[sel]
    spec_lo = np.array([b[0] for b in SPECTRUM_BAND_KEV])[c_unit]
    spec_hi = np.array([b[1] for b in SPECTRUM_BAND_KEV])[c_unit]
    parts.append(
        _part(
            sel.size,
            kind=SPECTRUM,
            unit=c_unit,
            lo=spec_lo,
            hi=spec_hi,
            obs=c_obs,
            rev0=rev_no[c_obs],
            rev1=rev_no[c_obs],
            t0=plan.obs_t0[c_obs],
            t1=plan.obs_t1[c_obs],
            exposure=c_exp,
            ra=sky.ra[c_src],
            dec=sky.dec[c_src],
            target=c_src,
            cand=sel,
            nrt=nrt_obs[c_obs],
            created=obs_created[c_obs],
            category=PER_OBS,
            title=[
                f"{sky.names[s]} {UNIT_NAMES[u]} {_band_text(*SPECTRUM_BAND_KEV[u])} spectrum, "
                f"Rev. {r}"
                for s, u, r in zip(
                    c_src.tolist(), c_unit.tolist(), rev_no[c_obs].tolist(), strict=True
                )
            ],
        )
    )
    lc_cand = sel[~plan.cand_mon[sel]]
    lc_cand = np.repeat(lc_cand, N_BANDS[plan.cand_unit[lc_cand]])
    lc_band = rank_in_groups(lc_cand)
    l_obs, l_unit, l_src = plan.cand_obs[lc_cand], plan.cand_unit[lc_cand], plan.cand_src[lc_cand]
    band_lo = np.array([[b[0] for b in bands] + [0] * (3 - len(bands)) for bands in BANDS_KEV])
    band_hi = np.array([[b[1] for b in bands] + [0] * (3 - len(bands)) for bands in BANDS_KEV])
    lc_lo, lc_hi = band_lo[l_unit, lc_band], band_hi[l_unit, lc_band]
    parts.append(
        _part(
            lc_cand.size,
            kind=LIGHTCURVE,
            unit=l_unit,
            lo=lc_lo,
            hi=lc_hi,
            obs=l_obs,
            rev0=rev_no[l_obs],
            rev1=rev_no[l_obs],
            t0=plan.obs_t0[l_obs],
            t1=plan.obs_t1[l_obs],
            exposure=plan.obs_exposure[l_obs] * LIVE_FRACTION[l_unit] * plan.cand_coding[lc_cand],
            ra=sky.ra[l_src],
            dec=sky.dec[l_src],
            target=l_src,
            cand=lc_cand,
            band=lc_band,
            nrt=nrt_obs[l_obs],
            created=obs_created[l_obs],
            category=PER_OBS,
            title=[
                f"{sky.names[s]} {UNIT_NAMES[u]} {_band_text(a, b)} light curve, Rev. {r}"
                for s, u, a, b, r in zip(
                    l_src.tolist(),
                    l_unit.tolist(),
                    lc_lo.tolist(),
                    lc_hi.tolist(),
                    rev_no[l_obs].tolist(),
                    strict=True,
                )
            ],
        )
    )

    # Yearly light curves of the monitored sources, per unit and band.
    mon = sel[plan.cand_mon[sel]]
    m_rep = np.repeat(mon, N_BANDS[plan.cand_unit[mon]])
    m_band = rank_in_groups(m_rep)
    m_obs, m_unit, m_src = plan.cand_obs[m_rep], plan.cand_unit[m_rep], plan.cand_src[m_rep]
    m_year = revs.year[plan.obs_rev[m_obs]]
    seg_key = ((m_src * 3 + m_unit) * 3 + m_band) * 10_000 + m_year
    seg_keys, seg_of = np.unique(seg_key, return_inverse=True)
    n_seg = seg_keys.size
    s_src = seg_keys // 10_000 // 9
    s_unit = seg_keys // 10_000 // 3 % 3
    s_band = seg_keys // 10_000 % 3
    s_rev0 = np.full(n_seg, np.iinfo(np.int64).max)
    np.minimum.at(s_rev0, seg_of, rev_no[m_obs])
    s_rev1 = np.zeros(n_seg, dtype=np.int64)
    np.maximum.at(s_rev1, seg_of, rev_no[m_obs])
    s_t0 = np.full(n_seg, np.iinfo(np.int64).max)
    np.minimum.at(s_t0, seg_of, plan.obs_t0[m_obs])
    s_t1 = np.zeros(n_seg, dtype=np.int64)
    np.maximum.at(s_t1, seg_of, plan.obs_t1[m_obs])
    s_exp = np.bincount(
        seg_of, weights=plan.obs_exposure[m_obs] * plan.cand_coding[m_rep], minlength=n_seg
    )
    s_lo, s_hi = band_lo[s_unit, s_band], band_hi[s_unit, s_band]
    last_rev_end = revs.end_us[np.searchsorted(revs.number, s_rev1)]
    s_created = np.minimum(
        last_rev_end + rng.uniform(30, 60, n_seg).astype(np.int64) * US_PER_DAY,
        ctx.now_us - 3_600_000_000,
    )
    parts.append(
        _part(
            n_seg,
            kind=LIGHTCURVE,
            unit=s_unit,
            lo=s_lo,
            hi=s_hi,
            rev0=s_rev0,
            rev1=s_rev1,
            t0=s_t0,
            t1=s_t1,
            exposure=s_exp,
            ra=sky.ra[s_src],
            dec=sky.dec[s_src],
            target=s_src,
            band=s_band,
            segment=np.arange(n_seg),
            created=s_created,
            category=MONITORED_LC,
            title=[
                f"{sky.names[s]} {UNIT_NAMES[u]} {_band_text(a, b)} light curve, Rev. {r0}–{r1}"
                for s, u, a, b, r0, r1 in zip(
                    s_src.tolist(),
                    s_unit.tolist(),
                    s_lo.tolist(),
                    s_hi.tolist(),
                    s_rev0.tolist(),
                    s_rev1.tolist(),
                    strict=True,
                )
            ],
        )
    )

    products = _concat(parts)
    n_main = len(products["title"])

    # The rest of the budget: NRT predecessors, then long-baseline mosaics and stacked spectra.
    excess = n_main - scale.products
    if excess > 0:
        # More per-observation products than asked for: drop the weakest light curves (their
        # flux points go with them).
        drop = np.flatnonzero((products["kind"] == LIGHTCURVE) & (products["category"] == PER_OBS))
        drop = drop[np.argsort(plan.cand_sig[products["cand"][drop]], kind="stable")][:excess]
        keep = np.ones(n_main, dtype=bool)
        keep[drop] = False
        products = {
            k: (
                [t for t, ok in zip(v, keep.tolist(), strict=True) if ok]
                if k == "title"
                else v[keep]
            )
            for k, v in products.items()
        }
        n_main = len(products["title"])
        ctx.notes.append(f"{drop.size} light curves dropped to keep to --products")
    per_obs_cons = np.flatnonzero((products["category"] == PER_OBS) & ~products["nrt"])
    n_pred = min(int(round(PREDECESSOR_FRACTION * per_obs_cons.size)), scale.products - n_main)
    n_long = scale.products - n_main - n_pred

    long_parts, long_links = _long_baseline(ctx, sky, revs, plan, n_long, n_main, rng)
    pred = rng.choice(per_obs_cons, size=n_pred, replace=False)
    pred.sort()
    predecessor = {
        k: ([v[i] for i in pred.tolist()] if k == "title" else v[pred].copy())
        for k, v in products.items()
    }
    predecessor["nrt"][:] = True
    predecessor["category"][:] = PREDECESSOR
    obs_of = predecessor["obs"]
    predecessor["created"] = plan.obs_t1[obs_of] + nrt_delay[obs_of].astype(np.int64)
    products = _concat([products, *long_parts, predecessor])
    products["successor"] = np.full(len(products["title"]), -1, dtype=np.int64)
    products["successor"][len(products["title"]) - n_pred :] = pred
    products["created"] = np.minimum(products["created"], ctx.now_us - 3_600_000_000)

    links = _links(plan, products, n_main, long_links, pred)
    return products, links


def _long_baseline(
    ctx: Context,
    sky: Sky,
    revs: Revolutions,
    plan: Plan,
    n_long: int,
    offset: int,
    rng: np.random.Generator,
):
    """Mosaics of often observed fields and stacked spectra of often detected sources, each
    over a span of revolutions (up to hundreds); none of them involves the Crab."""
    if n_long <= 0:
        return [], {
            "product": np.zeros(0, np.int64),
            "src": np.zeros(0, np.int64),
            "role": np.zeros(0, np.int8),
            "sig": np.zeros(0),
        }
    data_revs = revs.number[revs.has_data]
    max_span = min(600, data_revs.size)
    n_mos = int(round(0.6 * n_long))
    n_spec = n_long - n_mos

    def spans(n):
        span = np.round(np.exp(rng.uniform(np.log(5), np.log(max(6, max_span)), n))).astype(int)
        first = data_revs[rng.integers(0, data_revs.size, n)]
        last = np.minimum(first + span, data_revs[-1])
        return first, last

    def units(first: np.ndarray) -> np.ndarray:
        """ISGRI mostly, else the JEM-X unit operated at the span's start."""
        jemx = np.where(revs.units[np.searchsorted(revs.number, first), 1], 1, 2)
        return np.where(rng.random(first.size) < 0.7, 0, jemx)

    crab_sep = angular_separation_deg(sky.xyz, sky.xyz[[sky.crab]])[:, 0]
    targets = plan.obs_target[(plan.obs_target >= 0) & ~plan.obs_is_crab]
    targets = targets[crab_sep[targets] >= CRAB_EXCLUSION_DEG]
    if targets.size == 0:
        targets = np.flatnonzero(crab_sep >= CRAB_EXCLUSION_DEG)
    field = rng.choice(targets, size=n_mos)
    r0, r1 = spans(n_mos)
    unit = units(r0)
    band = (rng.random(n_mos) * N_BANDS[unit]).astype(int)
    lo = np.array([BANDS_KEV[u][b][0] for u, b in zip(unit.tolist(), band.tolist(), strict=True)])
    hi = np.array([BANDS_KEV[u][b][1] for u, b in zip(unit.tolist(), band.tolist(), strict=True)])
    i0 = np.searchsorted(revs.number, r0)
    i1 = np.searchsorted(revs.number, r1)
    exposure = (r1 - r0 + 1) * rng.uniform(5e3, 5e4, n_mos)
    created = revs.end_us[i1] + (rng.uniform(30, 120, n_mos) * US_PER_DAY).astype(np.int64)
    mosaics = _part(
        n_mos,
        kind=IMAGE,
        unit=unit,
        lo=lo,
        hi=hi,
        rev0=r0,
        rev1=r1,
        t0=revs.start_us[i0],
        t1=revs.end_us[i1],
        exposure=exposure,
        ra=sky.ra[field],
        dec=sky.dec[field],
        band=band,
        created=created,
        category=LONG_MOSAIC,
        title=[
            f"{sky.names[f]} field, {UNIT_NAMES[u]} {_band_text(a, b)} mosaic, Rev. {x}–{y}"
            for f, u, a, b, x, y in zip(
                field.tolist(),
                unit.tolist(),
                lo.tolist(),
                hi.tolist(),
                r0.tolist(),
                r1.tolist(),
                strict=True,
            )
        ],
    )
    # Links of a mosaic: the brightest sources in its field detected, a few more in the field.
    link_p, link_s, link_r, link_g = [], [], [], []
    for lo_i in range(0, n_mos, 2000):
        idx = np.arange(lo_i, min(n_mos, lo_i + 2000))
        sep = angular_separation_deg(sky.xyz[field[idx]], sky.xyz)
        radius = np.where(unit[idx] == 0, 12.0, 5.0)[:, None]
        score = np.where(
            (sep < radius) & (crab_sep[None, :] >= CRAB_EXCLUSION_DEG), sky.bright[None, :, 0], -1.0
        )
        top = np.argsort(-score, axis=1)[:, :16]
        top_score = np.take_along_axis(score, top, axis=1)
        rows, cols = np.nonzero(top_score > 0)
        src = top[rows, cols]
        sig = (
            SENSITIVITY[unit[idx[rows]]]
            * sky.bright[src, unit[idx[rows]]]
            * np.sqrt(exposure[idx[rows]] / 1e6)
            * 0.5
        )
        link_p.append(offset + idx[rows])
        link_s.append(src)
        link_r.append(np.where(cols < 12, 1, 2).astype(np.int8))
        link_g.append(
            np.where(
                cols < 12, np.maximum(sig, DETECTION_SIGMA), np.minimum(sig, DETECTION_SIGMA - 0.1)
            )
        )

    detections = plan.cand_src[plan.cand_sel & ~plan.cand_mon]
    detections = detections[crab_sep[detections] >= CRAB_EXCLUSION_DEG]
    if detections.size == 0:
        detections = np.flatnonzero(crab_sep >= CRAB_EXCLUSION_DEG)
    src = rng.choice(detections, size=n_spec)
    r0, r1 = spans(n_spec)
    unit = units(r0)
    i0 = np.searchsorted(revs.number, r0)
    i1 = np.searchsorted(revs.number, r1)
    exposure = (r1 - r0 + 1) * rng.uniform(2e3, 2e4, n_spec)
    created = revs.end_us[i1] + (rng.uniform(30, 120, n_spec) * US_PER_DAY).astype(np.int64)
    spec_lo = np.array([SPECTRUM_BAND_KEV[u][0] for u in unit.tolist()])
    spec_hi = np.array([SPECTRUM_BAND_KEV[u][1] for u in unit.tolist()])
    spectra = _part(
        n_spec,
        kind=SPECTRUM,
        unit=unit,
        lo=spec_lo,
        hi=spec_hi,
        rev0=r0,
        rev1=r1,
        t0=revs.start_us[i0],
        t1=revs.end_us[i1],
        exposure=exposure,
        ra=sky.ra[src],
        dec=sky.dec[src],
        target=src,
        created=created,
        category=LONG_SPECTRUM,
        title=[
            f"{sky.names[s]} {UNIT_NAMES[u]} {_band_text(*SPECTRUM_BAND_KEV[u])} stacked "
            f"spectrum, Rev. {x}–{y}"
            for s, u, x, y in zip(
                src.tolist(), unit.tolist(), r0.tolist(), r1.tolist(), strict=True
            )
        ],
    )
    spec_sig = SENSITIVITY[unit] * sky.bright[src, unit] * np.sqrt(exposure / 1e6) * 0.5
    link_p.append(offset + n_mos + np.arange(n_spec))
    link_s.append(src)
    link_r.append(np.zeros(n_spec, dtype=np.int8))
    link_g.append(np.maximum(spec_sig, DETECTION_SIGMA))
    links = {
        "product": np.concatenate(link_p),
        "src": np.concatenate(link_s),
        "role": np.concatenate(link_r),
        "sig": np.concatenate(link_g),
    }
    return [mosaics, spectra], links


ROLES = ("target", "detected", "in_field")


def _links(
    plan: Plan,
    products: dict[str, Any],
    n_main: int,
    long_links: dict[str, np.ndarray],
    pred: np.ndarray,
) -> dict[str, np.ndarray]:
    """ProductSource rows by pre-order product index: role 0 target, 1 detected, 2 in field."""
    kind, cat = products["kind"][:n_main], products["category"][:n_main]
    parts = []

    # Spectra and light curves: their target.
    targeted = np.flatnonzero(products["target"][:n_main] >= 0)
    cand = products["cand"][targeted]
    sig = np.where(cand >= 0, plan.cand_sig[np.maximum(cand, 0)], np.nan)
    parts.append((targeted, products["target"][targeted], np.zeros(targeted.size, np.int8), sig))

    # Images and catalogues of an observation: its detections, and for images the strongest
    # of the sources in the field that were not detected.
    key = plan.cand_obs * 3 + plan.cand_unit
    order = np.lexsort((-plan.cand_sig, ~plan.cand_sel, key))
    k_sorted = key[order]
    in_rank = rank_in_groups(k_sorted * 2 + (~plan.cand_sel[order]))
    linkable = plan.cand_sel[order] | (in_rank < IN_FIELD_LINKS)
    for kind_code, rows in ((IMAGE, order[linkable]), (CATALOG, order[plan.cand_sel[order]])):
        gkeys, gstart, gcount = group_starts(key[rows])
        if gkeys.size == 0:
            continue
        prods = np.flatnonzero((kind == kind_code) & (cat == PER_OBS))
        pkey = products["obs"][prods] * 3 + products["unit"][prods]
        where = np.minimum(np.searchsorted(gkeys, pkey), gkeys.size - 1)
        found = gkeys[where] == pkey
        prods, where = prods[found], where[found]
        counts = gcount[where]
        c = rows[ragged(gstart[where], counts)]
        p = np.repeat(prods, counts)
        role = np.where(plan.cand_sel[c], 1, 2).astype(np.int8)
        s = plan.cand_sig[c]
        if kind_code == IMAGE:
            factor = np.array([list(f) + [0.0] * (3 - len(f)) for f in BAND_SIGNIFICANCE])
            s = s * factor[plan.cand_unit[c], products["band"][p]]
            s = np.where(role == 2, np.minimum(s, DETECTION_SIGMA - 0.1), s)
        parts.append((p, plan.cand_src[c], role, s))

    parts.append((long_links["product"], long_links["src"], long_links["role"], long_links["sig"]))
    product = np.concatenate([p[0] for p in parts])
    src = np.concatenate([p[1] for p in parts])
    role = np.concatenate([p[2] for p in parts])
    sig = np.concatenate([p[3] for p in parts])
    # Predecessors share their successor's links.
    order = np.argsort(product, kind="stable")
    product, src, role, sig = product[order], src[order], role[order], sig[order]
    gkeys, gstart, gcount = group_starts(product)
    where = np.minimum(np.searchsorted(gkeys, pred), max(0, gkeys.size - 1))
    ok = (gkeys[where] == pred) if gkeys.size else np.zeros(pred.size, dtype=bool)
    first_pred = len(products["title"]) - pred.size
    rows = ragged(gstart[where[ok]], gcount[where[ok]])
    pred_index = first_pred + np.arange(pred.size)[ok]
    return {
        "product": np.concatenate([product, np.repeat(pred_index, gcount[where[ok]])]),
        "src": np.concatenate([src, src[rows]]),
        "role": np.concatenate([role, role[rows]]),
        "sig": np.concatenate([sig, sig[rows]]),
    }


def write_products(
    ctx: Context,
    sky: Sky,
    revs: Revolutions,
    plan: Plan,
    obs_ids: np.ndarray,
    products: dict[str, Any],
    links: dict[str, np.ndarray],
) -> np.ndarray:
    """Products sorted by creation (ids in that order), their links, files, fits and grants;
    returns the id of each pre-order product."""
    from products.models import Product, ProductFile, ProductSource

    rng = ctx.rng(6)
    n = len(products["title"])
    order = np.argsort(products["created"], kind="stable")
    first_id = _next_id(Product)
    pid = np.empty(n, dtype=np.int64)
    pid[order] = np.arange(first_id, first_id + n)

    def sorted_(values):
        return [values[i] for i in order.tolist()] if isinstance(values, list) else values[order]

    p = {k: sorted_(v) for k, v in products.items()}
    successor = p["successor"]  # pre-order index of the product that supersedes it, or -1
    has_successor = successor >= 0
    superseded_by = np.where(has_successor, pid[np.maximum(successor, 0)], 0)
    succ_rows = superseded_by[has_successor] - first_id  # rows are in id order
    # A superseded (NRT) product is version 1, its CONS successor version 2.
    version = np.ones(n, dtype=np.int64)
    version[succ_rows] = 2
    obs = p["obs"]
    obs_id = np.where(obs >= 0, obs_ids[np.maximum(obs, 0)], 0)

    # Access: whole observations are proprietary (their PI's); embargo a year after the
    # observation, extended into the future for some, open-ended for a few.
    n_obs = plan.obs_rev.size
    prop_obs = (rng.random(n_obs) < PROPRIETARY_OBS_FRACTION) & ~plan.obs_is_crab
    embargo_obs = plan.obs_t1 + 365 * US_PER_DAY
    extended = rng.random(n_obs) < 0.35
    embargo_obs = np.where(
        extended,
        ctx.now_us + (rng.uniform(30, 700, n_obs) * US_PER_DAY).astype(np.int64),
        embargo_obs,
    )
    open_ended = rng.random(n_obs) < 0.05
    group_of_obs = rng.integers(0, PI_GROUPS, n_obs)
    granted_obs = rng.random(n_obs) < 0.7
    proprietary = (obs >= 0) & prop_obs[np.maximum(obs, 0)]
    embargo = embargo_obs[np.maximum(obs, 0)]
    embargo_null = ~proprietary | open_ended[np.maximum(obs, 0)]

    u = rng.random(n)
    status = np.where(
        u < HIDDEN_FRACTION,
        "hidden",
        np.where(u < HIDDEN_FRACTION + DRAFT_FRACTION, "draft", "published"),
    )
    eligible = np.flatnonzero(
        (status == "published")
        & ~proprietary
        & ~has_successor
        & np.isin(p["kind"], (IMAGE, SPECTRUM))
    )
    highlight = np.zeros(n, dtype=bool)
    highlight[
        rng.choice(eligible, size=min(eligible.size, int(HIGHLIGHT_FRACTION * n)), replace=False)
    ] = True

    kind_ids = np.array([ctx.lookups["kind"][c] for c in KIND_CODES])
    unit_ids = np.array([ctx.lookups["instrument"][c] for c in UNITS])
    # A superseded product was last updated when its successor was created.
    updated = p["created"].copy()
    updated[has_successor] = np.maximum(updated[has_successor], p["created"][succ_rows])
    content_key = random_hex(rng, n)
    series_key = random_hex(rng, n)
    series_key[has_successor] = series_key[succ_rows]  # versions share their series key
    metadata = _metadata(sky, plan, p, links, pid, order)
    rows_sorted_ids = np.arange(first_id, first_id + n)
    columns = {
        "id": rows_sorted_ids,
        **position_columns(p["ra"], p["dec"]),
        "uuid": random_uuid4(rng, n),
        "title": p["title"],
        "e_min_kev": p["lo"],
        "e_max_kev": p["hi"],
        "time_start": p["t0"],
        "time_end": p["t1"],
        "rev_first": p["rev0"],
        "rev_last": p["rev1"],
        "exposure_s": np.round(p["exposure"], 1),
        "osa_version": np.where(p["category"] == PREDECESSOR, b"11.1", b"11.2"),
        "data_level": np.where(p["nrt"], b"NRT", b"CONS"),
        "series_key": series_key,
        "external_id": "",
        "version": version,
        "content_key": content_key,
        "status": np.char.encode(status),
        "is_highlight": highlight,
        "access": np.where(proprietary, b"proprietary", b"public"),
        "embargo_until": Null(embargo, embargo_null),
        "provenance": [json.dumps({"generator": "bench/generate.py", "seed": ctx.seed})] * n,
        "produced_by": "synthetic data (bench/generate.py)",
        "metadata": metadata,
        "created": p["created"],
        "updated": updated,
        "instrument_id": unit_ids[p["unit"]],
        "observation_id": Null(obs_id, obs < 0),
        "superseded_by_id": Null(superseded_by, ~has_successor),
        "kind_id": kind_ids[p["kind"]],
    }
    ctx.writer.load(Product, batched(columns, n, 100_000), n)
    ctx.counts["products"] = n

    # Links, in product id order.
    l_pid = pid[links["product"]]
    l_order = np.lexsort((-np.nan_to_num(links["sig"]), l_pid))
    n_links = l_order.size
    first_link = _next_id(ProductSource)
    sig = links["sig"][l_order]
    ctx.writer.load(
        ProductSource,
        batched(
            {
                "id": np.arange(first_link, first_link + n_links),
                "role": np.array([r.encode() for r in ROLES], dtype="S8")[links["role"][l_order]],
                "significance": Null(np.round(np.nan_to_num(sig), 2), np.isnan(sig)),
                "product_id": l_pid[l_order],
                "source_id": sky.ids[links["src"][l_order]],
            },
            n_links,
            500_000,
        ),
        n_links,
    )
    ctx.counts["product_sources"] = n_links

    # Files: one preview and one data file per product, both stored once and shared.
    preview, data = store_shared_files()
    first_file = _next_id(ProductFile)
    original = np.array(
        [f"{UNITS[u_]}_{KIND_CODES[k]}.fits".encode() for u_ in range(3) for k in range(4)]
    )

    def file_batches() -> Iterator[dict[str, Any]]:
        for i, (role, stored, names) in enumerate(
            (
                ("preview", preview, "preview.png"),
                ("data", data, original[p["unit"] * 4 + p["kind"]]),
            )
        ):
            yield from batched(
                {
                    "id": np.arange(first_file + i * n, first_file + (i + 1) * n),
                    "role": role,
                    "file": stored["name"],
                    "sha256": stored["sha256"],
                    "size_bytes": np.full(n, stored["size"], dtype=np.int64),
                    "original_name": names,
                    "content_type": stored["content_type"],
                    "extension": stored["extension"],
                    "product_id": rows_sorted_ids,
                },
                n,
                500_000,
            )

    ctx.writer.load(ProductFile, file_batches(), 2 * n)
    ctx.counts["product_files"] = 2 * n

    # A fit per spectrum.
    spectra = np.flatnonzero(p["kind"] == SPECTRUM)
    write_fits(ctx, sky, plan, p, spectra, rows_sorted_ids, rng)

    # Grants of proprietary products to their PI's group.
    granted = np.flatnonzero(proprietary & granted_obs[np.maximum(obs, 0)])
    group_ids = np.array([ctx.lookups["group"][str(i)] for i in range(PI_GROUPS)])
    through = Product.granted_groups.through
    first_grant = _next_id(through)
    ctx.writer.load(
        through,
        batched(
            {
                "id": np.arange(first_grant, first_grant + granted.size),
                "product_id": rows_sorted_ids[granted],
                "group_id": group_ids[group_of_obs[obs[granted]]],
            },
            granted.size,
            100_000,
        ),
        granted.size,
    )
    ctx.counts["granted"] = int(granted.size)
    ctx.counts["proprietary"] = int(proprietary.sum())
    ctx.counts["embargo_future"] = int((proprietary & ~embargo_null & (embargo > ctx.now_us)).sum())
    ctx.counts["hidden_or_draft"] = int((status != "published").sum())
    ctx.counts["superseded"] = int(has_successor.sum())
    ctx.counts["highlights"] = int(highlight.sum())
    ctx.counts["long_baseline"] = int(((p["rev1"] - p["rev0"]) > 0).sum())
    crab_products = np.unique(links["product"][links["src"] == sky.crab]).size
    ctx.counts["crab_products"] = int(crab_products)
    return pid


def _metadata(
    sky: Sky,
    plan: Plan,
    p: dict[str, Any],
    links: dict[str, np.ndarray],
    pid: np.ndarray,
    order: np.ndarray,
) -> list[str]:
    """The metadata JSON of each product (sorted order), shaped like the ingest's: the
    detected sources of images and catalogues."""
    n = len(p["title"])
    out = ['{"facts": {"synthetic": true}}'] * n
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)  # pre-order index -> sorted position
    prefix = [
        f'{{"name": {json.dumps(name)}, "ra_deg": {ra:.5f}, "dec_deg": {dec:.5f}, '
        f'"source": {json.dumps(slug)}, "is_new": false, '
        for name, ra, dec, slug in zip(
            sky.names, sky.ra.tolist(), sky.dec.tolist(), sky.slugs, strict=True
        )
    ]
    row_pos = position[links["product"]]
    detected = (links["role"] == 1) & np.isin(p["kind"][row_pos], (IMAGE, CATALOG))
    rows = np.flatnonzero(detected)
    rows = rows[np.lexsort((-links["sig"][rows], row_pos[rows]))]
    positions, starts, counts = group_starts(row_pos[rows])
    unit = p["unit"][row_pos[rows]]
    band = np.maximum(p["band"][row_pos[rows]], 0)
    rate = np.array([list(r) + [0.0] * (3 - len(r)) for r in RATE_PER_MCRAB])[unit, band]
    flux = rate * sky.bright[links["src"][rows], unit]
    sig = links["sig"][rows]
    texts = [
        f'{prefix[s]}"significance": {g:.2f}, "flux": {f:.4g}, "flux_error": {f / max(g, 1):.3g}}}'
        for s, g, f in zip(links["src"][rows].tolist(), sig.tolist(), flux.tolist(), strict=True)
    ]
    for pos, lo, m in zip(positions.tolist(), starts.tolist(), counts.tolist(), strict=True):
        out[pos] = (
            '{"facts": {"synthetic": true}, "detected_sources": ['
            + ", ".join(texts[lo : lo + m])
            + "]}"
        )
    return out


def write_fits(
    ctx: Context,
    sky: Sky,
    plan: Plan,
    p: dict[str, Any],
    spectra: np.ndarray,
    product_ids: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """One SpectralFit per spectrum: a power law (a cut-off power law for some bright ones)."""
    from products.models import SpectralFit

    n = spectra.size
    src = p["target"][spectra]
    unit = p["unit"][spectra]
    cand = p["cand"][spectra]
    sig = np.where(cand >= 0, plan.cand_sig[np.maximum(cand, 0)], 20.0)
    rel = 1.0 / np.maximum(sig, 1.0)
    gamma = sky.photon_index[src] + rng.normal(0, 1, n) * 2 * rel
    flux_unit = np.array(FLUX_PER_MCRAB)[unit]
    flux = flux_unit * sky.bright[src, unit] * rng.lognormal(0, 0.1, n)
    norm = flux / flux_unit * 1e-3 * 9.7  # the Crab: about 9.7 photons/cm2/s/keV at 1 keV
    cutoff = (sig > 50) & (unit == 0) & (rng.random(n) < 0.3)
    ecut = rng.uniform(40, 200, n)
    channels = np.array(SPECTRUM_CHANNELS)[unit]
    dof = channels - np.where(cutoff, 3, 2)
    chi2 = dof * rng.lognormal(0, 0.15, n)
    fit_lo = np.array([FIT_BAND_KEV[u][0] for u in range(3)])[unit]
    fit_hi = np.array([FIT_BAND_KEV[u][1] for u in range(3)])[unit]
    params = []
    for g, eg, nm, cut, ec in zip(
        gamma.tolist(),
        (2 * rel).tolist(),
        norm.tolist(),
        cutoff.tolist(),
        ecut.tolist(),
        strict=True,
    ):
        parts = [f'{{"name": "PhoIndex", "value": {g:.4f}, "error": {eg:.4f}, "unit": ""}}']
        if cut:
            parts.append(
                f'{{"name": "HighECut", "value": {ec:.2f}, "error": {ec * eg / 2:.2f}, '
                '"unit": "keV"}'
            )
        parts.append(
            f'{{"name": "norm", "value": {nm:.5g}, "error": {nm * eg / 2:.3g}, '
            '"unit": "photons/cm2/s/keV"}'
        )
        params.append("[" + ", ".join(parts) + "]")
    details = [
        f'{{"n_channels": {c}, "pivot_kev": {40.0 if u == 0 else 10.0}}}'
        for c, u in zip(channels.tolist(), unit.tolist(), strict=True)
    ]
    first = _next_id(SpectralFit)
    ctx.writer.load(
        SpectralFit,
        batched(
            {
                "id": np.arange(first, first + n),
                "model": np.where(cutoff, b"cutoffpl", b"powerlaw"),
                "parameters": params,
                "statistic": "chi2",
                "statistic_value": np.round(chi2, 3),
                "dof": dof,
                "e_min_kev": fit_lo,
                "e_max_kev": fit_hi,
                "flux_erg_cm2_s": flux,
                "flux_error": flux * rel,
                "is_preferred": True,
                "details": details,
                "product_id": product_ids[spectra],
            },
            n,
            200_000,
        ),
        n,
    )
    ctx.counts["spectral_fits"] = n


def store_shared_files() -> tuple[dict[str, Any], dict[str, Any]]:
    """A small real PNG preview and a small FITS file, stored once (content-addressed)."""
    import hashlib

    from astropy.io import fits

    from products.storage import store

    size = 48
    y, x = np.mgrid[0:size, 0:size]
    blob = np.exp(-((x - 20) ** 2 + (y - 26) ** 2) / 40.0)
    png = _png_bytes((255 * blob).astype(np.uint8))
    hdu = fits.PrimaryHDU((100 * blob).astype(np.float32))
    hdu.header["TELESCOP"] = "INTEGRAL"
    hdu.header["COMMENT"] = "Synthetic data file shared by the benchmark products."
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    out = []
    for content, ext, ctype in (
        (png, ".png", "image/png"),
        (buffer.getvalue(), ".fits", "application/fits"),
    ):
        sha = hashlib.sha256(content).hexdigest()
        name, _ = store(sha, ext, content=content)
        out.append(
            {
                "name": name,
                "sha256": sha,
                "size": len(content),
                "extension": ext,
                "content_type": ctype,
            }
        )
    return out[0], out[1]


def _png_bytes(gray: np.ndarray) -> bytes:
    """A greyscale PNG (8 bits), written with zlib: no drawing library needed."""
    import struct
    import zlib

    height, width = gray.shape
    raw = b"".join(b"\x00" + gray[row].tobytes() for row in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + tag
            + body
            + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


# --- flux points ---------------------------------------------------------------------------


def write_flux_points(
    ctx: Context,
    sky: Sky,
    revs: Revolutions,
    plan: Plan,
    obs_ids: np.ndarray,
    products: dict[str, Any],
    pid: np.ndarray,
) -> None:
    """A point per ScW of each light curve (per-observation ones, and the monitored sources'
    yearly ones), subsampled to the number asked for; written in product order."""
    from astropy.time import Time

    from products.models import FluxPoint

    rng = ctx.rng(7)
    kind, cat = products["kind"], products["category"]

    # Per-observation light curves: every ScW of their observation.
    lcs = np.flatnonzero((kind == LIGHTCURVE) & (cat == PER_OBS))
    lc_cand = products["cand"][lcs]
    lc_obs = plan.cand_obs[lc_cand]
    counts = plan.obs_nscw[lc_obs]
    reg_scw = ragged(plan.obs_scw0[lc_obs], counts)
    reg_prod = np.repeat(lcs, counts)
    reg_cand = np.repeat(lc_cand, counts)
    reg_band = np.repeat(products["band"][lcs], counts)

    # Monitored sources: every ScW of every observation they were in, per unit and band.
    mon = np.flatnonzero(plan.cand_sel & plan.cand_mon)
    m_rep = np.repeat(mon, N_BANDS[plan.cand_unit[mon]])
    m_band = rank_in_groups(m_rep)
    m_obs = plan.cand_obs[m_rep]
    m_year = revs.year[plan.obs_rev[m_obs]]
    seg_key = ((plan.cand_src[m_rep] * 3 + plan.cand_unit[m_rep]) * 3 + m_band) * 10_000 + m_year
    seg_keys, seg_of = np.unique(seg_key, return_inverse=True)
    segments = np.flatnonzero(cat == MONITORED_LC)
    seg_product = np.empty(seg_keys.size, dtype=np.int64)
    seg_product[products["segment"][segments]] = segments
    counts = plan.obs_nscw[m_obs]
    mon_scw = ragged(plan.obs_scw0[m_obs], counts)
    mon_prod = np.repeat(seg_product[seg_of], counts)
    mon_cand = np.repeat(m_rep, counts)
    mon_band = np.repeat(m_band, counts)

    wanted = ctx.scale.flux_points - mon_scw.size
    if wanted < 0:
        keep = np.sort(rng.choice(mon_scw.size, size=ctx.scale.flux_points, replace=False))
        mon_scw, mon_prod, mon_cand, mon_band = (
            a[keep] for a in (mon_scw, mon_prod, mon_cand, mon_band)
        )
        wanted = 0
    if wanted < reg_scw.size:
        keep = np.sort(rng.choice(reg_scw.size, size=wanted, replace=False))
        reg_scw, reg_prod, reg_cand, reg_band = (
            a[keep] for a in (reg_scw, reg_prod, reg_cand, reg_band)
        )
    scw = np.concatenate([reg_scw, mon_scw])
    prod = pid[np.concatenate([reg_prod, mon_prod])]
    cand = np.concatenate([reg_cand, mon_cand])
    band = np.concatenate([reg_band, mon_band]).astype(np.int64)
    del reg_scw, reg_prod, reg_cand, reg_band, mon_scw, mon_prod, mon_cand, mon_band
    order = np.lexsort((scw, prod))
    scw, prod, cand, band = scw[order], prod[order], cand[order], band[order]
    n = scw.size

    # ScW times in IJD (TT), through astropy once per ScW.
    base = np.full(plan.scw_t0.size, 51544.0)
    ijd0 = Time(base, plan.scw_t0 / US_PER_DAY, format="mjd", scale="utc").tt.mjd - 51544.0
    ijd1 = Time(base, plan.scw_t1 / US_PER_DAY, format="mjd", scale="utc").tt.mjd - 51544.0
    scw_text = scw_id_strings(plan, revs)
    scw_rev = revs.number[plan.obs_rev[plan.scw_obs]]
    duration = (plan.scw_t1 - plan.scw_t0) / 1e6

    # Variability: a random walk per source over the revolutions, scaled by its amplitude.
    walk = np.cumsum(
        rng.normal(0, 1, (sky.ids.size, revs.number.size)).astype(np.float32), axis=1
    ) / np.float32(math.sqrt(max(1, revs.number.size)))
    walk *= sky.variability[:, None].astype(np.float32)
    band_lo = np.array([[b[0] for b in bands] + [0] * (3 - len(bands)) for bands in BANDS_KEV])
    band_hi = np.array([[b[1] for b in bands] + [0] * (3 - len(bands)) for bands in BANDS_KEV])
    rate_per = np.array([list(r) + [0.0] * (3 - len(r)) for r in RATE_PER_MCRAB])
    noise = np.array([list(r) + [1.0] * (3 - len(r)) for r in RATE_NOISE])
    unit_ids = np.array([ctx.lookups["instrument"][c] for c in UNITS])
    first = _next_id(FluxPoint)

    def batches() -> Iterator[dict[str, Any]]:
        size = 1_000_000
        for lo in range(0, n, size):
            hi = min(n, lo + size)
            s, c, b = scw[lo:hi], cand[lo:hi], band[lo:hi]
            src, unit = plan.cand_src[c], plan.cand_unit[c].astype(np.int64)
            rev_index = plan.obs_rev[plan.scw_obs[s]]
            exposure = duration[s] * LIVE_FRACTION[unit] * plan.cand_coding[c]
            true_rate = (
                rate_per[unit, b]
                * sky.bright[src, unit]
                * np.exp(walk[src, rev_index] + rng.normal(0, 0.05, hi - lo))
            )
            error = noise[unit, b] / np.sqrt(exposure)
            measured = true_rate + error * rng.normal(0, 1, hi - lo)
            significance = measured / error
            upper = significance < UPPER_LIMIT_SIGMA
            flux = np.where(upper, np.maximum(measured, 0) + 2 * error, measured)
            yield {
                "id": np.arange(first + lo, first + hi),
                "e_min_kev": band_lo[unit, b],
                "e_max_kev": band_hi[unit, b],
                "t_start_ijd": ijd0[s],
                "t_stop_ijd": ijd1[s],
                "flux": flux,
                "flux_error": error,
                "flux_unit": "count/s",
                "significance": np.round(significance, 3),
                "exposure_s": np.round(exposure, 1),
                "scw_id": scw_text[s],
                "revolution": scw_rev[s],
                "is_upper_limit": upper,
                "source_id": sky.ids[src],
                "instrument_id": unit_ids[unit],
                "observation_id": obs_ids[plan.scw_obs[s]],
                "product_id": prod[lo:hi],
            }

    def constant_columns(gen: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for batch in gen:
            m = len(batch["id"])
            yield {k: _full(v, m) for k, v in batch.items()}

    ctx.writer.load(FluxPoint, constant_columns(batches()), n)
    ctx.counts["flux_points"] = n
    mon_counts = np.bincount(plan.cand_src[cand], minlength=sky.ids.size)[sky.monitored]
    ctx.counts.update(
        {
            f"points_{sky.names[m]}": int(c)
            for m, c in zip(sky.monitored.tolist(), mon_counts.tolist(), strict=True)
        }
    )


# --- the whole --------------------------------------------------------------------------------


def generate(
    scale: Scale,
    seed: int = 0,
    log: Callable[[str], None] = print,
    detach_min_rows: int = 200_000,
    analyze: bool = True,
    summaries: bool = False,
) -> dict[str, Any]:
    """Fill the default database (Django's connection) with ``scale`` rows; return a report.

    The tables written must be empty of products and observations (sources may hold the
    reference catalogue only, which is loaded if missing). The rows are one transaction.
    With ``summaries`` the light-curve summaries and source statistics that the archive
    maintains from the flux points are rebuilt afterwards (products.transients.refresh_all);
    with ``analyze`` the tables are vacuumed and analysed.
    """
    from django.db import connection, transaction

    from products.models import (
        FluxPoint,
        Observation,
        Product,
        ProductFile,
        ProductSource,
        Revolution,
        SpectralFit,
    )
    from sources.models import Source, SourceName

    if Product.objects.exists() or FluxPoint.objects.exists() or Observation.objects.exists():
        raise RuntimeError("the database already holds products or observations")
    start = time.perf_counter()
    now_us = to_us(datetime.now(UTC))
    writer = writer_for(connection, log, detach_min_rows)
    ctx = Context(scale=scale, seed=seed, log=log, writer=writer, now_us=now_us)
    steps: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        steps[name] = round(time.perf_counter() - t0, 2)

    with transaction.atomic():
        t = time.perf_counter()
        ensure_lookups(ctx)
        sky = make_sources(ctx)
        step("sources", t)
        t = time.perf_counter()
        revs = make_revolutions(ctx)
        step("revolutions", t)
        t = time.perf_counter()
        plan, _ = make_plan(ctx, sky, revs)
        step("plan", t)
        t = time.perf_counter()
        obs_ids = write_observations(ctx, sky, revs, plan)
        labels = [
            sky.names[tg] if tg >= 0 else f"RA {r:.1f} Dec {d:+.1f}"
            for tg, r, d in zip(
                plan.obs_target.tolist(), plan.obs_ra.tolist(), plan.obs_dec.tolist(), strict=True
            )
        ]
        step("observations", t)
        t = time.perf_counter()
        products, links = build_products(ctx, sky, revs, plan, labels)
        log(f"  products built in memory in {time.perf_counter() - t:.1f} s")
        pid = write_products(ctx, sky, revs, plan, obs_ids, products, links)
        step("products", t)
        t = time.perf_counter()
        write_flux_points(ctx, sky, revs, plan, obs_ids, products, pid)
        step("flux_points", t)
        writer.finish(
            [
                Source,
                SourceName,
                Observation,
                Product,
                ProductSource,
                ProductFile,
                SpectralFit,
                FluxPoint,
                Product.granted_groups.through,
            ]
        )
    t = time.perf_counter()
    if analyze:
        vacuum_analyze(
            [
                Source,
                SourceName,
                Revolution,
                Observation,
                Product,
                ProductSource,
                ProductFile,
                SpectralFit,
                FluxPoint,
                Product.granted_groups.through,
            ]
        )
        step("analyze", t)
        log(f"  VACUUM/ANALYZE in {steps['analyze']:.1f} s")
    if summaries:
        # After ANALYZE: the refresh groups all the flux points, and the planner needs the
        # statistics of the freshly loaded tables to do it well.
        t = time.perf_counter()
        try:
            from products import transients
            from products.models import LightCurveSummary

            refreshed = transients.refresh_all()
        except Exception as exc:  # the data stand without them; say why they are missing
            ctx.notes.append(f"light-curve summaries and source statistics not rebuilt: {exc!r}")
        else:
            ctx.counts["lightcurve_summaries"] = int(refreshed.series_recomputed)
            ctx.counts["sources_with_statistics"] = int(refreshed.sources_with_statistics or 0)
            if analyze:
                vacuum_analyze([Source, LightCurveSummary])
        step("summaries", t)
        log(f"  light-curve summaries and source statistics in {steps['summaries']:.1f} s")
    total = time.perf_counter() - start
    return {
        "scale": asdict(scale),
        "seed": seed,
        "database": connection.vendor,
        "counts": ctx.counts,
        "notes": ctx.notes,
        "steps_s": steps,
        "tables": [asdict(t) for t in writer.timings],
        "total_s": round(total, 1),
    }


def vacuum_analyze(models: list) -> None:
    """VACUUM sets the hint bits and visibility map that a bulk load leaves unset, so that the
    first benchmark does not pay for them; ANALYZE gives the planner its statistics."""
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            table = connection.ops.quote_name(model._meta.db_table)
            if connection.vendor == "postgresql":
                cursor.execute(f"VACUUM (ANALYZE) {table}")
            else:
                cursor.execute(f"ANALYZE {table}")


# --- command line ----------------------------------------------------------------------------


def _admin_dsn(url: str) -> tuple[str, str]:
    """(the same server's ``postgres`` database URL, the database name) of a URL."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise SystemExit("the database URL names no database")
    return urlunsplit(parts._replace(path="/postgres")), name


def prepare_database(url: str, reset: bool, log: Callable[[str], None]) -> None:
    """Create the PostgreSQL database when missing (drop it first with ``reset``)."""
    import psycopg
    from psycopg import sql

    admin, name = _admin_dsn(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and reset:
            log(f"dropping database {name}")
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            log(f"creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_sizes() -> dict[str, Any]:
    from django.db import connection

    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        total = cursor.fetchone()[0]
        cursor.execute(
            "SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
            "AND c.relkind = 'r' ORDER BY pg_total_relation_size(c.oid) DESC LIMIT 12"
        )
        tables = {name: {"table_bytes": t, "index_bytes": i} for name, t, i in cursor.fetchall()}
    return {"database_bytes": total, "tables": tables}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="postgres://user@host:port/name (created when missing)",
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help=f"quick preset: {SMALL.sources} sources, {SMALL.revolutions} "
        f"revolutions, {SMALL.scws} ScWs, {SMALL.products} products, "
        f"{SMALL.flux_points} flux points",
    )
    for name in ("sources", "revolutions", "scws", "products", "flux_points"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reset", action="store_true", help="drop and recreate the database")
    parser.add_argument(
        "--detach-min-rows",
        type=int,
        default=200_000,
        help="tables of at least this many rows get their indexes and "
        "constraints rebuilt after the copy rather than kept up to date",
    )
    parser.add_argument(
        "--no-summaries",
        action="store_true",
        help="do not rebuild the light-curve summaries and source statistics "
        "from the flux points (products.transients.refresh_all)",
    )
    parser.add_argument(
        "--no-results", action="store_true", help=f"do not write {RESULTS_PATH.relative_to(ROOT)}"
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or DATABASE_URL) is required")
    preset = SMALL if args.small else FULL
    scale = Scale(
        **{
            k: getattr(args, k) if getattr(args, k) is not None else v
            for k, v in asdict(preset).items()
        }
    )

    def log(message: str) -> None:
        print(message, flush=True)

    started = time.perf_counter()
    if args.database_url.startswith(("postgres://", "postgresql://", "pgsql://")):
        prepare_database(args.database_url, args.reset, log)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery.settings")
    import django

    django.setup()
    from django.core.management import call_command

    log("migrating")
    call_command("migrate", verbosity=0)
    from products.models import Product
    from sources.models import Source

    if Product.objects.exists() or Source.objects.exists():
        log("the database already holds data: run again with --reset to replace it")
        return 2
    log(f"generating {scale} with seed {args.seed}")
    report = generate(
        scale,
        seed=args.seed,
        log=log,
        detach_min_rows=args.detach_min_rows,
        summaries=not args.no_summaries,
    )
    report["sizes"] = database_sizes()
    url = urlsplit(args.database_url)
    report["database_url"] = urlunsplit(  # without a password
        url._replace(
            netloc=f"{url.username + '@' if url.username else ''}{url.hostname or ''}"
            f"{':' + str(url.port) if url.port else ''}"
        )
    )
    report["total_with_setup_s"] = round(time.perf_counter() - started, 1)
    report["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    report["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    counts = report["counts"]
    log("counts: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    for note in report["notes"]:
        log(f"note: {note}")
    if report["sizes"]:
        log(f"database size: {report['sizes']['database_bytes'] / 2**30:.2f} GiB")
    log(
        f"total: {report['total_s']:.0f} s of generation, {report['total_with_setup_s']:.0f} s "
        "with database set-up"
    )
    if not args.no_results:
        RESULTS_PATH.parent.mkdir(parents=True, exist_ok=True)
        RESULTS_PATH.write_text(json.dumps(report, indent=2) + "\n")
        log(f"results written to {RESULTS_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
