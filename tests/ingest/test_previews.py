"""Preview PNGs: valid, sized, not blank, on real OSA products and on synthetic ones."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from matplotlib.image import imread

from ingest import previews
from ingest.fitting import FitParameter, FitResult
from ingest.readers.base import (
    DetectedSource,
    ImageData,
    LightCurveData,
    ResponseData,
    SpectrumData,
)
from tests.conftest import shared_fixture

CRAB = DetectedSource("Crab", 83.633, 22.014, significance=250.0)
HOSTILE_NAMES = [
    "<script>alert('x')</script>",
    "$\\frac{1}{0}$ $x^",  # would be mathtext, and broken mathtext
    "A" * 500,
    "tab\tnew\nline\x00nul\u202eRTL",
    "名前 ☄ 🚀 \\ % & {}",
    "",
    None,
]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def decode_png(data: bytes) -> np.ndarray:
    """The PNG as an RGB(A) float array; fails when ``data`` is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(io.BytesIO(data), format="png")


def assert_preview(data: bytes) -> np.ndarray:
    pixels = decode_png(data)
    height, width = pixels.shape[:2]
    assert (width, height) == (previews.PREVIEW_WIDTH_PX, previews.PREVIEW_HEIGHT_PX)
    rgb = pixels[..., :3]
    assert rgb.std() > 0.02, "blank preview"
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 8
    return pixels


def figure_texts(fig) -> list[str]:
    """Every text drawn on a figure: figure texts, axes texts, annotations, tick labels."""
    fig.canvas.draw()
    found = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        found += [t.get_text() for t in ax.texts]
        found += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
        found += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
    return found


def cd_header(
    nx: int, ny: int, ra: float, dec: float, scale_deg: float, rotation_deg: float = 0.0
) -> fits.Header:
    """A TAN header with a CD matrix rotated by ``rotation_deg`` (a satellite's roll)."""
    theta = math.radians(rotation_deg)
    header = fits.Header()
    header["NAXIS"] = 2
    header["NAXIS1"], header["NAXIS2"] = nx, ny
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRPIX1"], header["CRPIX2"] = (nx + 1) / 2, (ny + 1) / 2
    header["CRVAL1"], header["CRVAL2"] = ra, dec
    header["CD1_1"] = -scale_deg * math.cos(theta)
    header["CD1_2"] = scale_deg * math.sin(theta)
    header["CD2_1"] = scale_deg * math.sin(theta)
    header["CD2_2"] = scale_deg * math.cos(theta)
    header["RADESYS"] = "FK5"
    header["EQUINOX"] = 2000.0
    return header


def gaussian_map(
    header: fits.Header, sources: list[tuple[float, float, float]], seed: int = 3
) -> np.ndarray:
    """Unit-variance noise with Gaussian sources (ra, dec, peak σ) of 2 pixels' width."""
    nx, ny = header["NAXIS1"], header["NAXIS2"]
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 1.0, (ny, nx))
    wcs = WCS(header)
    yy, xx = np.mgrid[0:ny, 0:nx]
    for ra, dec, peak in sources:
        x0, y0 = wcs.wcs_world2pix([[ra, dec]], 0)[0]
        data += peak * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 2.0**2))
    return data


def read_significance(relative: str) -> ImageData:
    """The SIGNIFICANCE plane of a real mosaic (told apart by IMATYPE), else the primary."""
    with fits.open(shared_fixture(relative)) as hdul:
        for hdu in hdul:
            if hdu.is_image and str(hdu.header.get("IMATYPE", "")).strip() == "SIGNIFICANCE":
                return ImageData(header=hdu.header.copy(), significance=np.array(hdu.data))
        return ImageData(header=hdul[0].header.copy(), significance=np.array(hdul[0].data))


