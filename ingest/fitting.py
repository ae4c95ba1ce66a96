"""Spectral fitting by forward folding photon models through the instrument response.

Two models, defined as in XSPEC so that archived values can be compared with the literature:

- ``powerlaw``: ``N(E) = K E^-Gamma`` (``norm`` K in photons/cm2/s/keV at 1 keV);
- ``cutoffpl``: ``N(E) = K E^-Gamma exp(-E/E_cut)``.

The photon model is integrated over each photon-energy bin of the response (Gauss-Legendre
quadrature, exact to far below the data's precision), folded by the matrix (cm^2) into
counts/s per channel, and compared with the data by chi-square with
``sigma^2 = STAT_ERR^2 + (SYS_ERR * RATE)^2``. Bad channels (QUALITY != 0, non-finite values)
and channels whose centre lies outside the requested band are left out.

The fit runs on internal parameters that are well conditioned (the normalisation at a pivot
energy inside the band instead of at 1 keV, far below ISGRI's band), starts from the best
point of a coarse grid on the shape parameters with the normalisation solved linearly, and
ends with ``scipy.optimize.least_squares`` and analytic derivatives. Errors are 1 sigma from
the covariance (inverse of J^T J, Delta chi2 = 1, not rescaled by the reduced chi2, as XSPEC
and sherpa report them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, stats

from ingest.readers.base import IngestError, SpectrumData

KEV_TO_ERG = 1.602176634e-9

# The cut-off power law is preferred when the F-test says the cut-off is needed at 3 sigma.
F_TEST_PROBABILITY = 0.0027

# Limits of the parameters (the photon index as sherpa's powlaw1d; E_cut from 1 keV to 10 MeV).
GAMMA_LIMITS = (-10.0, 10.0)
ECUT_LIMITS_KEV = (1.0, 1.0e4)

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(4)
_FLUX_NODES, _FLUX_WEIGHTS = np.polynomial.legendre.leggauss(8)
_FLUX_SEGMENTS = 64


@dataclass
class FitParameter:
    name: str
    value: float
    error: float  # 1 sigma
    unit: str = ""


@dataclass
class FitResult:
    model: str  # "powerlaw" | "cutoffpl"
    parameters: list[FitParameter]
    statistic: str  # "chi2"
    statistic_value: float
    dof: int
    e_min_kev: float  # band actually fitted (after clipping to the data)
    e_max_kev: float
    flux_erg_cm2_s: float | None  # model energy flux in the fitted band
    flux_error: float | None
    used: np.ndarray = field(repr=False, default=None)  # bool per channel: in the fit
    model_rate: np.ndarray = field(repr=False, default=None)  # folded model, counts/s/channel
    residuals: np.ndarray = field(repr=False, default=None)  # (data - model) / error
    is_preferred: bool = False
    # JSON-ready facts: covariance (in the order of ``parameters``), channel count, F-test
    # probability, fit time.
    details: dict[str, Any] = field(default_factory=dict)

    def parameter(self, name: str) -> FitParameter:
        """The parameter called ``name`` (``PhoIndex``, ``HighECut``, ``norm``)."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(name)

    @property
    def reduced_chi2(self) -> float | None:
        return self.statistic_value / self.dof if self.dof > 0 else None


# --------------------------------------------------------------------------------------------
# The data of one fit


@dataclass
class _Problem:
    """What a fit needs, cut down to the channels in use and the photon bins feeding them."""

    energies: np.ndarray  # (n_bins, n_nodes) quadrature nodes, keV
    log_e: np.ndarray  # log(energies / pivot_kev)
    weights: np.ndarray  # (n_bins, n_nodes) quadrature weights, keV
    matrix: np.ndarray  # (n_bins, n_used) cm^2
    matrix_t: np.ndarray  # its transpose, C-contiguous for matvec
    rate: np.ndarray  # (n_used,) counts/s
    sigma: np.ndarray  # (n_used,) counts/s
    used: np.ndarray  # (n_channels,) bool
    e_min_kev: float
    e_max_kev: float
    pivot_kev: float


