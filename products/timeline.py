"""INTEGRAL time: UTC, MJD, IJD (TT) and revolution numbers, with astropy.time.

* IJD is MJD - 51544.0 in the TT scale (FITS: MJDREF 51544.0, TIMESYS TT, TIMEUNIT d).
* Revolution starts come from the perigee table shipped in ``data/revolutions.csv``
  (revolutions 1-2191). Later revolutions follow the post-2015 orbital period, measured by a
  least-squares fit to the table's last 500 revolutions and anchored on its last entry.
* ScW ids ``RRRRPPPPSSSF[.VVV]`` are parsed and validated by ``ScwId``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.time import Time
from astropy.utils import iers

# Never reach for the network: UTC<->TT needs only the bundled leap-second table.
iers.conf.auto_download = False
iers.conf.auto_max_age = None

MJDREF_IJD = 51544.0
TABLE_PATH = Path(__file__).with_name("data") / "revolutions.csv"
TIME_FORMATS = ("isot", "mjd", "ijd", "revnum")


class TimeConversionError(ValueError):
    """A time value or format that cannot be converted (the message says why)."""


@dataclass(frozen=True)
class RevolutionTable:
    numbers: np.ndarray  # 1..N
    start_mjd_utc: np.ndarray  # start of each revolution, MJD in UTC
    predicted: np.ndarray  # bool: 'P' rows of the table
    period_days: float  # post-2015 period used beyond the table

    @property
    def last(self) -> int:
        return int(self.numbers[-1])


@lru_cache(maxsize=1)
def revolution_table() -> RevolutionTable:
    numbers, starts, flags = [], [], []
    with TABLE_PATH.open() as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        for row in rows:
            numbers.append(int(row["number"]))
            starts.append(row["start_utc"])
            flags.append(row["flag"] == "P")
    numbers_arr = np.array(numbers)
    if not np.array_equal(numbers_arr, np.arange(1, len(numbers) + 1)):
        raise RuntimeError("the revolution table must list revolutions 1..N in order")
    mjd = Time(starts, format="isot", scale="utc").mjd
    recent = numbers_arr > numbers_arr[-1] - 500
    period = float(np.polyfit(numbers_arr[recent], mjd[recent], 1)[0])
    return RevolutionTable(numbers_arr, mjd, np.array(flags), period)


def _as_utc_mjd(t: Time) -> float:
    return float(t.utc.mjd)


def revolution_start(number: int) -> Time:
    """Start (perigee passage) of revolution ``number`` as a UTC Time."""
    number = int(number)
    if number < 1:
        raise TimeConversionError(f"revolutions are numbered from 1, got {number}")
    table = revolution_table()
    if number <= table.last:
        mjd = table.start_mjd_utc[number - 1]
    else:
        mjd = table.start_mjd_utc[-1] + (number - table.last) * table.period_days
    return Time(mjd, format="mjd", scale="utc")


def revolution_end(number: int) -> Time:
    return revolution_start(int(number) + 1)


def revolution_of(t: Time) -> int:
    """The revolution during which ``t`` falls."""
    table = revolution_table()
    mjd = _as_utc_mjd(t)
    if mjd < table.start_mjd_utc[0]:
        raise TimeConversionError(f"{t.utc.isot} is before revolution 1 (2002-10-17T05:47:25 UTC)")
    if mjd < table.start_mjd_utc[-1]:
        # Compare at millisecond resolution so that a start maps to its own revolution.
        idx = int(np.searchsorted(table.start_mjd_utc, mjd + 1e-8, side="right")) - 1
        return int(table.numbers[idx])
    return table.last + int(np.floor((mjd - table.start_mjd_utc[-1]) / table.period_days + 1e-9))


def revolution_is_predicted(number: int) -> bool:
    """True where the start is a prediction rather than a reconstruction."""
    table = revolution_table()
    return number > table.last or bool(table.predicted[number - 1])


def ijd_to_time(ijd: float) -> Time:
    return Time(float(ijd) + MJDREF_IJD, format="mjd", scale="tt")


def time_to_ijd(t: Time) -> float:
    return float(t.tt.mjd - MJDREF_IJD)


def to_datetime(t: Time) -> datetime:
    """A timezone-aware UTC datetime (microsecond precision) for storing in the database."""
    return t.utc.to_datetime(timezone=UTC)


def from_datetime(value: datetime) -> Time:
    return Time(value.astimezone(UTC).replace(tzinfo=None), scale="utc")


_ISOT = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?Z?$")


def parse_time(value: str | float | int, fmt: str) -> Time:
    """Read a user's time in one of ``TIME_FORMATS``; a revolution number gives its start."""
    fmt = (fmt or "").lower()
    if fmt not in TIME_FORMATS:
        raise TimeConversionError(
            f"unknown time format {fmt!r}; use one of {', '.join(TIME_FORMATS)}"
        )
    text = str(value).strip()
    if fmt == "isot":
        if not _ISOT.match(text):
            raise TimeConversionError(f"{text!r} is not an ISO time such as 2008-09-26T03:57:38")
        try:
            return Time(text.rstrip("Z").replace(" ", "T"), format="isot", scale="utc")
        except ValueError as exc:
            raise TimeConversionError(f"{text!r} is not a valid UTC time: {exc}") from None
    if fmt == "revnum":
        if not re.fullmatch(r"\d{1,5}", text):
            raise TimeConversionError(f"{text!r} is not a revolution number")
        return revolution_start(int(text))
    try:
        number = float(text)
    except ValueError:
        raise TimeConversionError(f"{text!r} is not a number ({fmt.upper()})") from None
    if not np.isfinite(number) or abs(number) > 1e6:
        raise TimeConversionError(f"{text!r} is out of range for {fmt.upper()}")
    if fmt == "mjd":
        return Time(number, format="mjd", scale="utc")
    return ijd_to_time(number)