def read_lightcurve(relative: str) -> LightCurveData:
    with fits.open(shared_fixture(relative)) as hdul:
        hdu = next(h for h in hdul if h.name.endswith("-LCR"))
        data, names = hdu.data, hdu.columns.names
        if "XAX_E" in names:
            half = np.asarray(data["XAX_E"], dtype=float)
        elif "TIMEDEL" in names:
            half = np.asarray(data["TIMEDEL"], dtype=float) / 2
        else:
            half = np.full(len(data), float(hdu.header["TIMEDEL"]) / 2)
        return LightCurveData(
            time_ijd=np.asarray(data["TIME"], dtype=float),
            half_width_d=half,
            rate=np.asarray(data["RATE"], dtype=float),
            error=np.asarray(data["ERROR"], dtype=float),
        )


def synthetic_spectrum(n: int = 62, seed: int = 5) -> tuple[SpectrumData, FitResult]:
    """A power-law spectrum (Γ = 2.1) with NaN edge channels flagged bad, and its fit."""
    rng = np.random.default_rng(seed)
    edges = np.geomspace(18.0, 600.0, n + 1)
    e_min, e_max = edges[:-1], edges[1:]
    model = 2.0 * ((e_min + e_max) / 2 / 20.0) ** -2.1 * (e_max - e_min) * 0.05
    err = 0.05 * model + 1e-4
    rate = model + rng.normal(0.0, err)
    quality = np.zeros(n, dtype=int)
    quality[[0, 1, -1]] = 3
    rate[[0, 1, -1]] = np.nan
    used = quality == 0
    response = ResponseData(e_min, e_max, np.eye(n), e_min, e_max)
    spectrum = SpectrumData(
        channel=np.arange(n), rate=rate, stat_err=err, sys_err=np.zeros(n), quality=quality,
        e_min=e_min, e_max=e_max, exposure_s=5.0e4, response=response,
    )  # fmt: skip
    residuals = np.where(used, (rate - model) / err, np.nan)
    fit = FitResult(
        model="powerlaw",
        parameters=[FitParameter("index", 2.1034, 0.0213), FitParameter("norm", 0.012, 0.0004)],
        statistic="chi2", statistic_value=float(np.nansum(residuals**2)), dof=int(used.sum()) - 2,
        e_min_kev=20.0, e_max_kev=200.0, flux_erg_cm2_s=1.5e-9, flux_error=3e-11, used=used,
        model_rate=model, residuals=residuals, is_preferred=True,
    )  # fmt: skip
    return spectrum, fit


# --------------------------------------------------------------------------------------------
# Sky images
# --------------------------------------------------------------------------------------------


def test_crab_mosaic_preview_labels_the_crab():
    image = read_significance("isgri/mosaic_crab_20-40keV.fits")
    png = previews.render_image_preview(image, [CRAB], "Crab field", footer="ISGRI 20–40 keV")
    assert_preview(png)
    fig = previews.image_figure(image, [CRAB], "Crab field", footer="ISGRI 20–40 keV")
    texts = figure_texts(fig)
    assert "Crab" in texts
    assert "significance (σ)" in texts
    assert "ISGRI 20–40 keV" in texts
    assert any(t.startswith("RA") for t in texts) and any(t.startswith("Dec") for t in texts)


def test_crab_is_placed_on_its_significance_peak():
    image = read_significance("isgri/mosaic_crab_20-40keV.fits")
    far_away = DetectedSource("Vela X-1", 135.53, -40.55)
    opposite = DetectedSource("antipode", 263.6, -22.0)
    placed = previews.sources_in_image(image, [CRAB, far_away, opposite])
    assert [p.label for p in placed] == ["Crab"]
    peak_y, peak_x = np.unravel_index(np.nanargmax(image.significance), image.significance.shape)
    assert abs(placed[0].x_pix - peak_x) < 1.5 and abs(placed[0].y_pix - peak_y) < 1.5


@pytest.mark.parametrize(
    "relative",
    [
        "jemx/mosaic_jmx1_crab.fits.gz",  # NaN outside the field of view
        "isgri/significance_1E_1740.7-2942_25-40keV.fits.gz",  # PC matrix + CDELT, NaNs
        "isgri/significance_user_guide.fits",
        "isgri/scw/isgri_sky_ima_1.fits.gz",  # rotated CD matrix
    ],
)
def test_real_images_render(relative):
    image = read_significance(relative)
    pixels = assert_preview(previews.render_image_preview(image, [CRAB], relative))
    assert pixels.shape[0] == 600


