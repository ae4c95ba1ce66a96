"""Per-source statistics and likely duplicates (sources.stats), and what a catalogue import
does with provisional sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from django.core.management import call_command

from sources import stats
from sources.catalog import import_catalog
from sources.models import Source
from tests.factories import SourceFactory

pytestmark = pytest.mark.django_db


def offset(ra: float, dec: float, arcmin: float, angle_deg: float = 30.0) -> tuple[float, float]:
    """A position ``arcmin`` away from (ra, dec)."""
    import astropy.units as u

    moved = SkyCoord(ra * u.deg, dec * u.deg).directional_offset_by(
        angle_deg * u.deg, arcmin * u.arcmin
    )
    return float(moved.ra.deg), float(moved.dec.deg)


# --- statistics -------------------------------------------------------------------------------


def test_combine_statistics() -> None:
    combined = stats.combine_statistics(
        {
            "isgri": {
                "n_points": 10,
                "n_detections": 4,
                "first_detection_ijd": 100.0,
                "last_detection_ijd": 900.0,
                "peak_significance": 30.0,
                "flux_min": 1.0,
                "flux_max": 5.0,
                "flux_unit": "count/s",
            },
            "jemx1": {
                "n_points": 3,
                "n_detections": 0,
                "first_detection_ijd": None,
                "last_detection_ijd": None,
                "peak_significance": 2.0,
                "flux_min": None,
                "flux_max": None,
                "flux_unit": "count/s",
            },
        }
    )
    assert combined["n_detections"] == 4
    assert (combined["first_detection_ijd"], combined["last_detection_ijd"]) == (100.0, 900.0)
    assert combined["peak_significance"] == 30.0
    assert combined["detection_summary"]["isgri"]["flux_max"] == 5.0
    empty = stats.combine_statistics({})
    assert empty["n_detections"] == 0 and empty["first_detection_ijd"] is None


def test_store_statistics_resets_absent_sources_and_keeps_history_quiet() -> None:
    crab = SourceFactory(name="Crab")
    other = SourceFactory(name="Other")
    Source.objects.filter(pk=other.pk).update(n_detections=9, peak_significance=12.0)
    written = stats.store_statistics(
        {crab.pk: {"isgri": {"n_detections": 2, "peak_significance": 8.0}}}, [crab.pk, other.pk]
    )
    assert written == 2
    crab.refresh_from_db()
    other.refresh_from_db()
    assert (crab.n_detections, crab.peak_significance) == (2, 8.0)
    assert (other.n_detections, other.peak_significance, other.detection_summary) == (0, None, {})
    assert crab.statistics_updated is not None
    assert crab.history.count() == 1


# --- likely duplicates ------------------------------------------------------------------------


def test_provisional_source_near_a_catalogued_one() -> None:
    crab = SourceFactory(name="Crab", ra_deg=83.633, dec_deg=22.0145, error_radius_arcmin=0.1)
    ra, dec = offset(83.633, 22.0145, 2.5)
    new = SourceFactory(
        name="NEW J053432+0012",
        ra_deg=ra,
        dec_deg=dec,
        error_radius_arcmin=4.0,
        is_provisional=True,
    )
    far_ra, far_dec = offset(83.633, 22.0145, 6.0, angle_deg=210.0)
    SourceFactory(name="Far away", ra_deg=far_ra, dec_deg=far_dec, error_radius_arcmin=0.1)
    (candidate,) = stats.duplicate_candidates()
    assert (candidate.keep, candidate.merge) == (crab, new)
    assert candidate.separation_arcmin == pytest.approx(2.5, abs=1e-3)
    assert candidate.limit_arcmin == pytest.approx(4.1)
    assert "provisional" in candidate.reason
    assert stats.duplicate_candidate_ids() == {crab.pk, new.pk}
    assert stats.duplicates_of(new) == [candidate]


def test_overlapping_catalogued_sources_across_ra_zero_and_merged_ones() -> None:
    a = SourceFactory(name="A", ra_deg=359.99, dec_deg=-5.0, error_radius_arcmin=0.5)
    b = SourceFactory(name="B", ra_deg=0.005, dec_deg=-5.0, error_radius_arcmin=0.5)
    (candidate,) = stats.duplicate_candidates()
    assert {candidate.keep.pk, candidate.merge.pk} == {a.pk, b.pk}
    assert "catalogued" in candidate.reason
    Source.objects.filter(pk=b.pk).update(merged_into=a)
    assert stats.duplicate_candidates() == []


def test_points_without_error_circles_do_not_pair() -> None:
    SourceFactory(name="P1", ra_deg=10.0, dec_deg=10.0, error_radius_arcmin=None)
    SourceFactory(name="P2", ra_deg=10.0001, dec_deg=10.0, error_radius_arcmin=None)
    assert stats.duplicate_candidates() == []


def test_duplicates_against_brute_force() -> None:
    generator = np.random.default_rng(4)
    rows = []
    for i in range(60):
        # Clustered so that some circles overlap.
        ra, dec = offset(
            120.0, -30.0, float(generator.uniform(0, 20)), float(generator.uniform(0, 360))
        )
        radius = float(generator.choice([0.0, 0.5, 2.0, 4.0]))
        rows.append(SourceFactory(name=f"S{i}", ra_deg=ra, dec_deg=dec, error_radius_arcmin=radius))
    expected = set()
    for i, a in enumerate(rows):
        for b in rows[i + 1 :]:
            sep = (
                SkyCoord(a.ra_deg, a.dec_deg, unit="deg")
                .separation(SkyCoord(b.ra_deg, b.dec_deg, unit="deg"))
                .arcmin
            )
            if sep <= (a.error_radius_arcmin or 0) + (b.error_radius_arcmin or 0):
                expected.add(frozenset((a.pk, b.pk)))
    found = {frozenset(c.pair) for c in stats.duplicate_candidates()}
    assert expected and found == expected


def test_find_duplicates_command(capsys) -> None:
    SourceFactory(name="One", ra_deg=50.0, dec_deg=5.0, error_radius_arcmin=1.0)
    SourceFactory(name="Two", ra_deg=50.001, dec_deg=5.0, error_radius_arcmin=1.0)
    call_command("find_duplicates")
    out = capsys.readouterr().out
    assert "Two (two) -> One (one)" in out and "1 likely duplicates" in out


# --- catalogue import and provisional sources -------------------------------------------------


def test_catalogue_import_confirms_named_provisional_sources_and_lists_neighbours(
    tmp_path: Path,
) -> None:
    named = SourceFactory(
        name="IGR J17091-3624",
        ra_deg=257.28,
        dec_deg=-36.41,
        error_radius_arcmin=4.0,
        is_provisional=True,
    )
    ra, dec = offset(270.284167, -25.079167, 1.5)
    nearby = SourceFactory(
        name="NEW J180108-2503",
        ra_deg=ra,
        dec_deg=dec,
        error_radius_arcmin=4.0,
        is_provisional=True,
    )
    path = tmp_path / "cat.csv"
    path.write_text(
        "name,ra_deg,dec_deg,error_radius_arcmin\n"
        "IGR J17091-3624,257.281708,-36.407139,0.05\n"
        "GX 5-1,270.284167,-25.079167,0.02\n",
        encoding="utf-8",
    )
    report = import_catalog(path)
    named.refresh_from_db()
    nearby.refresh_from_db()
    assert not named.is_provisional and report.confirmed == 1
    assert nearby.is_provisional  # only proposed for merging, never merged by the import
    (candidate,) = report.duplicates
    assert (candidate.keep.name, candidate.merge.pk) == ("GX 5-1", nearby.pk)
    assert "1 provisional sources confirmed" in report.summary()
    assert "1 likely duplicates to review" in report.summary()
    again = import_catalog(path)
    assert again.confirmed == 0 and again.created == 0


def test_import_command_lists_likely_duplicates(tmp_path: Path, capsys) -> None:
    ra, dec = offset(299.590316, 35.201604, 1.0)
    SourceFactory(
        name="NEW J195822+3512",
        ra_deg=ra,
        dec_deg=dec,
        error_radius_arcmin=4.0,
        is_provisional=True,
    )
    path = tmp_path / "cat.csv"
    path.write_text("name,ra_deg,dec_deg\nCyg X-1,299.590316,35.201604\n", encoding="utf-8")
    call_command("import_catalog", str(path))
    out = capsys.readouterr().out
    assert "likely duplicate: NEW J195822+3512 -> Cyg X-1" in out
