"""Mosaicking, PSF fitting and detection, against known answers (no database)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from ingest.pipeline import archive, config, measure, mosaic, scwimage
from ingest.pipeline.scwimage import ScwImage
from sources.sky import angular_distance_deg

CRAB = (83.630424, 22.016722)  # the reference catalogue's position


def _wcs(ra: float, dec: float, pixel: float, roll_deg: float, shape=(101, 101)) -> WCS:
    ny, nx = shape
    cos, sin = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
    header = fits.Header()
    for key, value in (
        ("CTYPE1", "RA---TAN"),
        ("CTYPE2", "DEC--TAN"),
        ("CRVAL1", ra),
        ("CRVAL2", dec),
        ("CRPIX1", (nx + 1) / 2),
        ("CRPIX2", (ny + 1) / 2),
        ("CD1_1", -pixel * cos),
        ("CD1_2", -pixel * sin),
        ("CD2_1", -pixel * sin),
        ("CD2_2", pixel * cos),
    ):
        header[key] = value
    return WCS(header)


def _point_source_image(wcs: WCS, ra: float, dec: float, rate: float, sigma_pix: float, shape):
    ny, nx = shape
    x, y = (float(v) for v in wcs.wcs_world2pix(ra, dec, 0))
    yy, xx = np.mgrid[0:ny, 0:nx]
    intensity = rate * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma_pix**2))
    return intensity.astype(np.float32)


def _scw(wcs: WCS, intensity: np.ndarray, variance: float) -> ScwImage:
    return ScwImage(
        scw_id="000100010010.001",
        header=wcs.to_header(),
        wcs=wcs,
        bands=[(20.0, 40.0)],
        intensity=[intensity],
        variance=[np.full(intensity.shape, variance, dtype=np.float32)],
        exposure=np.full(intensity.shape, 1000.0, dtype=np.float32),
        t_start_ijd=100.0,
        t_stop_ijd=100.02,
        exposure_s=1000.0,
    )


def _info(wcs: WCS, shape) -> archive.ScwInfo:
    ny, nx = shape
    xs = [0, nx - 1, nx - 1, 0, (nx - 1) / 2]
    ys = [0, 0, ny - 1, ny - 1, (ny - 1) / 2]
    ra, dec = wcs.wcs_pix2world(xs, ys, 0)
    return archive.ScwInfo(
        scw_id="x",
        path="",
        t_start_ijd=0,
        t_stop_ijd=1,
        exposure_s=1,
        ra_deg=float(ra[-1]),
        dec_deg=float(dec[-1]),
        corners=[[float(r), float(d)] for r, d in zip(ra[:-1], dec[:-1], strict=True)],
        pixel_deg=float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix)))),
        bands=[[20.0, 40.0]],
    )


@pytest.mark.parametrize("roll", [0.0, 33.0, 90.0, 217.5])
def test_rotated_scws_coadd_to_the_right_position_and_flux(roll):
    """Two ScWs with different rolls (rotated CD matrices) and pointings: the source comes
    out where it is, with its rate, and the variance halves where both overlap."""
    pixel, sigma = 0.0822862539155913, 12.0 / 60 / 2.3548 / 0.0822862539155913
    source = (84.10, 22.70)
    shape = (101, 101)
    wcs_a = _wcs(83.9, 22.5, pixel, roll, shape)
    wcs_b = _wcs(84.3, 22.9, pixel, roll + 71.0, shape)
    images = [
        _scw(w, _point_source_image(w, *source, 50.0, sigma, shape), 4.0) for w in (wcs_a, wcs_b)
    ]
    grid = mosaic.make_grid([_info(wcs_a, shape), _info(wcs_b, shape)])
    built = mosaic.Mosaic(grid, [(20.0, 40.0)])
    assert all(built.add(image) for image in images)
    intensity, variance, exposure = built.result()
    effective = mosaic.effective_psf_sigma_pix(sigma)
    x, y = (float(v) for v in grid.wcs.wcs_world2pix(*source, 0))
    found = measure.fit_source(
        intensity[0], variance[0], x + 0.7, y - 0.6, effective, grid.wcs,
        flux_scale=(effective / sigma) ** 2,
    )  # fmt: skip
    assert found is not None
    assert angular_distance_deg(found.ra_deg, found.dec_deg, *source) * 60 < 0.2
    assert found.flux == pytest.approx(50.0, rel=0.03)
    iy, ix = int(round(y)), int(round(x))
    assert variance[0][iy, ix] == pytest.approx(2.0, rel=0.01)
    assert exposure[iy, ix] == pytest.approx(2000.0, rel=0.01)


def test_fast_tan_mapping_agrees_with_astropy():
    wcs = _wcs(266.8, -28.0, 0.026, 123.0, (320, 320))
    grid = mosaic.make_grid([_info(wcs, (320, 320))])
    vectors = mosaic._grid_vectors(grid)[:, 10:60, 20:90]
    fast = mosaic._tan_pixels(wcs, vectors)
    assert fast is not None
    flat = vectors.reshape(3, -1)
    ra = np.degrees(np.arctan2(flat[1], flat[0]))
    dec = np.degrees(np.arcsin(flat[2]))
    sx, sy = wcs.wcs_world2pix(ra, dec, 0)
    assert np.max(np.abs(fast[0].ravel() - sx)) < 1e-6
    assert np.max(np.abs(fast[1].ravel() - sy)) < 1e-6


def test_combined_bands_add_rates_and_variances():
    intensity = np.array([[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 6.0]]], dtype=np.float32)
    variance = np.array([[[1.0, 1.0]], [[2.0, 0.0]], [[4.0, 4.0]]], dtype=np.float32)
    total_i, total_v = mosaic.combine_bands(intensity, variance, [0, 1])
    assert total_i.tolist() == [[4.0, 0.0]]  # the second pixel lacks band 1
    assert total_v.tolist() == [[3.0, 0.0]]


def test_image_bands_from_spectral_bands_and_fallback():
    spec = config.instrument("isgri")
    formed = config.image_bands(spec, spec.spectral_bands_kev)
    assert [band for band, _ in formed] == list(spec.image_bands_kev)
    assert formed[0][1] == [0, 1, 2]  # 20-25, 25-30, 30-40
    # A real archive's single 25-80 keV band forms none of the configured bands: kept as is.
    assert config.image_bands(spec, [(25.0, 80.0)]) == [((25.0, 80.0), [0])]


def test_psf_fit_error_matches_the_scatter_of_correlated_noise():
    """Fitted amplitudes scatter as the error says when the noise is correlated like the
    PSF (as coded-mask noise is), and are unbiased at any sub-pixel position."""
    from scipy import ndimage

    from ingest.pipeline.generator import smoothed_noise_std

    rng = np.random.default_rng(5)
    sigma = 1.03
    wcs = _wcs(10.0, 0.0, 0.08, 0.0, (64, 64))
    pulls = []
    for _ in range(300):
        x, y = 32 + rng.uniform(-0.5, 0.5), 32 + rng.uniform(-0.5, 0.5)
        noise = ndimage.gaussian_filter(rng.standard_normal((64, 64)), sigma / math.sqrt(2))
        noise /= smoothed_noise_std(sigma / math.sqrt(2))
        image = _point_source_image(wcs, *wcs.wcs_pix2world(x, y, 0), 10.0, sigma, (64, 64))
        found = measure.fit_source(
            image + noise.astype(np.float32), np.ones((64, 64), np.float32), x, y, sigma, wcs,
            fit_position=False,
        )  # fmt: skip
        pulls.append((found.flux - 10.0) / found.flux_error)
    pulls = np.array(pulls)
    assert abs(pulls.mean()) < 0.2
    assert 0.85 < pulls.std() < 1.15


def test_real_scws_of_revolution_665_find_the_crab_and_nothing_else(real_archive):
    """The two real ISGRI ScW images (rotated CD matrices, GROUPING with SWID/REVOL): the
    mosaic's only source above 7 sigma is the Crab, within 2 arcmin."""
    plan = archive.plan_revolution(real_archive, 665, ["isgri", "jemx1"])
    assert plan.data_level == "CONS"
    assert [u.key for u in plan.units] == ["obs1/isgri"]
    unit = plan.units[0]
    assert [s.scw_id for s in unit.scws] == ["066500280010.001", "066500330010.001"]
    spec = config.instrument("isgri")
    grid = mosaic.make_grid(unit.scws)
    built = mosaic.Mosaic(grid, [tuple(b) for b in unit.scws[0].bands])
    for info in unit.scws:
        assert built.add(scwimage.read_scw_image(info.scw_id, info.path, spec))
    intensity, variance, exposure = built.result()
    sigma = spec.psf_sigma_deg / grid.pixel_deg
    effective = mosaic.effective_psf_sigma_pix(sigma)
    found = measure.detect(
        intensity[0], variance[0], exposure, grid.header(), effective, 7.0,
        flux_scale=(effective / sigma) ** 2,
    )  # fmt: skip
    assert len(found) == 1
    crab = found[0]
    assert angular_distance_deg(crab.ra_deg, crab.dec_deg, *CRAB) * 60 < 2.0
    assert crab.significance > 100


def test_corrupt_scw_file_is_refused_with_a_reason(tmp_path, real_archive):
    path = tmp_path / "isgri_sky_ima.fits.gz"
    data = (real_archive / "scw/0665/066500280010.001/isgri_sky_ima.fits.gz").read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(archive.CorruptScw):
        scwimage.read_scw_image("066500280010.001", path, config.instrument("isgri"))
    path.write_bytes(b"not a FITS file at all")
    with pytest.raises(archive.CorruptScw):
        archive.read_scw_info("066500280010.001", path, config.instrument("isgri"))
