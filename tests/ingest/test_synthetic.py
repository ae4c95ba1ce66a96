"""The synthetic OSA-like products: readable, self-consistent, and shaped like the real files.

The structural comparisons with real products need ../shared/fixtures and skip without it; all
other tests run on a fresh clone.
"""

from __future__ import annotations

import builtins
import io
import json
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from ingest import synthetic
from ingest.synthetic import CatalogEntry, SkySource
from products import timeline
from tests.conftest import SHARED_FIXTURES, shared_fixture

CRAB = SkySource("Crab", 83.63308, 22.01450, 1000.0, 2.1)
GX5 = SkySource("GX 5-1", 270.28417, -25.07917, 60.0, 3.0)
REV = 1516
T0 = timeline.time_to_ijd(timeline.revolution_start(REV)) + 0.2
T1 = T0 + 0.8


def _wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(header)


def _utc_to_ijd(text: str) -> float:
    return timeline.time_to_ijd(Time(text, format="isot", scale="utc"))


def _mosaic(path: Path, **kwargs) -> Path:
    args = {
        "instrument": "isgri",
        "center_ra": 84.2,
        "center_dec": 24.0,
        "sources": [CRAB],
        "e_min_kev": 20.0,
        "e_max_kev": 40.0,
        "t_start_ijd": T0,
        "t_stop_ijd": T1,
        "exposure_s": 50000.0,
        "seed": 1,
    }
    args.update(kwargs)
    return synthetic.write_mosaic(path, **args)


def _images(path: Path) -> dict[str, fits.ImageHDU]:
    with fits.open(path) as hdul:
        return {h.header["IMATYPE"]: h.copy() for h in hdul if h.header.get("IMATYPE")}


# ----------------------------------------------------------------------------- mosaics


def test_isgri_mosaic_layout_and_headers(tmp_path):
    path = _mosaic(tmp_path / "mosaic.fits", shape=(440, 440), use_cd_matrix=True)
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "GROUPING"] + ["ISGR-MOSA-IMA"] * 4
        assert hdul[0].data is None
        types = [h.header["IMATYPE"] for h in hdul[2:]]
        assert types == ["INTENSITY", "VARIANCE", "SIGNIFICANCE", "EXPOSURE"]
        grouping = hdul["GROUPING"].data
        assert list(grouping["IMATYPE"]) == types
        for position, imatype in zip(grouping["MEMBER_POSITION"], grouping["IMATYPE"], strict=True):
            assert hdul[position - 1].header["IMATYPE"] == imatype  # 1-based positions
        for hdu in hdul[2:]:
            h = hdu.header
            assert (h["TELESCOP"], h["INSTRUME"], h["DETNAM"]) == ("INTEGRAL", "IBIS", "ISGRI")
            assert (h["HDUCLASS"], h["HDUCLAS1"]) == ("OGIP", "IMAGE")
            assert (h["E_MIN"], h["E_MAX"]) == (20.0, 40.0)
            assert (h["TIMESYS"], h["MJDREF"], h["TIMEUNIT"]) == ("TT", 51544.0, "d")
            assert h["TSTART"] == pytest.approx(T0) and h["TSTOP"] == pytest.approx(T1)
            assert abs(_utc_to_ijd(h["DATE-OBS"]) - h["TSTART"]) < 1.5 / 86400
            assert abs(_utc_to_ijd(h["DATE-END"]) - h["TSTOP"]) < 1.5 / 86400
            assert h["ONTIME"] <= h["TELAPSE"] <= (T1 - T0) * 86400 + 1
            assert hdu.data.dtype == np.dtype(">f4")
            assert h["CONFIGUR"] and h["CREATOR"].startswith("ii_skyimage")
        assert synthetic.SYNTHETIC_NOTE in str(hdul[0].header["COMMENT"])


def test_isgri_mosaic_images_agree_and_field_has_an_edge(tmp_path):
    images = _images(_mosaic(tmp_path / "m.fits", shape=(440, 440)))
    intensity, variance = images["INTENSITY"].data, images["VARIANCE"].data
    significance, exposure = images["SIGNIFICANCE"].data, images["EXPOSURE"].data
    inside = exposure > 0
    assert 0.5 < inside.mean() < 1.0  # a coded field with an edge inside the image
    # Outside the field OSA writes zeros in all four images.
    for image in images.values():
        assert np.all(np.isfinite(image.data)) and np.all(image.data[~inside] == 0)
    np.testing.assert_allclose(
        significance[inside], intensity[inside] / np.sqrt(variance[inside]), rtol=1e-4
    )
    # Exposure peaks at the centre and falls toward the edge; variance grows as 1/exposure.
    assert exposure.max() == pytest.approx(50000.0, rel=1e-6)
    row = exposure[220, 220:]
    assert np.all(np.diff(row) <= 1e-3) and row[-1] == 0
    far = inside & (significance < 5)
    product = (variance * exposure)[far]
    assert np.ptp(product) / np.median(product) < 0.05


def test_significance_is_unit_gaussian_without_sources(tmp_path):
    images = _images(_mosaic(tmp_path / "m.fits", sources=[], seed=3))
    significance = images["SIGNIFICANCE"].data[images["EXPOSURE"].data > 0]
    assert abs(significance.mean()) < 0.02
    assert significance.std() == pytest.approx(1.0, abs=0.03)


