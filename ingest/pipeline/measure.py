"""Sources in sky images: detection on the significance map, sub-pixel positions and fluxes.

A coded-mask sky image shows a point source as the instrument's point-spread function (a
Gaussian of 12' FWHM for ISGRI, 3.7' for JEM-X) whose peak is the source's count rate. The
flux of a source is therefore the fitted amplitude of that PSF (a fit is unbiased whatever
the sub-pixel position, where reading the brightest pixel is not). Its error accounts for the
noise being correlated like the PSF itself (both are the autocorrelation of the mask
pattern): the pixels of the fit do not average the noise down, and the fitted amplitude
scatters a little more than one pixel does (about 15 % for a Gaussian PSF). The significance
is that of the significance map at the fitted peak, amplitude / sqrt(variance), the quantity
OSA's detection threshold applies to. In a mosaic the resampled PSF is a little wider and
lower (``mosaic.effective_psf_sigma_pix``); ``flux_scale`` turns the fitted peak back into the
source's rate (the PSF's integral is kept by resampling).

Detection finds local maxima of the significance map (``ingest.readers.image.find_peaks``)
above the threshold, refines each by the PSF fit (position free) and keeps those whose fitted
significance reaches the threshold; maxima closer than twice the PSF's FWHM to a stronger one
(noise on the wings of a bright source) are merged into it. Pixels with little exposure (the
edge of the field) are left out, as OSA does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy import optimize

from ..readers.base import ImageData
from ..readers.image import find_peaks

#: Pixels whose exposure is below this fraction of the map's largest are not searched.
MIN_EXPOSURE_FRACTION = 0.02


@dataclass
class Measurement:
    x: float  # pixel coordinates (0-based) in the measured image
    y: float
    ra_deg: float
    dec_deg: float
    flux: float  # the source's rate in the image's units
    flux_error: float
    significance: float  # the significance map's value at the fitted peak

    def to_json(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}


def _bilinear(data: np.ndarray, x: float, y: float) -> float | None:
    ny, nx = data.shape
    ix, iy = int(math.floor(x)), int(math.floor(y))
    if not (0 <= ix < nx - 1 and 0 <= iy < ny - 1):
        return None
    fx, fy = x - ix, y - iy
    patch = data[iy : iy + 2, ix : ix + 2].astype(float)
    if np.any(~np.isfinite(patch)):
        return None
    return float(
        patch[0, 0] * (1 - fx) * (1 - fy)
        + patch[0, 1] * fx * (1 - fy)
        + patch[1, 0] * (1 - fx) * fy
        + patch[1, 1] * fx * fy
    )


def fit_source(
    intensity: np.ndarray,
    variance: np.ndarray,
    x: float,
    y: float,
    sigma_pix: float,
    wcs: WCS,
    *,
    fit_position: bool = True,
    flux_scale: float = 1.0,
    max_shift_pix: float = 2.0,
) -> Measurement | None:
    """Fit a Gaussian PSF of width ``sigma_pix`` near pixel (x, y); None where the map has no
    valid data there (outside the field, or too few valid pixels around)."""
    ny, nx = intensity.shape
    radius = max(2.5, 1.5 * 2.3548 * sigma_pix)
    r = int(math.ceil(radius))
    ix, iy = int(round(x)), int(round(y))
    x0, x1, y0, y1 = max(ix - r, 0), min(ix + r + 1, nx), max(iy - r, 0), min(iy + r + 1, ny)
    if x0 >= x1 or y0 >= y1:
        return None
    gy, gx = np.mgrid[y0:y1, x0:x1]
    patch_i = intensity[y0:y1, x0:x1].astype(float)
    patch_v = variance[y0:y1, x0:x1].astype(float)
    good = (patch_v > 0) & np.isfinite(patch_i) & (np.hypot(gx - x, gy - y) <= radius)
    if good.sum() < 5:
        return None
    gx, gy, data, weight = gx[good], gy[good], patch_i[good], 1.0 / np.sqrt(patch_v[good])

    def profile(cx: float, cy: float) -> np.ndarray:
        return np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2.0 * sigma_pix**2))

    def amplitude_error(cx: float, cy: float) -> float:
        """Error of the fitted amplitude for noise correlated like the PSF: with p the
        profile over the pixel noise and R the noise correlation between pixels,
        sqrt(p'Rp) / p'p (1 / sqrt(p'p) for uncorrelated noise)."""
        p = profile(cx, cy) * weight
        d2 = (gx[:, None] - gx[None, :]) ** 2 + (gy[:, None] - gy[None, :]) ** 2
        norm = float(np.dot(p, p))
        if norm <= 0:
            return math.inf
        return math.sqrt(max(float(p @ np.exp(-d2 / (2.0 * sigma_pix**2)) @ p), 0.0)) / norm

    def linear_amplitude(cx: float, cy: float) -> float:
        p = profile(cx, cy) * weight
        return float(np.dot(p, data * weight) / max(np.dot(p, p), 1e-30))

    cx, cy = float(x), float(y)
    amplitude = linear_amplitude(cx, cy)
    if fit_position:

        def residuals(params: np.ndarray) -> np.ndarray:
            a, px, py = params
            return (data - a * profile(px, py)) * weight

        start = np.array([amplitude, cx, cy])
        lower = [-np.inf, cx - max_shift_pix, cy - max_shift_pix]
        upper = [np.inf, cx + max_shift_pix, cy + max_shift_pix]
        try:
            fitted = optimize.least_squares(residuals, start, bounds=(lower, upper), x_scale="jac")
        except (ValueError, np.linalg.LinAlgError):
            return None
        if not fitted.success:
            return None
        amplitude, cx, cy = (float(v) for v in fitted.x)
    peak_variance = _bilinear(variance, cx, cy)
    if peak_variance is None or peak_variance <= 0:
        return None
    ra, dec = (float(v) for v in wcs.wcs_pix2world(cx, cy, 0))
    return Measurement(
        x=cx,
        y=cy,
        ra_deg=ra % 360.0,
        dec_deg=dec,
        flux=amplitude * flux_scale,
        flux_error=amplitude_error(cx, cy) * flux_scale,
        significance=amplitude / math.sqrt(peak_variance),
    )


def detect(
    intensity: np.ndarray,
    variance: np.ndarray,
    exposure: np.ndarray | None,
    header: fits.Header,
    sigma_pix: float,
    threshold: float,
    *,
    flux_scale: float = 1.0,
) -> list[Measurement]:
    """Sources above ``threshold`` (sigma) in one band's map, strongest first."""
    from .mosaic import significance as significance_map

    wcs = WCS(header, naxis=2).celestial
    sig = significance_map(intensity, variance)
    if exposure is not None and np.any(exposure > 0):
        sig = np.where(exposure >= MIN_EXPOSURE_FRACTION * float(exposure.max()), sig, 0.0)
    # A source between pixels shows a lower peak pixel than its fitted amplitude.
    candidates = find_peaks(ImageData(header=header, significance=sig), threshold - 1.0)
    found: list[Measurement] = []
    for candidate in candidates:
        px, py = (float(v) for v in wcs.wcs_world2pix(candidate.ra_deg, candidate.dec_deg, 0))
        measured = fit_source(
            intensity, variance, px, py, sigma_pix, wcs, fit_position=True, flux_scale=flux_scale
        )
        if measured is not None and measured.significance >= threshold:
            found.append(measured)
    return merge(found, 2.0 * 2.3548 * sigma_pix)


def merge(found: list[Measurement], radius_pix: float) -> list[Measurement]:
    """Strongest first; a detection within ``radius_pix`` of a stronger one is dropped."""
    kept: list[Measurement] = []
    for candidate in sorted(found, key=lambda m: -m.significance):
        if all(math.hypot(candidate.x - k.x, candidate.y - k.y) > radius_pix for k in kept):
            kept.append(candidate)
    return kept


def error_radius_deg(significance: float, psf_fwhm_deg: float) -> float:
    """90% position error of a detection (the ISGRI relation, scaled by the PSF width)."""
    scale = psf_fwhm_deg / 0.2
    significance = max(float(significance), 3.0)
    return float(math.hypot(22.1 / significance**0.95, 0.35) * scale / 60.0)