def _prepare(spectrum: SpectrumData, band_kev: tuple[float, float] | None) -> _Problem:
    rate = np.asarray(spectrum.rate, dtype=np.float64)
    stat = np.asarray(spectrum.stat_err, dtype=np.float64)
    sys_frac = np.nan_to_num(np.asarray(spectrum.sys_err, dtype=np.float64))
    sigma = np.sqrt(stat**2 + (sys_frac * rate) ** 2)
    e_min = np.asarray(spectrum.e_min, dtype=np.float64)
    e_max = np.asarray(spectrum.e_max, dtype=np.float64)
    good = (np.asarray(spectrum.quality) == 0) & np.isfinite(rate) & np.isfinite(sigma)
    good &= sigma > 0
    if band_kev is not None:
        band_lo, band_hi = sorted(float(e) for e in band_kev)
        centre = 0.5 * (e_min + e_max)
        good &= (centre >= band_lo) & (centre <= band_hi)
    else:
        band_lo, band_hi = -np.inf, np.inf
    if not good.any():
        raise IngestError("no good channel lies in the band to fit")

    response = spectrum.response
    matrix = np.asarray(response.matrix, dtype=np.float64)[:, good]
    lo = np.asarray(response.energ_lo, dtype=np.float64)
    hi = np.asarray(response.energ_hi, dtype=np.float64)
    # Photon bins that feed no used channel cost time and add nothing; a bin starting at 0 keV
    # would make E^-Gamma diverge, and no INTEGRAL instrument sees such photons anyway.
    feeds = np.any(matrix != 0, axis=1) & (lo > 0)
    if not feeds.any():
        raise IngestError("the response is zero in the band to fit")
    lo, hi, matrix = lo[feeds], hi[feeds], matrix[feeds]
    half = 0.5 * (hi - lo)
    energies = (0.5 * (hi + lo))[:, None] + half[:, None] * _GL_NODES[None, :]
    weights = half[:, None] * _GL_WEIGHTS[None, :]

    e_lo = max(band_lo, float(e_min[good].min()))
    e_hi = min(band_hi, float(e_max[good].max()))
    pivot_kev = float(np.sqrt(e_lo * e_hi))
    return _Problem(
        energies=energies,
        log_e=np.log(energies / pivot_kev),
        weights=weights,
        matrix=np.ascontiguousarray(matrix),
        matrix_t=np.ascontiguousarray(matrix.T),
        rate=rate[good],
        sigma=sigma[good],
        used=good,
        e_min_kev=e_lo,
        e_max_kev=e_hi,
        pivot_kev=pivot_kev,
    )


# --------------------------------------------------------------------------------------------
# Models, on internal parameters: (gamma, amplitude at the pivot) and (gamma, E_cut, amplitude)


