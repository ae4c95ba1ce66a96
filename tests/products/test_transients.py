"""The transient monitor: maintained summaries agree with the light curves, incremental
refreshes agree with a full rebuild, and the selection follows the threshold."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from products import transients
from products.lightcurves import light_curve
from products.models import LightCurveSummary, Product
from sources.models import Source
from tests.factories import SourceFactory
from tests.gallery.lightcurves.series import add_revolution, random_series, rng

pytestmark = pytest.mark.django_db

#: Fields compared between an incremental refresh and a full rebuild.
COMPARED = (
    "n_revolutions",
    "first_revolution",
    "latest_revolution",
    "latest_n_points",
    "latest_flux",
    "latest_error",
    "mean_flux",
    "mean_error",
    "std_flux",
    "excess_sigma",
)


def snapshot() -> dict:
    rows = {}
    for s in LightCurveSummary.objects.all():
        rows[(s.source_id, s.instrument_id, s.band_key)] = {f: getattr(s, f) for f in COMPARED}
    return rows


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        for name in COMPARED:
            x, y = a[key][name], b[key][name]
            if isinstance(x, float) and isinstance(y, float):
                assert x == pytest.approx(y, rel=1e-9, abs=1e-12), (key, name)
            else:
                assert x == y, (key, name)


@pytest.fixture
def sky():
    generator = rng(11)
    steady = SourceFactory(name="Steady")
    flaring = SourceFactory(name="Flaring")
    random_series(steady, range(100, 110), generator)
    random_series(flaring, range(100, 110), generator, level=5.0)
    random_series(flaring, [100, 104], generator, instrument="jemx1", band=(3.0, 10.0))
    return steady, flaring


def test_summary_agrees_with_the_revolution_light_curve(sky) -> None:
    steady, _ = sky
    transients.refresh_all()
    summary = LightCurveSummary.objects.get(source=steady, instrument__code="isgri")
    curve = light_curve(steady, binning="revolution")
    history = slice(0, len(curve) - 1)
    assert summary.latest_revolution == 109 and summary.n_revolutions == 9
    # The latest bin: the light curve's measured mean (significance × error) and its error.
    assert summary.latest_flux == pytest.approx(curve.significance[-1] * curve.error[-1])
    assert summary.latest_error == pytest.approx(curve.error[-1])
    # The long-term mean weighs every earlier point by its exposure, as one big bin would.
    sw = curve.exposure_s[history]
    means = curve.significance[history] * curve.error[history]
    assert summary.mean_flux == pytest.approx(np.sum(sw * means) / np.sum(sw))
    assert summary.std_flux == pytest.approx(np.std(means, ddof=1))
    expected = (summary.latest_flux - summary.mean_flux) / math.hypot(
        summary.latest_error, summary.std_flux
    )
    assert summary.excess_sigma == pytest.approx(expected)
    assert LightCurveSummary.objects.filter(source=sky[1]).count() == 2


def test_a_flare_is_listed_newest_first(sky) -> None:
    steady, flaring = sky
    transients.refresh_all()
    assert not transients.transients(5.0).filter(source=flaring).exists()
    add_revolution(flaring, 110, [60.0, 58.0], [1.0, 1.0])
    add_revolution(steady, 111, [40.0, 45.0], [1.0, 1.0])
    transients.refresh_revolution(110)
    transients.refresh_revolution(111)
    found = list(transients.transients(5.0))
    assert [(row.source.name, row.latest_revolution) for row in found] == [
        ("Steady", 111),
        ("Flaring", 110),
    ]
    assert all(row.excess_sigma >= 5.0 for row in found)
    assert list(transients.transients(5.0, since_revolution=111)) == found[:1]
    assert not transients.transients(5.0, instrument="jemx1").exists()
    assert not transients.transients(1e6).exists()


def test_incremental_refreshes_agree_with_a_full_rebuild(sky) -> None:
    steady, flaring = sky
    transients.refresh_all()
    generator = rng(5)
    # A new revolution, more products of that revolution, and a late product of an old one.
    random_series(steady, [110], generator)
    random_series(flaring, [110], generator)
    transients.refresh_revolution(110)
    random_series(steady, [110], generator)
    transients.refresh_revolution(110)
    random_series(flaring, [103], generator)
    report = transients.refresh_revolution(103)
    # Both sources have points in revolution 103: their series are recomputed, not patched.
    assert report.series_recomputed == 2 and report.series_updated == 0
    incremental = snapshot()
    transients.refresh_all()
    assert_same(incremental, snapshot())


def test_a_superseded_or_hidden_latest_revolution_is_recomputed(sky) -> None:
    steady, _ = sky
    transients.refresh_all()
    nrt = add_revolution(steady, 110, [80.0], [1.0])
    transients.refresh_revolution(110)
    assert LightCurveSummary.objects.get(source=steady).latest_revolution == 110
    assert LightCurveSummary.objects.get(source=steady).excess_sigma > 5
    cons = add_revolution(steady, 110, [11.0], [1.0])
    Product.objects.filter(pk=nrt.pk).update(superseded_by=cons)
    transients.refresh_revolution(110)
    assert LightCurveSummary.objects.get(source=steady).latest_flux == pytest.approx(11.0)
    Product.objects.filter(pk=cons.pk).update(status=Product.Status.HIDDEN)
    transients.refresh_revolution(110)
    assert LightCurveSummary.objects.get(source=steady).latest_revolution == 109
    incremental = snapshot()
    transients.refresh_all()
    assert_same(incremental, snapshot())


def test_private_points_stay_out_of_the_monitor(sky) -> None:
    steady, _ = sky
    add_revolution(
        steady,
        120,
        [500.0],
        [1.0],
        access=Product.Access.PROPRIETARY,
        embargo_until=timezone.now() + timedelta(days=10),
    )
    transients.refresh_revolution(120)
    assert LightCurveSummary.objects.get(source=steady).latest_revolution == 109


def test_refresh_writes_source_statistics(sky, settings) -> None:
    settings.GALLERY_DETECTION_THRESHOLD = 3.0
    steady, flaring = sky
    transients.refresh_all()
    steady.refresh_from_db()
    assert steady.n_detections > 0 and steady.statistics_updated is not None
    assert steady.detection_summary["isgri"]["n_points"] > steady.n_detections - 1
    assert steady.history.count() == 1  # statistics add nothing to the edit history
    before = steady.n_detections
    add_revolution(steady, 130, [50.0, 52.0], [1.0, 1.0])
    transients.refresh_revolution(130)
    steady.refresh_from_db()
    assert steady.n_detections == before + 2
    assert steady.peak_significance == 52.0
    untouched = Source.objects.get(pk=flaring.pk)
    assert set(untouched.detection_summary) == {"isgri", "jemx1"}


def test_multi_revolution_products_refresh_their_sources_statistics(sky, settings) -> None:
    from tests.factories import FluxPointFactory, ProductFactory

    settings.GALLERY_DETECTION_THRESHOLD = 7.0
    lonely = SourceFactory(name="Mosaic only")
    mosaic = ProductFactory(kind__code="image", rev_first=140, rev_last=150, sources=[lonely])
    FluxPointFactory(product=mosaic, source=lonely, revolution=None, significance=9.0)
    transients.refresh_revolution(150)
    lonely.refresh_from_db()
    assert lonely.n_detections == 1
    assert not LightCurveSummary.objects.filter(source=lonely).exists()