def test_rotated_scw_image_places_the_crab():
    image = read_significance("isgri/scw/isgri_sky_ima_1.fits.gz")
    placed = previews.sources_in_image(image, [CRAB])
    assert [p.label for p in placed] == ["Crab"]
    peak = np.unravel_index(np.nanargmax(image.significance), image.significance.shape)
    assert math.hypot(placed[0].x_pix - peak[1], placed[0].y_pix - peak[0]) < 3


@pytest.mark.parametrize("rotation_deg", [0.0, 30.0, 90.0, 150.0])
def test_synthetic_gaussian_source_with_cd_matrix(rotation_deg):
    header = cd_header(160, 120, 83.63, 22.01, 0.05, rotation_deg)
    data = gaussian_map(header, [(83.633, 22.014, 40.0), (84.5, 21.0, 9.0)])
    image = ImageData(header=header, significance=data)
    sources = [CRAB, DetectedSource("src B", 84.5, 21.0, significance=9.0)]
    placed = previews.sources_in_image(image, sources)
    assert sorted(p.label for p in placed) == ["Crab", "src B"]
    crab = next(p for p in placed if p.label == "Crab")
    peak = np.unravel_index(np.argmax(data), data.shape)
    assert math.hypot(crab.x_pix - peak[1], crab.y_pix - peak[0]) < 1.5
    fig = previews.image_figure(image, sources, f"rotated {rotation_deg}°")
    texts = figure_texts(fig)
    assert {"Crab", "src B"} <= set(texts)
    # both axes carry sky coordinates in degrees
    ax = fig.axes[0]
    assert sum(t.get_text().endswith("°") for t in ax.get_xticklabels()) >= 2
    assert sum(t.get_text().endswith("°") for t in ax.get_yticklabels()) >= 2
    assert_preview(previews.figure_to_png(fig))


def test_image_across_ra_zero_and_galactic_frame():
    header = cd_header(200, 200, 0.5, 10.0, 0.05)
    data = gaussian_map(header, [(359.5, 10.0, 30.0)])
    image = ImageData(header=header, significance=data)
    placed = previews.sources_in_image(image, [DetectedSource("wrap", 359.5, 10.0)])
    assert len(placed) == 1
    fig = previews.image_figure(image, [DetectedSource("wrap", 359.5, 10.0)], "RA 0")
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert "0°" in labels or "359°" in labels or "1°" in labels
    assert_preview(previews.figure_to_png(fig))

    header["CTYPE1"], header["CTYPE2"] = "GLON-CAR", "GLAT-CAR"
    header["CRVAL1"], header["CRVAL2"] = 0.0, 0.0
    del header["RADESYS"], header["EQUINOX"]
    fig = previews.image_figure(ImageData(header=header, significance=data), [], "Galactic")
    assert fig.axes[0].get_xlabel().startswith("Galactic longitude")
    assert_preview(previews.figure_to_png(fig))


def test_large_map_is_reduced_without_losing_the_source():
    header = cd_header(1500, 1400, 266.4, -29.0, 0.02)
    data = gaussian_map(header, [(266.4, -29.0, 80.0)])
    shown, factor = previews._reduce_for_display(data)
    assert factor == 3
    assert max(shown.shape) <= previews.MAX_DISPLAY_PIXELS
    assert shown.max() == pytest.approx(data.max())
    image = ImageData(header=header, significance=data)
    assert_preview(previews.render_image_preview(image, [], "large"))


def test_sources_without_position_or_name():
    image = ImageData(
        header=cd_header(100, 100, 83.6, 22.0, 0.1), significance=np.zeros((100, 100))
    )
    sources = [
        DetectedSource("no position", float("nan"), 22.0),
        DetectedSource("bad position", "abc", None),  # type: ignore[arg-type]
        DetectedSource("   ", 83.6, 22.0),
        DetectedSource(None, 83.6, 22.5, is_new=True),
        CRAB,
    ]
    placed = previews.sources_in_image(image, sources)
    assert [p.label for p in placed] == ["", "new source", "Crab"]
    texts = figure_texts(previews.image_figure(image, sources, "names"))
    assert "new source" in texts and "Crab" in texts


