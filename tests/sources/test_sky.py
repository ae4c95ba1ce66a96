"""Cone search against brute force on random skies, HEALPix ranges, and position columns.

``cone_filter`` must return exactly the rows a brute-force great-circle distance selects, for
cones from an arcsecond to the whole sky, across RA 0/360 and at the poles, on SQLite and
PostgreSQL. Rows that lie so close to the cone's edge that double precision cannot decide
(a band of nano-arcseconds to micro-arcseconds) may go either way and are left out.
"""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy_healpix import HEALPix
from django.db import connection

from products.models import FluxPoint
from sources.models import Source
from sources.sky import (
    STORAGE_ORDER,
    angular_distance_deg,
    cone_filter,
    cone_ranges,
    healpix_index,
    order_by_distance,
    position_fields,
    unit_vector,
    validate_position,
)
from tests.factories import FluxPointFactory, SourceFactory

ARCSEC = 1.0 / 3600.0
NPIX = 12 * 4**STORAGE_ORDER
STORAGE = HEALPix(nside=2**STORAGE_ORDER, order="nested")


def _offsets(ra_deg: float, dec_deg: float, radii_deg: np.ndarray, rng) -> SkyCoord:
    """Points at the given distances from (ra, dec), at random position angles."""
    centre = SkyCoord(ra_deg * u.deg, dec_deg * u.deg)
    angles = rng.uniform(0.0, 360.0, len(radii_deg)) * u.deg
    return centre.directional_offset_by(angles, radii_deg * u.deg)


#: Cone centres where the sky is made dense: RA 0/360, both poles and near them, the equator.
SPECIAL_CENTRES = [
    (0.0, 0.0),
    (359.9999, 10.0),
    (0.0001, -35.0),
    (180.0, 90.0),
    (42.0, -90.0),
    (300.0, 89.99),
    (10.0, -89.9),
    (359.5, 88.0),
    (83.633, 22.0145),
]


def build_random_sky(rng, n_uniform: int = 2500, n_per_centre: int = 150) -> None:
    """Sources spread uniformly, plus clusters around the special centres at distances from
    0.1 arcsec to 60 degrees, plus the awkward exact positions."""
    ra = list(rng.uniform(0.0, 360.0, n_uniform))
    dec = list(np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n_uniform))))
    for c_ra, c_dec in SPECIAL_CENTRES:
        radii = 10 ** rng.uniform(math.log10(0.1 * ARCSEC), math.log10(60.0), n_per_centre)
        points = _offsets(c_ra, c_dec, radii, rng)
        ra += list(points.ra.deg)
        dec += list(points.dec.deg)
    exact = [
        (0.0, 90.0),
        (123.0, 90.0),
        (0.0, -90.0),
        (0.0, 0.0),
        (359.9999999, 0.0),
        (180.0, 0.0),
        (90.0, 45.0),
        (270.0, -45.0),
    ]
    ra += [p[0] for p in exact]
    dec += [p[1] for p in exact]
    rows = []
    for i, (r, d) in enumerate(zip(ra, dec, strict=True)):
        source = Source(name=f"Sky {i}", slug=f"sky-{i}")
        source.set_position(float(r), float(d))
        rows.append(source)
    Source.objects.bulk_create(rows, batch_size=500)


def brute_force(ra_deg: float, dec_deg: float, radius_deg: float, table) -> tuple[set, set]:
    """(ids inside the cone, ids too close to its edge for double precision to decide)."""
    ids, ras, decs = table
    distance = np.asarray(angular_distance_deg(ra_deg, dec_deg, ras, decs), dtype=float)
    inside = distance <= radius_deg
    # The SQL side compares dot products: an error of ~1e-15 on cos(r) is an error of
    # 1e-15 / sin(r) radians on r (the larger near r = 0 and r = 180 degrees).
    r = math.radians(min(radius_deg, 180.0))
    band_deg = math.degrees(4e-15 / max(math.sin(r), 1e-7) + 1e-13)
    undecided = np.abs(distance - radius_deg) <= band_deg
    return set(ids[inside & ~undecided].tolist()), set(ids[undecided].tolist())


def sky_table():
    rows = np.array(list(Source.objects.values_list("pk", "ra_deg", "dec_deg")), dtype=float)
    return rows[:, 0].astype(int), rows[:, 1], rows[:, 2]


def assert_cone_matches(ra_deg: float, dec_deg: float, radius_deg: float, table) -> int:
    expected, undecided = brute_force(ra_deg, dec_deg, radius_deg, table)
    found = set(
        cone_filter(Source.objects.all(), ra_deg, dec_deg, radius_deg).values_list("pk", flat=True)
    )
    missing, extra = expected - found, found - expected - undecided
    assert not missing and not extra, (
        f"cone ({ra_deg}, {dec_deg}, r={radius_deg} deg): "
        f"{len(missing)} missing, {len(extra)} extra of {len(expected)}"
    )
    return len(expected)


@pytest.fixture
def sky():
    build_random_sky(np.random.default_rng(20021017))
    return sky_table()


