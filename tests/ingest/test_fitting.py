"""Spectral fitting: real fixture spectra, and synthetic spectra of known parameters.

Synthetic spectra are folded here through real responses with integrals written independently
of the fitter (closed form for the power law, Simpson's rule for the cut-off power law), so a
wrong quadrature, folding or parameterisation in the fitter shows up as a failed recovery.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from ingest.fitting import KEV_TO_ERG, FitResult, fit_spectrum
from ingest.readers.base import IngestError, ResponseData, SpectrumData
from ingest.readers.spectrum import read_spectrum
from tests.conftest import shared_fixture

ISGRI_BAND = (30.0, 300.0)
JEMX_BAND = (3.0, 30.0)

FIXTURES = {
    "1A0535-osa11": (
        "isgri/spectrum_1A_0535+262_osa11.fits.gz",
        "isgri/spectrum_1A_0535+262_osa11_rmf.fits.gz",
        "isgri/spectrum_1A_0535+262_osa11_arf.fits.gz",
        ISGRI_BAND,
    ),
    "3C279-osa10": (
        "isgri/spectrum_3C_279_osa10.fits",
        "isgri/spectrum_3C_279_osa10_rmf.fits.gz",
        "isgri/spectrum_3C_279_osa10_arf.fits.gz",
        ISGRI_BAND,
    ),
    "4U1700-osa10": (
        "isgri/spectrum_4U_1700-377_osa10.fits",
        "isgri/spectrum_4U_1700-377_osa10_rmf.fits",
        "isgri/spectrum_4U_1700-377_osa10_arf.fits",
        ISGRI_BAND,
    ),
    "NGC2110-rebinned": (
        "isgri/spectrum_NGC_2110_osa10_rebinned.fits",
        "isgri/spectrum_NGC_2110_osa10_rebinned_rmf.fits",
        "isgri/spectrum_NGC_2110_osa10_rebinned_arf.fits",
        ISGRI_BAND,
    ),
    "crab-jemx1": (
        "jemx/spectrum_crab_jmx1.fits.gz",
        "jemx/spectrum_crab_jmx1_rmf.fits.gz",
        "jemx/spectrum_crab_jmx1_arf.fits.gz",
        JEMX_BAND,
    ),
}

_cache: dict[str, SpectrumData] = {}


def _spectrum(key: str) -> SpectrumData:
    pha, rmf, arf, _ = FIXTURES[key]
    paths = [shared_fixture(f) for f in (pha, rmf, arf)]
    if key not in _cache:
        _cache[key] = read_spectrum(*paths)
    return _cache[key]


def _by_model(results: list[FitResult]) -> dict[str, FitResult]:
    return {r.model: r for r in results}


# --------------------------------------------------------------------------------------------
# Independent folding of known models


def _fold_powerlaw(response: ResponseData, gamma: float, norm: float) -> np.ndarray:
    a = 1.0 - gamma
    photons = norm * (response.energ_hi**a - response.energ_lo**a) / a
    return photons @ response.matrix


def _fold_cutoffpl(response: ResponseData, gamma: float, e_cut: float, norm: float):
    steps = 32
    t = np.linspace(0.0, 1.0, steps + 1)
    width = response.energ_hi - response.energ_lo
    e = response.energ_lo[:, None] + width[:, None] * t
    coeff = np.ones(steps + 1)
    coeff[1:-1:2], coeff[2:-1:2] = 4.0, 2.0
    photons = (norm * e**-gamma * np.exp(-e / e_cut)) @ coeff * width / (3.0 * steps)
    return photons @ response.matrix


def _powerlaw_energy_flux(gamma: float, norm: float, e1: float, e2: float) -> float:
    b = 2.0 - gamma
    integral = np.log(e2 / e1) if abs(b) < 1e-12 else (e2**b - e1**b) / b
    return norm * integral * KEV_TO_ERG


def _synthetic(template: SpectrumData, true_rate: np.ndarray, seed: int) -> SpectrumData:
    """The template's channels, errors and quality with a noisy realisation of ``true_rate``."""
    rng = np.random.default_rng(seed)
    rate = true_rate + rng.normal(size=true_rate.size) * template.stat_err
    rate[template.quality != 0] = np.nan
    return dataclasses.replace(template, rate=rate)