def format_time(t: Time, fmt: str) -> str | float | int:
    """Express ``t`` in ``fmt`` (ISOT to the second in UTC; MJD in UTC; IJD in TT)."""
    fmt = (fmt or "").lower()
    if fmt == "isot":
        return t.utc.isot.split(".")[0]
    if fmt == "mjd":
        return round(float(t.utc.mjd), 8)
    if fmt == "ijd":
        return round(time_to_ijd(t), 8)
    if fmt == "revnum":
        return revolution_of(t)
    raise TimeConversionError(f"unknown time format {fmt!r}; use one of {', '.join(TIME_FORMATS)}")


def convert(value: str | float | int, from_fmt: str, to_fmt: str) -> str | float | int:
    return format_time(parse_time(value, from_fmt), to_fmt)


_SCW = re.compile(r"^(\d{4})(\d{4})(\d{3})(\d)(?:\.(\d{3}))?$")


@dataclass(frozen=True)
class ScwId:
    """A science window id ``RRRRPPPPSSSF.VVV``."""

    revolution: int
    pointing: int
    subpointing: int
    type: int  # 0 pointing, 1 slew
    version: int | None

    @classmethod
    def parse(cls, text: str) -> ScwId:
        match = _SCW.match(str(text).strip())
        if not match:
            raise ValueError(f"{text!r} is not a ScW id (RRRRPPPPSSSF.VVV, e.g. 066500280010.001)")
        rev, pointing, sub, kind, version = match.groups()
        if int(rev) < 1:
            raise ValueError(f"{text!r}: revolution 0000 does not exist")
        if kind not in "01":
            raise ValueError(f"{text!r}: the type digit must be 0 (pointing) or 1 (slew)")
        return cls(
            int(rev), int(pointing), int(sub), int(kind), None if version is None else int(version)
        )

    @property
    def base(self) -> str:
        return f"{self.revolution:04d}{self.pointing:04d}{self.subpointing:03d}{self.type}"

    @property
    def is_slew(self) -> bool:
        return self.type == 1

    @property
    def is_consolidated(self) -> bool:
        """Version .001 is consolidated (public); .000 is NRT or private."""
        return self.version is not None and self.version >= 1

    def __str__(self) -> str:
        return self.base if self.version is None else f"{self.base}.{self.version:03d}"


def is_scw_id(text: str) -> bool:
    try:
        ScwId.parse(text)
    except ValueError:
        return False
    return True
