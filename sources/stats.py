"""Per-source statistics and likely duplicates.

Statistics (first and last detection, number of detections, peak significance, flux range) are
computed by the archive from the flux points everyone may see and handed to
``store_statistics``, which writes them onto the Source row: this layer knows nothing of flux
points, only what the numbers mean.

Likely duplicates are pairs of active sources whose error circles overlap: a provisional source
(a new detection, with the instrument's match radius as error) next to a catalogued source
imported later, or two catalogue entries for the same object. They are proposed to curators,
never merged automatically.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from django.utils import timezone

from .models import Source

#: Keys of one instrument's entry in Source.detection_summary.
SUMMARY_KEYS = (
    "n_points",
    "n_detections",
    "first_detection_ijd",
    "last_detection_ijd",
    "peak_significance",
    "flux_min",
    "flux_max",
    "flux_unit",
)


#: The Source fields that ``store_statistics`` writes.
STATISTICS_FIELDS = (
    "first_detection_ijd",
    "last_detection_ijd",
    "n_detections",
    "peak_significance",
    "detection_summary",
    "statistics_updated",
)


def _finite(value) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def combine_statistics(per_instrument: Mapping[str, Mapping]) -> dict:
    """The Source fields from per-instrument summaries (see ``SUMMARY_KEYS``).

    The detection count adds up over instruments, first/last detection and the peak
    significance are the extremes; the flux range stays per instrument (units differ).
    """
    firsts = [_finite(s.get("first_detection_ijd")) for s in per_instrument.values()]
    lasts = [_finite(s.get("last_detection_ijd")) for s in per_instrument.values()]
    peaks = [_finite(s.get("peak_significance")) for s in per_instrument.values()]
    firsts, lasts, peaks = (
        [v for v in firsts if v is not None],
        [v for v in lasts if v is not None],
        [v for v in peaks if v is not None],
    )
    summary = {
        code: {key: stats.get(key) for key in SUMMARY_KEYS}
        for code, stats in sorted(per_instrument.items())
    }
    return {
        "first_detection_ijd": min(firsts) if firsts else None,
        "last_detection_ijd": max(lasts) if lasts else None,
        "n_detections": int(sum(int(s.get("n_detections") or 0) for s in summary.values())),
        "peak_significance": max(peaks) if peaks else None,
        "detection_summary": summary,
    }


def store_statistics(
    statistics: Mapping[int, Mapping[str, Mapping]], source_ids: Iterable[int]
) -> int:
    """Write the statistics of ``source_ids``; a source absent from ``statistics`` is reset.

    ``statistics`` maps a source id to its per-instrument summaries. Rows are written with
    ``bulk_update`` (no ``save()``), so refreshing numbers adds nothing to a source's edit
    history. Returns the number of sources written.
    """
    now = timezone.now()
    rows = [
        Source(
            pk=source_id,
            statistics_updated=now,
            **combine_statistics(statistics.get(source_id, {})),
        )
        for source_id in sorted(set(source_ids))
    ]
    return Source.objects.bulk_update(rows, STATISTICS_FIELDS, batch_size=500)


# --- likely duplicates ------------------------------------------------------------------------


@dataclass(frozen=True)
class DuplicateCandidate:
    """Two sources that are probably one: ``merge`` is proposed for merging into ``keep``."""

    keep: Source
    merge: Source
    separation_arcmin: float
    limit_arcmin: float
    reason: str

    @property
    def pair(self) -> tuple[int, int]:
        return (self.keep.pk, self.merge.pk)


def _keep_first(a: Source, b: Source) -> tuple[Source, Source]:
    """(keep, merge): a catalogued source before a provisional one, then the better position
    (smaller error radius), then the older row."""

    def rank(s: Source):
        radius = s.error_radius_arcmin if s.error_radius_arcmin is not None else math.inf
        return (s.is_provisional, radius, s.pk)

    return (a, b) if rank(a) <= rank(b) else (b, a)


def duplicate_candidates(
    sources: Iterable[Source] | None = None, *, max_radius_arcmin: float = 30.0
) -> list[DuplicateCandidate]:
    """Pairs of active sources whose error circles overlap (separation ≤ r₁ + r₂).

    A source without an error radius counts as a point (r = 0): it pairs only with a source
    whose own circle reaches it. Error radii are capped at ``max_radius_arcmin`` so that a
    wrong radius cannot pair half the sky. With ``sources`` only pairs involving them are
    returned (e.g. the rows a catalogue import touched); all pairs otherwise, closest first.
    """
    rows = list(
        Source.objects.active()
        .filter(ra_deg__isnull=False, dec_deg__isnull=False)
        .only("pk", "name", "slug", "ra_deg", "dec_deg", "error_radius_arcmin", "is_provisional")
        .order_by("pk")
    )
    if len(rows) < 2:
        return []
    wanted = None if sources is None else {s.pk for s in sources}
    radius = np.array(
        [min(max(r.error_radius_arcmin or 0.0, 0.0), max_radius_arcmin) for r in rows]
    )
    if not radius.any():
        return []
    coords = SkyCoord([r.ra_deg for r in rows] * u.deg, [r.dec_deg for r in rows] * u.deg)
    search = 2 * float(radius.max()) * u.arcmin
    left, right, sep, _ = coords.search_around_sky(coords, search)
    sep_arcmin = sep.to_value(u.arcmin)
    found = []
    for i, j, s in zip(left.tolist(), right.tolist(), sep_arcmin.tolist(), strict=True):
        if i >= j:  # each pair once, never a source with itself
            continue
        limit = float(radius[i] + radius[j])
        if s > limit:
            continue
        a, b = rows[i], rows[j]
        if wanted is not None and a.pk not in wanted and b.pk not in wanted:
            continue
        keep, merge = _keep_first(a, b)
        if merge.is_provisional and not keep.is_provisional:
            reason = "provisional source within the error circle of a catalogued source"
        elif merge.is_provisional:
            reason = "two provisional sources with overlapping error circles"
        else:
            reason = "two catalogued sources with overlapping error circles"
        found.append(DuplicateCandidate(keep, merge, round(s, 4), round(limit, 4), reason))
    found.sort(key=lambda c: (c.separation_arcmin, c.pair))
    return found


def duplicate_candidate_ids() -> set[int]:
    """Ids of the sources that have a likely duplicate (for an admin list filter)."""
    return {pk for candidate in duplicate_candidates() for pk in candidate.pair}


def duplicates_of(source: Source) -> list[DuplicateCandidate]:
    """The likely duplicates of one source (for its admin page or a merge action)."""
    return duplicate_candidates([source])