def _within(fit: FitResult, truth: dict[str, float], n_sigma: float = 3.0) -> bool:
    return all(
        abs(fit.parameter(name).value - value) <= n_sigma * fit.parameter(name).error
        for name, value in truth.items()
    )


def _recovered(fit: FitResult, truth: dict[str, float]) -> bool:
    """The truth lies within 3 sigma and the fit is acceptable (chi2 chance above 0.1 %)."""
    return _within(fit, truth) and stats.chi2.sf(fit.statistic_value, fit.dof) > 1e-3


# --------------------------------------------------------------------------------------------
# Real fixtures


@pytest.mark.parametrize("key", list(FIXTURES))
def test_every_fixture_spectrum_fits(key):
    spectrum = _spectrum(key)
    band = FIXTURES[key][3]
    results = fit_spectrum(spectrum, band)
    assert results[0].model == "powerlaw"
    assert sum(r.is_preferred for r in results) == 1
    centre = 0.5 * (spectrum.e_min + spectrum.e_max)
    for fit in results:
        used = fit.used
        assert used.dtype == bool and used.shape == spectrum.rate.shape
        assert not np.any(used & (spectrum.quality != 0))
        assert np.all((centre[used] >= band[0]) & (centre[used] <= band[1]))
        assert band[0] <= fit.e_min_kev < fit.e_max_kev <= band[1]
        assert fit.dof == used.sum() - len(fit.parameters)
        assert np.all(np.isnan(fit.model_rate[~used])) and np.all(np.isnan(fit.residuals[~used]))
        sigma = np.hypot(spectrum.stat_err, spectrum.sys_err * spectrum.rate)
        expected = (spectrum.rate - fit.model_rate) / sigma
        np.testing.assert_allclose(fit.residuals[used], expected[used])
        assert fit.statistic == "chi2"
        assert fit.statistic_value == pytest.approx(np.sum(fit.residuals[used] ** 2))
        for parameter in fit.parameters:
            assert np.isfinite(parameter.value) and 0 < parameter.error < np.inf
        assert fit.flux_erg_cm2_s > 0 and 0 < fit.flux_error < fit.flux_erg_cm2_s
        covariance = np.array(fit.details["covariance"])
        np.testing.assert_allclose(
            np.sqrt(np.diag(covariance)), [p.error for p in fit.parameters], rtol=1e-10
        )


def test_jemx_crab_photon_index():
    fit = _by_model(fit_spectrum(_spectrum("crab-jemx1"), JEMX_BAND))["powerlaw"]
    index = fit.parameter("PhoIndex")
    assert index.value == pytest.approx(2.1, abs=0.1)
    assert index.error < 0.2
    assert fit.statistic_value / fit.dof < 2.0
    # The Crab gives about 3e-8 erg/cm2/s in 3-30 keV.
    assert 1.5e-8 < fit.flux_erg_cm2_s < 4.5e-8
    assert fit.is_preferred


def test_fixture_photon_indices():
    """Known values (checked against sherpa by bench/fit_vs_sherpa.py)."""
    expected = {
        "1A0535-osa11": 3.140,
        "3C279-osa10": 1.821,
        "4U1700-osa10": 3.658,
        "NGC2110-rebinned": 1.855,
        "crab-jemx1": 2.129,
    }
    for key, index in expected.items():
        fit = fit_spectrum(_spectrum(key), FIXTURES[key][3])[0]
        assert fit.parameter("PhoIndex").value == pytest.approx(index, abs=2e-3), key


def test_flux_matches_the_closed_form_and_propagated_error():
    fit = fit_spectrum(_spectrum("3C279-osa10"), ISGRI_BAND)[0]
    gamma, norm = (p.value for p in fit.parameters)
    e1, e2 = fit.e_min_kev, fit.e_max_kev
    assert fit.flux_erg_cm2_s == pytest.approx(_powerlaw_energy_flux(gamma, norm, e1, e2), 1e-9)
    step = np.array([1e-6, norm * 1e-6])
    gradient = np.array(
        [
            (
                _powerlaw_energy_flux(*(np.array([gamma, norm]) + d), e1, e2)
                - _powerlaw_energy_flux(*(np.array([gamma, norm]) - d), e1, e2)
            )
            / (2 * d[i])
            for i, d in enumerate(np.diag(step))
        ]
    )
    covariance = np.array(fit.details["covariance"])
    assert fit.flux_error == pytest.approx(np.sqrt(gradient @ covariance @ gradient), rel=1e-4)