@pytest.mark.parametrize(
    ("instrument", "rotation", "use_cd"),
    [
        ("isgri", 0.0, False),
        ("isgri", 33.0, True),
        ("isgri", -120.0, False),
        ("jemx1", 15.0, True),
        ("jemx2", 0.0, False),
    ],
)
def test_source_peaks_on_its_pixel_whatever_the_wcs(tmp_path, instrument, rotation, use_cd):
    isgri = instrument == "isgri"
    source = SkySource("Src", 86.0 if isgri else 84.9, 25.5 if isgri else 24.6, 300.0, 2.2)
    path = _mosaic(
        tmp_path / "m.fits",
        instrument=instrument,
        sources=[source],
        e_min_kev=20.0 if isgri else 3.04,
        e_max_kev=40.0 if isgri else 20.0,
        rotation_deg=rotation,
        use_cd_matrix=use_cd,
        seed=5,
    )
    images = _images(path)
    significance = images["SIGNIFICANCE"]
    header = significance.header
    assert ("CD1_1" in header) == use_cd
    assert ("PC1_1" in header) == (not use_cd and rotation != 0)
    x, y = _wcs(header).world_to_pixel(SkyCoord(source.ra_deg, source.dec_deg, unit="deg"))
    data = np.nan_to_num(significance.data, nan=-np.inf)
    peak_y, peak_x = np.unravel_index(np.argmax(data), data.shape)
    assert np.hypot(peak_x - x, peak_y - y) <= 1.0
    if rotation:
        # The rotation is really in the WCS: without it the source would land elsewhere.
        plain = header.copy()
        if use_cd:
            scale = np.sqrt(
                abs(header["CD1_1"] * header["CD2_2"] - header["CD1_2"] * header["CD2_1"])
            )
            plain.update(CD1_1=-scale, CD1_2=0.0, CD2_1=0.0, CD2_2=scale)
        else:
            plain.update(PC1_1=1.0, PC1_2=0.0, PC2_1=0.0, PC2_2=1.0)
        x2, y2 = _wcs(plain).world_to_pixel(SkyCoord(source.ra_deg, source.dec_deg, unit="deg"))
        assert np.hypot(x2 - x, y2 - y) > 3
    # The PSF peaks at the source's count rate (per cm2 for JEM-X); the pixel centre sits a
    # fraction of a pixel away on the Gaussian.
    inst = synthetic._instrument(instrument)
    rate = synthetic.source_rate(source, instrument, header["E_MIN"], header["E_MAX"])
    sigma_pix = inst.psf_fwhm_deg / 2.3548 / abs(_wcs(header).proj_plane_pixel_scales()[0].value)
    offset2 = (peak_x - x) ** 2 + (peak_y - y) ** 2
    expected = rate / inst.image_area_cm2 * np.exp(-0.5 * offset2 / sigma_pix**2)
    peak = images["INTENSITY" if isgri else "RECONSTRUCTED"].data[peak_y, peak_x]
    assert peak == pytest.approx(expected, rel=0.1)


def test_jemx_mosaic_layout(tmp_path):
    path = _mosaic(tmp_path / "j.fits", instrument="jemx1", e_min_kev=3.04, e_max_kev=34.88, seed=2)
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "GROUPING"] + ["JMX1-MOSA-IMA"] * 5
        types = [h.header["IMATYPE"] for h in hdul[2:]]
        assert types == ["RECONSTRUCTED", "VARIANCE", "SIGNIFICANCE", "EXPOSURE", "OBS_TIME"]
        grouping = hdul["GROUPING"].data
        assert list(grouping["IMATYPE"]) == types
        assert np.isnan(grouping["E_MIN"][-1]) and grouping["CHANMIN"][0] == 46
        header = hdul[2].header
        assert header["INSTRUME"] == "JMX1" and "DETNAM" not in header
        assert header["BUNIT"] == "counts/cm2/s" and hdul[2].data.dtype == np.dtype(">f8")
        assert (header["CHANMIN"], header["CHANMAX"]) == (46, 223)
        inside = np.isfinite(hdul[5].data)
        assert 0.3 < inside.mean() < 1.0  # NaN outside the circular field
        for hdu in hdul[2:]:
            assert np.array_equal(np.isfinite(hdu.data), inside)
        crab = hdul[2].data[np.isfinite(hdul[2].data)].max()
        assert 0.1 < crab < 0.25  # the Crab reads ~0.15 counts/cm2/s in OSA JEM-X mosaics


def test_significance_map_is_a_single_primary_hdu(tmp_path):
    path = synthetic.write_significance_map(
        tmp_path / "sig.fits",
        center_ra=266.8,
        center_dec=-28.0,
        sources=[GX5],
        e_min_kev=20.0,
        e_max_kev=40.0,
        t_start_ijd=T0,
        t_stop_ijd=T1,
        exposure_s=40000.0,
        seed=4,
    )
    with fits.open(path) as hdul:
        assert len(hdul) == 1
        header, data = hdul[0].header, hdul[0].data
    assert (header["EXTNAME"], header["IMATYPE"]) == ("ISGR-MOSA-IMA", "SIGNIFICANCE")
    assert data.ndim == 2 and header["DETNAM"] == "ISGRI"
    x, y = _wcs(header).world_to_pixel(SkyCoord(GX5.ra_deg, GX5.dec_deg, unit="deg"))
    peak_y, peak_x = np.unravel_index(np.argmax(data), data.shape)
    assert np.hypot(peak_x - x, peak_y - y) <= 1.0


