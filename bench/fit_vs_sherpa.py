"""Compare the Gallery's spectral fits with sherpa's on every real fixture spectrum.

Run by hand from the project root (sherpa is an optional tool, not a dependency)::

    python bench/fit_vs_sherpa.py

Sherpa reads the PHA, RMF and ARF files itself (only an EBOUNDS table named the OSA way,
``ISGR-EBDS-MOD``, is renamed ``EBOUNDS`` in a temporary copy, since sherpa looks it up by
name), so the check covers the reading of the responses as well as the fit: the same band,
the same channels, chi2 with the same errors, a power law (sherpa's ``powlaw1d``) and a
cut-off power law (a sherpa model written here, integrated over each bin by Simpson's rule,
independently of the Gallery's quadrature). Results go to ``bench/results/fit_vs_sherpa.json``
with our fit time per spectrum.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from ingest.fitting import FitResult, fit_spectrum  # noqa: E402
from ingest.readers.spectrum import read_spectrum  # noqa: E402

FIXTURES = PROJECT_DIR.parent / "shared" / "fixtures"
RESULTS = PROJECT_DIR / "bench" / "results" / "fit_vs_sherpa.json"
ISGRI_BAND_KEV = (30.0, 300.0)
JEMX_BAND_KEV = (3.0, 30.0)


@dataclass(frozen=True)
class FixtureSpectrum:
    label: str
    pha: str
    rmf: str
    arf: str
    band_kev: tuple[float, float]

    def paths(self, root: Path = FIXTURES) -> tuple[Path, Path, Path]:
        return root / self.pha, root / self.rmf, root / self.arf


SPECTRA = [
    FixtureSpectrum(
        "1A 0535+262 (ISGRI, OSA 11)",
        "isgri/spectrum_1A_0535+262_osa11.fits.gz",
        "isgri/spectrum_1A_0535+262_osa11_rmf.fits.gz",
        "isgri/spectrum_1A_0535+262_osa11_arf.fits.gz",
        ISGRI_BAND_KEV,
    ),
    FixtureSpectrum(
        "3C 279 (ISGRI, OSA 10)",
        "isgri/spectrum_3C_279_osa10.fits",
        "isgri/spectrum_3C_279_osa10_rmf.fits.gz",
        "isgri/spectrum_3C_279_osa10_arf.fits.gz",
        ISGRI_BAND_KEV,
    ),
    FixtureSpectrum(
        "4U 1700-377 (ISGRI, OSA 10.2)",
        "isgri/spectrum_4U_1700-377_osa10.fits",
        "isgri/spectrum_4U_1700-377_osa10_rmf.fits",
        "isgri/spectrum_4U_1700-377_osa10_arf.fits",
        ISGRI_BAND_KEV,
    ),
    FixtureSpectrum(
        "NGC 2110 (ISGRI, OSA 10, rebinned)",
        "isgri/spectrum_NGC_2110_osa10_rebinned.fits",
        "isgri/spectrum_NGC_2110_osa10_rebinned_rmf.fits",
        "isgri/spectrum_NGC_2110_osa10_rebinned_arf.fits",
        ISGRI_BAND_KEV,
    ),
    FixtureSpectrum(
        "Crab (JEM-X1)",
        "jemx/spectrum_crab_jmx1.fits.gz",
        "jemx/spectrum_crab_jmx1_rmf.fits.gz",
        "jemx/spectrum_crab_jmx1_arf.fits.gz",
        JEMX_BAND_KEV,
    ),
]


# --------------------------------------------------------------------------------------------
# Sherpa side


def _quiet_sherpa() -> None:
    for name in ("sherpa", "sherpa.astro.io", "sherpa.astro.data", "sherpa.fit"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _sherpa_readable_rmf(rmf: Path, workdir: Path) -> Path:
    """The RMF itself, or a copy whose EBOUNDS table carries the name sherpa looks for."""
    with fits.open(rmf) as hdul:
        names = [hdu.name for hdu in hdul]
        if "EBOUNDS" in names:
            return rmf
        for hdu in hdul[1:]:
            if str(hdu.header.get("HDUCLAS2", "")).strip().upper() == "EBOUNDS":
                hdu.name = "EBOUNDS"
        copy = workdir / rmf.name.replace(".gz", "")
        hdul.writeto(copy, overwrite=True)
    return copy


def _cutoffpl_class():
    """XSPEC's cutoffpl as a sherpa model, integrated per bin by Simpson's rule."""
    from sherpa.models.model import RegriddableModel1D
    from sherpa.models.parameter import Parameter

    class CutoffPowerLaw(RegriddableModel1D):
        """N(E) = K E^-gamma exp(-E/ecut), K at 1 keV."""

        def __init__(self, name: str = "cutoffpl") -> None:
            self.gamma = Parameter(name, "gamma", 1.5, -10, 10)
            self.ecut = Parameter(name, "ecut", 100.0, 1.0, 1.0e4, units="keV")
            self.ampl = Parameter(name, "ampl", 1.0e-2, 0)
            super().__init__(name, (self.gamma, self.ecut, self.ampl))

        def calc(self, p, lo, hi=None, *args, **kwargs):
            gamma, ecut, ampl = p
            lo = np.asarray(lo, dtype=float)

            def density(e):
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    return ampl * e**-gamma * np.exp(-e / ecut)

            if hi is None:
                return density(lo)
            hi = np.asarray(hi, dtype=float)
            steps = 16  # even: composite Simpson
            t = np.linspace(0.0, 1.0, steps + 1)
            e = lo[:, None] + (hi - lo)[:, None] * t[None, :]
            coeff = np.ones(steps + 1)
            coeff[1:-1:2], coeff[2:-1:2] = 4.0, 2.0
            return (density(e) @ coeff) * (hi - lo) / (3.0 * steps)

    return CutoffPowerLaw


def sherpa_fit(spectrum: FixtureSpectrum, used: np.ndarray, model: str, workdir: Path) -> dict:
    """Fit one model with sherpa on the channels ``used`` by the Gallery's fit.

    Sherpa starts from its own generic values, runs Nelder-Mead then Levenberg-Marquardt,
    and its errors come from its covariance method.
    """
    from sherpa.astro.instrument import Response1D
    from sherpa.astro.io import read_arf, read_pha, read_rmf
    from sherpa.estmethods import Covariance
    from sherpa.fit import Fit
    from sherpa.models.basic import PowLaw1D
    from sherpa.optmethods import LevMar, NelderMead
    from sherpa.stats import Chi2

    _quiet_sherpa()
    pha_path, rmf_path, arf_path = spectrum.paths()
    pha = read_pha(str(pha_path), use_errors=True)
    pha.set_rmf(read_rmf(str(_sherpa_readable_rmf(rmf_path, workdir))))
    pha.set_arf(read_arf(str(arf_path)))
    pha.set_analysis("energy")
    pha.ungroup()  # every GROUPING value is 1: one channel per group anyway
    if pha.quality is not None and np.any(used & (np.asarray(pha.quality) != 0)):
        raise RuntimeError(f"{spectrum.label}: a channel we use is bad for sherpa")
    pha.mask = used.copy()

    if model == "powerlaw":
        source = PowLaw1D("pl")
        source.gamma.val, source.ampl.val = 2.0, 1.0e-2
        names = ("gamma", "ampl")
    else:
        source = _cutoffpl_class()("cpl")
        names = ("gamma", "ecut", "ampl")
    fit = Fit(pha, Response1D(pha)(source), Chi2(), NelderMead())
    t0 = time.perf_counter()
    fit.fit()
    fit.method = LevMar()
    result = fit.fit()
    elapsed = time.perf_counter() - t0
    fit.estmethod = Covariance()
    errors: dict[str, float | None] = dict.fromkeys(names)
    try:
        estimate = fit.est_errors()
    except Exception:  # sherpa refuses a covariance when a parameter sits at its limit
        estimate = None
    if estimate is not None:
        for full_name, upper in zip(estimate.parnames, estimate.parmaxes, strict=True):
            name = full_name.split(".")[-1]
            errors[name] = float(upper) if upper is not None else None
    return {
        "parameters": {name: float(getattr(source, name).val) for name in names},
        "errors": errors,
        "chi2": float(result.statval),
        "dof": int(result.dof),
        "fit_time_s": elapsed,
        "_fit": fit,
        "_source": source,
        "_pha": pha,
    }


def sherpa_folded_rate(entry: dict, values: list[float]) -> np.ndarray:
    """Sherpa's folded model rate (counts/s per used channel) at the given parameter values."""
    source, pha, fit = entry["_source"], entry["_pha"], entry["_fit"]
    thawed = [par for par in source.pars if not par.frozen]
    for parameter, value in zip(thawed, values, strict=True):
        parameter.val = value
    return np.asarray(pha.eval_model_to_fit(fit.model)) / pha.exposure


