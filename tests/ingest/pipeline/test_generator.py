"""The synthetic archive: ISDC layout, ScW ids and times, dithers, truth, reproducibility."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from django.core.management import call_command
from django.core.management.base import CommandError

from ingest.management.commands.make_archive import parse_revolutions
from ingest.pipeline import archive
from ingest.pipeline.generator import DITHER_STEP_DEG, FIELDS, make_archive
from products import timeline
from sources.sky import angular_distance_deg

from .conftest import CRAB_REVOLUTION, GC_REVOLUTION


def test_layout_ids_and_times_follow_the_revolution_table(synthetic_archive):
    truth = json.loads((synthetic_archive / "truth.json").read_text())
    for revolution in (CRAB_REVOLUTION, GC_REVOLUTION):
        entries = archive.scw_entries(synthetic_archive, revolution, ["isgri", "jemx1"])
        assert entries and all(set(e.files) == {"isgri", "jemx1"} for e in entries)
        start = timeline.time_to_ijd(timeline.revolution_start(revolution))
        stop = timeline.time_to_ijd(timeline.revolution_end(revolution))
        scws = truth["revolutions"][str(revolution)]["scws"]
        previous_stop = start
        for entry, scw in zip(entries, scws, strict=True):
            parsed = timeline.ScwId.parse(entry.scw_id)
            assert parsed.revolution == revolution and not parsed.is_slew
            assert parsed.is_consolidated and entry.scw_id == scw["scw_id"]
            assert previous_stop <= scw["t_start_ijd"] < scw["t_stop_ijd"] <= stop
            assert 1800 <= (scw["t_stop_ijd"] - scw["t_start_ijd"]) * 86400 <= 3600
            previous_stop = scw["t_stop_ijd"]
            with fits.open(entry.files["isgri"]) as hdul:
                header = hdul[1].header
                assert header["SWID"] == parsed.base and header["REVOL"] == revolution
                assert header["TSTART"] == pytest.approx(scw["t_start_ijd"])
                images = list(hdul[2:])
                assert {h.header["IMATYPE"] for h in images} == {
                    "INTENSITY", "VARIANCE", "SIGNIFICANCE", "EXPOSURE",
                }  # fmt: skip
                assert len(images) == 4 * 10  # ten energy bands
                assert "CD1_2" in images[0].header  # the roll: a rotated CD matrix


def test_pointings_dither_around_the_target_with_a_roll(synthetic_archive):
    truth = json.loads((synthetic_archive / "truth.json").read_text())
    rev = truth["revolutions"][str(GC_REVOLUTION)]
    field = next(f for f in FIELDS if f.name == "Galactic Centre")
    assert [o["title"].split(",")[0] for o in rev["observations"]] == [field.name]
    for scw in rev["scws"]:
        offset = angular_distance_deg(field.ra_deg, field.dec_deg, scw["ra_deg"], scw["dec_deg"])
        # Points of the 5x5 pattern lie at multiples of the step from the target.
        steps = np.hypot(*np.mgrid[-2:3, -2:3]).ravel()
        assert np.min(np.abs(steps * DITHER_STEP_DEG - offset)) < 0.05
    path = archive.scw_entries(synthetic_archive, GC_REVOLUTION, ["isgri"])[0].files["isgri"]
    with fits.open(path) as hdul:
        wcs = WCS(hdul[2].header)
        roll = np.degrees(np.arctan2(-wcs.wcs.cd[0, 1], -wcs.wcs.cd[0, 0])) % 360
    assert roll == pytest.approx(rev["scws"][0]["roll_deg"], abs=1e-6)


def test_images_have_the_field_of_view_noise_and_sources(synthetic_archive):
    entry = archive.scw_entries(synthetic_archive, CRAB_REVOLUTION, ["isgri", "jemx1"])[3]
    with fits.open(entry.files["isgri"]) as hdul:
        sig = next(h.data for h in hdul[2:] if h.header["IMATYPE"] == "SIGNIFICANCE")
        exposure = next(h.data for h in hdul[2:] if h.header["IMATYPE"] == "EXPOSURE")
        inside = exposure > 0
        # ISGRI's square coded field: the corners of the image are outside it.
        assert not inside[0, 0] and inside[180, 180]
        assert exposure.max() == pytest.approx(exposure[180, 180])
        quiet = sig[inside & (np.abs(sig) < 20)]
        assert 0.9 < quiet.std() < 1.15  # unit noise (the Crab's PSF aside)
        assert sig.max() > 100  # the Crab
    with fits.open(entry.files["jemx1"]) as hdul:
        first = hdul[2].header
        assert first["EXTNAME"] == "JMX1-SKY.-IMA" and first["IMATYPE"] == "RECONSTRUCTED"
        assert first["BUNIT"] == "counts/cm2/s"


def test_same_seed_same_archive(tmp_path):
    for folder in ("a", "b"):
        make_archive(
            tmp_path / folder, [1200], scws_per_revolution=2, seed=4, instruments=["isgri"],
            bands="image", grbs=False,
        )  # fmt: skip
    first = sorted((tmp_path / "a").rglob("*.fits"))
    second = sorted((tmp_path / "b").rglob("*.fits"))
    assert [p.relative_to(tmp_path / "a") for p in first] == [
        p.relative_to(tmp_path / "b") for p in second
    ]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(first, second, strict=True))


def test_grb_triggers_and_acs_rates(synthetic_archive):
    triggers = archive.load_grb_triggers(synthetic_archive / "grb_triggers.json")
    assert {timeline.revolution_of(timeline.ijd_to_time(t.t0_ijd)) for t in triggers} == {
        CRAB_REVOLUTION,
        GC_REVOLUTION,
    }
    assert all(t.name.startswith("GRB ") for t in triggers)


def test_make_archive_command(tmp_path):
    call_command(
        "make_archive", str(tmp_path / "arch"), "--revolutions", "1500-1501",
        "--scws-per-revolution", "2", "--instruments", "isgri", "--bands", "image",
        "--data-level", "NRT", "--gzip", "--no-grbs", verbosity=0,
    )  # fmt: skip
    assert archive.revolutions_in_archive(tmp_path / "arch") == [1500, 1501]
    entries = archive.scw_entries(tmp_path / "arch", 1500, ["isgri"])
    assert [e.scw_id for e in entries] == ["150000010010.000", "150000020010.000"]
    assert entries[0].files["isgri"].name == "isgri_sky_ima.fits.gz"
    assert archive.data_level(entries) == "NRT"
    assert not (tmp_path / "arch" / "grb_triggers.json").exists()


def test_revolution_ranges():
    assert parse_revolutions("100-103,110") == [100, 101, 102, 103, 110]
    assert parse_revolutions("665") == [665]
    for bad in ("", "a-b", "5-2", "0-3"):
        with pytest.raises(CommandError):
            parse_revolutions(bad)