def test_mosaic_rejects_impossible_input(tmp_path):
    with pytest.raises(ValueError, match="exposure"):
        _mosaic(tmp_path / "m.fits", exposure_s=1e6)
    with pytest.raises(ValueError, match="instrument"):
        _mosaic(tmp_path / "m.fits", instrument="spi")
    with pytest.raises(ValueError, match="dither"):
        _mosaic(tmp_path / "m.fits", dither="spiral")


# ----------------------------------------------------------------------------- spectra


def _spectrum(tmp_path: Path, name: str, **kwargs) -> tuple[Path, Path, Path]:
    args = {
        "instrument": "isgri",
        "source": CRAB,
        "t_start_ijd": T0,
        "t_stop_ijd": T1,
        "exposure_s": 50000.0,
        "seed": 11,
    }
    args.update(kwargs)
    return synthetic.write_spectrum(
        tmp_path / f"{name}_pha.fits",
        tmp_path / f"{name}_rmf.fits",
        tmp_path / f"{name}_arf.fits",
        **args,
    )


def _by_class(hdul: fits.HDUList, hduclas2: str) -> fits.BinTableHDU:
    return next(h for h in hdul[1:] if h.header.get("HDUCLAS2") == hduclas2)


def _read_spectrum(pha: Path) -> SimpleNamespace:
    """Reads a PHA with the response its RESPFILE/ANCRFILE name, as a reader would."""
    with fits.open(pha) as hdul:
        spectrum = next(h for h in hdul if h.header.get("HDUCLAS1") == "SPECTRUM")
        header, data = spectrum.header, spectrum.data.copy()
    with fits.open(pha.parent / header["RESPFILE"]) as rmf:
        matrix_hdu = _by_class(rmf, "RSP_MATRIX")
        matrix = np.array(matrix_hdu.data["MATRIX"], dtype=float)
        first = int(matrix_hdu.data["F_CHAN"][0])
        energ_lo = np.array(matrix_hdu.data["ENERG_LO"], dtype=float)
        energ_hi = np.array(matrix_hdu.data["ENERG_HI"], dtype=float)
        ebounds = _by_class(rmf, "EBOUNDS").data.copy()
        names = [h.name for h in rmf]
    with fits.open(pha.parent / header["ANCRFILE"]) as arf:
        area = np.array(arf[1].data["SPECRESP"], dtype=float)
    return SimpleNamespace(
        header=header,
        data=data,
        matrix=matrix,
        first=first,
        energ_lo=energ_lo,
        energ_hi=energ_hi,
        ebounds=ebounds,
        area=area,
        rmf_names=names,
    )


def _folded(spec: SimpleNamespace, source: SkySource) -> np.ndarray:
    """An independent folding: power law x ARF x RMF, per spectrum channel."""
    norm, index = synthetic.photon_norm(source), source.photon_index
    flux = norm * (spec.energ_hi ** (1 - index) - spec.energ_lo ** (1 - index)) / (1 - index)
    counts = (flux * spec.area) @ spec.matrix  # matrix column j is channel F_CHAN + j
    return counts[np.asarray(spec.data["CHANNEL"]) - spec.first]


def _check_rates_match_model(spec: SimpleNamespace, source: SkySource) -> None:
    model = _folded(spec, source)
    good = (spec.data["QUALITY"] == 0) & np.isfinite(spec.data["RATE"])
    residual = (spec.data["RATE"] - model)[good] / spec.data["STAT_ERR"][good]
    assert abs(residual.mean()) < 0.5 and 0.7 < residual.std() < 1.3
    total, expected = spec.data["RATE"][good].sum(), model[good].sum()
    assert abs(total - expected) < 5 * np.sqrt(np.sum(spec.data["STAT_ERR"][good] ** 2))
    assert total == pytest.approx(expected, rel=0.05)