# --------------------------------------------------------------------------------------------
# Comparison


def _relative(ours: float, theirs: float) -> float:
    return abs(ours - theirs) / abs(theirs) if theirs else float("inf")


def _timed(function, repeats: int) -> tuple[float, float]:
    """Median and minimum wall time of ``function()`` over ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times))


def compare(spectrum: FixtureSpectrum, workdir: Path, repeats: int = 20) -> dict:
    """Fit ``spectrum`` both ways; the figures of one entry of the JSON report."""
    data = read_spectrum(*spectrum.paths())
    fits_ours = fit_spectrum(data, spectrum.band_kev)
    fit_median, fit_min = _timed(lambda: fit_spectrum(data, spectrum.band_kev), repeats)
    read_median, _ = _timed(lambda: read_spectrum(*spectrum.paths()), 5)

    by_model: dict[str, FitResult] = {fit.model: fit for fit in fits_ours}
    used = by_model["powerlaw"].used
    entry = {
        "spectrum": spectrum.label,
        "pha": spectrum.pha,
        "band_kev": list(spectrum.band_kev),
        "fitted_band_kev": [by_model["powerlaw"].e_min_kev, by_model["powerlaw"].e_max_kev],
        "n_channels_used": int(used.sum()),
        "our_fit_time_s": fit_median,
        "our_fit_time_min_s": fit_min,
        "our_read_time_s": read_median,
        "preferred": next(fit.model for fit in fits_ours if fit.is_preferred),
        "models": {},
    }
    for model in ("powerlaw", "cutoffpl"):
        theirs = sherpa_fit(spectrum, used, model, workdir)
        ours = by_model.get(model)
        row = {
            "sherpa": {k: v for k, v in theirs.items() if not k.startswith("_")},
            "ours": None,
        }
        sherpa_index = theirs["parameters"]["gamma"]
        if ours is not None:
            our_values = [p.value for p in ours.parameters]
            sherpa_rate = sherpa_folded_rate(theirs, our_values)
            our_rate = ours.model_rate[used]
            row["ours"] = {
                "parameters": {p.name: p.value for p in ours.parameters},
                "errors": {p.name: p.error for p in ours.parameters},
                "chi2": ours.statistic_value,
                "dof": ours.dof,
                "flux_erg_cm2_s": ours.flux_erg_cm2_s,
                "flux_error": ours.flux_error,
                "fit_time_s": ours.details["fit_time_s"],
            }
            row["photon_index_relative_difference"] = _relative(
                ours.parameter("PhoIndex").value, sherpa_index
            )
            row["chi2_relative_difference"] = _relative(ours.statistic_value, theirs["chi2"])
            row["folded_model_max_relative_difference"] = float(
                np.max(np.abs(our_rate - sherpa_rate) / np.abs(sherpa_rate))
            )
        else:
            row["note"] = (
                "no cut-off power law from the Gallery: its cut-off energy runs to the limit "
                "(no curvature in the band)"
            )
        entry["models"][model] = row
    return entry


def main() -> int:
    try:
        import sherpa
    except ImportError:
        print("sherpa is not installed: pip install sherpa", file=sys.stderr)
        return 1
    if not FIXTURES.is_dir():
        print(f"fixtures not found: {FIXTURES}", file=sys.stderr)
        return 1
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        for spectrum in SPECTRA:
            entry = compare(spectrum, Path(tmp))
            entries.append(entry)
            pl = entry["models"]["powerlaw"]
            print(
                f"{spectrum.label:38s} Gamma ours {pl['ours']['parameters']['PhoIndex']:.4f} "
                f"sherpa {pl['sherpa']['parameters']['gamma']:.4f} "
                f"(rel. diff {pl['photon_index_relative_difference']:.1e}), chi2 ours "
                f"{pl['ours']['chi2']:.3f} sherpa {pl['sherpa']['chi2']:.3f}, "
                f"our fits {entry['our_fit_time_s'] * 1e3:.1f} ms"
            )
    report = {
        "what": "Gallery fits (ingest.fitting) against sherpa on the fixture spectra",
        "sherpa_version": sherpa.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "spectra": entries,
        "max_photon_index_relative_difference_powerlaw": max(
            e["models"]["powerlaw"]["photon_index_relative_difference"] for e in entries
        ),
        "max_our_fit_time_s": max(e["our_fit_time_s"] for e in entries),
        "timing_note": (
            "our fit time: median of 20 calls of fit_spectrum (power law and cut-off power law "
            "together) on an already read spectrum; sherpa's fit_time_s: its Nelder-Mead then "
            "Levenberg-Marquardt fit of one model, for scale"
        ),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