# --------------------------------------------------------------------------------------------
# Synthetic spectra of known parameters


def test_synthetic_powerlaw_is_recovered():
    template = _spectrum("3C279-osa10")
    truth = {"PhoIndex": 2.0, "norm": 0.05}
    rate = _fold_powerlaw(template.response, 2.0, 0.05)
    results = _by_model(fit_spectrum(_synthetic(template, rate, seed=3), ISGRI_BAND))
    powerlaw = results["powerlaw"]
    assert _recovered(powerlaw, truth)
    assert powerlaw.is_preferred
    e1, e2 = powerlaw.e_min_kev, powerlaw.e_max_kev
    true_flux = _powerlaw_energy_flux(2.0, 0.05, e1, e2)
    assert abs(powerlaw.flux_erg_cm2_s - true_flux) < 3 * powerlaw.flux_error


def test_powerlaw_errors_have_their_coverage():
    """Over many noise realisations, ~68 % of the 1-sigma intervals hold the true index."""
    template = _spectrum("3C279-osa10")
    rate = _fold_powerlaw(template.response, 2.0, 0.05)
    hits, chi2 = [], []
    for seed in range(40):
        fit = fit_spectrum(_synthetic(template, rate, seed=100 + seed), ISGRI_BAND)[0]
        hits.append(_within(fit, {"PhoIndex": 2.0}, n_sigma=1.0))
        chi2.append(fit.statistic_value / fit.dof)
    assert 0.5 <= np.mean(hits) <= 0.87
    assert np.mean(chi2) == pytest.approx(1.0, abs=0.15)


def test_synthetic_cutoff_is_recovered_and_preferred():
    template = _spectrum("1A0535-osa11")
    truth = {"PhoIndex": 1.0, "HighECut": 40.0, "norm": 0.1}
    rate = _fold_cutoffpl(template.response, 1.0, 40.0, 0.1)
    results = _by_model(fit_spectrum(_synthetic(template, rate, seed=5), ISGRI_BAND))
    cutoffpl = results["cutoffpl"]
    assert _recovered(cutoffpl, truth)
    assert cutoffpl.is_preferred and not results["powerlaw"].is_preferred
    assert cutoffpl.details["f_test_probability"] < 1e-6


def test_wrong_model_fails():
    """A power law cannot describe a cut-off spectrum: the recovery check must reject it."""
    template = _spectrum("1A0535-osa11")
    rate = _fold_cutoffpl(template.response, 1.0, 40.0, 0.1)
    powerlaw = fit_spectrum(_synthetic(template, rate, seed=5), ISGRI_BAND)[0]
    assert stats.chi2.sf(powerlaw.statistic_value, powerlaw.dof) < 1e-6
    assert not _within(powerlaw, {"PhoIndex": 1.0, "norm": 0.1})
    assert not _recovered(powerlaw, {"PhoIndex": 1.0, "norm": 0.1})


def test_misaligned_response_fails():
    """Channels off by one against the response (the JEM-X numbering trap) are caught."""
    template = _spectrum("3C279-osa10")
    rate = _fold_powerlaw(template.response, 2.0, 0.05)
    synthetic = _synthetic(template, rate, seed=3)
    assert _recovered(fit_spectrum(synthetic, ISGRI_BAND)[0], {"PhoIndex": 2.0, "norm": 0.05})
    shifted = dataclasses.replace(
        template.response, matrix=np.roll(template.response.matrix, 1, axis=1)
    )
    fit = fit_spectrum(dataclasses.replace(synthetic, response=shifted), ISGRI_BAND)[0]
    assert not _recovered(fit, {"PhoIndex": 2.0, "norm": 0.05})


