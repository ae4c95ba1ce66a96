"""Sky images: OSA mosaics and single-ScW images (images told apart by IMATYPE only) and
single-HDU significance maps."""

from __future__ import annotations

import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from scipy import ndimage

from . import headers as h
from .base import DetectedSource, ImageData, IngestError

INTENSITY_TYPES = ("INTENSITY", "RECONSTRUCTED", "FLUX")
# Pixel sizes (deg) of the instruments' standard sky images, to name the instrument of a map
# whose header does not (a real case: maps cut out by later tools).
_PIXEL_DEG = {"isgri": 4.94 / 60, "jemx1": 2.0 / 60}


_CELESTIAL_AXES = ("RA--", "DEC-", "GLON", "GLAT", "ELON", "ELAT")


def sky_image_hdus(hdul: fits.HDUList) -> list[fits.ImageHDU | fits.PrimaryHDU]:
    """Two-dimensional image HDUs whose axes are celestial (CTYPEn RA/Dec, GLON/GLAT, …).

    Only the keywords are looked at: building a WCS for every HDU of every file costs more
    than the rest of the reading. The WCS itself is built (and checked) once, for the map used.
    """
    found = []
    for hdu in hdul:
        if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU):
            continue
        if hdu.data is None or hdu.data.ndim != 2:
            continue
        axes = [str(hdu.header.get(f"CTYPE{i}", ""))[:4].upper() for i in (1, 2)]
        if all(axis in _CELESTIAL_AXES for axis in axes):
            found.append(hdu)
    return found


def _celestial_wcs(header: fits.Header) -> WCS | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, naxis=2)
        except Exception:  # noqa: BLE001 - astropy raises many kinds for broken WCS
            return None
    return wcs if wcs.has_celestial else None


def is_image(hdul: fits.HDUList) -> bool:
    return bool(sky_image_hdus(hdul))


def _imatype(hdu) -> str:
    return (h.text(hdu.header, "IMATYPE") or "").upper()


def read_image(hdul: fits.HDUList, threshold: float) -> dict:
    """Facts and data of a sky image; ``threshold`` is the significance for peak finding."""
    images = sky_image_hdus(hdul)
    by_type = {_imatype(hdu): hdu for hdu in images if _imatype(hdu)}
    notes = []
    if "SIGNIFICANCE" in by_type:
        sig_hdu = by_type["SIGNIFICANCE"]
        significance = np.asarray(sig_hdu.data, dtype=float)
    elif len(images) == 1 and not _imatype(images[0]):
        sig_hdu = images[0]
        significance = np.asarray(sig_hdu.data, dtype=float)
        notes.append("single image without IMATYPE read as a significance map")
    else:
        intensity_hdu = next((by_type[t] for t in INTENSITY_TYPES if t in by_type), None)
        if intensity_hdu is None or "VARIANCE" not in by_type:
            raise IngestError(
                "sky image without a SIGNIFICANCE map, or INTENSITY and VARIANCE to make one"
            )
        sig_hdu = intensity_hdu
        with np.errstate(divide="ignore", invalid="ignore"):
            significance = np.asarray(intensity_hdu.data, float) / np.sqrt(
                np.asarray(by_type["VARIANCE"].data, float)
            )
        notes.append("significance computed as intensity / sqrt(variance)")
    if not np.isfinite(significance).any() or np.nanmax(np.abs(significance)) == 0:
        raise IngestError("the significance map holds no data (all NaN or zero)")

    def plane(types):
        hdu = next((by_type[t] for t in types if t in by_type), None)
        if hdu is None or hdu.data.shape != significance.shape:
            return None
        return np.asarray(hdu.data, dtype=float)

    image = ImageData(
        header=sig_hdu.header.copy(),
        significance=significance,
        intensity=plane(INTENSITY_TYPES),
        variance=plane(("VARIANCE",)),
        exposure=plane(("EXPOSURE",)),
    )
    headers = [sig_hdu.header] + [hdu.header for hdu in hdul if hdu is not sig_hdu]
    instrument = h.instrument_code(headers)
    if instrument is None:
        instrument = _instrument_from_pixels(image)
        if instrument:
            notes.append(f"instrument {instrument} inferred from the pixel size")
    e_min, e_max = _band(sig_hdu.header, hdul)
    wcs = image_wcs(image)
    ny, nx = significance.shape
    centre = wcs.pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
    return {
        "image": image,
        "headers": headers,
        "instrument": instrument,
        "e_min_kev": e_min,
        "e_max_kev": e_max,
        "ra_deg": float(centre[0]) % 360.0,
        "dec_deg": float(centre[1]),
        "peaks": find_peaks(image, threshold),
        "notes": notes,
    }


