"""Reading OSA single-ScW sky images (``ISGR-SKY.-IMA``, ``JMX1-SKY.-IMA``).

A ScW image file holds, per energy band, images told apart by IMATYPE (INTENSITY or
RECONSTRUCTED, VARIANCE, SIGNIFICANCE, EXPOSURE, sometimes RESIDUAL) and by E_MIN/E_MAX; its
WCS may be a rotated CD matrix (the satellite's roll). Pixels outside the field of view have
zero (or non-finite) variance. Anything unusable raises ``CorruptScw`` with a one-line reason,
so that the caller skips that ScW and goes on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from . import fastfits
from .archive import INTENSITY_TYPES, CorruptScw, _first_line
from .config import InstrumentSpec


@dataclass
class ScwImage:
    scw_id: str
    header: fits.Header  # header of the first intensity image (WCS, times, exposure)
    wcs: WCS
    bands: list[tuple[float, float]]
    intensity: list[np.ndarray]  # per band, float32; 0 where invalid
    variance: list[np.ndarray]  # per band, float32; 0 where invalid
    exposure: np.ndarray | None  # effective exposure map (s), float32
    t_start_ijd: float = 0.0
    t_stop_ijd: float = 0.0
    exposure_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return self.intensity[0].shape


def _clean(intensity: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 copies with invalid pixels (non-finite, zero or negative variance) zeroed."""
    intensity = np.array(intensity, dtype=np.float32)
    variance = np.array(variance, dtype=np.float32)
    bad = ~(np.isfinite(intensity) & np.isfinite(variance) & (variance > 0))
    intensity[bad] = 0.0
    variance[bad] = 0.0
    return intensity, variance


def read_scw_image(
    scw_id: str,
    path: Path | str,
    spec: InstrumentSpec,
    bands: list[tuple[float, float]] | None = None,
) -> ScwImage:
    """The intensity and variance images of every band (or of ``bands``) of a ScW file."""
    try:
        with fastfits.opened(path) as buffer:
            return _read(scw_id, buffer, fastfits.scan(buffer), spec, bands)
    except CorruptScw:
        raise
    except (fastfits.FitsScanError, OSError, ValueError, TypeError, KeyError) as exc:
        raise CorruptScw(f"unreadable ({_first_line(exc)})") from None


def _band(hdu: fastfits.RawHdu) -> tuple[float, float] | None:
    lo, hi = hdu.get("E_MIN"), hdu.get("E_MAX")
    if not isinstance(lo, int | float) or not isinstance(hi, int | float) or not 0 < lo < hi:
        return None
    return round(float(lo), 3), round(float(hi), 3)


def _read(
    scw_id: str,
    buffer,
    hdus: list[fastfits.RawHdu],
    spec: InstrumentSpec,
    wanted: list[tuple[float, float]] | None,
) -> ScwImage:
    by_band: dict[tuple[float, float], dict[str, fastfits.RawHdu]] = {}
    times = None
    for hdu in hdus:
        if times is None and isinstance(hdu.get("TSTART"), int | float):
            stop = hdu.get("TSTOP")
            if isinstance(stop, int | float):
                times = (float(hdu.get("TSTART")), float(stop))
        if not hdu.is_image or hdu.get("BITPIX") not in (-32, -64, 16, 32):
            continue
        imatype = str(hdu.get("IMATYPE", "")).strip().upper()
        if imatype in INTENSITY_TYPES:
            imatype = "INTENSITY"
        band = _band(hdu)
        if band is None or imatype not in ("INTENSITY", "VARIANCE", "EXPOSURE"):
            continue
        by_band.setdefault(band, {}).setdefault(imatype, hdu)
    usable = sorted(b for b, images in by_band.items() if {"INTENSITY", "VARIANCE"} <= set(images))
    if not usable:
        raise CorruptScw("no band with both an intensity and a variance image")
    if wanted is not None:
        missing = [b for b in wanted if tuple(b) not in by_band]
        if missing:
            raise CorruptScw(f"band(s) {missing} missing from this ScW")
        usable = [tuple(b) for b in wanted]
    first = by_band[usable[0]]["INTENSITY"]
    header = first.header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(header, naxis=2).celestial
    if not wcs.has_celestial:
        raise CorruptScw("the image has no celestial WCS")
    shape = (first.get("NAXIS2"), first.get("NAXIS1"))
    intensities, variances = [], []
    for band in usable:
        images = by_band[band]
        if any((h.get("NAXIS2"), h.get("NAXIS1")) != shape for h in images.values()):
            raise CorruptScw(f"band {band}: images of different shapes")
        intensity, variance = _clean(
            fastfits.image_data(buffer, images["INTENSITY"]),
            fastfits.image_data(buffer, images["VARIANCE"]),
        )
        intensities.append(intensity)
        variances.append(variance)
    if not any(np.any(v > 0) for v in variances):
        raise CorruptScw("no valid pixel (the variance is zero or non-finite everywhere)")
    exposure = None
    exposure_hdu = by_band[usable[0]].get("EXPOSURE")
    if (
        exposure_hdu is not None
        and (exposure_hdu.get("NAXIS2"), exposure_hdu.get("NAXIS1")) == shape
    ):
        exposure = np.nan_to_num(
            np.array(fastfits.image_data(buffer, exposure_hdu), dtype=np.float32), nan=0.0
        )
    if times is None or not times[1] > times[0]:
        raise CorruptScw("no valid TSTART/TSTOP")
    exposure_s = float(first.get("EXPOSURE") or first.get("ONTIME") or 0.0)
    return ScwImage(
        scw_id=scw_id,
        header=header,
        wcs=wcs,
        bands=list(usable),
        intensity=intensities,
        variance=variances,
        exposure=exposure,
        t_start_ijd=times[0],
        t_stop_ijd=times[1],
        exposure_s=exposure_s,
    )