def _photon_model(
    model: str, params: np.ndarray, energies: np.ndarray, log_e: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Photon flux density (photons/cm2/s/keV) at ``energies`` and its parameter derivatives.

    ``log_e`` is log(energies / pivot), computed once per fit.
    """
    gamma = params[0]
    if model == "powerlaw":
        shape = np.exp(-gamma * log_e)
        amplitude = params[1]
        flux = amplitude * shape
        return flux, [-log_e * flux, shape]
    e_cut = params[1]
    amplitude = params[2]
    shape = np.exp(-gamma * log_e - energies / e_cut)
    flux = amplitude * shape
    return flux, [-log_e * flux, flux * energies / e_cut**2, shape]


def _fold(problem: _Problem, per_bin: np.ndarray) -> np.ndarray:
    """Photons per bin (..., n_bins) folded into counts/s per used channel (..., n_used).

    Not through matmul: OpenBLAS threads on such small products slow down by orders of
    magnitude when the machine's cores are busy; numpy's matvec (2.2+) and einsum loops don't.
    """
    if _MATVEC is not None:
        return _MATVEC(problem.matrix_t, per_bin)
    return np.einsum("...b,bu->...u", per_bin, problem.matrix)


_MATVEC = getattr(np, "matvec", None)


class _Folder:
    """Residuals and Jacobian of one model for least_squares, sharing one photon model."""

    def __init__(self, problem: _Problem, model: str) -> None:
        self.problem = problem
        self.model = model
        self._x: np.ndarray | None = None
        self._photons: tuple[np.ndarray, list[np.ndarray]] | None = None

    def _photon_model(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        if self._x is None or not np.array_equal(x, self._x):
            p = self.problem
            self._x = x.copy()
            self._photons = _photon_model(self.model, x, p.energies, p.log_e)
        return self._photons

    def rate(self, x: np.ndarray) -> np.ndarray:
        """Folded model rate, counts/s per used channel."""
        flux, _ = self._photon_model(x)
        return _fold(self.problem, np.einsum("bn,bn->b", flux, self.problem.weights))

    def rate_jacobian(self, x: np.ndarray) -> np.ndarray:
        """Derivatives of the folded rate, (used channels, parameters)."""
        _, grads = self._photon_model(x)
        per_bin = np.einsum("kbn,bn->kb", np.stack(grads), self.problem.weights)
        return _fold(self.problem, per_bin).T

    def residuals(self, x: np.ndarray) -> np.ndarray:
        return (self.rate(x) - self.problem.rate) / self.problem.sigma

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        return self.rate_jacobian(x) / self.problem.sigma[:, None]


def _linear_amplitude(problem: _Problem, unit_rate: np.ndarray) -> float:
    """Best amplitude for a fixed shape (chi2 is quadratic in it), kept positive.

    Where the data give a negative or null best value (faint, background-dominated spectra),
    the ratio of summed absolute rates is a safe positive start instead.
    """
    w = 1.0 / problem.sigma**2
    denominator = float(np.sum(w * unit_rate**2))
    amplitude = float(np.sum(w * unit_rate * problem.rate)) / denominator if denominator else 0
    if not amplitude > 0:
        total = float(np.sum(np.abs(unit_rate)))
        amplitude = float(np.sum(np.abs(problem.rate))) / total if total > 0 else 1.0
    return amplitude


def _grid_start(problem: _Problem, model: str, shapes: list[tuple[float, ...]]) -> np.ndarray:
    """The grid point of shape parameters with the least chi2, with its linear amplitude."""
    folder = _Folder(problem, model)
    best, best_chi2 = None, np.inf
    for shape in shapes:
        trial = np.array([*shape, 1.0])
        unit_rate = folder.rate(trial)
        amplitude = _linear_amplitude(problem, unit_rate)
        chi2 = float(np.sum(((amplitude * unit_rate - problem.rate) / problem.sigma) ** 2))
        if chi2 < best_chi2:
            best, best_chi2 = np.array([*shape, amplitude]), chi2
    return best


# --------------------------------------------------------------------------------------------
# One fit


_PARAMETER_SPECS = {
    "powerlaw": [("PhoIndex", ""), ("norm", "photons/cm2/s/keV")],
    "cutoffpl": [("PhoIndex", ""), ("HighECut", "keV"), ("norm", "photons/cm2/s/keV")],
}


def _to_natural(x: np.ndarray, cov: np.ndarray, pivot_kev: float) -> tuple[np.ndarray, np.ndarray]:
    """Parameters and covariance with the norm at 1 keV (XSPEC's) instead of at the pivot."""
    gamma, amplitude = x[0], x[-1]
    scale = pivot_kev**gamma
    natural = x.copy()
    natural[-1] = amplitude * scale
    transform = np.eye(x.size)
    transform[-1, 0] = amplitude * scale * np.log(pivot_kev)
    transform[-1, -1] = scale
    return natural, transform @ cov @ transform.T


def _energy_flux(
    model: str, x: np.ndarray, cov: np.ndarray, problem: _Problem
) -> tuple[float, float]:
    """Energy flux (erg/cm2/s) in the fitted band and its 1-sigma error from the covariance."""
    edges = np.geomspace(problem.e_min_kev, problem.e_max_kev, _FLUX_SEGMENTS + 1)
    half = 0.5 * np.diff(edges)
    energies = (0.5 * (edges[1:] + edges[:-1]))[:, None] + half[:, None] * _FLUX_NODES
    weights = half[:, None] * _FLUX_WEIGHTS * energies
    flux, grads = _photon_model(model, x, energies, np.log(energies / problem.pivot_kev))
    value = float(np.sum(flux * weights)) * KEV_TO_ERG
    gradient = np.array([np.sum(g * weights) for g in grads]) * KEV_TO_ERG
    variance = float(gradient @ cov @ gradient)
    return value, float(np.sqrt(variance)) if variance >= 0 else float("nan")


def _fit_model(
    problem: _Problem, model: str, starts: list[np.ndarray], enough_chi2: float = -np.inf
) -> FitResult | None:
    """Least-squares fit from the starts in turn, until one reaches ``enough_chi2``.

    Returns the best optimum, or None when it is not well defined.
    """
    t0 = time.perf_counter()
    folder = _Folder(problem, model)
    if model == "powerlaw":
        lower = [GAMMA_LIMITS[0], 0.0]
        upper = [GAMMA_LIMITS[1], np.inf]
    else:
        lower = [GAMMA_LIMITS[0], ECUT_LIMITS_KEV[0], 0.0]
        upper = [GAMMA_LIMITS[1], ECUT_LIMITS_KEV[1], np.inf]
    best = None
    for start in starts:
        x0 = np.clip(start, np.array(lower) + 1e-9, np.array(upper) - 1e-9)
        solution = optimize.least_squares(
            folder.residuals,
            x0,
            jac=folder.jacobian,
            bounds=(lower, upper),
            method="trf",
            x_scale="jac",
            xtol=1e-10,
            ftol=1e-10,
            gtol=1e-10,
            max_nfev=200,
        )
        if best is None or solution.cost < best.cost:
            best = solution
        if 2.0 * best.cost <= enough_chi2:
            break
    if best is None or best.status <= 0:  # no convergence within max_nfev, or bad input
        return None
    if np.any(best.active_mask != 0):
        # A parameter stuck at a limit (no cut-off in the band, a null norm) has no error.
        return None

    x = best.x
    jac = folder.jacobian(x)
    try:
        cov_internal = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(cov_internal)) or np.any(np.diag(cov_internal) <= 0):
        return None
    natural, cov = _to_natural(x, cov_internal, problem.pivot_kev)
    errors = np.sqrt(np.diag(cov))
    flux, flux_error = _energy_flux(model, x, cov_internal, problem)

    rate_used = folder.rate(x)
    residual_used = (problem.rate - rate_used) / problem.sigma
    chi2 = float(np.sum(residual_used**2))
    n_used = int(problem.used.sum())
    model_rate = np.full(problem.used.size, np.nan)
    residuals = np.full(problem.used.size, np.nan)
    model_rate[problem.used] = rate_used
    residuals[problem.used] = residual_used
    parameters = [
        FitParameter(name=name, value=float(value), error=float(error), unit=unit)
        for (name, unit), value, error in zip(_PARAMETER_SPECS[model], natural, errors, strict=True)
    ]
    return FitResult(
        model=model,
        parameters=parameters,
        statistic="chi2",
        statistic_value=chi2,
        dof=n_used - x.size,
        e_min_kev=problem.e_min_kev,
        e_max_kev=problem.e_max_kev,
        flux_erg_cm2_s=flux,
        flux_error=flux_error if np.isfinite(flux_error) else None,
        used=problem.used.copy(),
        model_rate=model_rate,
        residuals=residuals,
        details={
            "n_channels": n_used,
            "covariance": cov.tolist(),
            "pivot_kev": problem.pivot_kev,
            "n_function_evaluations": int(best.nfev),
            "fit_time_s": time.perf_counter() - t0,
        },
    )


# --------------------------------------------------------------------------------------------
# Public entry point


def fit_spectrum(spectrum: SpectrumData, band_kev: tuple[float, float] | None) -> list[FitResult]:
    """Fit a power law and a cut-off power law to ``spectrum`` in ``band_kev``.

    ``band_kev`` is the band to fit (30-300 keV for ISGRI and 3-30 keV for JEM-X are the
    usual choices; None fits every good channel); a channel is used when it is good and its
    centre lies in the band, and the band reported is the requested one clipped to the used
    channels' bounds. The energy flux is given in that band.

    Returns the power law, then the cut-off power law when its fit is well defined (a cut-off
    energy at its limit, i.e. no curvature in the band, has no error and is left out; so is
    the cut-off power law when only 3 channels remain). Exactly one result is preferred: the
    cut-off power law where an F-test for its extra parameter gives a chance probability
    below 0.27 % (3 sigma), else the power law. (The F-test is approximate for a parameter
    whose null value lies at infinity; at 3 sigma it errs on the side of the simpler model.)

    Raises IngestError when fewer channels than parameters + 1 remain, or when even the
    power law has no well-defined optimum (e.g. no positive signal in the band).
    """
    problem = _prepare(spectrum, band_kev)
    n_used = int(problem.used.sum())
    if n_used < 3:
        raise IngestError(
            f"only {n_used} good channel(s) in {problem.e_min_kev:.3g}-{problem.e_max_kev:.3g} "
            "keV: at least 3 are needed to fit a power law"
        )

    gammas = list(np.arange(-1.0, 6.01, 0.5))
    pl_start = _grid_start(problem, "powerlaw", [(g,) for g in gammas])
    powerlaw = _fit_model(problem, "powerlaw", [pl_start])
    if powerlaw is None:
        raise IngestError("the power-law fit has no well-defined optimum (no positive signal?)")
    results = [powerlaw]

    if n_used >= 4:
        gamma_pl = powerlaw.parameters[0].value
        e_cuts = np.geomspace(max(problem.e_min_kev / 2, 1.5), problem.e_max_kev * 5, 8)
        shapes = [(g, e) for g in (gamma_pl - 1.5, gamma_pl - 0.75, gamma_pl) for e in e_cuts]
        cpl_start = _grid_start(problem, "cutoffpl", shapes)
        # The cut-off power law nests the power law (E_cut -> infinity), so it can do no
        # worse: if it does, it fell into a local minimum; a start near the power law then
        # finds the shallow minimum at a high cut-off.
        pl_amplitude = powerlaw.parameters[1].value * problem.pivot_kev**-gamma_pl
        near_pl = np.array([gamma_pl, 20 * problem.e_max_kev, pl_amplitude])
        cutoffpl = _fit_model(
            problem, "cutoffpl", [cpl_start, near_pl], powerlaw.statistic_value + 1e-6
        )
        if cutoffpl is not None:
            results.append(cutoffpl)

    _choose_preferred(results)
    return results


def _choose_preferred(results: list[FitResult]) -> None:
    """Mark the cut-off power law preferred only when the F-test needs its cut-off."""
    powerlaw = results[0]
    powerlaw.is_preferred = True
    if len(results) < 2:
        return
    cutoffpl = results[1]
    delta = powerlaw.statistic_value - cutoffpl.statistic_value
    if cutoffpl.dof <= 0 or delta <= 0:
        probability = 1.0
    elif cutoffpl.statistic_value <= 0:
        probability = 0.0
    else:
        f_value = delta / (cutoffpl.statistic_value / cutoffpl.dof)
        probability = float(stats.f.sf(f_value, 1, cutoffpl.dof))
    cutoffpl.details["f_test_probability"] = probability
    if probability < F_TEST_PROBABILITY:
        cutoffpl.is_preferred = True
        powerlaw.is_preferred = False