def test_isgri_osa10_spectrum(tmp_path):
    pha, rmf, arf = _spectrum(tmp_path, "osa10", osa="10")
    spec = _read_spectrum(pha)
    h = spec.header
    assert h["EXTNAME"] == "ISGR-EVTS-SPE"
    assert (h["HDUCLASS"], h["HDUCLAS1"], h["HDUCLAS2"], h["HDUCLAS3"]) == (
        "OGIP",
        "SPECTRUM",
        "TOTAL",
        "RATE",
    )
    assert (h["RESPFILE"], h["ANCRFILE"]) == (rmf.name, arf.name)
    assert (h["NAME"], h["RA_OBJ"], h["DEC_OBJ"]) == ("Crab", CRAB.ra_deg, CRAB.dec_deg)
    assert h["SOURCEID"] == "J053431.9+220052"  # ISDC style, from the position
    assert h["EXPOSURE"] == 50000.0 and h["REVOL"] == REV
    assert list(spec.data["CHANNEL"]) == list(range(62)) and h["DETCHANS"] == 62
    assert spec.rmf_names == ["PRIMARY", "GROUPING", "ISGR-RMF.-RSP", "ISGR-EBDS-MOD"]
    np.testing.assert_allclose(spec.matrix.sum(axis=1), 1.0, atol=1e-5)
    # The ARF holds an ISGRI-like area: nothing below 15 keV, a peak of some hundreds of cm2
    # near 50-100 keV, falling beyond.
    centre = np.sqrt(spec.energ_lo * spec.energ_hi)
    assert spec.area[centre < 15].max() == 0
    assert 300 < spec.area.max() < 1500
    assert 40 < centre[np.argmax(spec.area)] < 120
    assert spec.area[np.argmin(abs(centre - 300))] < 0.3 * spec.area.max()
    assert spec.area[np.argmin(abs(centre - 30))] > 0.5 * spec.area.max()
    # Channel 0 is below threshold: NaN rate flagged bad.
    assert np.isnan(spec.data["RATE"][0]) and spec.data["QUALITY"][0] == 3
    _check_rates_match_model(spec, CRAB)


def test_isgri_osa11_spectrum_keeps_the_area_in_the_rmf(tmp_path):
    pha, _, arf = _spectrum(tmp_path, "osa11", osa="11")
    spec = _read_spectrum(pha)
    assert spec.rmf_names == ["PRIMARY", "ISGR-EBDS-MOD", "ISGR-RMF.-RSP"]
    assert len(spec.data) == 256 and list(spec.data["CHANNEL"][:2]) == [0, 1]
    np.testing.assert_array_equal(spec.area, 1.0)
    assert 300 < spec.matrix.sum(axis=1).max() < 1500
    with fits.open(arf) as hdul:
        assert hdul[1].name == "ISGR-ARF.-RSP" and hdul[1].columns["SPECRESP"].unit is None
    rate, quality = spec.data["RATE"], spec.data["QUALITY"]
    nan = np.isnan(rate)
    assert 10 < nan.sum() < 30 and np.all(quality[nan] == 3)
    # NaN below the 20 keV threshold and in the top three channels, as OSA 11 writes them.
    top = np.arange(len(rate)) >= len(rate) - 3
    np.testing.assert_array_equal(nan, (spec.ebounds["E_MAX"] <= 20.0) | top)
    assert (quality == 3).sum() > nan.sum()  # flagged but finite channels too
    assert np.all(np.isinf(spec.data["STAT_ERR"][nan]))
    _check_rates_match_model(spec, CRAB)


def test_osa10_and_osa11_conventions_fold_to_the_same_counts(tmp_path):
    source = SkySource("Test", 10.0, 10.0, 200.0, 2.4)
    counts = {}
    for osa in ("10", "11"):
        pha, _, _ = _spectrum(tmp_path, f"c{osa}", osa=osa, source=source, n_channels=62)
        spec = _read_spectrum(pha)
        counts[osa] = _folded(spec, source).sum()
    assert counts["10"] == pytest.approx(counts["11"], rel=1e-4)


def test_jemx_spectrum_numbers_channels_from_one(tmp_path):
    pha, rmf, arf = _spectrum(tmp_path, "jemx", instrument="jemx1", osa="11")
    spec = _read_spectrum(pha)
    h = spec.header
    assert h["EXTNAME"] == "JMX1-PHA1-SPE" and h["HDUCLAS2"] == "NET"
    assert list(spec.data["CHANNEL"]) == list(range(1, 17))
    assert (h["TLMIN1"], h["TLMAX1"]) == (1, 16)
    assert list(spec.ebounds["CHANNEL"]) == list(range(16))
    assert spec.first == 1
    assert spec.ebounds["E_MIN"][0] == pytest.approx(3.04)
    assert spec.ebounds["E_MAX"][-1] == pytest.approx(34.88)
    assert spec.rmf_names == [
        "PRIMARY",
        "GROUPING",
        "SPECRESP MATRIX",
        "EBOUNDS",
        "JMX1-AXIS-ARF",
        "JMX1-IMAG-ARF",
    ]
    with fits.open(arf) as hdul:
        assert hdul[1].name == "SPECRESP" and hdul[1].columns["SPECRESP"].unit == "cm**2"
    assert 40 < spec.area.max() < 100
    assert abs(_utc_to_ijd(h["DATE-OBS"]) - h["TSTART"]) < 1.5 / 86400
    _check_rates_match_model(spec, CRAB)


def test_spectrum_rejects_bad_options(tmp_path):
    with pytest.raises(ValueError, match="osa"):
        _spectrum(tmp_path, "x", osa="9")
    with pytest.raises(ValueError, match="after"):
        _spectrum(tmp_path, "x", t_stop_ijd=T0 - 1)


# ----------------------------------------------------------------------------- light curves


def _lightcurve(tmp_path: Path, **kwargs) -> Path:
    args = {
        "instrument": "isgri",
        "source": CRAB,
        "t_start_ijd": T0,
        "n_bins": 40,
        "bin_s": 1000.0,
        "seed": 21,
    }
    args.update(kwargs)
    return synthetic.write_lightcurve(tmp_path / "lc.fits", **args)