def test_image_without_usable_wcs_or_data_still_renders():
    data = np.full((50, 60), np.nan)
    data[10:20, 10:20] = 3.0
    png = previews.render_image_preview(ImageData(header=fits.Header(), significance=data), [], "")
    assert_preview(png)
    flat = ImageData(header=cd_header(40, 40, 10, 10, 0.1), significance=np.zeros((40, 40)))
    decode_png(previews.render_image_preview(flat, [CRAB], "flat"))
    with pytest.raises(ValueError, match="2-D"):
        previews.render_image_preview(ImageData(header=None, significance=np.zeros(5)), [], "")


def test_crowded_labels_do_not_overlap_and_hostile_names_do_not_crash():
    header = cd_header(200, 200, 266.4, -29.0, 0.05)
    data = gaussian_map(header, [])
    image = ImageData(header=header, significance=data)
    sources = [
        DetectedSource(name, 266.4 + 0.05 * i, -29.0 + 0.04 * i, significance=20.0 - i)
        for i, name in enumerate(HOSTILE_NAMES * 3)
    ]
    title = "<b>" + "very long title " * 40 + "$\\alpha$"
    png = previews.render_image_preview(image, sources, title, footer="<i>$x$</i>\n" * 20)
    assert_preview(png)
    fig = previews.image_figure(image, sources, title)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in fig.axes[0].texts]
    assert boxes, "no label drawn"
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert all(len(label) <= previews.LABEL_MAX_CHARS for label in labels)
    assert "<script>alert('x')</script>" in labels
    assert all("\n" not in label and "\x00" not in label for label in labels)


# --------------------------------------------------------------------------------------------
# Spectra
# --------------------------------------------------------------------------------------------


def test_spectrum_with_fit_shows_model_and_residuals():
    spectrum, fit = synthetic_spectrum()
    other = FitResult(
        model="cutoffpl", parameters=[], statistic="chi2", statistic_value=1.0, dof=1,
        e_min_kev=20, e_max_kev=200, flux_erg_cm2_s=None, flux_error=None,
    )  # fmt: skip
    fig = previews.spectrum_figure(spectrum, [other, fit], "1A 0535+262", footer="ISGRI")
    assert len(fig.axes) == 2  # data and residual panels
    texts = figure_texts(fig)
    label = next(t for t in texts if t.startswith("— power law"))
    assert "Γ = 2.10 ± 0.02" in label
    assert "χ²/dof" in label
    assert "energy (keV)" in texts and "counts s⁻¹ keV⁻¹" in texts
    main, residual = fig.axes
    assert main.get_xscale() == "log" and main.get_yscale() == "log"
    assert main.get_xlim() == pytest.approx(residual.get_xlim())
    assert_preview(previews.figure_to_png(fig))


def test_spectrum_leaves_out_bad_channels():
    spectrum, fit = synthetic_spectrum()
    fig = previews.spectrum_figure(spectrum, [fit], "t")
    markers = [line for line in fig.axes[0].lines if line.get_label() == "data"]
    x = markers[0].get_xdata()
    assert len(x) == int(np.sum(spectrum.quality == 0))
    centres = np.sqrt(spectrum.e_min * spectrum.e_max)
    assert not np.isin(np.round(x, 6), np.round(centres[spectrum.quality != 0], 6)).any()


def test_spectrum_without_fit_has_no_residual_panel():
    spectrum, _ = synthetic_spectrum(256)
    fig = previews.spectrum_figure(spectrum, [], "no fit")
    assert len(fig.axes) == 1
    assert_preview(previews.render_spectrum_preview(spectrum, [], "no fit"))