def _instrument_from_pixels(image: ImageData) -> str | None:
    scale = pixel_scale_deg(image)
    for code, size in _PIXEL_DEG.items():
        if abs(scale - size) / size < 0.15:
            return code
    return None


def _band(header: fits.Header, hdul: fits.HDUList) -> tuple[float | None, float | None]:
    e_min, e_max = h.number(header, "E_MIN"), h.number(header, "E_MAX")
    if e_min is not None and e_max is not None and 0 < e_min < e_max:
        return round(e_min, 3), round(e_max, 3)
    return None, None


def image_wcs(image: ImageData) -> WCS:
    """The image's celestial WCS, built once per image (building one parses the header)."""
    cached = getattr(image, "_wcs", None)
    if cached is None:
        wcs = _celestial_wcs(image.header)
        if wcs is None:
            raise IngestError("the image has no celestial WCS")
        cached = image._wcs = wcs.celestial
    return cached


def pixel_scale_deg(image: ImageData) -> float:
    cached = getattr(image, "_pixel_scale", None)
    if cached is None:
        cached = image._pixel_scale = float(np.mean(proj_plane_pixel_scales(image_wcs(image))))
    return cached


def find_peaks(image: ImageData, threshold: float, max_peaks: int = 200) -> list[DetectedSource]:
    """Local maxima of the significance map above ``threshold``, with sub-pixel positions.

    The position is the significance-weighted centroid of the 3x3 pixels around the maximum.
    """
    sig = np.where(np.isfinite(image.significance), image.significance, -np.inf)
    local_max = ndimage.maximum_filter(sig, size=5, mode="constant", cval=-np.inf)
    ys, xs = np.nonzero((sig == local_max) & (sig >= threshold))
    order = np.argsort(sig[ys, xs])[::-1][:max_peaks]
    wcs = image_wcs(image)
    ny, nx = sig.shape
    peaks = []
    for y, x in zip(ys[order], xs[order], strict=True):
        y0, y1, x0, x1 = max(y - 1, 0), min(y + 2, ny), max(x - 1, 0), min(x + 2, nx)
        patch = np.clip(sig[y0:y1, x0:x1], 0, None)
        patch = np.where(np.isfinite(patch), patch, 0)
        total = patch.sum()
        gy, gx = np.mgrid[y0:y1, x0:x1]
        cy = float((gy * patch).sum() / total) if total > 0 else float(y)
        cx = float((gx * patch).sum() / total) if total > 0 else float(x)
        ra, dec = wcs.pixel_to_world_values(cx, cy)
        flux = error = None
        if image.intensity is not None:
            flux = float(image.intensity[y, x])
            if image.variance is not None and image.variance[y, x] > 0:
                error = float(np.sqrt(image.variance[y, x]))
        peaks.append(
            DetectedSource(
                name=None,
                ra_deg=float(ra) % 360.0,
                dec_deg=float(dec),
                significance=float(sig[y, x]),
                flux=flux if flux is not None and np.isfinite(flux) else None,
                flux_error=error,
            )
        )
    return peaks


def measure_at(image: ImageData, ra_deg: float, dec_deg: float, radius_deg: float) -> dict | None:
    """Peak significance (and intensity there) within ``radius_deg`` of a position, or None
    when the position lies outside the map or where it has no data."""
    wcs = image_wcs(image)
    x, y = (float(v) for v in wcs.world_to_pixel_values(ra_deg, dec_deg))
    ny, nx = image.significance.shape
    if not (np.isfinite(x) and np.isfinite(y)) or not (0 <= x < nx - 0.5 and 0 <= y < ny - 0.5):
        return None
    r = max(1, int(np.ceil(radius_deg / pixel_scale_deg(image))))
    xi, yi = int(round(x)), int(round(y))
    y0, y1, x0, x1 = max(yi - r, 0), min(yi + r + 1, ny), max(xi - r, 0), min(xi + r + 1, nx)
    patch = image.significance[y0:y1, x0:x1]
    if not np.isfinite(patch).any():
        return None
    iy, ix = np.unravel_index(np.nanargmax(patch), patch.shape)
    py, px = y0 + iy, x0 + ix
    out = {"significance": float(patch[iy, ix]), "flux": None, "flux_error": None}
    if image.intensity is not None and np.isfinite(image.intensity[py, px]):
        out["flux"] = float(image.intensity[py, px])
        if image.variance is not None and image.variance[py, px] > 0:
            out["flux_error"] = float(np.sqrt(image.variance[py, px]))
    return out


def footprint_radius_deg(image: ImageData) -> float:
    """Radius of a cone around the map centre that holds the whole map."""
    ny, nx = image.significance.shape
    return 0.5 * float(np.hypot(nx, ny)) * pixel_scale_deg(image)