@pytest.mark.parametrize(
    ("instrument", "style", "names"),
    [
        ("isgri", "xax_e", ["PRIMARY", "ISGR-SRC.-LCR"]),
        ("isgri", "timedel_keyword", ["PRIMARY", "ISGR-SRC.-LCR"]),
        ("isgri", "timedel_column", ["PRIMARY", "ISGR-SRC.-LCR"]),
        ("jemx1", "timedel_keyword", ["PRIMARY", "GROUPING", "JMX1-SRC.-LCR"]),
        ("jemx1", "timedel_column", ["PRIMARY", "JMX1-SRC.-LCR"]),
    ],
)
def test_lightcurve_width_styles(tmp_path, instrument, style, names):
    path = _lightcurve(tmp_path, instrument=instrument, width_style=style, bin_s=600.0)
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == names
        table = hdul[-1]
        h, data = table.header, table.data
    columns = set(data.columns.names)
    assert {"TIME", "RATE", "ERROR", "FRACEXP"} <= columns
    if instrument == "jemx1":
        assert {"BRATE", "BERROR", "BARYTIME"} <= columns
    bin_d = 600.0 / 86400
    assert h["TIMEDEL"] == pytest.approx(bin_d)
    assert ("XAX_E" in columns) == (style == "xax_e")
    assert ("TIMEDEL" in columns) == (style == "timedel_column")
    if style == "xax_e":
        np.testing.assert_allclose(data["XAX_E"], bin_d / 2, rtol=1e-6)
    if style == "timedel_column":
        np.testing.assert_allclose(data["TIMEDEL"], bin_d, rtol=1e-9)
    np.testing.assert_allclose(data["TIME"], T0 + (np.arange(40) + 0.5) * bin_d, rtol=0, atol=1e-9)
    assert h["TSTART"] == pytest.approx(T0) and h["TSTOP"] == pytest.approx(T0 + 40 * bin_d)
    assert (h["TIMESYS"], h["MJDREF"], h["TIMEUNIT"], h["TIMEPIXR"]) == ("TT", 51544.0, "d", 0.5)
    assert h["REVOL"] == REV == timeline.revolution_of(timeline.ijd_to_time(h["TSTART"]))
    scw = timeline.ScwId.parse(h["SWID"])
    assert scw.revolution == REV and not scw.is_slew
    assert (h["NAME"], h["RA_OBJ"], h["DEC_OBJ"]) == ("Crab", CRAB.ra_deg, CRAB.dec_deg)
    assert h["E_MIN"] < h["E_MAX"]
    # Constant source: the rates scatter around the band rate by their errors.
    expected = synthetic.source_rate(CRAB, instrument, h["E_MIN"], h["E_MAX"])
    pulls = (data["RATE"] - expected) / data["ERROR"]
    assert abs(pulls.mean()) < 0.6 and 0.6 < pulls.std() < 1.4


def test_lightcurve_last_bin_can_be_cut_short(tmp_path):
    bin_d = 1000.0 / 86400
    stop = T0 + 39.3 * bin_d
    path = _lightcurve(tmp_path, t_stop_ijd=stop)
    with fits.open(path) as hdul:
        data, header = hdul[1].data, hdul[1].header
    assert data["XAX_E"][-1] == pytest.approx(0.3 * bin_d / 2, rel=1e-5)
    assert data["TIME"][-1] == pytest.approx(T0 + 39.15 * bin_d)
    assert header["TSTOP"] == pytest.approx(stop)
    with pytest.raises(ValueError, match="TIMEDEL keyword"):
        _lightcurve(tmp_path, t_stop_ijd=stop, width_style="timedel_keyword")


def test_lightcurve_variability_and_given_rates(tmp_path):
    with fits.open(_lightcurve(tmp_path, variability="outburst", source=GX5)) as hdul:
        rate = hdul[1].data["RATE"]
    assert rate.max() > 5 * np.median(rate[:5])
    with fits.open(_lightcurve(tmp_path, rates=lambda t: np.full_like(t, 10.0))) as hdul:
        assert hdul[1].data["RATE"].mean() == pytest.approx(10.0, abs=1.5)
    with fits.open(_lightcurve(tmp_path, rates=np.linspace(0, 100, 40))) as hdul:
        assert hdul[1].data["RATE"][-1] > hdul[1].data["RATE"][0] + 50
    with pytest.raises(ValueError, match="one value per bin"):
        _lightcurve(tmp_path, rates=[1.0, 2.0])
    with pytest.raises(ValueError, match="width_style"):
        _lightcurve(tmp_path, width_style="bins")


# ----------------------------------------------------------------------------- catalogues


def test_mmoda_catalog(tmp_path):
    path = synthetic.write_catalog(
        tmp_path / "cat.fits",
        sources=[
            ("Crab", 83.633, 22.014, 290.5, False),
            CatalogEntry(None, 82.02, 23.71, 9.3, is_new=True),
            SimpleNamespace(name="1A 0535+262", ra=84.727, dec=26.316, significance=3.1),
        ],
    )
    with fits.open(path) as hdul:
        table = hdul[1]
        assert table.name == ""  # MMODA's table has no EXTNAME
        assert table.columns.names == [
            "meta_ID",
            "src_names",
            "significance",
            "ra",
            "dec",
            "NEW_SOURCE",
            "ISGRI_FLAG",
            "FLAG",
            "ERR_RAD",
        ]
        h, data = table.header, table.data
        assert (h["FRAME"], h["COORD_UNIT"], h["LON_NAME"], h["LAT_NAME"]) == (
            "fk5",
            "deg",
            "ra",
            "dec",
        )
        assert list(data["src_names"]) == ["Crab", "NEW_1", "1A 0535+262"]
        assert list(data["NEW_SOURCE"]) == [-32768, 1, -32768]
        assert list(data["meta_ID"]) == [0, 1, 2]
        assert data["ERR_RAD"][1] > data["ERR_RAD"][0]