def test_spectrum_with_negative_rates_and_no_valid_channel():
    spectrum, fit = synthetic_spectrum()
    spectrum.rate[10:20] = -0.5 * spectrum.stat_err[10:20]
    assert_preview(previews.render_spectrum_preview(spectrum, [fit], "negative"))
    spectrum.quality[:] = 5
    assert_preview(previews.render_spectrum_preview(spectrum, [fit], "all bad"))


def test_spectrum_fit_with_compressed_or_missing_arrays():
    spectrum, fit = synthetic_spectrum()
    fit.residuals = fit.residuals[fit.used]  # given for the fitted channels only
    assert_preview(previews.render_spectrum_preview(spectrum, [fit], "compressed"))
    fit.residuals = None
    fit.model = "<img src=x onerror=alert(1)> $\\x"
    fit.parameters = [FitParameter("$E_c$" * 20, 1e-12, float("nan"), "keV")]
    assert_preview(previews.render_spectrum_preview(spectrum, [fit], HOSTILE_NAMES[1]))


def test_real_spectrum_channels():
    """A real OSA 11 spectrum's rates and bounds (NaN edge channels flagged) without a fit."""
    with fits.open(shared_fixture("isgri/spectrum_1A_0535+262_osa11.fits.gz")) as hdul:
        table = next(h for h in hdul if h.name == "ISGR-EVTS-SPE").data
        rate = np.asarray(table["RATE"], dtype=float)
        stat = np.asarray(table["STAT_ERR"], dtype=float)
        quality = np.asarray(table["QUALITY"], dtype=int)
    with fits.open(shared_fixture("isgri/spectrum_1A_0535+262_osa11_rmf.fits.gz")) as hdul:
        bounds = next(h for h in hdul if "EBDS" in h.name or h.name == "EBOUNDS").data
        e_min = np.asarray(bounds["E_MIN"], dtype=float)
        e_max = np.asarray(bounds["E_MAX"], dtype=float)
    n = rate.size
    response = ResponseData(e_min, e_max, np.eye(n), e_min, e_max)
    spectrum = SpectrumData(
        channel=np.arange(n), rate=rate, stat_err=stat, sys_err=np.zeros(n), quality=quality,
        e_min=e_min, e_max=e_max, exposure_s=None, response=response,
    )  # fmt: skip
    assert np.isnan(rate[quality != 0]).any()
    assert_preview(previews.render_spectrum_preview(spectrum, [], "1A 0535+262"))


def test_cutoff_power_law_key():
    fit = FitResult(
        model="cutoffpl",
        parameters=[
            FitParameter("PhoIndex", np.float32(1.52), np.float32(0.08)),
            FitParameter("HighECut", 81.3, 4.6, "keV"),
            FitParameter("norm", 0.3, 0.01),
        ],
        statistic="chi2", statistic_value=np.float64(60.04), dof=55, e_min_kev=None,
        e_max_kev=None, flux_erg_cm2_s=2.0e-9, flux_error=None,
    )  # type: ignore[arg-type]  # fmt: skip
    assert previews.fit_legend_label(fit).splitlines() == [
        "cut-off power law,  χ²/dof = 60.0/55",
        "Γ = 1.52 ± 0.08, E_cut = 81 ± 5 keV",
        "F = 2×10⁻⁹ erg cm⁻² s⁻¹",
    ]


@pytest.mark.parametrize(
    ("value", "error", "expected"),
    [
        (2.1034, 0.0213, "2.10 ± 0.02"),
        (2.1034, 0.0134, "2.103 ± 0.013"),
        (81.3, 4.6, "81 ± 5"),
        (0.012, 0.0004, "0.0120 ± 0.0004"),
        (1.5e-9, 3e-11, "(1.50 ± 0.03)×10⁻⁹"),
        (2.5, None, "2.5"),
        (float("nan"), 1.0, "n/a"),
    ],
)
def test_format_value_error(value, error, expected):
    assert previews.format_value_error(value, error) == expected


# --------------------------------------------------------------------------------------------
# Light curves
# --------------------------------------------------------------------------------------------


