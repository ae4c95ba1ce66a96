"""The JSON behind the interactive plots: images (with the WCS the browser uses), spectra,
light curves; on files the project writes and on real OSA products."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from gallery.pages.plots import MAX_IMAGE_PIXELS, downsample, image_payload
from ingest.readers.base import ImageData, InputFile
from ingest.service import IngestOptions, ingest_files
from ingest.synthetic import SkySource, write_lightcurve, write_mosaic, write_spectrum
from products import timeline
from tests.conftest import shared_fixture

pytestmark = pytest.mark.django_db

T0 = timeline.time_to_ijd(timeline.revolution_start(1516)) + 0.2
CRAB = SkySource("Crab", 83.633, 22.0145, 1000.0)


def tan_to_icrs(wcs: dict, factor: int, i: float, j: float) -> tuple[float, float]:
    """The browser's computation (static/gallery/js/product.js), step for step."""
    px, py = factor * i + (factor - 1) / 2 + 1, factor * j + (factor - 1) / 2 + 1
    dx, dy = px - wcs["crpix"][0], py - wcs["crpix"][1]
    x = wcs["cd"][0][0] * dx + wcs["cd"][0][1] * dy
    y = wcs["cd"][1][0] * dx + wcs["cd"][1][1] * dy
    r = math.hypot(x, y)
    phi = 0.0 if r == 0 else math.atan2(x, -y)
    theta = math.atan2(180 / math.pi, r)
    a0, d0 = math.radians(wcs["crval"][0]), math.radians(wcs["crval"][1])
    dphi = phi - math.radians(wcs["lonpole"])
    lon = a0 + math.atan2(
        -math.cos(theta) * math.sin(dphi),
        math.sin(theta) * math.cos(d0) - math.cos(theta) * math.sin(d0) * math.cos(dphi),
    )
    lat = math.asin(
        math.sin(theta) * math.sin(d0) + math.cos(theta) * math.cos(d0) * math.cos(dphi)
    )
    v = np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])
    X, Y, Z = np.array(wcs["to_icrs"]) @ v
    return math.degrees(math.atan2(Y, X)) % 360, math.degrees(math.asin(max(-1, min(1, Z))))