def test_jemx_catalogs(tmp_path):
    entries = [
        CatalogEntry("Crab", 83.6302, 22.0161, 599.3, flux=12.0, flux_err=0.1, xpix=191.3),
        CatalogEntry(None, 82.0201, 23.7141, 20.3, is_new=True),
    ]
    path = synthetic.write_catalog(tmp_path / "mj.fits", sources=entries, flavour="mmoda_jemx")
    with fits.open(path) as hdul:
        assert hdul[1].columns.names == [
            "meta_ID",
            "src_names",
            "significance",
            "ra",
            "dec",
            "FLAG",
            "ERR_RAD",
        ]
        assert list(hdul[1].data["src_names"]) == ["Crab", "NEW SOURCE"]
    path = synthetic.write_catalog(
        tmp_path / "sloc.fits", sources=entries, flavour="jemx_sloc", instrument="jemx2"
    )
    with fits.open(path) as hdul:
        table = hdul["JMX2-SLOC-RES"]
        data = table.data
        assert list(data["NAME"]) == ["Crab", "NEW SOURCE"]
        assert list(data["SOURCE_ID"]) == ["J053431.2+220058", "UNKNOWN"]
        assert list(data["DETSIG"]) == pytest.approx([599.3, 20.3], rel=1e-6)
        assert data["FLUX"][0, 0] == pytest.approx(12.0) and data["FLUX"].shape == (2, 256)
        assert data["E_MIN"][0, 0] == pytest.approx(3.04) and data["CLASS"][0] == 32768
        assert table.columns["RA_OBJ"].unit == "deg"
    empty = synthetic.write_catalog(tmp_path / "empty.fits", sources=[], flavour="mmoda_jemx")
    with fits.open(empty) as hdul:
        assert len(hdul[1].data) == 0
    with pytest.raises(ValueError, match="flavour"):
        synthetic.write_catalog(tmp_path / "x.fits", sources=[], flavour="votable")


# ----------------------------------------------------------------------------- determinism


def test_a_seed_gives_identical_files(tmp_path):
    def products(folder: Path, seed: int) -> list[Path]:
        folder.mkdir()
        paths = [_mosaic(folder / "m.fits", seed=seed, shape=(120, 120))]
        paths += _spectrum(folder, "s", seed=seed)
        paths.append(
            synthetic.write_lightcurve(
                folder / "lc.fits", source=CRAB, t_start_ijd=T0, n_bins=10, bin_s=500.0, seed=seed
            )
        )
        return paths

    first, again, other = (products(tmp_path / d, s) for d, s in (("a", 7), ("b", 7), ("c", 8)))
    for a, b in zip(first, again, strict=True):
        assert a.read_bytes() == b.read_bytes()
    differs = [a.read_bytes() != c.read_bytes() for a, c in zip(first, other, strict=True)]
    assert differs[0] and differs[1] and differs[-1]  # images, spectra, light curves


# ----------------------------------------------------------------------------- demo set


@pytest.fixture
def no_shared_access(monkeypatch):
    """Fails any attempt to open a file under ../shared while the test runs."""
    shared = str(SHARED_FIXTURES.parent)
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, str | Path) and str(Path(file).resolve()).startswith(shared):
            raise AssertionError(f"the demo set read {file}")
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(io, "open", guarded)


def test_demo_set_is_coherent_quick_and_self_contained(tmp_path, no_shared_access):
    started = time.perf_counter()
    groups = synthetic.write_demo_set(tmp_path / "demo", seed=0)
    elapsed = time.perf_counter() - started
    assert elapsed < 10.0, f"write_demo_set took {elapsed:.1f} s"
    assert 20 <= len(groups) <= 40
    kinds: dict[str, int] = {}
    revolutions = set()
    for group in groups:
        assert all(p.is_file() for p in group)
        with fits.open(group[0]) as hdul:
            header = next((h.header for h in hdul if "TSTART" in h.header), None)
            extnames = [h.name for h in hdul]
        kind = (
            "spectrum"
            if len(group) == 3
            else "image"
            if any("MOSA-IMA" in n for n in extnames)
            else "lightcurve"
            if any("LCR" in n for n in extnames)
            else "catalog"
        )
        kinds[kind] = kinds.get(kind, 0) + 1
        if len(group) == 3:
            pha = _read_spectrum(group[0])
            assert (pha.header["RESPFILE"], pha.header["ANCRFILE"]) == (
                group[1].name,
                group[2].name,
            )
        if header is not None and kind != "catalog":
            rev = timeline.revolution_of(timeline.ijd_to_time(header["TSTART"]))
            assert rev == int(group[0].parent.name)
            assert timeline.revolution_of(timeline.ijd_to_time(header["TSTOP"])) == rev
            revolutions.add(rev)
    assert len(revolutions) == 4
    assert kinds["image"] >= 6 and kinds["spectrum"] >= 6 and kinds["lightcurve"] >= 6
    assert kinds["catalog"] >= 6

    # The Crab sits on its pixel in the first ISGRI mosaic, and the catalogue found it.
    mosaic = next(g[0] for g in groups if g[0].name.endswith("isgri_mosaic_20-40keV.fits"))
    images = _images(mosaic)
    significance = images["SIGNIFICANCE"]
    x, y = _wcs(significance.header).world_to_pixel(SkyCoord(83.63308, 22.01450, unit="deg"))
    peak_y, peak_x = np.unravel_index(np.argmax(significance.data), significance.data.shape)
    assert np.hypot(peak_x - x, peak_y - y) <= 1.0
    catalog = next(g[0] for g in groups if g[0].name == "1521_galactic_centre_isgri_catalog.fits")
    with fits.open(catalog) as hdul:
        data = hdul[1].data
    assert "NEW_1" in list(data["src_names"]) and "GX 5-1" in list(data["src_names"])
    assert data["significance"][list(data["src_names"]).index("GX 5-1")] > 7