def test_isgri_lightcurve_two_bins_with_utc_and_ijd_axes():
    lc = read_lightcurve("isgri/lc_OAO_1657-415.fits")
    fig = previews.lightcurve_figure(lc, "OAO 1657-415", footer="ISGRI 20–40 keV")
    texts = figure_texts(fig)
    assert "time (UTC)" in texts and "IJD (TT, days)" in texts
    # 1169.98 IJD (TT) is 2003-03-15 23:36 UTC
    assert any(t.startswith("1169.98") for t in texts)
    assert "23:35" in texts or "23:36" in texts or "23:40" in texts
    assert_preview(previews.figure_to_png(fig))


def test_ijd_conversion_goes_through_tt_to_utc():
    from matplotlib.dates import num2date

    # IJD 0 = 2000-01-01T00:00:00 TT = 1999-12-31T23:58:55.816 UTC
    when = num2date(previews.ijd_to_plot_date(np.array([0.0]))[0])
    assert (when.year, when.month, when.day, when.hour, when.minute) == (1999, 12, 31, 23, 58)
    assert when.second + when.microsecond / 1e6 == pytest.approx(55.816, abs=1e-3)


@pytest.mark.parametrize(
    "relative", ["jemx/lc_GRB221009A_jmx1.fits", "jemx/lc_jmx1_96_bins.fits.gz"]
)
def test_real_jemx_lightcurves(relative):
    lc = read_lightcurve(relative)
    assert_preview(previews.render_lightcurve_preview(lc, relative, footer="JEM-X1"))


def test_lightcurve_one_bin_and_nan_rates():
    one = LightCurveData(
        time_ijd=np.array([3006.0059512]), half_width_d=np.array([0.0057870]),
        rate=np.array([125.5]), error=np.array([2.7]),
    )  # fmt: skip
    assert_preview(previews.render_lightcurve_preview(one, "one bin"))
    zero_width = LightCurveData(np.array([3006.0]), np.array([0.0]), np.array([1.0]), np.zeros(1))
    assert_preview(previews.render_lightcurve_preview(zero_width, "zero width"))

    t = 8000 + np.arange(400) * 0.01
    rate = np.sin(t * 3) + 2
    rate[::7] = np.nan
    many = LightCurveData(t, np.full(400, 0.005), rate, np.full(400, 0.2))
    fig = previews.lightcurve_figure(many, HOSTILE_NAMES[0])
    markers = fig.axes[0].lines[1]
    assert len(markers.get_xdata()) == int(np.isfinite(rate).sum())
    assert_preview(previews.figure_to_png(fig))

    empty = LightCurveData(np.array([1.0, 2.0]), np.zeros(2), np.full(2, np.nan), np.zeros(2))
    decode_png(previews.render_lightcurve_preview(empty, "all NaN"))


def test_hostile_titles_do_not_crash():
    lc = LightCurveData(np.array([1.0, 2.0]), np.full(2, 0.1), np.array([1.0, 2.0]), np.ones(2))
    for name in HOSTILE_NAMES:
        assert_preview(previews.render_lightcurve_preview(lc, name, footer=name))


# --------------------------------------------------------------------------------------------
# Workers
# --------------------------------------------------------------------------------------------


def test_previews_render_the_same_in_threads():
    """Workers render in threads: no pyplot, no shared state, the same bytes as in sequence."""
    from concurrent.futures import ThreadPoolExecutor

    header = cd_header(120, 100, 83.63, 22.01, 0.06, 20.0)
    image = ImageData(header=header, significance=gaussian_map(header, [(83.633, 22.014, 30.0)]))
    spectrum, fit = synthetic_spectrum()
    lc = LightCurveData(8000 + np.arange(50) * 0.01, np.full(50, 0.005), np.ones(50), np.ones(50))
    jobs = [
        lambda: previews.render_image_preview(image, [CRAB], "image", footer="ISGRI"),
        lambda: previews.render_spectrum_preview(spectrum, [fit], "spectrum"),
        lambda: previews.render_lightcurve_preview(lc, "light curve"),
    ] * 3
    expected = [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: job(), jobs))
    assert results == expected
