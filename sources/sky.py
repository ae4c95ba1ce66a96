"""Positions on the sky: HEALPix indexing and cone search that work on SQLite and PostgreSQL.

Every positioned row stores RA/Dec (ICRS, degrees), a NESTED HEALPix index at
``STORAGE_ORDER`` and its unit vector (cx, cy, cz). A cone search turns the cone into ranges of
that index (one B-tree range scan each), then cuts exactly on the dot product of unit
vectors, which is plain arithmetic in SQL and so portable, exact across RA 0/360 and at the
poles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import astropy.units as u
import numpy as np
from astropy.coordinates import Latitude, Longitude
from astropy_healpix import HEALPix
from django.db.models import F, Q, QuerySet

#: Order of the stored index: nside 2**20, pixels of about 0.2 arcsec.
STORAGE_ORDER = 20
_STORAGE = HEALPix(nside=2**STORAGE_ORDER, order="nested")


def validate_position(ra_deg: float, dec_deg: float) -> tuple[float, float]:
    """Return (ra, dec) as floats with RA wrapped into [0, 360); raise ValueError if invalid."""
    ra, dec = float(ra_deg), float(dec_deg)
    if not (math.isfinite(ra) and math.isfinite(dec)):
        raise ValueError("RA and Dec must be finite numbers")
    if not -90.0 <= dec <= 90.0:
        raise ValueError(f"Dec must lie within [-90, 90] degrees, got {dec}")
    ra %= 360.0
    return (0.0 if ra >= 360.0 else ra), dec


def healpix_index(ra_deg: float, dec_deg: float) -> int:
    """NESTED HEALPix index at the storage order."""
    return int(_STORAGE.lonlat_to_healpix(Longitude(ra_deg * u.deg), Latitude(dec_deg * u.deg)))


def unit_vector(ra_deg: float, dec_deg: float) -> tuple[float, float, float]:
    ra, dec = math.radians(ra_deg), math.radians(dec_deg)
    return (math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec))


def position_fields(ra_deg: float | None, dec_deg: float | None) -> dict:
    """The stored columns of a position (all None when there is no position)."""
    if ra_deg is None or dec_deg is None:
        return {
            "ra_deg": None,
            "dec_deg": None,
            "healpix": None,
            "cx": None,
            "cy": None,
            "cz": None,
        }
    ra, dec = validate_position(ra_deg, dec_deg)
    cx, cy, cz = unit_vector(ra, dec)
    return {
        "ra_deg": ra,
        "dec_deg": dec,
        "healpix": healpix_index(ra, dec),
        "cx": cx,
        "cy": cy,
        "cz": cz,
    }


def angular_distance_deg(ra1: float, dec1: float, ra2, dec2):
    """Great-circle distance (degrees), numerically stable at small separations (Vincenty)."""
    ra1, dec1 = np.radians(ra1), np.radians(dec1)
    ra2, dec2 = np.radians(ra2), np.radians(dec2)
    dra = ra2 - ra1
    num = np.hypot(
        np.cos(dec2) * np.sin(dra),
        np.cos(dec1) * np.sin(dec2) - np.sin(dec1) * np.cos(dec2) * np.cos(dra),
    )
    den = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(dra)
    return np.degrees(np.arctan2(num, den))


def _search_order(radius_deg: float) -> int:
    # Pixels about half the radius wide: a few dozen pixels, merged into fewer ranges.
    pixel_deg_at_order0 = 58.6
    order = math.floor(math.log2(2 * pixel_deg_at_order0 / max(radius_deg, 1e-6)))
    return max(0, min(STORAGE_ORDER, order))


def cone_ranges(ra_deg: float, dec_deg: float, radius_deg: float) -> list[tuple[int, int]]:
    """Half-open ranges [lo, hi) of storage-order indices that cover the cone."""
    if radius_deg >= 180:
        return [(0, 12 * 4**STORAGE_ORDER)]
    order = _search_order(radius_deg)
    coarse = HEALPix(nside=2**order, order="nested")
    # cone_search_lonlat returns every pixel that overlaps the cone (checked against brute
    # force in the tests); a hair of margin covers rounding at the edge.
    pixels = np.unique(
        coarse.cone_search_lonlat(
            Longitude(ra_deg * u.deg), Latitude(dec_deg * u.deg), (radius_deg + 1e-9) * u.deg
        )
    )
    shift = 2 * (STORAGE_ORDER - order)
    ranges: list[tuple[int, int]] = []
    for pix in pixels.tolist():
        lo, hi = pix << shift, (pix + 1) << shift
        if ranges and ranges[-1][1] == lo:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    return ranges


def cone_filter(
    queryset: QuerySet, ra_deg: float, dec_deg: float, radius_deg: float, prefix: str = ""
) -> QuerySet:
    """Restrict ``queryset`` to rows within ``radius_deg`` of (ra, dec).

    ``prefix`` names the relation that holds the position (e.g. ``"source__"``). The rows get
    an ``_cone_dot`` alias; order by distance with ``order_by_distance``.
    """
    ra, dec = validate_position(ra_deg, dec_deg)
    radius = float(radius_deg)
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError("the radius must be a positive number of degrees")
    x0, y0, z0 = unit_vector(ra, dec)
    ranges_q = Q()
    for lo, hi in cone_ranges(ra, dec, radius):
        ranges_q |= Q(**{f"{prefix}healpix__gte": lo, f"{prefix}healpix__lt": hi})
    dot = F(f"{prefix}cx") * x0 + F(f"{prefix}cy") * y0 + F(f"{prefix}cz") * z0
    cos_r = math.cos(math.radians(min(radius, 180.0)))
    return queryset.filter(ranges_q).alias(_cone_dot=dot).filter(_cone_dot__gte=cos_r - 1e-15)


def order_by_distance(queryset: QuerySet) -> QuerySet:
    """Nearest first, for a queryset that went through ``cone_filter``."""
    return queryset.order_by("-_cone_dot")


def nearest(rows: Iterable, ra_deg: float, dec_deg: float):
    """The row (with ra_deg/dec_deg attributes) nearest to (ra, dec), and its distance."""
    best, best_d = None, math.inf
    for row in rows:
        d = float(angular_distance_deg(ra_deg, dec_deg, row.ra_deg, row.dec_deg))
        if d < best_d:
            best, best_d = row, d
    return best, best_d
