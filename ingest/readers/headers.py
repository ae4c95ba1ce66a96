"""Reading facts from OSA headers, which carry template placeholders ('Real', 'String', …)."""

from __future__ import annotations

import math
import re
from typing import Any

from astropy.io import fits
from astropy.time import Time

from products import timeline
from sources.names import is_placeholder

from .base import IngestError

_PLACEHOLDERS = {"real", "integer", "string", "utc_format", "obt_format", "none", ""}

# INSTRUME / DETNAM values and EXTNAME prefixes → instrument code.
_INSTRUMENTS = {
    "ISGRI": "isgri",
    "IBIS": "isgri",
    "ISGR": "isgri",
    "JMX1": "jemx1",
    "JEMX1": "jemx1",
    "JEM-X1": "jemx1",
    "JMX2": "jemx2",
    "JEMX2": "jemx2",
    "JEM-X2": "jemx2",
    "SPI-ACS": "spi_acs",
    "SPIACS": "spi_acs",
    "ACS": "spi_acs",
}


def text(header: fits.Header, key: str) -> str | None:
    value = header.get(key)
    if value is None or isinstance(value, bool):
        return None
    value = str(value).strip()
    return None if value.lower() in _PLACEHOLDERS else value


def number(header: fits.Header, key: str) -> float | None:
    value = header.get(key)
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def first(headers: list[fits.Header], key: str, kind=number):
    for header in headers:
        value = kind(header, key)
        if value is not None:
            return value
    return None


def instrument_code(headers: list[fits.Header]) -> str | None:
    """Instrument from DETNAM, INSTRUME or the EXTNAME prefix (ISGR-, JMX1-, …)."""
    for header in headers:
        for key in ("DETNAM", "INSTRUME"):
            value = (text(header, key) or "").upper()
            if value in _INSTRUMENTS and not (
                key == "INSTRUME" and value == "IBIS" and text(header, "DETNAM") == "PICSIT"
            ):
                return _INSTRUMENTS[value]
        prefix = (text(header, "EXTNAME") or "").split("-")[0].upper()
        if prefix in _INSTRUMENTS:
            return _INSTRUMENTS[prefix]
    return None


def time_range_ijd(headers: list[fits.Header]) -> tuple[float | None, float | None]:
    """TSTART/TSTOP in IJD (TT); else DATE-OBS/DATE-END (UTC) converted."""
    for header in headers:
        start, stop = number(header, "TSTART"), number(header, "TSTOP")
        if start is not None:
            mjdref = number(header, "MJDREF")
            unit = (text(header, "TIMEUNIT") or "d").lower()
            if mjdref is not None and abs(mjdref - timeline.MJDREF_IJD) > 1e-9:
                raise IngestError(f"unsupported MJDREF {mjdref} (INTEGRAL uses 51544.0)")
            scale = 86400.0 if unit == "s" else 1.0
            start /= scale
            stop = stop / scale if stop is not None else None
            if not -1000 < start < 40000 or (stop is not None and stop < start):
                raise IngestError(f"implausible TSTART/TSTOP ({start}, {stop}) for IJD")
            return start, stop if stop is not None else start
    for header in headers:
        start = _utc_to_ijd(text(header, "DATE-OBS"))
        if start is not None:
            stop = _utc_to_ijd(text(header, "DATE-END"))
            return start, stop if stop is not None else start
    return None, None


def _utc_to_ijd(value: str | None) -> float | None:
    if not value or not re.match(r"^\d{4}-\d\d-\d\d", value):
        return None
    try:
        return timeline.time_to_ijd(Time(value, format="isot", scale="utc"))
    except ValueError:
        return None


def revolutions(
    headers: list[fits.Header], t_start: float | None, t_stop: float | None
) -> list[int]:
    """REVOL (or the revolution of SWID) where given; else those the time range covers."""
    for header in headers:
        rev = number(header, "REVOL")
        if rev is not None and rev >= 1:
            return [int(rev)]
        swid = text(header, "SWID")
        if swid and timeline.is_scw_id(swid):
            return [timeline.ScwId.parse(swid).revolution]
    if t_start is None:
        return []
    first_rev = timeline.revolution_of(timeline.ijd_to_time(t_start))
    last_rev = timeline.revolution_of(timeline.ijd_to_time(t_stop if t_stop else t_start))
    return [first_rev, last_rev] if last_rev != first_rev else [first_rev]


def scw_ids(headers: list[fits.Header]) -> list[str]:
    for header in headers:
        swid = text(header, "SWID")
        if swid and timeline.is_scw_id(swid):
            return [swid]
    return []


def source_name(headers: list[fits.Header]) -> str | None:
    for header in headers:
        for key in ("NAME", "OBJECT"):
            value = text(header, key)
            if value and not is_placeholder(value):
                return " ".join(value.split())
    return None


def position(headers: list[fits.Header]) -> tuple[float | None, float | None]:
    for header in headers:
        ra, dec = number(header, "RA_OBJ"), number(header, "DEC_OBJ")
        if ra is not None and dec is not None and -90 <= dec <= 90:
            return ra % 360.0, dec
    return None, None


# Dated OSA software configurations → release (best effort; the raw label is kept too).
_OSA_RELEASES = [
    ("2021-08-01", "11.2"),
    ("2020-09-01", "11.1"),
    ("2018-10-01", "11.0"),
    ("2015-01-01", "10.2"),
    ("2014-01-01", "10.1"),
    ("2012-10-01", "10.0"),
]


def osa_version(headers: list[fits.Header]) -> tuple[str, str]:
    """(release such as '11.1', raw CONFIGUR label)."""
    for header in headers:
        raw = text(header, "CONFIGUR")
        if not raw:
            continue
        explicit = re.search(r"osa[ _-]*(?:sw[ _-]*)?(\d+(?:\.\d+)?)(?![\d-])", raw, re.I)
        if explicit and not re.search(r"\d{4}-\d\d-\d\d", raw):
            return explicit.group(1), raw
        dated = re.search(r"(\d{4}-\d\d-\d\d)", raw)
        if dated:
            for since, release in _OSA_RELEASES:
                if dated.group(1) >= since:
                    return release, raw
        return "", raw
    return "", ""


def exposure(headers: list[fits.Header]) -> float | None:
    value = first(headers, "EXPOSURE")
    if value is None:
        value = first(headers, "ONTIME")
    return value if value is None or value >= 0 else None


def facts(header: fits.Header) -> dict[str, Any]:
    """A few header values worth keeping with the product, JSON-safe."""
    keep = (
        "EXTNAME",
        "INSTRUME",
        "DETNAM",
        "CREATOR",
        "CONFIGUR",
        "DATE-OBS",
        "DATE-END",
        "TSTART",
        "TSTOP",
        "REVOL",
        "SWID",
        "SOURCEID",
        "ONTIME",
        "TELAPSE",
    )
    out = {}
    for key in keep:
        value = header.get(key)
        if (
            value is not None
            and not isinstance(value, bool)
            and str(value).strip().lower() not in _PLACEHOLDERS
        ):
            out[key] = value if isinstance(value, int | float) else str(value)[:200]
    return out
