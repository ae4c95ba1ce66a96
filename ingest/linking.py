"""Linking what a file says to the archive: sources (name, then position, else a new source),
revolutions and observations. Runs inside the ingest transaction."""

from __future__ import annotations

from dataclasses import dataclass

from products.models import Instrument, Observation, Revolution
from sources.models import Source, SourceClass
from sources.names import provisional_name, validate_source_name
from sources.sky import angular_distance_deg, cone_filter

from .readers.base import IngestError


@dataclass
class LinkedSource:
    source: Source
    how: str  # name | position | created


def find_by_name(name: str) -> Source | None:
    source = Source.objects.named(name).first()
    while source is not None and source.merged_into_id:
        source = source.merged_into
    return source


def find_by_position(ra_deg: float, dec_deg: float, radius_deg: float) -> Source | None:
    if radius_deg <= 0:
        return None
    candidates = list(cone_filter(Source.objects.active(), ra_deg, dec_deg, radius_deg))
    if not candidates:
        return None
    return min(
        candidates, key=lambda s: float(angular_distance_deg(ra_deg, dec_deg, s.ra_deg, s.dec_deg))
    )


def nearest_within(
    candidates: list[Source], ra_deg: float, dec_deg: float, radius_deg: float
) -> Source | None:
    """The nearest of ``candidates`` (already fetched) within ``radius_deg``, or None."""
    if not candidates or radius_deg <= 0:
        return None
    distances = angular_distance_deg(
        ra_deg, dec_deg, [s.ra_deg for s in candidates], [s.dec_deg for s in candidates]
    )
    best = int(distances.argmin())
    return candidates[best] if distances[best] <= radius_deg else None


def match_radius_deg(instrument: Instrument) -> float:
    return (instrument.match_radius_arcmin or 0.0) / 60.0


def resolve_source(
    name: str | None,
    ra_deg: float | None,
    dec_deg: float | None,
    instrument: Instrument,
    *,
    is_new: bool = False,
    object_class: str | None = None,
) -> LinkedSource:
    """The source a product or catalogue row speaks of; created when none matches."""
    if name:
        try:
            name = validate_source_name(name)
        except ValueError as exc:
            raise IngestError(str(exc)) from None
        found = find_by_name(name)
        if found is not None:
            return LinkedSource(found, "name")
    if ra_deg is not None and dec_deg is not None:
        found = find_by_position(ra_deg, dec_deg, match_radius_deg(instrument))
        if found is not None:
            return LinkedSource(found, "position")
    if not name and (ra_deg is None or dec_deg is None):
        raise IngestError(
            "the file names no source and gives no position: give the source (e.g. --source)"
        )
    provisional = not name or is_new
    source = Source(
        name=name or provisional_name(ra_deg, dec_deg),
        is_provisional=provisional,
        error_radius_arcmin=instrument.match_radius_arcmin or None,
        object_class=SourceClass.objects.filter(code=object_class).first()
        if object_class
        else None,
    )
    source.set_position(ra_deg, dec_deg)
    source.save()
    return LinkedSource(source, "created")


def revolutions_for(numbers: list[int]) -> list[Revolution]:
    return [Revolution.for_number(n) for n in sorted(set(numbers))]


def find_observation(key: str) -> Observation | None:
    return (
        Observation.objects.filter(obsid=key).order_by("-time_start").first()
        or Observation.objects.filter(title=key).first()
    )
