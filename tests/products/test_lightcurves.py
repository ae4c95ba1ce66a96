"""Long-term light curves: binning checked against a direct computation, upper limits, bands,
visibility, and the time conversions they rest on."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
import pytest
from astropy.time import Time
from django.contrib.auth.models import AnonymousUser, Group, User
from django.utils import timezone

from products import lightcurves, timeline
from products.lightcurves import LightCurveError, light_curve, parse_binning, summarise_products
from products.models import FluxBin, FluxPoint, Product
from tests.factories import FluxPointFactory, ProductFactory, SourceFactory
from tests.gallery.lightcurves.series import (
    add_revolution,
    assert_bins_equal,
    direct_bins,
    random_series,
    revolution_ijd,
    rng,
)

# --- parameters (no database) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "width", "label"),
    [
        (None, "revolution", None, "revolution"),
        ("scw", "scw", None, "scw"),
        ("Revolution", "revolution", None, "revolution"),
        ("1d", "time", 1.0, "1d"),
        ("7d", "time", 7.0, "7d"),
        ("30d", "time", 30.0, "30d"),
        ("0.5d", "time", 0.5, "0.5d"),
        ("3600", "time", 3600 / 86400, "3600"),
        ("86400s", "time", 1.0, "86400"),
    ],
)
def test_parse_binning(text, kind, width, label) -> None:
    binning = parse_binning(text)
    assert (binning.kind, binning.label) == (kind, label)
    assert binning.width_days == (pytest.approx(width) if width else None)


@pytest.mark.parametrize("text", ["week", "-5", "0", "0d", "1e12", "nan", "1d; drop", "7 d"])
def test_parse_binning_refuses_bad_values(text) -> None:
    with pytest.raises(LightCurveError):
        parse_binning(text)


def test_parse_energy() -> None:
    assert lightcurves.parse_energy(None, "e_min") is None
    assert lightcurves.parse_energy("20", "e_min") == 20.0
    for bad in ("abc", "-1", "inf", "1e9"):
        with pytest.raises(LightCurveError):
            lightcurves.parse_energy(bad, "e_min")


def test_finish_bins_upper_limits() -> None:
    # Sums of bins of one point each: flux 10 ± 1 (detected), 2 ± 1 and -1 ± 1 (limits).
    stats = lightcurves.finish_bins([1.0, 1.0, 1.0], [10.0, 2.0, -1.0], [1.0, 1.0, 1.0])
    assert stats.upper_limit.tolist() == [False, True, True]
    assert stats.flux.tolist() == [10.0, 4.0, 2.0]  # max(mean, 0) + 2σ
    assert (stats.significance * stats.error).tolist() == [10.0, 2.0, -1.0]


def test_revolutions_of_ijd_follow_the_timeline() -> None:
    generator = rng(3)
    ijd = np.concatenate(
        [
            generator.uniform(1020.0, 9300.0, 200),  # inside and beyond the perigee table
            [revolution_ijd(r) + 1e-6 for r in (1, 2, 1496, 2191, 2192, 2485)],
        ]
    )
    expected = [timeline.revolution_of(timeline.ijd_to_time(t)) for t in ijd]
    assert lightcurves.revolutions_of_ijd(ijd).tolist() == expected


def test_utc_strings_match_astropy() -> None:
    ijd = np.array([0.0, 1000.123456, 6279.5, 8801.99999])
    expected = [t.split(".")[0] for t in Time(ijd + 51544.0, format="mjd", scale="tt").utc.isot]
    got = lightcurves.ijd_to_utc_strings(ijd)
    # Rounded to the millisecond then cut to the second: equal, or one second on at a boundary.
    for a, b in zip(got, expected, strict=True):
        delta = Time(a, format="isot") - Time(b, format="isot")
        assert abs(delta.sec) <= 1.0


# --- binning against a direct computation -----------------------------------------------------


@pytest.fixture
def crab(db):
    return SourceFactory(name="Crab", ra_deg=83.633, dec_deg=22.0145)


@pytest.fixture
def series(crab):
    """Random points over ten revolutions, and a few that make upper limits."""
    generator = rng(7)
    random_series(crab, [100, 101, 103, 110, 111, 150, 151, 152, 400, 401], generator)
    add_revolution(crab, 540, [0.5, -0.2], [1.0, 1.5], store_limits=True)  # a non-detection
    add_revolution(crab, 501, [12.0, 1.0, 2.0], [1.0, 1.0, 2.0], store_limits=True)
    return list(
        FluxPoint.objects.filter(source=crab).order_by("t_start_ijd").select_related("product")
    )


@pytest.mark.django_db
@pytest.mark.parametrize("bin_text", ["scw", "revolution", "1d", "7d", "30d", "5000"])
def test_binning_matches_a_direct_computation(crab, series, bin_text) -> None:
    binning = parse_binning(bin_text)
    if binning.kind == "scw":

        def key(p):
            return p.pk
    elif binning.kind == "revolution":

        def key(p):
            return p.revolution
    else:

        def key(p):
            return math.floor(0.5 * (p.t_start_ijd + p.t_stop_ijd) / binning.width_days)

    expected = direct_bins(series, key)
    curve = light_curve(crab, binning=bin_text)
    document = curve.as_json()
    assert_bins_equal(document["points"], expected)
    assert json.loads(curve.json_text()) == document  # what the API sends
    assert document["bin"] == binning.label
    assert (document["instrument"], document["e_min_kev"], document["e_max_kev"]) == (
        "isgri",
        20.0,
        40.0,
    )
    assert any(p["upper_limit"] for p in document["points"])
    if bin_text == "revolution":
        assert len(document["points"]) == 12
        # Stored limits count with their measurement, not with their limit.
        assert document["points"][-2]["flux"] == pytest.approx(
            (12 * 1800 + 1 * 1900 + 2 * 2000) / 5700  # revolution 501
        )


@pytest.mark.django_db
def test_single_points_keep_their_values_and_errors_combine(crab) -> None:
    add_revolution(crab, 200, [10.0, 20.0], [1.0, 2.0], exposures=[1000.0, 3000.0])
    scw = light_curve(crab, binning="scw").as_json()["points"]
    assert [(p["flux"], p["error"], p["n_points"]) for p in scw] == [(10.0, 1.0, 1), (20.0, 2.0, 1)]
    (rev,) = light_curve(crab, binning="revolution").as_json()["points"]
    assert rev["flux"] == pytest.approx((10 * 1000 + 20 * 3000) / 4000)
    assert rev["error"] == pytest.approx(math.sqrt(1000**2 * 1 + 3000**2 * 4) / 4000)
    assert rev["exposure_s"] == 4000.0 and rev["n_points"] == 2


@pytest.mark.django_db
def test_points_without_error_or_weight_are_left_out(crab) -> None:
    product = add_revolution(crab, 300, [5.0], [1.0])
    t = revolution_ijd(300) + 1.0
    FluxPointFactory(
        product=product,
        source=crab,
        t_start_ijd=t,
        t_stop_ijd=t + 0.01,
        flux=3.0,
        flux_error=None,
        revolution=300,
    )
    FluxPointFactory(
        product=product,
        source=crab,
        t_start_ijd=t,
        t_stop_ijd=t,
        flux=3.0,
        flux_error=0.5,
        exposure_s=None,
        revolution=300,
    )
    # No exposure recorded: the duration (0.02 d) is the weight.
    FluxPointFactory(
        product=product,
        source=crab,
        t_start_ijd=t + 0.5,
        t_stop_ijd=t + 0.52,
        flux=7.0,
        flux_error=0.5,
        exposure_s=None,
        revolution=300,
    )
    summarise_products([product.pk])
    points = light_curve(crab, binning="scw").as_json()["points"]
    assert [p["flux"] for p in points] == [5.0, 7.0]
    assert points[1]["exposure_s"] == pytest.approx(0.02 * 86400)
    # The bin table leaves out the same points.
    (revolution,) = light_curve(crab, binning="revolution").as_json()["points"]
    assert revolution["n_points"] == 2


@pytest.mark.django_db
def test_multi_revolution_products_go_to_the_revolution_of_their_mid_time(crab) -> None:
    add_revolution(crab, 600, [10.0], [1.0])
    mosaic = ProductFactory(kind__code="image", rev_first=600, rev_last=602, sources=[crab])
    middle = revolution_ijd(601) + 0.5
    FluxPointFactory(
        product=mosaic,
        source=crab,
        t_start_ijd=middle - 0.2,
        t_stop_ijd=middle + 0.2,
        flux=12.0,
        flux_error=1.0,
        exposure_s=5000.0,
        revolution=None,
    )
    late = revolution_ijd(600) + 1.0
    FluxPointFactory(
        product=mosaic,
        source=crab,
        t_start_ijd=late,
        t_stop_ijd=late + 0.1,
        flux=14.0,
        flux_error=1.0,
        exposure_s=1000.0,
        revolution=None,
    )
    summarise_products([mosaic.pk])
    assert set(
        FluxBin.objects.filter(product=mosaic).values_list("from_revolution", flat=True)
    ) == {False}
    points = light_curve(crab, binning="revolution").as_json()["points"]
    assert [p["n_points"] for p in points] == [2, 1]
    assert points[0]["flux"] == pytest.approx((10 * 1800 + 14 * 1000) / 2800)
    assert points[1]["flux"] == 12.0


@pytest.mark.django_db
def test_rebuilding_every_bin_gives_the_same_table(crab, series) -> None:
    def table():
        return sorted(
            FluxBin.objects.values_list(
                "source_id", "product_id", "revolution", "day", "n_points", "sum_w", "t_start_ijd"
            )
        )

    incremental = table()
    assert sum(row[4] for row in incremental) == len(series)
    assert summarise_products(None) == len(incremental)
    assert table() == incremental


# --- bands ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bands_default_and_choice(crab) -> None:
    add_revolution(crab, 700, [10.0] * 3, [1.0] * 3)
    add_revolution(crab, 701, [4.0] * 5, [1.0] * 5, band=(40.0, 80.0))
    add_revolution(crab, 702, [30.0] * 2, [2.0] * 2, instrument="jemx1", band=(3.0, 20.0))
    default = light_curve(crab)
    assert (default.band.instrument, default.band.e_min_kev) == ("isgri", 40.0)
    assert [b.as_dict() for b in default.available] == [
        {"instrument": "isgri", "e_min_kev": 20.0, "e_max_kev": 40.0, "n_points": 3},
        {"instrument": "isgri", "e_min_kev": 40.0, "e_max_kev": 80.0, "n_points": 5},
        {"instrument": "jemx1", "e_min_kev": 3.0, "e_max_kev": 20.0, "n_points": 2},
    ]
    chosen = light_curve(crab, instrument="isgri", e_min_kev=20.02, e_max_kev=39.99)
    assert chosen.band.e_min_kev == 20.0 and chosen.flux.tolist() == [10.0]
    jemx = light_curve(crab, instrument="jemx1", binning="scw")
    assert jemx.flux.tolist() == [30.0, 30.0]
    nothing = light_curve(crab, instrument="isgri", e_min_kev=100.0, e_max_kev=200.0)
    assert len(nothing) == 0 and len(nothing.available) == 3
    assert json.loads(nothing.json_text()) == nothing.as_json()
    with pytest.raises(LightCurveError):
        light_curve(crab, e_min_kev=40.0, e_max_kev=20.0)


# --- visibility -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_visibility_and_versions(crab) -> None:
    add_revolution(crab, 800, [10.0], [1.0])
    secret = add_revolution(
        crab,
        801,
        [20.0],
        [1.0],
        access=Product.Access.PROPRIETARY,
        embargo_until=timezone.now() + timedelta(days=300),
    )
    add_revolution(crab, 802, [30.0], [1.0], status=Product.Status.HIDDEN)
    old = add_revolution(crab, 803, [40.0], [1.0])
    new = add_revolution(crab, 803, [41.0], [1.0])
    Product.objects.filter(pk=old.pk).update(superseded_by=new)

    def fluxes(user):
        return light_curve(crab, user, binning="scw").flux.tolist()

    assert fluxes(AnonymousUser()) == [10.0, 41.0]
    team = Group.objects.create(name="team")
    secret.granted_groups.add(team)
    member = User.objects.create_user("member")
    member.groups.add(team)
    assert fluxes(member) == [10.0, 20.0, 41.0]
    admin = User.objects.create_superuser("admin", password="x")
    assert fluxes(admin) == [10.0, 20.0, 30.0, 41.0]
    # An embargo that has ended makes the points public without any job.
    Product.objects.filter(pk=secret.pk).update(embargo_until=timezone.now() - timedelta(days=1))
    assert fluxes(AnonymousUser()) == [10.0, 20.0, 41.0]


# --- per-source statistics --------------------------------------------------------------------


@pytest.mark.django_db
def test_source_statistics(crab, settings) -> None:
    settings.GALLERY_DETECTION_THRESHOLD = 7.0
    add_revolution(crab, 900, [10.0, 3.0], [1.0, 1.0])  # 10σ and 3σ
    add_revolution(crab, 950, [20.0], [2.0], instrument="jemx1", band=(3.0, 20.0))
    add_revolution(
        crab,
        960,
        [99.0],
        [1.0],
        access=Product.Access.PROPRIETARY,
        embargo_until=timezone.now() + timedelta(days=30),
    )
    # A catalogue detection without a flux error counts here, though no light curve has it.
    catalogue = ProductFactory(kind__code="catalog", rev_first=905, sources=[crab])
    t = revolution_ijd(905)
    FluxPointFactory(
        product=catalogue,
        source=crab,
        t_start_ijd=t,
        t_stop_ijd=t + 0.1,
        flux=8.0,
        flux_error=None,
        significance=12.0,
    )
    summarise_products([catalogue.pk])
    stats = lightcurves.source_statistics([crab.pk])[crab.pk]
    isgri = stats["isgri"]
    assert (isgri["n_points"], isgri["n_detections"], isgri["peak_significance"]) == (3, 2, 12.0)
    assert (isgri["flux_min"], isgri["flux_max"]) == (8.0, 10.0)
    assert isgri["first_detection_ijd"] == pytest.approx(revolution_ijd(900) + 0.1)
    assert stats["jemx1"]["n_detections"] == 1 and stats["jemx1"]["flux_unit"] == "count/s"