@pytest.mark.django_db
def test_random_cones_match_brute_force(sky) -> None:
    rng = np.random.default_rng(7)
    non_empty = 0
    for _ in range(150):
        ra = rng.uniform(0.0, 360.0)
        dec = math.degrees(math.asin(rng.uniform(-1.0, 1.0)))
        radius = 10 ** rng.uniform(math.log10(ARCSEC), math.log10(30.0))
        non_empty += assert_cone_matches(ra, dec, radius, sky) > 0
    assert non_empty > 30  # the test says something only if cones hold sources


@pytest.mark.django_db
def test_cones_at_dense_centres_match_brute_force(sky) -> None:
    for c_ra, c_dec in SPECIAL_CENTRES:
        counts = [
            assert_cone_matches(c_ra, c_dec, radius, sky)
            for radius in (ARCSEC, 5 * ARCSEC, 30 * ARCSEC, 0.1, 0.5, 1.0, 3.0, 10.0, 30.0)
        ]
        assert counts == sorted(counts) and counts[-1] > counts[0], (c_ra, c_dec, counts)


@pytest.mark.django_db
def test_cones_straddling_ra_zero(sky) -> None:
    for ra in (0.0, 359.99, 0.01, 359.9999999, 360.0):
        for dec in (0.0, 10.0, -35.0, 60.0):
            for radius in (10 * ARCSEC, 0.05, 1.0, 5.0, 25.0):
                assert_cone_matches(ra, dec, radius, sky)
    # A cone centred on 0.5 deg that reaches back over RA 360 finds sources at RA 359.9999.
    found = cone_filter(Source.objects.all(), 0.5, 10.0, 1.0).values_list("ra_deg", flat=True)
    assert any(ra > 359.0 for ra in found) and any(ra < 1.0 for ra in found)


@pytest.mark.django_db
def test_cones_at_and_near_the_poles(sky) -> None:
    for dec in (90.0, 89.9999, 89.99, 89.5, 88.0, -90.0, -89.9999, -89.9, -88.5):
        for ra in (0.0, 90.0, 200.0, 359.999):
            for radius in (ARCSEC, 0.01, 0.3, 2.0, 15.0):
                assert_cone_matches(ra, dec, radius, sky)
    # Every source near the pole is found whatever RA the cone's centre is given.
    at_pole = set(cone_filter(Source.objects.all(), 0.0, 90.0, 1.0).values_list("pk", flat=True))
    assert at_pole == set(
        cone_filter(Source.objects.all(), 271.0, 90.0, 1.0).values_list("pk", flat=True)
    )
    assert len(at_pole) > 3


@pytest.mark.django_db
def test_whole_sky_cones(sky) -> None:
    total = Source.objects.count()
    for radius in (180.0, 200.0, 360.0):
        assert cone_filter(Source.objects.all(), 12.0, -3.0, radius).count() == total
    assert_cone_matches(12.0, -3.0, 180.0, sky)
    # Large cones: a hemisphere and almost the whole sky.
    for radius in (60.0, 90.0, 120.0, 179.0):
        assert_cone_matches(200.0, 45.0, radius, sky)
        assert_cone_matches(0.0, -90.0, radius, sky)


@pytest.mark.django_db
def test_cone_includes_its_centre_and_orders_by_distance(sky) -> None:
    centre = Source.objects.get(name="Sky 0")
    nearest = order_by_distance(
        cone_filter(Source.objects.all(), centre.ra_deg, centre.dec_deg, 20.0)
    )
    rows = list(nearest.values_list("pk", "ra_deg", "dec_deg")[:50])
    assert rows[0][0] == centre.pk
    distances = [angular_distance_deg(centre.ra_deg, centre.dec_deg, r, d) for _, r, d in rows]
    assert distances == sorted(distances)
    # A zero-size search about the exact position of a source still finds it.
    assert cone_filter(Source.objects.all(), centre.ra_deg, centre.dec_deg, 1e-9).get() == centre


@pytest.mark.django_db
def test_cone_filter_through_a_relation() -> None:
    near = SourceFactory(name="Near", ra_deg=359.99, dec_deg=-0.01)
    far = SourceFactory(name="Far", ra_deg=180.0, dec_deg=0.0)
    inside = FluxPointFactory(source=near)
    FluxPointFactory(source=far)
    found = cone_filter(FluxPoint.objects.all(), 0.01, 0.01, 0.1, prefix="source__")
    assert list(found) == [inside]


@pytest.mark.parametrize(
    ("ra", "dec", "radius"),
    [
        (0.0, 0.0, 0.0),
        (0.0, 0.0, -1.0),
        (0.0, 0.0, math.nan),
        (0.0, 91.0, 1.0),
        (math.nan, 0.0, 1.0),
        (0.0, math.inf, 1.0),
    ],
)
def test_cone_filter_rejects_bad_cones(ra: float, dec: float, radius: float) -> None:
    with pytest.raises(ValueError):
        cone_filter(Source.objects.all(), ra, dec, radius)


# --- HEALPix ranges ------------------------------------------------------------------------


