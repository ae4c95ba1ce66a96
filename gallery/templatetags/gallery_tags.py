"""Template helpers for times, energies and coordinates as astronomers read them."""

from __future__ import annotations

from datetime import datetime

from astropy import units as u
from astropy.coordinates import Angle
from django import template

from products import timeline

register = template.Library()


@register.filter
def ijd(value: datetime | None) -> str:
    if value is None:
        return ""
    return f"{timeline.time_to_ijd(timeline.from_datetime(value)):.5f}"


@register.filter
def utc(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%dT%H:%M:%S")


@register.filter
def hms(ra_deg: float | None) -> str:
    if ra_deg is None:
        return ""
    return Angle(ra_deg * u.deg).to_string(unit=u.hourangle, sep=":", precision=1, pad=True)


@register.filter
def dms(dec_deg: float | None) -> str:
    if dec_deg is None:
        return ""
    return Angle(dec_deg * u.deg).to_string(sep=":", precision=0, alwayssign=True, pad=True)


@register.filter
def band(product) -> str:
    if product.e_min_kev is None or product.e_max_kev is None:
        return "—"
    return f"{product.e_min_kev:g}–{product.e_max_kev:g} keV"


@register.filter
def revs(product) -> str:
    if product.rev_first is None:
        return "—"
    if product.rev_first == product.rev_last:
        return str(product.rev_first)
    return f"{product.rev_first}–{product.rev_last}"


@register.filter
def filesize(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


@register.filter
def sci(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}"


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if mapping else None