def test_demo_positions_agree_with_real_catalogues():
    """Demo sources sit within 1.5' of the positions OSA fitted in real products."""
    api = json.loads(shared_fixture("catalogs/api_catalog_gx5-1.json").read_text())
    names, ras, decs = (api["cat_column_list"][i] for i in (1, 3, 4))
    reference = dict(zip(names, zip(ras, decs, strict=True), strict=True))
    with fits.open(shared_fixture("isgri/catalog_crab_field.fits")) as hdul:
        for row in hdul[1].data:
            reference[row["src_names"]] = (float(row["ra"]), float(row["dec"]))
    common = sorted(set(synthetic._DEMO_SOURCES) & set(reference))
    assert len(common) >= 8
    for name in common:
        ours = synthetic._DEMO_SOURCES[name]
        theirs = SkyCoord(*reference[name], unit="deg")
        separation = SkyCoord(ours.ra_deg, ours.dec_deg, unit="deg").separation(theirs)
        assert separation.arcmin < 1.5, name


# ----------------------------------------------------------------------------- real files


def _layout(path: Path) -> list[tuple[str, str | None, list[str] | None]]:
    with fits.open(path) as hdul:
        return [
            (
                h.name,
                h.header.get("IMATYPE"),
                list(h.columns.names) if isinstance(h, fits.BinTableHDU) else None,
            )
            for h in hdul
        ]


def _units(path: Path, extname: str | int) -> dict[str, str | None]:
    with fits.open(path) as hdul:
        return {c.name: c.unit for c in hdul[extname].columns}


# Keywords the real files carry that the synthetic ones leave out: checksums and history,
# unfilled placeholders (OGID), on-board times, the calibration database's bookkeeping, the
# internals of the extraction and the other instruments' bands in JEM-X source lists.
_OPTIONAL = {
    "CHECKSUM", "DATASUM", "COMMENT", "HISTORY", "OGID", "OBTSTART", "OBTEND", "BSCALE",
    "BZERO", "GRPLC1", "LONGSTRN", "REVOLS", "RDATASUM",
    "VERSION", "FILENAME", "LOCATN", "RESPONSI", "EMAIL", "STRT_VAL", "END_VAL", "VSTART",
    "VSTOP", "RISE_MIN", "RISE_MAX", "YPOS", "ZPOS", "VETO_THR", "BINNING",
    "OFFCORR", "BKGPARAM", "Y_FIN", "Z_FIN",
    "DATE", "EBIN_NUM", "SPIEMIN1", "SPIEMAX1", "SPIEMIN2", "SPIEMAX2", "ISGEMIN1", "ISGEMAX1",
    "ISGEMIN2", "ISGEMAX2", "PICEMIN1", "PICEMAX1", "PICEMIN2", "PICEMAX2",
}  # fmt: skip


def _missing_keywords(ours: Path, real: Path, extname: str | int) -> set[str]:
    with fits.open(ours) as a, fits.open(real) as b:
        have = set(a[extname].header)
        want = {
            k
            for k in b[extname].header
            if not k.startswith(("TTYPE", "TFORM", "TUNIT", "TNULL", "TDISP", "TSCAL", "TZERO"))
        }
    return want - have - _OPTIONAL