def _check_ranges(ranges: list[tuple[int, int]]) -> None:
    assert ranges
    for lo, hi in ranges:
        assert 0 <= lo < hi <= NPIX
    for (_, hi), (lo, _) in zip(ranges, ranges[1:], strict=False):
        assert hi < lo  # sorted, disjoint and merged where adjacent


def test_ranges_cover_every_point_of_the_cone() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        ra = rng.uniform(0.0, 360.0)
        dec = math.degrees(math.asin(rng.uniform(-1.0, 1.0)))
        if rng.uniform() < 0.2:
            dec = float(rng.choice([90.0, -90.0, 89.999, -89.999]))
        radius = 10 ** rng.uniform(math.log10(ARCSEC), math.log10(90.0))
        ranges = cone_ranges(ra, dec, radius)
        _check_ranges(ranges)
        # Points just inside the edge are the ones a too-tight cover would lose.
        points = _offsets(ra, dec, radius * rng.uniform(0.9, 0.999999, 300), rng)
        index = STORAGE.lonlat_to_healpix(points.ra, points.dec)
        lows = np.array([lo for lo, _ in ranges])
        highs = np.array([hi for _, hi in ranges])
        slot = np.searchsorted(lows, index, side="right") - 1
        assert np.all(slot >= 0) and np.all(index < highs[slot]), (ra, dec, radius)


@pytest.mark.parametrize("radius", [ARCSEC, 10 * ARCSEC, 0.1, 1.0, 10.0, 30.0])
def test_ranges_stay_few_and_tight(radius: float) -> None:
    rng = np.random.default_rng(int(radius * 1e6))
    for _ in range(20):
        ra, dec = rng.uniform(0.0, 360.0), math.degrees(math.asin(rng.uniform(-1.0, 1.0)))
        ranges = cone_ranges(ra, dec, radius)
        covered = sum(hi - lo for lo, hi in ranges) / NPIX
        cone = (1.0 - math.cos(math.radians(radius))) / 2.0
        assert len(ranges) <= 40
        assert cone <= covered <= 40 * cone


def test_whole_sky_is_one_range() -> None:
    assert cone_ranges(10.0, 10.0, 180.0) == [(0, NPIX)]
    assert cone_ranges(10.0, 10.0, 500.0) == [(0, NPIX)]


def test_healpix_index_is_nested_at_the_storage_order() -> None:
    rng = np.random.default_rng(5)
    ras, decs = rng.uniform(0, 360, 200), np.degrees(np.arcsin(rng.uniform(-1, 1, 200)))
    coarse = HEALPix(nside=2**6, order="nested")
    fine = STORAGE
    for ra, dec in zip(ras, decs, strict=True):
        index = healpix_index(ra, dec)
        assert 0 <= index < NPIX
        assert index == int(fine.lonlat_to_healpix(ra * u.deg, dec * u.deg))
        # The nested scheme: the parent pixel is the index shifted right.
        parent = int(coarse.lonlat_to_healpix(ra * u.deg, dec * u.deg))
        assert index >> (2 * (STORAGE_ORDER - 6)) == parent
    # Pixels at the storage order are about 0.2 arcsec wide.
    assert fine.pixel_resolution.to_value(u.arcsec) == pytest.approx(0.2, abs=0.01)


# --- stored position columns ---------------------------------------------------------------


def test_position_fields() -> None:
    fields = position_fields(83.633, 22.0145)
    assert fields["ra_deg"] == 83.633 and fields["dec_deg"] == 22.0145
    assert fields["healpix"] == healpix_index(83.633, 22.0145)
    assert math.isclose(math.hypot(fields["cx"], fields["cy"], fields["cz"]), 1.0)
    assert fields["cx"] == pytest.approx(unit_vector(83.633, 22.0145)[0])
    assert set(position_fields(None, 5.0).values()) == {None}


@pytest.mark.parametrize(
    ("ra", "expected"), [(360.0, 0.0), (-10.0, 350.0), (725.0, 5.0), (359.999, 359.999)]
)
def test_ra_wraps_into_range(ra: float, expected: float) -> None:
    assert validate_position(ra, 0.0)[0] == pytest.approx(expected)


def test_tiny_negative_ra_wraps_below_360() -> None:
    assert 0.0 <= validate_position(-1e-20, 0.0)[0] < 360.0


@pytest.mark.parametrize(("ra", "dec"), [(0, 90.0001), (0, -91), (math.nan, 0), (0, math.inf)])
def test_invalid_positions_are_refused(ra: float, dec: float) -> None:
    with pytest.raises(ValueError):
        position_fields(ra, dec)


@pytest.mark.django_db
def test_saving_keeps_the_derived_columns_in_step() -> None:
    source = SourceFactory(ra_deg=10.0, dec_deg=-20.0)
    source.ra_deg, source.dec_deg = 200.0, 45.0
    source.save()
    source.refresh_from_db()
    assert source.healpix == healpix_index(200.0, 45.0)
    assert source.cz == pytest.approx(math.sin(math.radians(45.0)))


def test_database_vendor_is_known() -> None:
    # The cone search is tested on whichever database the run uses: SQLite or PostgreSQL.
    assert connection.vendor in ("sqlite", "postgresql")
