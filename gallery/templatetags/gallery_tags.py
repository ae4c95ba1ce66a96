"""Template helpers for times, energies and coordinates as astronomers read them."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from astropy import units as u
from astropy.coordinates import Angle
from django import template
from django.utils.safestring import mark_safe

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


@register.simple_tag(takes_context=True)
def nav_current(context, *names: str) -> str:
    """``aria-current="page"`` on the navigation link of the page being shown."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    if match is not None and match.url_name in names:
        return mark_safe(' aria-current="page"')  # noqa: S308 - a constant string
    return ""


@register.simple_tag
def sort_link(current: str, key: str, extra: str = "") -> str:
    """Query string that sorts by ``key``, or by ``-key`` when already sorted by ``key``."""
    target = f"-{key}" if current == key else key
    return "?" + (f"{extra}&" if extra else "") + urlencode({"sort": target})


@register.simple_tag
def sort_state(current: str, key: str) -> str:
    """The aria-sort value of a sortable column header."""
    if current == key:
        return "ascending"
    if current == f"-{key}":
        return "descending"
    return "none"


@register.filter
def mjd(value: datetime | None) -> str:
    if value is None:
        return ""
    return f"{timeline.from_datetime(value).utc.mjd:.5f}"


@register.filter
def revolution_of(value: datetime | None) -> str:
    if value is None:
        return ""
    try:
        return str(timeline.revolution_of(timeline.from_datetime(value)))
    except timeline.TimeConversionError:
        return ""


@register.filter
def days(value) -> str:
    """A duration (timedelta) in days, to one decimal."""
    if value is None:
        return "—"
    return f"{value.total_seconds() / 86400:.1f}"


@register.filter
def detected(product) -> list[dict]:
    """The detected-source rows of an image or catalogue product."""
    from gallery.pages.selectors import detected_rows

    return detected_rows(product)


@register.filter
def ks(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 1000:.1f}"