def test_mosaics_look_like_the_real_ones(tmp_path):
    real = shared_fixture("isgri/mosaic_crab_20-40keV.fits")
    ours = _mosaic(tmp_path / "m.fits", use_cd_matrix=True, osa="10")
    assert _layout(ours) == _layout(real)
    for ext in (1, 2):
        assert not _missing_keywords(ours, real, ext)
    assert _units(ours, "GROUPING") == _units(real, "GROUPING")
    with fits.open(ours) as a, fits.open(real) as b:
        assert [h.header.get("BUNIT") for h in a] == [h.header.get("BUNIT") for h in b]
        assert [h.data.dtype for h in a[2:]] == [h.data.dtype for h in b[2:]]

    real = shared_fixture("jemx/mosaic_jmx1_crab.fits.gz")
    ours = _mosaic(
        tmp_path / "j.fits", instrument="jemx1", e_min_kev=3.04, e_max_kev=34.88, use_cd_matrix=True
    )
    assert _layout(ours) == _layout(real)
    for ext in (1, 2):
        assert not _missing_keywords(ours, real, ext)
    assert _units(ours, "GROUPING") == _units(real, "GROUPING")
    with fits.open(ours) as a, fits.open(real) as b:
        assert [h.header.get("BUNIT") for h in a] == [h.header.get("BUNIT") for h in b]
        assert a[2].header["PSFSIGMA"] == pytest.approx(b[2].header["PSFSIGMA"], rel=0.05)
        assert a[2].header["CD2_2"] == pytest.approx(b[2].header["CD2_2"])

    real = shared_fixture("isgri/significance_user_guide.fits")
    ours = synthetic.write_significance_map(
        tmp_path / "s.fits",
        center_ra=252.9,
        center_dec=-32.6,
        sources=[],
        e_min_kev=20.0,
        e_max_kev=40.0,
        t_start_ijd=T0,
        t_stop_ijd=T1,
        exposure_s=1000.0,
    )
    assert _layout(ours) == _layout(real)
    assert not _missing_keywords(ours, real, 0)


@pytest.mark.parametrize(
    ("kwargs", "real_pha", "real_rmf", "real_arf"),
    [
        ({"osa": "10"}, "isgri/spectrum_3C_279_osa10.fits",
         "isgri/spectrum_3C_279_osa10_rmf.fits.gz", "isgri/spectrum_3C_279_osa10_arf.fits.gz"),
        ({"osa": "11"}, "isgri/spectrum_1A_0535+262_osa11.fits.gz",
         "isgri/spectrum_1A_0535+262_osa11_rmf.fits.gz",
         "isgri/spectrum_1A_0535+262_osa11_arf.fits.gz"),
        ({"instrument": "jemx1"}, "jemx/spectrum_crab_jmx1.fits.gz",
         "jemx/spectrum_crab_jmx1_rmf.fits.gz", "jemx/spectrum_crab_jmx1_arf.fits.gz"),
    ],
)  # fmt: skip
def test_spectra_look_like_the_real_ones(tmp_path, kwargs, real_pha, real_rmf, real_arf):
    ours = _spectrum(tmp_path, "s", **kwargs)
    for mine, theirs in zip(ours, (real_pha, real_rmf, real_arf), strict=True):
        real = shared_fixture(theirs)
        mine_layout, real_layout = _layout(mine), _layout(real)
        assert [n for n, _, _ in mine_layout] == [n for n, _, _ in real_layout]
        assert [c for _, _, c in mine_layout] == [c for _, _, c in real_layout]
        for ext in range(1, len(real_layout)):
            assert not _missing_keywords(mine, real, ext), (theirs, ext)
            if real_layout[ext][2]:
                assert _units(mine, ext) == _units(real, ext), (theirs, ext)
    with fits.open(ours[0]) as a, fits.open(shared_fixture(real_pha)) as b:
        assert len(a[1].data) == len(b[1].data)
        assert list(a[1].data["CHANNEL"]) == list(b[1].data["CHANNEL"])


@pytest.mark.parametrize(
    ("kwargs", "real"),
    [
        ({"instrument": "isgri", "width_style": "xax_e"}, "isgri/lc_OAO_1657-415.fits"),
        ({"instrument": "jemx1"}, "jemx/lc_jmx1_96_bins.fits.gz"),
        ({"instrument": "jemx1", "width_style": "timedel_column"},
         "jemx/lc_GRB221009A_jmx1.fits"),
    ],
)  # fmt: skip
def test_lightcurves_look_like_the_real_ones(tmp_path, kwargs, real):
    ours = _lightcurve(tmp_path, **kwargs)
    real_path = shared_fixture(real)
    assert _layout(ours) == _layout(real_path)
    for ext in range(1, len(_layout(real_path))):
        assert not _missing_keywords(ours, real_path, ext), ext
        assert _units(ours, ext) == _units(real_path, ext)


@pytest.mark.parametrize(
    ("flavour", "real"),
    [
        ("mmoda", "isgri/catalog_crab_field.fits"),
        ("mmoda_jemx", "jemx/catalog_jmx1.fits"),
        ("jemx_sloc", "jemx/sloc_res_jmx1_crab.fits.gz"),
    ],
)
def test_catalogs_look_like_the_real_ones(tmp_path, flavour, real):
    entries = [
        CatalogEntry("Crab", 83.63, 22.016, 300.0),
        CatalogEntry(None, 82.0, 23.7, 9.0, True),
    ]
    ours = synthetic.write_catalog(tmp_path / "c.fits", sources=entries, flavour=flavour)
    real_path = shared_fixture(real)
    assert _layout(ours) == _layout(real_path)
    assert not _missing_keywords(ours, real_path, 1)
    assert _units(ours, 1) == _units(real_path, 1)
    with fits.open(ours) as a, fits.open(real_path) as b:
        for column in b[1].columns:
            assert a[1].columns[column.name].format == column.format or column.format.endswith("A")
            assert a[1].columns[column.name].null == column.null
