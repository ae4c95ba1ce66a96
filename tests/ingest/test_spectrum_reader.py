"""Reading OGIP spectra and responses: the real fixtures with their quirks, and bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from ingest.readers.base import IngestError
from ingest.readers.spectrum import (
    classify_spectral_hdul,
    find_spectrum_hdu,
    read_response,
    read_spectrum,
)
from tests.conftest import shared_fixture

OSA11 = (
    "isgri/spectrum_1A_0535+262_osa11.fits.gz",
    "isgri/spectrum_1A_0535+262_osa11_rmf.fits.gz",
    "isgri/spectrum_1A_0535+262_osa11_arf.fits.gz",
)
OSA10_3C279 = (
    "isgri/spectrum_3C_279_osa10.fits",
    "isgri/spectrum_3C_279_osa10_rmf.fits.gz",
    "isgri/spectrum_3C_279_osa10_arf.fits.gz",
)
OSA10_4U1700 = (
    "isgri/spectrum_4U_1700-377_osa10.fits",
    "isgri/spectrum_4U_1700-377_osa10_rmf.fits",
    "isgri/spectrum_4U_1700-377_osa10_arf.fits",
)
NGC2110 = (
    "isgri/spectrum_NGC_2110_osa10_rebinned.fits",
    "isgri/spectrum_NGC_2110_osa10_rebinned_rmf.fits",
    "isgri/spectrum_NGC_2110_osa10_rebinned_arf.fits",
)
JEMX = (
    "jemx/spectrum_crab_jmx1.fits.gz",
    "jemx/spectrum_crab_jmx1_rmf.fits.gz",
    "jemx/spectrum_crab_jmx1_arf.fits.gz",
)


def _read(files: tuple[str, str, str]):
    return read_spectrum(*(shared_fixture(f) for f in files))


def _area_at(response, e_lo_kev: float, e_hi_kev: float) -> float:
    """Mean effective area (cm^2, summed over channels) of the photon bins in a band."""
    centre = 0.5 * (response.energ_lo + response.energ_hi)
    inside = (centre >= e_lo_kev) & (centre <= e_hi_kev)
    return float(response.matrix[inside].sum(axis=1).mean())


# --------------------------------------------------------------------------------------------
# Real fixtures


@pytest.mark.parametrize(
    ("files", "n_channels", "first_channel", "e_first_kev", "e_last_kev", "n_bad", "n_energy"),
    [
        (OSA11, 256, 0, 12.5, 1029.5, 25, 2466),
        (OSA10_3C279, 62, 0, 13.0, 993.38, 1, 2466),
        (OSA10_4U1700, 62, 0, 13.0, 993.38, 1, 2466),
        (NGC2110, 14, 0, 17.31, 300.22, 0, 2466),
        (JEMX, 16, 1, 3.04, 34.88, 0, 500),
    ],
    ids=["1A0535-osa11", "3C279-osa10", "4U1700-osa10", "NGC2110-rebinned", "crab-jemx1"],
)
def test_fixture_spectra_read(
    files, n_channels, first_channel, e_first_kev, e_last_kev, n_bad, n_energy
):
    spectrum = _read(files)
    assert spectrum.channel.size == n_channels
    assert spectrum.channel[0] == first_channel
    assert np.all(np.diff(spectrum.channel) == 1)
    for array in (spectrum.rate, spectrum.stat_err, spectrum.sys_err, spectrum.quality):
        assert array.shape == (n_channels,)
    assert spectrum.e_min[0] == pytest.approx(e_first_kev, abs=0.01)
    assert spectrum.e_max[-1] == pytest.approx(e_last_kev, abs=0.01)
    assert np.all(spectrum.e_max > spectrum.e_min)
    np.testing.assert_array_equal(spectrum.e_max[:-1], spectrum.e_min[1:])  # contiguous
    assert int(np.count_nonzero(spectrum.quality)) == n_bad
    assert spectrum.exposure_s > 0
    response = spectrum.response
    assert response.matrix.shape == (n_energy, n_channels)
    assert np.all(np.isfinite(response.matrix))
    np.testing.assert_array_equal(response.channel_e_min, spectrum.e_min)
    good = spectrum.quality == 0
    assert np.all(np.isfinite(spectrum.rate[good]))
    assert np.all(spectrum.stat_err[good] > 0)


def test_nan_rates_are_flagged_bad():
    spectrum = _read(OSA11)
    nan = ~np.isfinite(spectrum.rate)
    assert nan.sum() == 18
    assert np.all(spectrum.quality[nan] != 0)
    assert np.all(spectrum.quality[spectrum.quality != 0] == 3)  # as the file flags them


def test_zero_error_channel_is_bad():
    spectrum = _read(OSA10_4U1700)
    assert spectrum.stat_err[0] == 0
    assert spectrum.quality[0] != 0


def test_rebinned_spectrum_without_quality_and_sys_err():
    spectrum = _read(NGC2110)
    assert np.all(spectrum.quality == 0)
    assert np.all(spectrum.sys_err == 0)
    assert spectrum.exposure_s == pytest.approx(1e5)


def test_jemx_channels_one_to_sixteen_align_with_ebounds_from_zero():
    spectrum = _read(JEMX)
    np.testing.assert_array_equal(spectrum.channel, np.arange(1, 17))
    # Channel 1 is EBOUNDS row 0, 3.04-3.52 keV.
    assert spectrum.e_min[0] == pytest.approx(3.04, abs=1e-4)
    assert spectrum.e_max[0] == pytest.approx(3.52, abs=1e-4)
    # The matrix's first column (F_CHAN = TLMIN = 1) is channel 1: a 3.3 keV photon lands
    # in the first channels, not one channel higher.
    response = spectrum.response
    row = int(np.argmin(np.abs(0.5 * (response.energ_lo + response.energ_hi) - 3.3)))
    assert int(np.argmax(response.matrix[row])) == 0
    row = int(np.argmin(np.abs(0.5 * (response.energ_lo + response.energ_hi) - 9.5)))
    assert spectrum.e_min[np.argmax(response.matrix[row])] <= 9.5
    assert spectrum.e_max[np.argmax(response.matrix[row])] >= 9.5


def test_jemx_rmf_own_arf_is_used_without_arf_file():
    with_arf = _read(JEMX)
    without = read_spectrum(shared_fixture(JEMX[0]), shared_fixture(JEMX[1]), None)
    np.testing.assert_allclose(without.response.matrix, with_arf.response.matrix)
    # JEM-X's on-axis area peaks at some tens of cm^2 (its ARF extensions say dm**2, wrongly).
    peak = with_arf.response.matrix.sum(axis=1).max()
    assert 30 < peak < 200


def test_osa10_and_osa11_conventions_give_comparable_areas():
    osa11 = _read(OSA11).response
    osa10 = _read(OSA10_3C279).response
    # OSA 11: the area is in the RMF and the ARF is all ones.
    arf = fits.getdata(shared_fixture(OSA11[2]), 1)["SPECRESP"]
    assert np.all(arf == 1)
    for response in (osa10, osa11):
        area = response.matrix.sum(axis=1)
        centre = 0.5 * (response.energ_lo + response.energ_hi)
        assert 300 < area.max() < 2500
        assert 30 < centre[np.argmax(area)] < 150
        assert 300 < _area_at(response, 50, 100) < 2000
    for band in ((50, 100), (100, 200)):
        ratio = _area_at(osa11, *band) / _area_at(osa10, *band)
        assert 0.67 < ratio < 1.5, band


def test_osa11_rmf_alone_holds_the_area():
    with_arf = _read(OSA11)
    without = read_spectrum(shared_fixture(OSA11[0]), shared_fixture(OSA11[1]), None)
    np.testing.assert_allclose(without.response.matrix, with_arf.response.matrix)


def test_osa10_rmf_without_arf_is_refused():
    with pytest.raises(IngestError, match="normalised"):
        read_spectrum(shared_fixture(OSA10_3C279[0]), shared_fixture(OSA10_3C279[1]), None)


def test_area_in_both_rmf_and_arf_is_refused():
    files = (OSA11[0], OSA11[1], OSA10_3C279[2])
    with pytest.raises(IngestError, match="both the RMF and the ARF"):
        read_spectrum(*(shared_fixture(f) for f in files))


def test_variable_length_rmf_with_ogip_names():
    spectrum = read_spectrum(
        shared_fixture(OSA11[0]), shared_fixture("isgri/rmf_osa11_ogip_names.fits"), None
    )
    response = spectrum.response
    assert response.matrix.shape == (2466, 256)
    assert 300 < response.matrix.sum(axis=1).max() < 2500
    assert spectrum.e_min[0] == pytest.approx(12.5)


@pytest.mark.parametrize(
    ("relative", "kind"),
    [
        (OSA11[0], "pha"),
        (OSA11[1], "rmf"),
        (OSA11[2], "arf"),
        (OSA10_3C279[0], "pha"),
        (OSA10_3C279[1], "rmf"),
        (OSA10_3C279[2], "arf"),
        (OSA10_4U1700[1], "rmf"),
        (OSA10_4U1700[2], "arf"),
        (NGC2110[0], "pha"),
        (NGC2110[1], "rmf"),
        (NGC2110[2], "arf"),
        (JEMX[0], "pha"),
        (JEMX[1], "rmf"),  # holds ARF extensions too
        (JEMX[2], "arf"),
        ("isgri/rmf_osa11_ogip_names.fits", "rmf"),
        ("isgri/lc_OAO_1657-415.fits", None),
        ("isgri/mosaic_crab_20-40keV.fits", None),
        ("isgri/catalog_crab_field.fits", None),
        ("jemx/lc_jmx1_96_bins.fits.gz", None),
        ("jemx/sloc_res_jmx1_crab.fits.gz", None),
    ],
)
def test_classify_by_headers(relative, kind):
    with fits.open(shared_fixture(relative)) as hdul:
        assert classify_spectral_hdul(hdul) == kind


def test_find_spectrum_hdu():
    with fits.open(shared_fixture(JEMX[0])) as hdul:
        assert find_spectrum_hdu(hdul).name == "JMX1-PHA1-SPE"
    with fits.open(shared_fixture(JEMX[1])) as hdul:
        assert find_spectrum_hdu(hdul) is None


def test_spectrum_against_a_response_with_other_channels():
    with pytest.raises(IngestError, match="62 channels but the response"):
        read_spectrum(shared_fixture(OSA10_3C279[0]), shared_fixture(OSA11[1]), None)


def test_arf_of_another_grid_is_refused():
    with pytest.raises(IngestError, match="energy grid"):
        read_spectrum(*(shared_fixture(f) for f in (*JEMX[:2], OSA10_3C279[2])))


def test_files_in_the_wrong_roles():
    with pytest.raises(IngestError, match="not an RMF"):
        read_spectrum(*(shared_fixture(f) for f in (JEMX[0], JEMX[2], JEMX[2])))
    with pytest.raises(IngestError, match="no spectrum"):
        read_spectrum(*(shared_fixture(f) for f in (JEMX[1], JEMX[1], JEMX[2])))


# --------------------------------------------------------------------------------------------
# OGIP files written here: layouts the fixtures do not show, and bad input


def _compress(dense: np.ndarray, first: int, max_groups: int | None = None):
    """OGIP groups (runs of non-zero channels) of a dense matrix."""
    n_grp, f_chan, n_chan, values = [], [], [], []
    for row in dense:
        nonzero = np.flatnonzero(row)
        runs = np.split(nonzero, np.flatnonzero(np.diff(nonzero) > 1) + 1) if nonzero.size else []
        n_grp.append(len(runs))
        f_chan.append([int(r[0]) + first for r in runs])
        n_chan.append([len(r) for r in runs])
        values.append(np.concatenate([row[r] for r in runs]) if runs else np.zeros(0))
    return n_grp, f_chan, n_chan, values


def _write_rmf(
    path: Path,
    dense: np.ndarray,
    energ_lo: np.ndarray,
    e_bounds: np.ndarray,
    *,
    first: int = 1,
    variable: bool = False,
    ebounds: bool = True,
    ebounds_first: int = 0,
) -> Path:
    n_energy, n_chan = dense.shape
    energ_hi = np.append(energ_lo[1:], energ_lo[-1] + (energ_lo[-1] - energ_lo[-2]))
    n_grp, f_chan, n_chn, values = _compress(dense, first)
    width = max(max(n_grp), 1)
    if variable:
        columns = [
            fits.Column("F_CHAN", "PJ()", array=np.array(f_chan, dtype=object)),
            fits.Column("N_CHAN", "PJ()", array=np.array(n_chn, dtype=object)),
            fits.Column("MATRIX", "PE()", array=np.array(values, dtype=object)),
        ]
    else:
        pad = max(len(v) for v in values)
        f_fixed = np.zeros((n_energy, width), dtype=np.int32)
        n_fixed = np.zeros((n_energy, width), dtype=np.int32)
        m_fixed = np.zeros((n_energy, pad), dtype=np.float32)
        for i in range(n_energy):
            f_fixed[i, : n_grp[i]] = f_chan[i]
            n_fixed[i, : n_grp[i]] = n_chn[i]
            m_fixed[i, : len(values[i])] = values[i]
        columns = [
            fits.Column("F_CHAN", f"{width}J", array=f_fixed),
            fits.Column("N_CHAN", f"{width}J", array=n_fixed),
            fits.Column("MATRIX", f"{pad}E", array=m_fixed),
        ]
    matrix = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "E", array=energ_lo),
            fits.Column("ENERG_HI", "E", array=energ_hi),
            fits.Column("N_GRP", "I", array=np.array(n_grp)),
            *columns,
        ],
        name="SPECRESP MATRIX",
    )
    matrix.header["HDUCLAS1"] = "RESPONSE"
    matrix.header["HDUCLAS2"] = "RSP_MATRIX"
    matrix.header["DETCHANS"] = n_chan
    matrix.header["TLMIN4"] = first
    hdus = [fits.PrimaryHDU(), matrix]
    if ebounds:
        eb = fits.BinTableHDU.from_columns(
            [
                fits.Column("CHANNEL", "J", array=np.arange(n_chan) + ebounds_first),
                fits.Column("E_MIN", "E", array=e_bounds[:-1]),
                fits.Column("E_MAX", "E", array=e_bounds[1:]),
            ],
            name="EBOUNDS",
        )
        eb.header["HDUCLAS2"] = "EBOUNDS"
        hdus.append(eb)
    fits.HDUList(hdus).writeto(path)
    return path


def _write_pha(path: Path, channel: np.ndarray, columns: dict, header: dict | None = None):
    cols = [fits.Column("CHANNEL", "J", array=channel)]
    for name, array in columns.items():
        fmt = "J" if name in ("QUALITY", "COUNTS") else "E"
        if np.ndim(array) == 2:
            fmt = f"{np.shape(array)[1]}{fmt}"
        cols.append(fits.Column(name, fmt, array=array))
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECTRUM")
    hdu.header["HDUCLAS1"] = "SPECTRUM"
    for key, value in (header or {}).items():
        hdu.header[key] = value
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path


def _banded_matrix(n_energy: int = 60, n_chan: int = 12) -> tuple[np.ndarray, ...]:
    """A response (cm^2) with up to two groups per row: a photopeak and an escape peak."""
    energ_lo = np.linspace(10.0, 130.0, n_energy, endpoint=False)
    e_bounds = np.linspace(10.0, 130.0, n_chan + 1)
    dense = np.zeros((n_energy, n_chan))
    for i, energy in enumerate(energ_lo + 1.0):
        peak = min(int((energy - 10.0) / 10.0), n_chan - 1)
        dense[i, peak] = 60.0
        if peak >= 1:
            dense[i, peak - 1] = 30.0
        if peak >= 4:
            dense[i, peak - 4] = 10.0  # separated from the photopeak by empty channels
    return dense, energ_lo, e_bounds


@pytest.mark.parametrize("variable", [False, True], ids=["fixed", "variable-length"])
def test_multi_group_matrix_is_expanded_exactly(tmp_path, variable):
    dense, energ_lo, e_bounds = _banded_matrix()
    assert max(_compress(dense, 1)[0]) == 2  # the test really has several groups per row
    rmf = _write_rmf(tmp_path / "r.fits", dense, energ_lo, e_bounds, first=1, variable=variable)
    response = read_response(rmf, None, np.arange(1, 13))
    np.testing.assert_allclose(response.matrix, dense.astype(np.float32), rtol=1e-7)
    np.testing.assert_allclose(response.channel_e_min, e_bounds[:-1], rtol=1e-6)


def test_unsorted_spectrum_channels_follow_the_spectrum(tmp_path):
    dense, energ_lo, e_bounds = _banded_matrix()
    rmf = _write_rmf(tmp_path / "r.fits", dense, energ_lo, e_bounds, first=0)
    order = np.arange(12)[::-1]
    response = read_response(rmf, None, order)
    np.testing.assert_allclose(response.matrix, dense[:, order].astype(np.float32))
    np.testing.assert_allclose(response.channel_e_min, e_bounds[:-1][order], rtol=1e-6)


def _synthetic_rmf(tmp_path: Path) -> Path:
    dense, energ_lo, e_bounds = _banded_matrix()
    return _write_rmf(tmp_path / "r.fits", dense, energ_lo, e_bounds, first=1)


def test_counts_spectrum_with_poisson_errors(tmp_path):
    rmf = _synthetic_rmf(tmp_path)
    counts = np.array([0, 4, 9, 16, 25, 36, 49, 64, 81, 100, 121, 144])
    pha = _write_pha(
        tmp_path / "s.fits",
        np.arange(1, 13),
        {"COUNTS": counts},
        {"EXPOSURE": 100.0, "POISSERR": True, "SYS_ERR": 0.05},
    )
    spectrum = read_spectrum(pha, rmf)
    np.testing.assert_allclose(spectrum.rate, counts / 100.0)
    expected = np.sqrt(np.maximum(counts, 1)) / 100.0
    np.testing.assert_allclose(spectrum.stat_err, expected)
    np.testing.assert_allclose(spectrum.sys_err, 0.05)  # keyword, fractional
    assert np.all(spectrum.quality == 0)
    assert spectrum.exposure_s == 100.0


def test_counts_with_stat_err_column_are_divided_by_exposure(tmp_path):
    rmf = _synthetic_rmf(tmp_path)
    pha = _write_pha(
        tmp_path / "s.fits",
        np.arange(1, 13),
        {"COUNTS": np.full(12, 50), "STAT_ERR": np.full(12, 10.0)},
        {"EXPOSURE": 200.0},
    )
    spectrum = read_spectrum(pha, rmf)
    np.testing.assert_allclose(spectrum.rate, 0.25)
    np.testing.assert_allclose(spectrum.stat_err, 0.05)


def _rate_columns(n: int = 12, **changes) -> dict:
    columns = {
        "RATE": np.linspace(1.0, 0.1, n),
        "STAT_ERR": np.full(n, 0.05),
        "QUALITY": np.zeros(n, dtype=int),
    }
    columns.update(changes)
    return {k: v for k, v in columns.items() if v is not None}


def test_nan_rate_with_good_quality_is_made_bad(tmp_path):
    rmf = _synthetic_rmf(tmp_path)
    rate = np.linspace(1.0, 0.1, 12)
    rate[3] = np.nan
    pha = _write_pha(tmp_path / "s.fits", np.arange(1, 13), _rate_columns(RATE=rate))
    spectrum = read_spectrum(pha, rmf)
    assert spectrum.quality[3] != 0
    assert np.count_nonzero(spectrum.quality) == 1


@pytest.mark.parametrize(
    ("columns", "header", "message"),
    [
        ({"RATE": np.full(12, np.nan), "STAT_ERR": np.full(12, 0.1)}, {}, "every channel"),
        (_rate_columns(QUALITY=np.full(12, 5)), {}, "every channel"),
        (_rate_columns(STAT_ERR=None), {}, "no STAT_ERR"),
        ({"COUNTS": np.full(12, 5), "STAT_ERR": np.full(12, 2.0)}, {}, "EXPOSURE"),
        (_rate_columns(RATE=np.ones((12, 3)), STAT_ERR=np.ones((12, 3))), {}, "type II"),
    ],
    ids=["all-nan", "all-bad", "no-errors", "counts-no-exposure", "type-II"],
)
def test_bad_spectra(tmp_path, columns, header, message):
    rmf = _synthetic_rmf(tmp_path)
    pha = _write_pha(tmp_path / "s.fits", np.arange(1, 13), columns, header)
    with pytest.raises(IngestError, match=message):
        read_spectrum(pha, rmf)


def test_type_two_is_not_classified_as_a_spectrum(tmp_path):
    columns = _rate_columns(RATE=np.ones((12, 3)), STAT_ERR=np.ones((12, 3)))
    pha = _write_pha(tmp_path / "s.fits", np.arange(1, 13), columns)
    with fits.open(pha) as hdul:
        assert classify_spectral_hdul(hdul) is None
        assert find_spectrum_hdu(hdul) is None


def test_channel_count_mismatch(tmp_path):
    rmf = _synthetic_rmf(tmp_path)
    pha = _write_pha(tmp_path / "s.fits", np.arange(1, 12), _rate_columns(n=11))
    with pytest.raises(IngestError, match="11 channels but the response"):
        read_spectrum(pha, rmf)


def test_matrix_without_ebounds(tmp_path):
    dense, energ_lo, e_bounds = _banded_matrix()
    rmf = _write_rmf(tmp_path / "r.fits", dense, energ_lo, e_bounds, ebounds=False)
    with pytest.raises(IngestError, match="no EBOUNDS"):
        read_response(rmf, None, np.arange(1, 13))


def test_non_finite_matrix(tmp_path):
    dense, energ_lo, e_bounds = _banded_matrix()
    dense[10, dense[10] > 0] = np.nan
    rmf = _write_rmf(tmp_path / "r.fits", dense, energ_lo, e_bounds)
    with pytest.raises(IngestError, match="non-finite"):
        read_response(rmf, None, np.arange(1, 13))


def test_non_finite_arf(tmp_path):
    dense, energ_lo, e_bounds = _banded_matrix()
    rmf = _write_rmf(tmp_path / "r.fits", dense / 100.0, energ_lo, e_bounds)
    energ_hi = np.append(energ_lo[1:], 130.0)
    area = np.full(energ_lo.size, 100.0)
    area[5] = np.inf
    arf = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "E", array=energ_lo),
            fits.Column("ENERG_HI", "E", array=energ_hi),
            fits.Column("SPECRESP", "E", array=area),
        ],
        name="SPECRESP",
    )
    fits.HDUList([fits.PrimaryHDU(), arf]).writeto(tmp_path / "a.fits")
    with pytest.raises(IngestError, match="non-finite"):
        read_response(rmf, tmp_path / "a.fits", np.arange(1, 13))


def test_matrix_groups_beyond_the_channels(tmp_path):
    dense, energ_lo, e_bounds = _banded_matrix()
    # Declare the first channel as 2 while F_CHAN counts from 1: groups run off the end.
    rmf = _write_rmf(tmp_path / "r.fits", dense, energ_lo, e_bounds, first=1)
    with fits.open(rmf, mode="update") as hdul:
        hdul[1].header["TLMIN4"] = 2
    with pytest.raises(IngestError, match="first channel|beyond"):
        read_response(rmf, None, np.arange(1, 13))


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_not_fits_and_truncated_files(tmp_path):
    junk = tmp_path / "junk.fits"
    junk.write_text("SIMPLE = nonsense, not a FITS file\n")
    with pytest.raises(IngestError, match="junk.fits"):
        read_spectrum(junk, junk)
    data = gzip.decompress(shared_fixture(JEMX[1]).read_bytes())
    truncated = tmp_path / "truncated_rmf.fits"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="truncated_rmf.fits"):
        read_spectrum(shared_fixture(JEMX[0]), truncated, shared_fixture(JEMX[2]))
    with pytest.raises(IngestError, match="not found"):
        read_spectrum(tmp_path / "missing.fits", junk)