def check_wcs(payload: dict, wcs: WCS) -> None:
    ny, nx = payload["shape"]
    f = payload["factor"]
    for i, j in [(0, 0), (nx // f - 1, 0), (nx // (2 * f), ny // (3 * f)), (7, ny // f - 2)]:
        expected = wcs.pixel_to_world(f * i + (f - 1) / 2, f * j + (f - 1) / 2).icrs
        ra, dec = tan_to_icrs(payload["wcs"], f, i, j)
        assert abs((ra - expected.ra.deg + 180) % 360 - 180) * math.cos(math.radians(dec)) < 1e-7
        assert abs(dec - expected.dec.deg) < 1e-7


def ingest(paths, **options):
    report = ingest_files([InputFile(Path(p), "data", Path(p).name) for p in paths],
                          IngestOptions(**options))  # fmt: skip
    assert report.ok, report.rejected
    return report.outcomes[0].product


@pytest.fixture
def reference_sources(db):
    from tests.factories import SourceFactory

    return SourceFactory(name="Crab", ra_deg=83.633, dec_deg=22.0145)


def test_image_plot_of_a_synthetic_mosaic(client, tmp_path, reference_sources):
    path = write_mosaic(
        tmp_path / "mosaic.fits", center_ra=84.0, center_dec=23.0, sources=[CRAB],
        e_min_kev=20, e_max_kev=40, t_start_ijd=T0, t_stop_ijd=T0 + 0.5, exposure_s=30000,
        shape=(300, 280), rotation_deg=25.0, use_cd_matrix=True, seed=1,
    )  # fmt: skip
    product = ingest([path])
    data = client.get(f"/products/{product.uuid}/plot.json").json()
    assert data["kind"] == "image" and data["factor"] == 1 and data["shape"] == [300, 280]
    assert len(data["z"]) == 300 and len(data["z"][0]) == 280
    assert "wcs_header" not in data
    with fits.open(path) as hdul:
        sig = next(h for h in hdul if h.header.get("IMATYPE") == "SIGNIFICANCE")
        wcs = WCS(sig.header).celestial
        assert data["z"][150][140] == pytest.approx(float(sig.data[150, 140]), abs=0.006)
    check_wcs(data, wcs)
    # The Crab is marked where it is, and is the brightest pixel around the mark.
    mark = next(s for s in data["sources"] if s["name"] == "Crab")
    x, y = wcs.world_to_pixel_values(83.633, 22.0145)
    assert abs(mark["x"] - x) < 0.2 and abs(mark["y"] - y) < 0.2 and mark["slug"] == "crab"
    assert data["zmin"] < data["zmax"] <= data["zlimits"][1]


def test_large_maps_are_averaged_down_to_the_limit():
    header = WCS(naxis=2)
    header.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    header.wcs.crval = [266.4, -28.9]
    header.wcs.crpix = [600.5, 520.0]
    header.wcs.cdelt = [-0.02, 0.02]
    sig = np.arange(1100 * 1201, dtype=float).reshape(1100, 1201)
    sig[:5, :5] = np.nan
    payload = image_payload(ImageData(header=header.to_header(), significance=sig))
    f = payload["factor"]
    assert f == 3 and max(len(payload["z"]), len(payload["z"][0])) <= MAX_IMAGE_PIXELS
    assert payload["z"][0][0] is None  # a block without data
    assert payload["z"][1][1] == pytest.approx(np.nanmean(sig[3:6, 3:6]), abs=0.01)
    assert payload["z"][2][7] == pytest.approx(np.mean(sig[6:9, 21:24]), abs=0.01)
    check_wcs(payload, header)


def test_downsample_keeps_nan_where_a_block_has_no_data():
    values = np.ones((4, 4))
    values[:2, :2] = np.nan
    small = downsample(values, 2)
    assert np.isnan(small[0, 0]) and small[1, 1] == 1.0


def test_galactic_maps_give_icrs_coordinates():
    header = WCS(naxis=2)
    header.wcs.ctype = ["GLON-TAN", "GLAT-TAN"]
    header.wcs.crval = [0.0, 0.0]
    header.wcs.crpix = [100.5, 100.5]
    header.wcs.cd = [[-0.08, 0.01], [0.01, 0.08]]
    payload = image_payload(
        ImageData(header=header.to_header(), significance=np.random.default_rng(0).normal(
            size=(200, 200)))
    )  # fmt: skip
    assert payload["wcs"]["ctype"] == ["GLON-TAN", "GLAT-TAN"]
    check_wcs(payload, header)
    ra, dec = tan_to_icrs(payload["wcs"], 1, 99.5, 99.5)
    assert abs(ra - 266.405) < 0.01 and abs(dec + 28.936) < 0.01  # the Galactic Centre


def test_non_tan_maps_are_drawn_without_coordinates():
    header = WCS(naxis=2)
    header.wcs.ctype = ["RA---CAR", "DEC--CAR"]
    header.wcs.crval = [10, 0]
    header.wcs.crpix = [5, 5]
    header.wcs.cdelt = [-0.1, 0.1]
    payload = image_payload(ImageData(header=header.to_header(), significance=np.ones((9, 9))))
    assert payload["wcs"] is None and payload["kind"] == "image"


@pytest.mark.parametrize(
    "relative",
    [
        "isgri/mosaic_crab_20-40keV.fits",
        "jemx/mosaic_jmx1_crab.fits.gz",
        "isgri/significance_1E_1740.7-2942_25-40keV.fits.gz",
        "isgri/scw/isgri_sky_ima_1.fits.gz",
    ],
)
def test_image_plot_of_real_osa_images(client, relative):
    path = shared_fixture(relative)
    product = ingest([path])
    data = client.get(f"/products/{product.uuid}/plot.json").json()
    assert data["kind"] == "image"
    from ingest.fitsio import open_fits
    from ingest.readers.image import image_wcs, read_image

    with open_fits(path) as hdul:
        image = read_image(hdul, 7.0)["image"]
    ny, nx = image.significance.shape
    assert data["shape"] == [ny, nx]
    assert max(len(data["z"]), len(data["z"][0])) <= MAX_IMAGE_PIXELS
    check_wcs(data, image_wcs(image))


def test_spectrum_plot_has_data_model_and_residuals(client, tmp_path, reference_sources):
    paths = write_spectrum(
        tmp_path / "spec.fits", tmp_path / "rmf.fits", tmp_path / "arf.fits",
        instrument="isgri", source=CRAB, t_start_ijd=T0, t_stop_ijd=T0 + 0.5,
        exposure_s=40000, seed=2,
    )  # fmt: skip
    product = ingest(paths)
    data = client.get(f"/products/{product.uuid}/plot.json").json()
    assert data["kind"] == "spectrum" and data["fits"]
    n = len(data["energy_kev"])
    assert len(data["rate_per_kev"]) == len(data["error_per_kev"]) == n
    preferred = next(f for f in data["fits"] if f["preferred"])
    assert len(preferred["model_per_kev"]) == len(preferred["residuals"]) == n
    fit = product.fits.get(is_preferred=True)
    assert preferred["residuals"] == fit.details["residuals"]
    assert data["energy_kev"][10] == pytest.approx(
        (fit.details["e_min"][10] + fit.details["e_max"][10]) / 2, abs=1e-4
    )


def test_light_curve_plot_has_the_products_points_in_utc_and_ijd(client, tmp_path, db):
    from tests.factories import SourceFactory

    SourceFactory(name="Cyg X-1", ra_deg=299.59, dec_deg=35.2)
    path = write_lightcurve(
        tmp_path / "lc.fits", instrument="isgri", source=SkySource("Cyg X-1", 299.59, 35.2, 800),
        t_start_ijd=T0, n_bins=30, bin_s=1000.0, variability="sinusoid", width_style="xax_e",
        osa="11", seed=3,
    )  # fmt: skip
    product = ingest([path])
    data = client.get(f"/products/{product.uuid}/plot.json").json()
    assert data["kind"] == "lightcurve" and len(data["flux"]) == product.flux_points.count()
    assert data["half_width_s"][0] == pytest.approx(500.0, abs=0.01)
    from astropy.time import Time

    first = timeline.ijd_to_time(data["t_mid_ijd"][0])  # TT
    shown = Time(data["t_mid_utc"][0], format="isot", scale="utc")
    assert abs((shown - first).sec) < 0.05


def test_plot_json_follows_visibility(client, tmp_path, reference_sources):
    from products.models import Product

    path = write_mosaic(
        tmp_path / "mosaic.fits", center_ra=84.0, center_dec=23.0, sources=[CRAB],
        e_min_kev=20, e_max_kev=40, t_start_ijd=T0, t_stop_ijd=T0 + 0.5, exposure_s=30000,
        shape=(64, 64), seed=1,
    )  # fmt: skip
    product = ingest([path], status=Product.Status.HIDDEN)
    assert client.get(f"/products/{product.uuid}/plot.json").status_code == 404


def test_catalogue_products_have_no_plot(client, tmp_path, db):
    from tests.factories import ProductFactory

    product = ProductFactory(kind__code="catalog")
    assert client.get(product.get_absolute_url()).status_code == 200
    assert client.get(f"/products/{product.uuid}/plot.json").json()["kind"] == "none"