def test_powerlaw_data_do_not_prefer_the_cutoff():
    template = _spectrum("3C279-osa10")
    rate = _fold_powerlaw(template.response, 2.0, 0.05)
    for seed in range(5):
        results = fit_spectrum(_synthetic(template, rate, seed=seed), ISGRI_BAND)
        assert results[0].is_preferred, seed


# --------------------------------------------------------------------------------------------
# Channels, errors, bands


def test_bad_channels_are_ignored():
    spectrum = _spectrum("3C279-osa10")
    base = fit_spectrum(spectrum, ISGRI_BAND)[0]
    channel = int(np.flatnonzero(base.used)[5])
    quality = spectrum.quality.copy()
    quality[channel] = 5
    flagged = dataclasses.replace(spectrum, quality=quality)
    rate = spectrum.rate.copy()
    rate[channel] = 1e3
    outlier = fit_spectrum(dataclasses.replace(flagged, rate=rate), ISGRI_BAND)[0]
    rate[channel] = np.nan
    nan_good_quality = fit_spectrum(dataclasses.replace(spectrum, rate=rate), ISGRI_BAND)[0]
    for fit in (outlier, nan_good_quality):
        assert not fit.used[channel] and fit.used.sum() == base.used.sum() - 1
        assert np.isnan(fit.residuals[channel])
    assert outlier.statistic_value == pytest.approx(nan_good_quality.statistic_value)
    assert outlier.parameters[0].value == pytest.approx(nan_good_quality.parameters[0].value)


def test_systematic_errors_widen_the_errors():
    spectrum = _spectrum("3C279-osa10")
    plain = fit_spectrum(spectrum, ISGRI_BAND)[0]
    with_sys = dataclasses.replace(spectrum, sys_err=np.full(spectrum.rate.size, 0.05))
    fit = fit_spectrum(with_sys, ISGRI_BAND)[0]
    assert fit.statistic_value < plain.statistic_value
    assert fit.parameter("PhoIndex").error > plain.parameter("PhoIndex").error


def test_band_none_uses_every_good_channel():
    spectrum = _spectrum("NGC2110-rebinned")
    fit = fit_spectrum(spectrum, None)[0]
    assert fit.used.sum() == np.count_nonzero(spectrum.quality == 0) == 14
    assert fit.e_min_kev == pytest.approx(spectrum.e_min[0])
    assert fit.e_max_kev == pytest.approx(spectrum.e_max[-1])


def test_band_is_clipped_to_the_data():
    spectrum = _spectrum("NGC2110-rebinned")
    fit = fit_spectrum(spectrum, (1.0, 1.0e4))[0]
    assert fit.e_min_kev == pytest.approx(spectrum.e_min[0])
    assert fit.e_max_kev == pytest.approx(spectrum.e_max[-1])


def test_three_channels_fit_a_powerlaw_only_and_two_are_refused():
    spectrum = _spectrum("NGC2110-rebinned")
    three = (float(spectrum.e_min[5]), float(spectrum.e_max[7]))
    results = fit_spectrum(spectrum, three)
    assert [r.model for r in results] == ["powerlaw"]
    assert results[0].dof == 1 and results[0].is_preferred
    two = (float(spectrum.e_min[5]), float(spectrum.e_max[6]))
    with pytest.raises(IngestError, match="at least 3"):
        fit_spectrum(spectrum, two)


def test_no_good_channel_in_band():
    spectrum = _spectrum("1A0535-osa11")
    with pytest.raises(IngestError, match="no good channel"):
        fit_spectrum(spectrum, (1.0, 12.0))
    quality = np.where((spectrum.e_min > 25) & (spectrum.e_max < 310), 5, spectrum.quality)
    with pytest.raises(IngestError, match="no good channel"):
        fit_spectrum(dataclasses.replace(spectrum, quality=quality), ISGRI_BAND)


def test_no_signal_is_refused():
    spectrum = _spectrum("3C279-osa10")
    negative = dataclasses.replace(spectrum, rate=-np.abs(spectrum.rate))
    with pytest.raises(IngestError, match="no well-defined optimum"):
        fit_spectrum(negative, ISGRI_BAND)
