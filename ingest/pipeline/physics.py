"""Instrument physics shared by the pipeline and the synthetic archive: responses and noise.

The spectra the pipeline extracts have one channel per energy band of the sky images, so
their response is the instrument's effective area (``ingest.synthetic.effective_area_cm2``,
the model the synthetic products use) times the probability that a photon of energy E is
reconstructed in each band (Gaussian energy resolution). The synthetic archive computes the
count rates of its sources with the same response, so that fitting the extracted spectra
recovers the photon indices it was given.

Noise: a coded-mask sky image is background dominated; its variance is a background term
that falls as 1/exposure, plus a term from the source's own photons (the coded-mask noise a
bright source spreads over the field). The constants are those of ``ingest.synthetic``
(ISGRI: ~600 (counts/s)^2 s in 20-40 keV, as in real ISGRI images).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from ..synthetic import SkySource, effective_area_cm2, photon_norm
from .config import InstrumentSpec

# Photon-energy grids of the responses: (lowest keV, highest keV, bins).
_PHOTON_GRIDS = {"isgri": (13.0, 1000.0, 300), "jemx": (2.0, 100.0, 200)}
# Background variance density (counts/s)^2 s per keV: density * (E / pivot)**index.
_NOISE = {"isgri": (27.9, 30.0, -1.5), "jemx": (30.0, 6.0, -1.0)}
# Extra variance per source count/s (coded-mask noise of the source's own photons).
SOURCE_NOISE = {"isgri": 0.3, "jemx": 4.0}


def _family(spec: InstrumentSpec) -> str:
    return "isgri" if spec.code == "isgri" else "jemx"


def resolution_fwhm_kev(spec: InstrumentSpec, energy_kev: np.ndarray) -> np.ndarray:
    """Energy resolution (FWHM, keV): ISGRI about 8 % at 60 keV; JEM-X a gas counter."""
    energy = np.asarray(energy_kev, dtype=float)
    if _family(spec) == "isgri":
        return np.sqrt(1.5**2 + 0.15 * energy + (0.05 * energy) ** 2)
    return 0.40 * energy * np.sqrt(1.0 / energy + 1.0 / 60.0)


@dataclass
class BandResponse:
    """Response of the instrument folded onto a set of energy bands (the spectrum's channels)."""

    energ_lo: np.ndarray  # keV, photon energy bins
    energ_hi: np.ndarray
    area_cm2: np.ndarray  # effective area per photon bin
    redistribution: np.ndarray  # (n_energy, n_bands): probability of landing in each band
    chan_lo: np.ndarray  # keV, band edges
    chan_hi: np.ndarray

    @property
    def matrix(self) -> np.ndarray:
        """Area times redistribution (cm^2): counts/s per band for photons/cm2/s per bin."""
        return self.area_cm2[:, None] * self.redistribution


def band_response(spec: InstrumentSpec, edges_kev: tuple[float, ...] | np.ndarray) -> BandResponse:
    edges = np.asarray(edges_kev, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("band edges must be increasing")
    lo_e, hi_e, n_e = _PHOTON_GRIDS[_family(spec)]
    grid = np.geomspace(lo_e, hi_e, n_e + 1)
    centre = np.sqrt(grid[:-1] * grid[1:])
    sigma = resolution_fwhm_kev(spec, centre) / 2.354820045
    cdf = ndtr((edges[None, :] - centre[:, None]) / sigma[:, None])
    redistribution = np.diff(cdf, axis=1)
    redistribution[redistribution < 1e-8] = 0.0
    area = effective_area_cm2(spec.code, centre)
    return BandResponse(grid[:-1], grid[1:], area, redistribution, edges[:-1], edges[1:])


def _powerlaw_integral(norm: float, index: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    if abs(index - 1.0) < 1e-9:
        return norm * np.log(hi / lo)
    return norm * (hi ** (1.0 - index) - lo ** (1.0 - index)) / (1.0 - index)


def band_rates(source: SkySource, response: BandResponse) -> np.ndarray:
    """On-axis count rates (counts/s) of a power-law source in each band of ``response``."""
    flux = _powerlaw_integral(
        photon_norm(source), source.photon_index, response.energ_lo, response.energ_hi
    )
    return flux @ response.matrix


def background_variance_rate(spec: InstrumentSpec, e_min_kev: float, e_max_kev: float) -> float:
    """Background variance times exposure in a band, (counts/s)^2 s."""
    density, pivot, index = _NOISE[_family(spec)]
    edges = np.geomspace(e_min_kev, e_max_kev, 65)
    centre = np.sqrt(edges[:-1] * edges[1:])
    return float(np.sum(density * (centre / pivot) ** index * np.diff(edges)))
