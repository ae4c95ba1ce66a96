"""Time conversions against the revolution table and known values."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from astropy.time import Time, TimeDelta

from products import timeline
from tests.conftest import shared_fixture


def test_every_table_start_round_trips_within_a_second():
    table = timeline.revolution_table()
    for number in table.numbers:
        start = timeline.revolution_start(int(number))
        assert timeline.revolution_of(start) == number
        # one second after the start is still the same revolution, one second before is not
        assert timeline.revolution_of(start + TimeDelta(1, format="sec")) == number
        if number > 1:
            assert timeline.revolution_of(start - TimeDelta(1, format="sec")) == number - 1
        back = timeline.parse_time(str(number), "revnum")
        assert abs((back - start).sec) < 1


def test_project_table_matches_the_perigee_file():
    path = shared_fixture("time/revno.txt")
    import re

    expected = {}
    for line in path.read_text().splitlines():
        match = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z\s+START REVOLUTION\s+(\d+)", line)
        if match:
            expected[int(match.group(2))] = match.group(1)
    assert len(expected) == 2191
    for number, iso in expected.items():
        start = timeline.revolution_start(number)
        assert abs((start - Time(iso, scale="utc")).sec) < 1, number


def test_post_table_revolutions_follow_the_measured_period():
    assert timeline.revolution_of(Time("2022-03-29T15:51:01", scale="utc")) == 2485
    period_h = timeline.revolution_table().period_days * 24
    assert 63.7 < period_h < 63.9
    # beyond the table, start -> revolution -> start is exact too
    for number in (2192, 2485, 2887, 3000):
        start = timeline.revolution_start(number)
        assert timeline.revolution_of(start) == number
        assert timeline.revolution_of(start - TimeDelta(1, format="sec")) == number - 1


def test_revolution_one_and_before():
    assert timeline.revolution_of(Time("2002-10-17T05:47:25", scale="utc")) == 1
    with pytest.raises(timeline.TimeConversionError):
        timeline.revolution_of(Time("2002-10-17T05:47:24", scale="utc"))


def test_ijd_is_tt_and_agrees_with_the_headers():
    # Crab mosaic: TSTART 3191.16577917675 (IJD, TT) and DATE-OBS 2008-09-26T03:57:38 (UTC)
    t = timeline.ijd_to_time(3191.16577917675)
    assert t.utc.isot.startswith("2008-09-26T03:57:38")
    # TT - UTC is 65.184 s in 2008 (32 leap seconds + 32.184 s)
    utc_days = Time("2008-09-26T03:57:38", scale="utc").mjd - 51544.0
    assert (3191.16577917675 - utc_days) * 86400 == pytest.approx(65.184, abs=1.0)
    assert timeline.time_to_ijd(t) == pytest.approx(3191.16577917675, abs=1e-9)


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        ("2008-09-26T03:57:38", "isot", "revnum", 727),
        ("54735.16502", "mjd", "revnum", 727),
        ("3191.16577917675", "ijd", "isot", "2008-09-26T03:57:38"),
        ("1", "revnum", "isot", "2002-10-17T05:47:25"),
        ("2022-03-29T15:51:01", "isot", "revnum", 2485),
    ],
)
def test_convert(value, src, dst, expected):
    assert timeline.convert(value, src, dst) == expected


def test_mjd_ijd_round_trip():
    rng = np.random.default_rng(1)
    for mjd in rng.uniform(52565, 60700, 50):
        t = timeline.parse_time(str(mjd), "mjd")
        ijd = timeline.format_time(t, "ijd")
        back = timeline.format_time(timeline.parse_time(str(ijd), "ijd"), "mjd")
        assert back == pytest.approx(mjd, abs=1e-7)


@pytest.mark.parametrize(
    ("value", "fmt"),
    [
        ("yesterday", "isot"),
        ("2008-13-40T00:00:00", "isot"),
        ("abc", "mjd"),
        ("nan", "ijd"),
        ("1e300", "mjd"),
        ("-3", "revnum"),
        ("0", "revnum"),
        ("12.5", "revnum"),
        ("1", "jd"),
        ("<script>", "isot"),
    ],
)
def test_bad_times_are_refused_with_a_message(value, fmt):
    with pytest.raises(timeline.TimeConversionError) as info:
        timeline.parse_time(value, fmt)
    assert str(info.value)


def test_scw_ids():
    scw = timeline.ScwId.parse("066500280010.001")
    assert (scw.revolution, scw.pointing, scw.subpointing, scw.type, scw.version) == (
        665,
        28,
        1,
        0,
        1,
    )
    assert scw.is_consolidated and not scw.is_slew
    assert str(scw) == "066500280010.001"
    assert timeline.ScwId.parse("256200040030").version is None
    assert not timeline.ScwId.parse("066500280010.000").is_consolidated
    assert timeline.ScwId.parse("066500290011.001").is_slew
    for bad in (
        "000000000000",
        "0665002800",
        "066500280015.001",
        "66500280010",
        "abc",
        "066500280010.1",
    ):
        assert not timeline.is_scw_id(bad)


def test_table_file_is_complete():
    with timeline.TABLE_PATH.open() as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    assert [int(r["number"]) for r in rows] == list(range(1, 2192))
