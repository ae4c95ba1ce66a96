"""OSA-like INTEGRAL product files written by the project's own code.

These files feed the demo data of the embedded default and the tests that must run on a fresh
clone, where the real products in ``../shared/fixtures`` are absent. Each writer imitates one
kind of real OSA/MMODA product closely enough that a reader working from headers cannot tell
them apart: the same HDU layout and EXTNAMEs, HDUCLASS/HDUCLAS*/IMATYPE keywords, column names
and units, times in IJD (TT, MJDREF 51544.0) with DATE-OBS/DATE-END in UTC where the real
product carries them, and the quirks of the real files (images told apart only by IMATYPE, OSA 11
responses with the effective area in the RMF and an ARF of ones, JEM-X channels numbered from 1
against EBOUNDS from 0, NaN edge channels flagged by QUALITY, three ways of giving light-curve
bin widths, the MMODA catalogue's odd TNULL).

The content is physically sensible rather than decorative: sources are power laws normalised
to the Crab in the 20-40 keV band, folded through ISGRI- or JEM-X-like effective areas and
Gaussian energy redistribution; images have the instrument's PSF and a noise that grows toward
the edge of the coded field of view as the exposure falls. Every file says in a COMMENT card of
its primary header that it is synthetic.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy.special import ndtr

from products import timeline

__all__ = [
    "CRAB_INDEX",
    "CRAB_NORM",
    "REFERENCE_BAND_KEV",
    "CatalogEntry",
    "SkySource",
    "effective_area_cm2",
    "photon_norm",
    "source_rate",
    "write_catalog",
    "write_demo_set",
    "write_lightcurve",
    "write_mosaic",
    "write_significance_map",
    "write_spectrum",
]

Seed = int | np.random.Generator | None

# The Crab as a plain power law (photons cm^-2 s^-1 keV^-1 at 1 keV; index): the unit of
# source fluxes below, as in the mCrab figures quoted for INTEGRAL sources.
CRAB_NORM = 9.7
CRAB_INDEX = 2.1
# mCrab fluxes refer to the photon flux in this band, where both instruments see the Crab.
REFERENCE_BAND_KEV = (20.0, 40.0)

SYNTHETIC_NOTE = "Synthetic OSA-like product written by the Gallery (ingest.synthetic)."

_CONFIGUR = {"10": "latest_osa_sw_2015-11-10T03:50:02", "11": "osa_2021-08-27T14:27:00"}
_DITHERS = {
    "staring": ((0.0, 0.0),),
    # Hexagonal pattern: the target plus six points 2 degrees away.
    "hex": ((0.0, 0.0),)
    + tuple((2.0 * np.cos(np.radians(a)), 2.0 * np.sin(np.radians(a))) for a in range(0, 360, 60)),
    # 5x5 rectangular pattern with 2.17 degree steps.
    "5x5": tuple((2.17 * i, 2.17 * j) for j in range(-2, 3) for i in range(-2, 3)),
}
# The standard 16-channel JEM-X spectral binning (keV).
_JEMX_16_EDGES = (
    3.04, 3.52, 4.08, 4.80, 5.52, 6.48, 7.52, 8.82, 10.24, 12.00, 13.92, 16.34, 18.94, 22.06,
    25.88, 30.20, 34.88,
)  # fmt: skip
# JEM-X PI channel at a few energies (keV, channel), for CHANMIN/CHANMAX of a band.
_JEMX_PI_NODES = ((3.04, 46), (4.12, 59), (29.66, 209), (34.88, 223))


@dataclass(frozen=True)
class _Instrument:
    code: str  # isgri | jemx1 | jemx2
    prefix: str  # EXTNAME prefix: ISGR | JMX1 | JMX2
    instrume: str
    detnam: str | None
    pixel_deg: float  # mosaic pixel
    psf_fwhm_deg: float
    area_peak_cm2: float
    area_nodes: tuple[tuple[float, float], ...]  # (keV, fraction of the peak area)
    photon_grid: tuple[float, float, int]  # response energy grid: lo, hi (keV), bins
    noise_density: float  # variance rate density, (counts/s)^2 s per keV at the pivot
    noise_pivot_kev: float
    noise_index: float
    source_noise: float  # extra variance per source count (coded-mask noise)
    background_fraction: float  # detector background rate / variance rate, for BACKV/BRATE
    deadc: float
    image_area_cm2: float  # JEM-X images are in counts/cm2/s; ISGRI ones in counts/s
    field_cut: float  # exposure fraction below which a mosaic pixel is outside the field
    fill: float  # value of pixels outside the field (0 for ISGRI, NaN for JEM-X)


_ISGRI = _Instrument(
    code="isgri",
    prefix="ISGR",
    instrume="IBIS",
    detnam="ISGRI",
    pixel_deg=0.0822862539155913,  # 4.94 arcmin
    psf_fwhm_deg=12.0 / 60.0,
    area_peak_cm2=1000.0,
    # Rises from the ~15 keV threshold, peaks near 50-60 keV, falls as CdTe grows thin.
    area_nodes=(
        (15.0, 0.0),
        (17.0, 0.03),
        (20.0, 0.30),
        (25.0, 0.72),
        (30.0, 0.86),
        (40.0, 0.93),
        (50.0, 1.0),
        (60.0, 1.0),
        (80.0, 0.88),
        (100.0, 0.70),
        (150.0, 0.40),
        (200.0, 0.24),
        (300.0, 0.12),
        (500.0, 0.07),
        (1000.0, 0.05),
    ),
    photon_grid=(13.0, 1000.0, 500),
    # 600 (counts/s)^2 s in 20-40 keV: the variance x exposure of real ISGRI mosaics.
    noise_density=27.9,
    noise_pivot_kev=30.0,
    noise_index=-1.5,
    source_noise=0.3,
    background_fraction=0.35,
    deadc=0.78,
    image_area_cm2=1.0,
    field_cut=0.02,
    fill=0.0,
)
_JEMX_AREA = (
    (2.0, 0.002), (2.5, 0.10), (3.0, 0.45), (4.0, 0.72), (5.0, 0.85), (6.0, 0.93), (8.0, 0.99),
    (10.0, 1.0), (12.0, 1.0), (15.0, 0.96), (20.0, 0.76), (25.0, 0.52), (30.0, 0.37),
    (35.0, 0.30), (50.0, 0.125), (80.0, 0.04), (100.0, 0.02),
)  # fmt: skip


def _jemx(unit: int) -> _Instrument:
    return _Instrument(
        code=f"jemx{unit}",
        prefix=f"JMX{unit}",
        instrume=f"JMX{unit}",
        detnam=None,
        pixel_deg=0.026,  # the pixel of OSA JEM-X mosaics (1.56 arcmin)
        psf_fwhm_deg=3.7 / 60.0,
        area_peak_cm2=65.0,
        area_nodes=_JEMX_AREA,
        photon_grid=(1.99213, 100.391495, 500),
        # 440 (counts/s)^2 s in 3-35 keV, i.e. 8e-4 (counts/cm2/s)^2 s in mosaic units.
        noise_density=30.0,
        noise_pivot_kev=6.0,
        noise_index=-1.0,
        source_noise=4.0,
        background_fraction=0.016,
        deadc=0.85,
        # Brings the Crab to ~0.15 counts/cm2/s in 3-35 keV, as in OSA JEM-X mosaics.
        image_area_cm2=740.0,
        # OSA cuts JEM-X mosaics where the exposure falls below ~20% of its peak.
        field_cut=0.20,
        fill=np.nan,
    )


_INSTRUMENTS = {"isgri": _ISGRI, "jemx1": _jemx(1), "jemx2": _jemx(2)}


def _instrument(code: str) -> _Instrument:
    try:
        return _INSTRUMENTS[code.lower()]
    except KeyError:
        raise ValueError(
            f"unknown instrument {code!r}; use one of {', '.join(_INSTRUMENTS)}"
        ) from None


@dataclass(frozen=True)
class SkySource:
    """A point source: ICRS position, flux in mCrab (20-40 keV photon flux) and photon index."""

    name: str
    ra_deg: float
    dec_deg: float
    flux_mcrab: float
    photon_index: float = CRAB_INDEX

    def __post_init__(self) -> None:
        if not (0.0 <= self.ra_deg < 360.0 and -90.0 <= self.dec_deg <= 90.0):
            raise ValueError(f"{self.name}: position ({self.ra_deg}, {self.dec_deg}) off the sky")
        if not np.isfinite(self.flux_mcrab) or self.flux_mcrab < 0:
            raise ValueError(f"{self.name}: flux must be a finite non-negative mCrab figure")


@dataclass(frozen=True)
class CatalogEntry:
    """One row of a source catalogue (a name of None gives the producer's placeholder)."""

    name: str | None
    ra_deg: float
    dec_deg: float
    significance: float
    is_new: bool = False
    flux: float | None = None  # counts/s in the catalogue's band (JEM-X source lists)
    flux_err: float | None = None
    err_rad_deg: float | None = None
    xpix: float | None = None  # mosaic pixel (JEM-X source lists)
    ypix: float | None = None


# ----------------------------------------------------------------------------- physics


def _rng(seed: Seed) -> np.random.Generator:
    return np.random.default_rng(seed)


def effective_area_cm2(instrument: str, energy_kev: np.ndarray | float) -> np.ndarray:
    """On-axis effective area of the synthetic instrument model (cm^2)."""
    inst = _instrument(instrument)
    nodes = np.array(inst.area_nodes)
    energy = np.asarray(energy_kev, dtype=float)
    fraction = np.interp(np.log(energy), np.log(nodes[:, 0]), nodes[:, 1], left=0.0)
    return inst.area_peak_cm2 * fraction


def _powerlaw_integral(norm: float, index: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Photons cm^-2 s^-1 of ``norm * E**-index`` in each bin [lo, hi] (keV)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    if abs(index - 1.0) < 1e-9:
        return norm * np.log(hi / lo)
    return norm * (hi ** (1.0 - index) - lo ** (1.0 - index)) / (1.0 - index)


def photon_norm(source: SkySource) -> float:
    """Power-law normalisation at 1 keV (photons cm^-2 s^-1 keV^-1) for the source's mCrab."""
    lo, hi = REFERENCE_BAND_KEV
    crab = _powerlaw_integral(CRAB_NORM, CRAB_INDEX, lo, hi)
    unit = _powerlaw_integral(1.0, source.photon_index, lo, hi)
    return float(source.flux_mcrab / 1000.0 * crab / unit)


def _fine_grid(e_min: float, e_max: float, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    edges = np.geomspace(e_min, e_max, n + 1)
    return edges[:-1], edges[1:]


def source_rate(source: SkySource, instrument: str, e_min_kev: float, e_max_kev: float) -> float:
    """Counts/s of the source in a band (effective area x photon flux, no redistribution)."""
    lo, hi = _fine_grid(e_min_kev, e_max_kev)
    flux = _powerlaw_integral(photon_norm(source), source.photon_index, lo, hi)
    return float(np.sum(flux * effective_area_cm2(instrument, np.sqrt(lo * hi))))


def _variance_rate(inst: _Instrument, e_min: float, e_max: float) -> float:
    """Background variance x exposure in a band, (counts/s)^2 s: noise = sqrt(this / t)."""
    lo, hi = _fine_grid(e_min, e_max)
    return float(np.sum(_noise_density(inst, np.sqrt(lo * hi)) * (hi - lo)))


def _noise_density(inst: _Instrument, energy: np.ndarray) -> np.ndarray:
    return inst.noise_density * (np.asarray(energy) / inst.noise_pivot_kev) ** inst.noise_index


def _fwhm_kev(inst: _Instrument, energy: np.ndarray) -> np.ndarray:
    energy = np.asarray(energy, dtype=float)
    if inst.code == "isgri":
        # CdTe: electronic noise, charge statistics and charge loss growing with energy.
        return np.sqrt(2.0**2 + 0.81 * energy + (0.12 * energy) ** 2)
    # Gas proportional counter: dE/E = 0.40 sqrt(1/E + 1/60).
    return 0.40 * energy * np.sqrt(1.0 / energy + 1.0 / 60.0)


# ----------------------------------------------------------------------------- headers


def _check_osa(osa: str) -> str:
    osa = str(osa).split(".")[0]
    if osa not in _CONFIGUR:
        raise ValueError(f"osa must be '10' or '11', got {osa!r}")
    return osa


def _utc(ijd: float) -> str:
    """UTC ISO time to the second, as OSA writes DATE-OBS/DATE-END."""
    return str(timeline.format_time(timeline.ijd_to_time(ijd), "isot"))


def _processing_date(t_stop_ijd: float) -> str:
    # A fixed delay after the data, so that a seed gives byte-identical files.
    return _utc(t_stop_ijd + 1.0)


def _time_cards(t_start: float, t_stop: float, *, dates: bool = True) -> list[tuple[str, Any]]:
    cards: list[tuple[str, Any]] = [
        ("MJDREF", timeline.MJDREF_IJD),
        ("TIMESYS", "TT"),
        ("TIMEUNIT", "d"),
        ("TIMEREF", "LOCAL"),
    ]
    if dates:
        cards += [("DATE-OBS", _utc(t_start)), ("DATE-END", _utc(t_stop))]
    return cards + [("TSTART", float(t_start)), ("TSTOP", float(t_stop))]


def _header(cards: Iterable[tuple[str, Any]]) -> fits.Header:
    header = fits.Header()
    for key, value in cards:
        if value is None:
            continue
        header[key if len(key) <= 8 else f"HIERARCH {key}"] = value
    return header


def _stamp(cards: Iterable[tuple[str, Any]]) -> str:
    """The ISDC STAMP card: processing date and the tool that wrote the HDU."""
    values = dict(cards)
    return f"{values.get('DATE', '')} {values.get('CREATOR', '')}".strip()


def _primary(extname: bool = False) -> fits.PrimaryHDU:
    hdu = fits.PrimaryHDU()
    if extname:
        hdu.header["EXTNAME"] = "PRIMARY"
    hdu.header["COMMENT"] = SYNTHETIC_NOTE
    return hdu


def _write(path: Path | str, hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU]) -> Path:
    """Writes the HDUs with CHECKSUM/DATASUM, as OSA does."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hdulist = fits.HDUList(hdus)
    for hdu in hdulist:
        hdu.update_header()
        # A fixed comment (astropy's default holds the clock) keeps seeded files identical.
        hdu.add_checksum(when="HDU checksum")
    hdulist.writeto(path, overwrite=True)
    return path


def _source_id(ra_deg: float, dec_deg: float) -> str:
    """ISDC source identifier ``Jhhmmss.s+ddmmss``."""
    ra_s = round(ra_deg / 15.0 * 3600.0, 1) % 86400.0
    h, rem = divmod(ra_s, 3600.0)
    m, s = divmod(rem, 60.0)
    sign = "-" if dec_deg < 0 else "+"
    dec_s = round(abs(dec_deg) * 3600.0)
    d, rem2 = divmod(dec_s, 3600)
    dm, ds = divmod(rem2, 60)
    return f"J{int(h):02d}{int(m):02d}{s:04.1f}{sign}{int(d):02d}{int(dm):02d}{int(ds):02d}"


def _revolution(ijd: float) -> int:
    return timeline.revolution_of(timeline.ijd_to_time(ijd))


def _scw_id(ijd: float) -> str:
    """A pointing ScW id of the revolution holding ``ijd`` (about one pointing per hour)."""
    rev = _revolution(ijd)
    since = (timeline.ijd_to_time(ijd) - timeline.revolution_start(rev)).sec
    pointing = min(9999, max(1, int(since // 3600.0) + 1))
    return f"{rev:04d}{pointing:04d}0010"


def _jemx_channel(energy_kev: float) -> int:
    nodes = np.array(_JEMX_PI_NODES)
    return int(round(float(np.interp(np.sqrt(energy_kev), np.sqrt(nodes[:, 0]), nodes[:, 1]))))


def _check_times(t_start: float, t_stop: float, exposure_s: float) -> None:
    if not t_stop > t_start:
        raise ValueError("t_stop_ijd must be after t_start_ijd")
    if not 0 < exposure_s <= (t_stop - t_start) * 86400.0:
        raise ValueError("exposure_s must be positive and no longer than the time range")


def _ontime(inst: _Instrument, t_start: float, t_stop: float, exposure_s: float) -> float:
    return min(exposure_s / inst.deadc, (t_stop - t_start) * 86400.0)


# ----------------------------------------------------------------------------- images


@dataclass
class _Mosaic:
    header: fits.Header  # WCS and common keywords of the image HDUs
    intensity: np.ndarray
    variance: np.ndarray
    significance: np.ndarray
    exposure: np.ndarray
    obs_time: np.ndarray
    inside: np.ndarray  # bool: pixels in the field
    wcs: WCS


def _wcs_cards(
    shape: tuple[int, int],
    center_ra: float,
    center_dec: float,
    pixel_deg: float,
    rotation_deg: float,
    use_cd_matrix: bool,
) -> list[tuple[str, Any]]:
    ny, nx = shape
    cos, sin = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
    cards: list[tuple[str, Any]] = [
        ("CTYPE1", "RA---TAN"),
        ("CRPIX1", (nx + 1) / 2.0),
        ("CRVAL1", float(center_ra)),
        ("CUNIT1", "deg"),
        ("CTYPE2", "DEC--TAN"),
        ("CRPIX2", (ny + 1) / 2.0),
        ("CRVAL2", float(center_dec)),
        ("CUNIT2", "deg"),
    ]
    # East to the left (CDELT1 < 0); the rotation is the satellite's roll.
    if use_cd_matrix:
        cards += [
            ("CD1_1", -pixel_deg * cos + 0.0),  # + 0.0 turns -0.0 into 0.0
            ("CD1_2", -pixel_deg * sin + 0.0),
            ("CD2_1", -pixel_deg * sin + 0.0),
            ("CD2_2", pixel_deg * cos + 0.0),
        ]
    else:
        cards += [("CDELT1", -pixel_deg), ("CDELT2", pixel_deg)]
        if rotation_deg:
            cards += [("PC1_1", cos), ("PC1_2", sin), ("PC2_1", -sin), ("PC2_2", cos)]
    return cards + [("LONGPOLE", 180), ("LATPOLE", 0), ("RADECSYS", "FK5"), ("EQUINOX", 2000.0)]


def _field_profile(
    inst: _Instrument, x_deg: np.ndarray, y_deg: np.ndarray, dither: str
) -> tuple[np.ndarray, np.ndarray]:
    """Relative exposure (1 at the field centre) and the fraction of pointings seeing a pixel.

    ISGRI: the coded fraction of the square mask falls linearly from the edge of the fully
    coded field (4.5 deg half-width) to zero at 14.5 deg. JEM-X: the collimator response falls
    linearly to zero 6.6 deg off axis. Mosaics average this over the dither pattern.
    """
    try:
        offsets = _DITHERS[dither]
    except KeyError:
        raise ValueError(f"unknown dither {dither!r}; use one of {', '.join(_DITHERS)}") from None

    def pointing(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        if inst.code == "isgri":
            fx = np.clip((14.5 - np.abs(dx)) / 10.0, 0.0, 1.0)
            fy = np.clip((14.5 - np.abs(dy)) / 10.0, 0.0, 1.0)
            return fx * fy
        return np.clip(1.0 - np.hypot(dx, dy) / 6.6, 0.0, 1.0)

    total = np.zeros(np.broadcast(x_deg, y_deg).shape)
    seen = np.zeros_like(total)
    centre = 0.0
    for ox, oy in offsets:
        response = pointing(x_deg - ox, y_deg - oy)
        total += response
        seen += response > 0
        centre += float(pointing(np.array(-ox), np.array(-oy)))
    return total / centre, seen / len(offsets)


def _render_mosaic(
    *,
    instrument: str,
    center_ra: float,
    center_dec: float,
    sources: Sequence[SkySource],
    e_min_kev: float,
    e_max_kev: float,
    t_start_ijd: float,
    t_stop_ijd: float,
    exposure_s: float,
    shape: tuple[int, int],
    pixel_deg: float | None,
    rotation_deg: float,
    use_cd_matrix: bool,
    dither: str,
    seed: Seed,
) -> _Mosaic:
    inst = _instrument(instrument)
    _check_times(t_start_ijd, t_stop_ijd, exposure_s)
    if not 0 < e_min_kev < e_max_kev:
        raise ValueError("the energy band must have 0 < e_min_kev < e_max_kev")
    ny, nx = int(shape[0]), int(shape[1])
    if nx < 8 or ny < 8:
        raise ValueError("a mosaic needs at least 8x8 pixels")
    pixel = float(pixel_deg or inst.pixel_deg)
    rng = _rng(seed)

    header = _header(
        _wcs_cards((ny, nx), center_ra, center_dec, pixel, rotation_deg, use_cd_matrix)
    )
    wcs = _quiet_wcs(header)

    # Detector-aligned offsets from the field centre: the coded field follows the pixel axes.
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    x_deg = (xx - (nx - 1) / 2.0) * pixel
    y_deg = (yy - (ny - 1) / 2.0) * pixel
    profile, seen = _field_profile(inst, x_deg, y_deg, dither)
    inside = profile > inst.field_cut
    exposure = np.where(inside, exposure_s * profile, 0.0)

    # Peak-normalised PSFs: the PSF peaks at the source's count rate, as OSA mosaics read.
    model = np.zeros((ny, nx))
    sigma_pix = inst.psf_fwhm_deg / (2.0 * np.sqrt(2.0 * np.log(2.0))) / pixel
    half = int(np.ceil(6 * sigma_pix)) + 1
    for source in sources:
        px, py = (float(v) for v in wcs.all_world2pix(source.ra_deg, source.dec_deg, 0))
        if not (-half < px < nx + half and -half < py < ny + half):
            continue
        rate = source_rate(source, inst.code, e_min_kev, e_max_kev) / inst.image_area_cm2
        x0, x1 = max(0, int(px) - half), min(nx, int(px) + half + 1)
        y0, y1 = max(0, int(py) - half), min(ny, int(py) + half + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        gx = np.exp(-0.5 * ((np.arange(x0, x1) - px) / sigma_pix) ** 2)
        gy = np.exp(-0.5 * ((np.arange(y0, y1) - py) / sigma_pix) ** 2)
        model[y0:y1, x0:x1] += rate * np.outer(gy, gx)

    # Variance of a coded-mask image: background-dominated, scaling as 1/exposure.
    counts = np.clip(model, 0.0, None) * inst.image_area_cm2
    var_counts = _variance_rate(inst, e_min_kev, e_max_kev) + inst.source_noise * counts
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = np.where(inside, var_counts / exposure / inst.image_area_cm2**2, 0.0)
    noise = rng.standard_normal((ny, nx)) * np.sqrt(variance)
    intensity = np.where(inside, model + noise, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        significance = np.where(inside, intensity / np.sqrt(variance), 0.0)
    ontime = _ontime(inst, t_start_ijd, t_stop_ijd, exposure_s)
    obs_time = np.where(inside, ontime * seen, 0.0)

    images = [intensity, variance, significance, exposure, obs_time]
    if np.isnan(inst.fill):
        for image in images:
            image[~inside] = np.nan
    return _Mosaic(header, *images, inside=inside, wcs=wcs)


def _quiet_wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        # RADECSYS and LONGPOLE are what OSA writes; astropy notes them and moves on.
        warnings.simplefilter("ignore")
        return WCS(header)


_IMATYPES = {
    "isgri": (
        ("INTENSITY", "counts/sec", "intensity"),
        ("VARIANCE", "(counts/sec)**2", "variance"),
        ("SIGNIFICANCE", "no units", "significance"),
        ("EXPOSURE", "sec", "exposure"),
    ),
    "jemx": (
        ("RECONSTRUCTED", "counts/cm2/s", "intensity"),
        ("VARIANCE", "counts2/cm4/s2", "variance"),
        ("SIGNIFICANCE", "None", "significance"),
        ("EXPOSURE", "second", "exposure"),
        ("OBS_TIME", "second", "obs_time"),
    ),
}


def _image_header(
    inst: _Instrument,
    mosaic: _Mosaic,
    *,
    imatype: str,
    bunit: str,
    extver: int,
    e_min: float,
    e_max: float,
    t_start: float,
    t_stop: float,
    exposure_s: float,
    osa: str,
) -> fits.Header:
    date = _processing_date(t_stop)
    ontime = _ontime(inst, t_start, t_stop, exposure_s)
    telapse = min((t_stop - t_start) * 86400.0, ontime * 1.03)
    e_mean = (e_min + e_max) / 2.0
    if inst.code == "isgri":
        creator = "ii_skyimage 5.4.4"
        cards: list[tuple[str, Any]] = [
            ("EXTNAME", f"{inst.prefix}-MOSA-IMA"),
            ("EXTREL", "7.4"),
            ("BASETYPE", "DAL_ARRAY"),
            ("TELESCOP", "INTEGRAL"),
            ("ORIGIN", "ISDC"),
            ("INSTRUME", inst.instrume),
            ("DETNAM", inst.detnam),
            ("ISDCLEVL", "IMA"),
            ("CREATOR", creator),
            ("CONFIGUR", _CONFIGUR[osa]),
            ("DATE", date),
            *_time_cards(t_start, t_stop)[:4],
            ("DATE-OBS", _utc(t_start)),
            ("DATE-END", _utc(t_stop)),
            ("TSTART", t_start),
            ("TSTOP", t_stop),
            ("TFIRST", t_start),
            ("TLAST", t_stop),
            ("TELAPSE", round(telapse)),
            ("ONTIME", ontime),
            ("DEADC", inst.deadc),
            ("BUNIT", bunit),
            *mosaic.header.items(),
            ("HDUCLASS", "OGIP"),
            ("HDUDOC", "ISDC-IBIS ICD"),
            ("HDUVERS", "1.1.0"),
            ("HDUCLAS1", "IMAGE"),
            ("CHANTYPE", "PI"),
            ("CHANMIN", int(round(e_min))),
            ("CHANMAX", int(round(e_max))),
            ("E_MIN", e_min),
            ("E_MEAN", e_mean),
            ("E_MAX", e_max),
            ("IMATYPE", imatype),
            ("MOSASPR", 1),
            ("EXTVER", extver),
            ("GRPID1", 1),
            ("STAMP", f"{date} {creator}"),
        ]
        return _header(cards)
    creator = "j_ima_mosaic 10.1.0"
    psf_sigma = inst.psf_fwhm_deg / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    cards = [
        ("EXTNAME", f"{inst.prefix}-MOSA-IMA"),
        ("EXTREL", "10.7"),
        ("BASETYPE", "DAL_ARRAY"),
        ("TELESCOP", "INTEGRAL"),
        ("ORIGIN", "ISDC"),
        ("INSTRUME", inst.instrume),
        ("ISDCLEVL", "IMA2"),
        ("CREATOR", creator),
        ("CONFIGUR", _CONFIGUR[osa]),
        ("DATE", date),
        *_time_cards(t_start, t_stop)[:4],
        ("TSTART", t_start),
        ("TSTOP", t_stop),
        ("TELAPSE", round(telapse)),
        ("BUNIT", bunit),
        *mosaic.header.items(),
        ("DATE-OBS", _utc(t_start)),
        ("DATE-END", _utc(t_stop)),
        ("HDUCLASS", "OGIP"),
        ("HDUDOC", "ISDC-JEMX ADD"),
        ("HDUVERS", "1.1.0"),
        ("HDUCLAS1", "IMAGE"),
        ("CHANTYPE", "PI"),
        ("CHANMIN", _jemx_channel(e_min)),
        ("CHANMAX", _jemx_channel(e_max)),
        ("EVNTYPES", 0),
        ("E_MIN", e_min),
        ("E_MEAN", e_mean),
        ("E_MAX", e_max),
        ("IMATYPE", imatype),
        ("EXTVER", extver),
        ("GRPID1", 1),
        # OSA describes the PSF and the PIF use only where they apply.
        ("PSFSIGMA", psf_sigma if imatype != "OBS_TIME" else None),
        ("IMADESCR", "NOPIF" if imatype not in ("EXPOSURE", "OBS_TIME") else None),
        ("STAMP", f"{date} {creator}"),
    ]
    return _header(cards)


def _member_columns(n: int, name: str, xtension: str, first_position: int) -> list[fits.Column]:
    return [
        fits.Column("MEMBER_XTENSION", "8A", array=[xtension] * n),
        fits.Column("MEMBER_NAME", "32A", array=[name] * n),
        fits.Column("MEMBER_VERSION", "1J", null=0, array=np.arange(1, n + 1)),
        fits.Column("MEMBER_POSITION", "1J", null=0, array=np.arange(n) + first_position),
        fits.Column("MEMBER_LOCATION", "256A", array=[""] * n),
        fits.Column("MEMBER_URI_TYPE", "3A", array=[""] * n),
    ]


def _mosaic_grouping(
    inst: _Instrument,
    imatypes: Sequence[str],
    *,
    e_min: float,
    e_max: float,
    t_start: float,
    t_stop: float,
    exposure_s: float,
    osa: str,
) -> fits.BinTableHDU:
    n = len(imatypes)
    extname = f"{inst.prefix}-MOSA-IMA"
    # Members follow the PRIMARY and GROUPING HDUs; positions count from 1.
    columns = _member_columns(n, extname, "IMAGE", first_position=3)
    date = _processing_date(t_stop)
    if inst.code == "isgri":
        ontime = _ontime(inst, t_start, t_stop, exposure_s)
        telapse = float(round(min((t_stop - t_start) * 86400.0, ontime * 1.03)))
        columns += [
            fits.Column("IMATYPE", "32A", array=list(imatypes)),
            fits.Column("CHANMIN", "1I", bzero=32768, array=np.full(n, round(e_min), np.uint16)),
            fits.Column("CHANMAX", "1I", bzero=32768, array=np.full(n, round(e_max), np.uint16)),
            fits.Column("E_MIN", "1E", unit="keV", array=np.full(n, e_min)),
            fits.Column("E_MEAN", "1E", unit="keV", array=np.full(n, (e_min + e_max) / 2)),
            fits.Column("E_MAX", "1E", unit="keV", array=np.full(n, e_max)),
            fits.Column("TFIRST", "1D", unit="d", array=np.full(n, t_start)),
            fits.Column("TLAST", "1D", unit="d", array=np.full(n, t_stop)),
            fits.Column("TELAPSE", "1D", unit="s", array=np.full(n, telapse)),
            fits.Column("ONTIME", "1D", unit="s", array=np.full(n, ontime)),
        ]
        cards = [
            ("EXTNAME", "GROUPING"),
            ("EXTVER", 1),
            ("GRPNAME", f"{extname}-IDX"),
            ("GRPID1", -1),
            ("GRPLC1", "ogg.fits"),
            ("IDXMEMBR", extname),
            ("EXTREL", "7.2"),
            ("BASETYPE", "DAL_GROUP"),
            ("TELESCOP", "INTEGRAL"),
            ("ORIGIN", "ISDC"),
            ("INSTRUME", inst.instrume),
            ("DETNAM", inst.detnam),
            ("ISDCLEVL", "IMA"),
            ("CREATOR", "ii_skyimage 5.4.4"),
            ("CONFIGUR", _CONFIGUR[osa]),
            ("DATE", date),
            *_time_cards(t_start, t_stop),
            ("STAMP", f"{date} ii_skyimage 5.4.4"),
            ("LONGSTRN", "OGIP 1.0"),
        ]
    else:
        # OBS_TIME is not an energy image: OSA leaves its band undefined.
        band = [imatype != "OBS_TIME" for imatype in imatypes]
        chan_lo, chan_hi = _jemx_channel(e_min), _jemx_channel(e_max)
        columns += [
            fits.Column("OBTSTART", "20A", array=["OBT_format"] * n),
            fits.Column("OBTEND", "20A", array=["OBT_format"] * n),
            fits.Column("TSTART", "1D", unit="d", array=np.full(n, t_start)),
            fits.Column("TSTOP", "1D", unit="d", array=np.full(n, t_stop)),
            fits.Column("IMATYPE", "32A", array=list(imatypes)),
            fits.Column("CHANMIN", "1B", array=[chan_lo if b else 255 for b in band]),
            fits.Column("CHANMAX", "1B", array=[chan_hi if b else 255 for b in band]),
            fits.Column("EVNTYPES", "1I", array=[0 if b else -32768 for b in band]),
            fits.Column("E_MIN", "1E", unit="keV", array=[e_min if b else np.nan for b in band]),
            fits.Column(
                "E_MEAN",
                "1E",
                unit="keV",
                array=[(e_min + e_max) / 2 if b else np.nan for b in band],
            ),
            fits.Column("E_MAX", "1E", unit="keV", array=[e_max if b else np.nan for b in band]),
        ]
        cards = [
            ("EXTNAME", "GROUPING"),
            ("EXTVER", 1),
            ("GRPNAME", f"{extname}-IDX"),
            ("IDXMEMBR", extname),
            ("EXTREL", "7.7"),
            ("BASETYPE", "DAL_GROUP"),
            ("TELESCOP", "INTEGRAL"),
            ("ORIGIN", "ISDC"),
            ("INSTRUME", inst.instrume),
            ("ISDCLEVL", "IMA2"),
            ("CREATOR", "j_ima_mosaic 10.1.0"),
            ("CONFIGUR", _CONFIGUR[osa]),
            ("DATE", date),
        ]
    return fits.BinTableHDU.from_columns(columns, header=_header(cards))


def write_mosaic(
    path: Path | str,
    *,
    instrument: str = "isgri",
    center_ra: float,
    center_dec: float,
    sources: Sequence[SkySource],
    e_min_kev: float,
    e_max_kev: float,
    t_start_ijd: float,
    t_stop_ijd: float,
    exposure_s: float,
    shape: tuple[int, int] = (400, 400),
    pixel_deg: float | None = None,
    rotation_deg: float = 0.0,
    use_cd_matrix: bool = False,
    dither: str = "hex",
    osa: str = "11",
    seed: Seed = None,
) -> Path:
    """An OSA mosaic: empty PRIMARY, a GROUPING index, then images told apart by IMATYPE.

    ISGRI (``ISGR-MOSA-IMA``): INTENSITY, VARIANCE, SIGNIFICANCE, EXPOSURE in float32 with 0
    outside the field. JEM-X (``JMX1-MOSA-IMA``/``JMX2-MOSA-IMA``): RECONSTRUCTED, VARIANCE,
    SIGNIFICANCE, EXPOSURE, OBS_TIME in float64 with NaN outside the field, intensities in
    counts/cm2/s. ``pixel_deg`` defaults to the pixel of OSA mosaics (ISGRI 4.94', JEM-X
    1.56'). ``rotation_deg`` turns the WCS as the satellite's roll does; ``use_cd_matrix``
    writes it as CDi_j (as OSA does), else as CDELTi with PCi_j. ``exposure_s`` is the
    effective exposure at the field centre; ``dither`` is the pointing pattern (``hex``,
    ``5x5`` or ``staring``) that shapes the exposure map and the edge of the field.
    """
    osa = _check_osa(osa)
    inst = _instrument(instrument)
    mosaic = _render_mosaic(
        instrument=instrument,
        center_ra=center_ra,
        center_dec=center_dec,
        sources=sources,
        e_min_kev=e_min_kev,
        e_max_kev=e_max_kev,
        t_start_ijd=t_start_ijd,
        t_stop_ijd=t_stop_ijd,
        exposure_s=exposure_s,
        shape=shape,
        pixel_deg=pixel_deg,
        rotation_deg=rotation_deg,
        use_cd_matrix=use_cd_matrix,
        dither=dither,
        seed=seed,
    )
    hdus = _mosaic_hdus(
        inst, mosaic, e_min_kev, e_max_kev, t_start_ijd, t_stop_ijd, exposure_s, osa
    )
    return _write(path, hdus)


def _mosaic_hdus(
    inst: _Instrument,
    mosaic: _Mosaic,
    e_min: float,
    e_max: float,
    t_start: float,
    t_stop: float,
    exposure_s: float,
    osa: str,
) -> list[Any]:
    layout = _IMATYPES["isgri" if inst.code == "isgri" else "jemx"]
    dtype = np.float32 if inst.code == "isgri" else np.float64
    common = {
        "e_min": e_min,
        "e_max": e_max,
        "t_start": t_start,
        "t_stop": t_stop,
        "exposure_s": exposure_s,
        "osa": osa,
    }
    hdus: list[Any] = [
        _primary(extname=inst.code == "isgri"),
        _mosaic_grouping(inst, [imatype for imatype, _, _ in layout], **common),
    ]
    for extver, (imatype, bunit, attribute) in enumerate(layout, start=1):
        header = _image_header(inst, mosaic, imatype=imatype, bunit=bunit, extver=extver, **common)
        data = getattr(mosaic, attribute).astype(dtype)
        hdus.append(fits.ImageHDU(data=data, header=header))
    return hdus


def write_significance_map(
    path: Path | str,
    *,
    instrument: str = "isgri",
    center_ra: float,
    center_dec: float,
    sources: Sequence[SkySource],
    e_min_kev: float,
    e_max_kev: float,
    t_start_ijd: float,
    t_stop_ijd: float,
    exposure_s: float,
    shape: tuple[int, int] = (400, 400),
    pixel_deg: float | None = None,
    rotation_deg: float = 0.0,
    use_cd_matrix: bool = True,
    dither: str = "hex",
    osa: str = "10",
    seed: Seed = None,
) -> Path:
    """A significance mosaic alone in the primary HDU (EXTNAME and IMATYPE in its header)."""
    osa = _check_osa(osa)
    inst = _instrument(instrument)
    mosaic = _render_mosaic(
        instrument=instrument,
        center_ra=center_ra,
        center_dec=center_dec,
        sources=sources,
        e_min_kev=e_min_kev,
        e_max_kev=e_max_kev,
        t_start_ijd=t_start_ijd,
        t_stop_ijd=t_stop_ijd,
        exposure_s=exposure_s,
        shape=shape,
        pixel_deg=pixel_deg,
        rotation_deg=rotation_deg,
        use_cd_matrix=use_cd_matrix,
        dither=dither,
        seed=seed,
    )
    header = _image_header(
        inst,
        mosaic,
        imatype="SIGNIFICANCE",
        bunit="no units" if inst.code == "isgri" else "None",
        extver=3,
        e_min=e_min_kev,
        e_max=e_max_kev,
        t_start=t_start_ijd,
        t_stop=t_stop_ijd,
        exposure_s=exposure_s,
        osa=osa,
    )
    dtype = np.float32 if inst.code == "isgri" else np.float64
    primary = fits.PrimaryHDU(data=mosaic.significance.astype(dtype), header=header)
    primary.header["COMMENT"] = SYNTHETIC_NOTE
    return _write(path, [primary])


# ----------------------------------------------------------------------------- spectra


def _geometric_edges(n: int, lo: float, hi: float, first_width: float) -> np.ndarray:
    """Channel edges whose widths grow geometrically from ``first_width`` (keV)."""
    if first_width * n >= hi - lo:
        return np.linspace(lo, hi, n + 1)
    # lo + w/b (exp(b i) - 1) reaches hi at i = n: solve for b by bisection.
    b_lo, b_hi = 1e-9, 1.0
    for _ in range(200):
        b = 0.5 * (b_lo + b_hi)
        if lo + first_width / b * np.expm1(b * n) > hi:
            b_hi = b
        else:
            b_lo = b
    edges = lo + first_width / b * np.expm1(b * np.arange(n + 1))
    edges[-1] = hi
    return edges


def _channel_edges(inst: _Instrument, n_channels: int) -> np.ndarray:
    if inst.code != "isgri":
        if n_channels == 16:
            return np.array(_JEMX_16_EDGES)
        return np.geomspace(_JEMX_16_EDGES[0], _JEMX_16_EDGES[-1], n_channels + 1)
    if n_channels == 256:  # OSA 11: 0.5 keV channels from 12.5 keV, widening upward
        return _geometric_edges(256, 12.5, 1029.5, 0.5)
    if n_channels == 62:  # OSA 10 standard rebinning
        return _geometric_edges(62, 13.0, 993.3776, 0.4787)
    return _geometric_edges(n_channels, 13.0, 1000.0, 0.5 * 256 / n_channels)


@dataclass
class _Response:
    energ_lo: np.ndarray
    energ_hi: np.ndarray
    redistribution: np.ndarray  # (n_energy, n_channels), probability per channel
    area: np.ndarray  # cm^2 per energy bin
    chan_lo: np.ndarray
    chan_hi: np.ndarray


def _response(inst: _Instrument, n_channels: int) -> _Response:
    lo_e, hi_e, n_e = inst.photon_grid
    edges = np.geomspace(lo_e, hi_e, n_e + 1)
    energ_lo, energ_hi = edges[:-1], edges[1:]
    centre = np.sqrt(energ_lo * energ_hi)
    chan = _channel_edges(inst, n_channels)
    sigma = _fwhm_kev(inst, centre) / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    cdf = ndtr((chan[None, :] - centre[:, None]) / sigma[:, None])
    redistribution = np.diff(cdf, axis=1)
    redistribution[redistribution < 1e-7] = 0.0
    if inst.code == "isgri":
        # ISGRI matrices put every detected photon in some channel (rows sum to 1).
        sums = redistribution.sum(axis=1, keepdims=True)
        redistribution = np.divide(
            redistribution, sums, out=np.zeros_like(redistribution), where=sums > 0
        )
    area = effective_area_cm2(inst.code, centre)
    return _Response(energ_lo, energ_hi, redistribution, area, chan[:-1], chan[1:])


def _folded_rate(source: SkySource, response: _Response) -> np.ndarray:
    flux = _powerlaw_integral(
        photon_norm(source), source.photon_index, response.energ_lo, response.energ_hi
    )
    return (flux * response.area) @ response.redistribution


def write_spectrum(
    pha_path: Path | str,
    rmf_path: Path | str,
    arf_path: Path | str,
    *,
    instrument: str = "isgri",
    source: SkySource,
    t_start_ijd: float,
    t_stop_ijd: float,
    exposure_s: float,
    osa: str = "11",
    n_channels: int | None = None,
    nan_edges: bool | None = None,
    seed: Seed = None,
) -> tuple[Path, Path, Path]:
    """A PHA type I spectrum with its RMF and ARF; returns the three paths.

    ISGRI: ``ISGR-EVTS-SPE`` channels from 0, response ``ISGR-RMF.-RSP`` + ``ISGR-EBDS-MOD``,
    ARF ``ISGR-ARF.-RSP``. OSA 10 (62 channels) keeps the area in the ARF and RMF rows summing
    to 1; OSA 11 (256 channels) folds the area into the RMF and writes an ARF of ones.
    JEM-X: ``JMX1-PHA1-SPE`` channels 1..N, ``SPECRESP MATRIX`` + ``EBOUNDS`` (0..N-1) and the
    axis/imaging ARFs in the RMF file, ARF ``SPECRESP``. ``nan_edges`` (default: ISGRI) leaves
    the channels below threshold and at the top NaN with QUALITY 3, as OSA does.
    """
    inst = _instrument(instrument)
    osa = _check_osa(osa)
    _check_times(t_start_ijd, t_stop_ijd, exposure_s)
    if n_channels is None:
        n_channels = 16 if inst.code != "isgri" else (256 if osa == "11" else 62)
    if n_channels < 2:
        raise ValueError("a spectrum needs at least 2 channels")
    if nan_edges is None:
        nan_edges = inst.code == "isgri"
    rng = _rng(seed)
    pha_path, rmf_path, arf_path = Path(pha_path), Path(rmf_path), Path(arf_path)

    response = _response(inst, n_channels)
    model = _folded_rate(source, response)
    centre = np.sqrt(response.chan_lo * response.chan_hi)
    # Background-dominated statistics as in the images, plus the source's own counts.
    var_rate = _noise_density(inst, centre) * (response.chan_hi - response.chan_lo)
    stat_err = np.sqrt((var_rate + inst.source_noise * np.clip(model, 0, None)) / exposure_s)
    rate = model + rng.standard_normal(n_channels) * stat_err
    quality = np.zeros(n_channels, dtype=np.int16)
    if nan_edges:
        if osa == "11" and inst.code == "isgri":
            missing = (response.chan_hi <= 20.0) | (np.arange(n_channels) >= n_channels - 3)
            flagged = missing | (response.chan_lo < 23.0)
        else:
            missing = np.arange(n_channels) == 0
            flagged = missing
        rate[missing], stat_err[missing] = np.nan, np.inf
        quality[flagged] = 3

    hdus = [
        _primary(extname=inst.code != "isgri"),
        _pha_hdu(
            inst,
            source,
            rate,
            stat_err,
            quality,
            t_start_ijd,
            t_stop_ijd,
            exposure_s,
            osa,
            rmf_path.name,
            arf_path.name,
        ),
    ]
    _write(pha_path, hdus)
    if inst.code == "isgri":
        _write_isgri_rmf(rmf_path, inst, response, osa, t_stop_ijd)
        _write_isgri_arf(arf_path, inst, response, osa, t_stop_ijd)
    else:
        _write_jemx_rmf(rmf_path, inst, response, t_stop_ijd)
        _write_jemx_arf(arf_path, inst, response, t_start_ijd, t_stop_ijd)
    return pha_path, rmf_path, arf_path


def _pha_hdu(
    inst: _Instrument,
    source: SkySource,
    rate: np.ndarray,
    stat_err: np.ndarray,
    quality: np.ndarray,
    t_start: float,
    t_stop: float,
    exposure_s: float,
    osa: str,
    respfile: str,
    ancrfile: str,
) -> fits.BinTableHDU:
    n = len(rate)
    date = _processing_date(t_stop)
    ontime = _ontime(inst, t_start, t_stop, exposure_s)
    telapse = min((t_stop - t_start) * 86400.0, ontime * 1.03)
    if inst.code == "isgri":
        creator = f"ISGRISpectraSum.v{'5.4.2' if osa == '10' else '5.8.2'}.extractall"
        first_rev, last_rev = _revolution(t_start), _revolution(t_stop)
        revs = (
            [("REVOL", first_rev)]
            if first_rev == last_rev
            else [("REVOLS", f"{first_rev:04d}..{last_rev:04d}")]
        )
        cards: list[tuple[str, Any]] = [
            ("EXTNAME", "ISGR-EVTS-SPE"),
            ("EXTREL", "10.4" if osa == "10" else "11.0"),
            ("BASETYPE", "DAL_TABLE"),
            ("TELESCOP", "INTEGRAL"),
            ("ORIGIN", "ISDC"),
            ("INSTRUME", inst.instrume),
            ("DETNAM", inst.detnam),
            ("ISDCLEVL", "SPE"),
            ("CREATOR", creator),
            ("CONFIGUR", _CONFIGUR[osa]),
            ("DATE", date),
            *_time_cards(t_start, t_stop, dates=False)[:4],
            ("SW_TYPE", "POINTING"),
            ("TSTART", t_start),
            ("TSTOP", t_stop),
            ("TELAPSE", telapse),
            ("ONTIME", ontime),
            ("DEADC", inst.deadc),
            ("EXPOSURE", exposure_s),
            ("EXP_SRC", exposure_s * 0.45),
            ("RADECSYS", "FK5"),
            ("EQUINOX", 2000.0),
            ("RA_OBJ", source.ra_deg),
            ("DEC_OBJ", source.dec_deg),
            ("SOURCEID", _source_id(source.ra_deg, source.dec_deg)),
            ("NAME", source.name),
            ("HDUCLASS", "OGIP"),
            ("HDUCLAS1", "SPECTRUM"),
            ("HDUVERS", "1.2.1"),
            ("HDUCLAS2", "TOTAL"),
            ("HDUCLAS3", "RATE"),
            ("DETCHANS", n),
            ("CHANTYPE", "PI"),
            ("AREASCAL", 1),
            ("BACKSCAL", 1),
            ("CORRSCAL", 0),
            ("BACKFILE", "NONE"),
            ("CORRFILE", "NONE"),
            ("ANCRFILE", ancrfile),
            ("FITTYPE", 6),
            ("TLMIN1", 0),
            ("TLMAX1", n - 1),
            ("EXTVER", 1),
            ("GRPID1", 1),
            ("STAMP", ""),
            ("RESPFILE", respfile),
            ("LONGSTRN", "OGIP 1.0"),
            ("FILTER", "none"),
            *revs,
        ]
        columns = [
            fits.Column("CHANNEL", "1I", array=np.arange(n)),
            fits.Column("RATE", "1E", unit="count/s", array=rate),
            fits.Column("SYS_ERR", "1E", array=np.zeros(n)),
            fits.Column("STAT_ERR", "1E", unit="count/s", array=stat_err),
            fits.Column("QUALITY", "1I", array=quality),
            fits.Column("GROUPING", "1I", array=np.ones(n, dtype=np.int16)),
        ]
    else:
        creator = "spe_pick 3.0.3"
        cards = [
            ("EXTNAME", f"{inst.prefix}-PHA1-SPE"),
            ("EXTREL", "10.4"),
            ("BASETYPE", "DAL_TABLE"),
            ("TELESCOP", "INTEGRAL"),
            ("ORIGIN", "ISDC"),
            ("INSTRUME", inst.instrume),
            ("ISDCLEVL", "SPE"),
            ("CREATOR", creator),
            ("CONFIGUR", _CONFIGUR[osa]),
            ("DATE", date),
            *_time_cards(t_start, t_stop),
            ("TELAPSE", telapse),
            ("ONTIME", ontime),
            ("DEADC", inst.deadc),
            ("EXPOSURE", exposure_s),
            ("RADECSYS", "FK5"),
            ("EQUINOX", 2000.0),
            ("RA_OBJ", source.ra_deg),
            ("DEC_OBJ", source.dec_deg),
            ("SOURCEID", _source_id(source.ra_deg, source.dec_deg)),
            ("NAME", source.name),
            ("CHANTYPE", "PI"),
            ("DETCHANS", n),
            ("POISSERR", False),
            ("HDUCLASS", "OGIP"),
            ("HDUCLAS1", "SPECTRUM"),
            ("HDUCLAS2", "NET"),
            ("HDUCLAS3", "RATE"),
            ("HDUVERS", "1.2.1"),
            ("AREASCAL", 1.0),
            ("BACKSCAL", 1.0),
            ("CORRSCAL", 0.0),
            ("BACKFILE", "NONE"),
            ("CORRFILE", "NONE"),
            ("RESPFILE", respfile),
            ("ANCRFILE", ancrfile),
            # JEM-X spectra number their channels from 1 while EBOUNDS counts from 0.
            ("TLMIN1", 1),
            ("TLMAX1", n),
            ("EXTVER", 1),
            ("TFIRST", t_start),
            ("TLAST", t_stop),
            ("STAMP", f"{date} {creator}"),
        ]
        columns = [
            fits.Column("CHANNEL", "1I", array=np.arange(1, n + 1)),
            fits.Column("RATE", "1D", unit="count/s", array=rate),
            fits.Column("STAT_ERR", "1D", unit="count/s", array=stat_err),
            fits.Column("SYS_ERR", "1D", array=np.zeros(n)),
            fits.Column("QUALITY", "1I", array=quality),
            fits.Column("GROUPING", "1I", array=np.ones(n, dtype=np.int16)),
        ]
    return fits.BinTableHDU.from_columns(columns, header=_header(cards))


def _response_cards(inst: _Instrument, n: int, chantype: str) -> list[tuple[str, Any]]:
    return [
        ("HDUCLASS", "OGIP"),
        ("HDUCLAS1", "RESPONSE"),
        ("HDUVERS", "1.3.0"),
        ("HDUVERS1", "1.0.0"),
        ("HDUVERS2", "1.3.0"),
        ("TELESCOP", "INTEGRAL"),
        ("INSTRUME", inst.instrume),
        ("DETNAM", inst.detnam or "NONE"),
        ("FILTER", "NONE"),
        ("DETCHANS", n),
        ("CHANTYPE", chantype),
    ]


def _matrix_hdu(
    inst: _Instrument,
    response: _Response,
    matrix: np.ndarray,
    *,
    extname: str,
    first_channel: int,
    chantype: str,
    extra: list[tuple[str, Any]],
) -> fits.BinTableHDU:
    n_e, n = matrix.shape
    cards = [
        ("EXTNAME", extname),
        ("TLMIN4", first_channel),
        ("TLMAX4", first_channel + n - 1),
        *_response_cards(inst, n, chantype)[:2],
        ("HDUCLAS2", "RSP_MATRIX"),
        ("HDUCLAS3", ""),
        *_response_cards(inst, n, chantype)[2:10],
        ("NUMGRP", n_e),
        ("NUMELT", n_e * n),
        ("CHANTYPE", chantype),
        ("LO_THRES", 0.0),
        ("EFFAREA", 1.0),
        ("RMFVERSN", "1992a"),
        *extra,
        ("EXTVER", 1),
        ("GRPID1", 1),
        ("STAMP", _stamp(extra)),
    ]
    columns = [
        fits.Column("ENERG_LO", "E", unit="keV", array=response.energ_lo),
        fits.Column("ENERG_HI", "E", unit="keV", array=response.energ_hi),
        fits.Column("N_GRP", "I", array=np.ones(n_e, dtype=np.int16)),
        fits.Column("F_CHAN", "1I", array=np.full(n_e, first_channel, dtype=np.int16)),
        fits.Column("N_CHAN", "1I", array=np.full(n_e, n, dtype=np.int16)),
        fits.Column("MATRIX", f"{n}E", array=matrix.astype(np.float32)),
    ]
    return fits.BinTableHDU.from_columns(columns, header=_header(cards))


def _ebounds_hdu(
    inst: _Instrument,
    response: _Response,
    *,
    extname: str,
    chantype: str,
    extra: list[tuple[str, Any]],
) -> fits.BinTableHDU:
    n = len(response.chan_lo)
    cards = [
        ("EXTNAME", extname),
        *_response_cards(inst, n, chantype)[:2],
        ("HDUCLAS2", "EBOUNDS"),
        ("HDUVERS", "1.3.0"),
        ("HDUDOC", "OGIP memos CAL/GEN/92-002 & 92-002a"),
        *_response_cards(inst, n, chantype)[3:],
        ("EFFAREA", 1.0),
        ("RMFVERSN", "1992a"),
        ("TLMIN1", 0),
        ("TLMAX1", n - 1),
        *extra,
        ("EXTVER", 1),
        ("GRPID1", 1),
        ("STAMP", _stamp(extra)),
    ]
    columns = [
        fits.Column("CHANNEL", "J", array=np.arange(n)),
        fits.Column("E_MIN", "E", unit="keV", array=response.chan_lo),
        fits.Column("E_MAX", "E", unit="keV", array=response.chan_hi),
    ]
    return fits.BinTableHDU.from_columns(columns, header=_header(cards))


def _response_grouping(
    inst: _Instrument, members: Sequence[str], cards: list[tuple[str, Any]]
) -> fits.BinTableHDU:
    columns = _member_columns(len(members), "", "BINTABLE", first_position=3)
    columns[1] = fits.Column("MEMBER_NAME", "32A", array=list(members))
    columns[2] = fits.Column(
        "MEMBER_VERSION", "1J", null=0, array=np.ones(len(members), dtype=np.int32)
    )
    return fits.BinTableHDU.from_columns(columns, header=_header(cards))


def _write_isgri_rmf(
    path: Path, inst: _Instrument, response: _Response, osa: str, t_stop: float
) -> None:
    date = _processing_date(t_stop)
    n = len(response.chan_lo)
    if osa == "10":
        matrix = response.redistribution
        chantype, creator, extrel = "PHA", "RBNRMF  4.5.3", "5.7.3"
    else:
        # OSA 11 keeps the effective area in the matrix; its ARF is all ones.
        matrix = response.redistribution * response.area[:, None]
        chantype, creator, extrel = "PI", "RBNRMF  5.0.3", "11.0"
    common = [
        ("DATE", date),
        ("CREATOR", creator),
        ("EXTREL", extrel),
        ("BASETYPE", "DAL_TABLE"),
        ("ORIGIN", "ISDC"),
        ("CONFIGUR", _CONFIGUR[osa]),
    ]
    if osa == "11":
        common += _time_cards(0.0, 0.0, dates=False)[:4]
    rsp = _matrix_hdu(
        inst,
        response,
        matrix,
        extname="ISGR-RMF.-RSP",
        first_channel=0,
        chantype=chantype,
        extra=[*common, ("BINNING", "FULL_RES"), ("VETO_THR", 80.0)],
    )
    ebds = _ebounds_hdu(inst, response, extname="ISGR-EBDS-MOD", chantype=chantype, extra=common)
    if osa == "10":
        grouping = _response_grouping(
            inst,
            ["ISGR-RMF.-RSP", "ISGR-EBDS-MOD"],
            [
                ("EXTNAME", "GROUPING"),
                ("EXTVER", 1),
                ("GRPNAME", "ISGR-RMF.-GRP"),
                ("EXTREL", "4.3"),
                ("BASETYPE", "DAL_GROUP"),
                ("TELESCOP", "INTEGRAL"),
                ("ORIGIN", "ISDC"),
                ("INSTRUME", inst.instrume),
                ("DETNAM", inst.detnam),
                ("CREATOR", "mat-maker 1.1"),
                ("CONFIGUR", _CONFIGUR[osa]),
                ("DATE", date),
                *_time_cards(0.0, 0.0, dates=False)[:4],
                ("LO_THRES", 0.0),
                ("DETCHANS", n),
                ("STAMP", f"{date} mat-maker 1.1"),
            ],
        )
        hdus = [_primary(), grouping, rsp, ebds]
    else:
        hdus = [_primary(), ebds, rsp]
    _write(path, hdus)


def _arf_columns(response: _Response, values: np.ndarray, unit: str | None) -> list[fits.Column]:
    fmt = "1E" if unit else "E"
    return [
        fits.Column("ENERG_LO", fmt, unit="keV" if unit else None, array=response.energ_lo),
        fits.Column("ENERG_HI", fmt, unit="keV" if unit else None, array=response.energ_hi),
        fits.Column("SPECRESP", fmt, unit=unit, array=values),
    ]


def _write_isgri_arf(
    path: Path, inst: _Instrument, response: _Response, osa: str, t_stop: float
) -> None:
    date = _processing_date(t_stop)
    values = response.area if osa == "10" else np.ones_like(response.area)
    cards = [
        ("EXTNAME", "ISGR-ARF.-RSP"),
        ("EXTREL", "6.5"),
        ("BASETYPE", "DAL_TABLE"),
        ("TELESCOP", "INTEGRAL"),
        ("ORIGIN", "ISDC"),
        ("INSTRUME", inst.instrume),
        ("DETNAM", inst.detnam),
        ("CREATOR", "mat-maker 1.1" if osa == "10" else "dal_create 1.2"),
        ("CONFIGUR", _CONFIGUR[osa]),
        ("DATE", date),
        *_time_cards(0.0, 0.0, dates=False)[:4],
        ("HDUCLASS", "OGIP"),
        ("HDUCLAS1", "RESPONSE"),
        ("HDUCLAS2", "SPECRESP"),
        ("HDUVERS", "1.3.0"),
        ("EXTVER", 1),
    ]
    cards.append(("STAMP", _stamp(cards)))
    # OSA 11 writes its unit ARF without units, as the real files do.
    unit = "cm**2" if osa == "10" else None
    table = fits.BinTableHDU.from_columns(_arf_columns(response, values, unit), _header(cards))
    _write(path, [_primary(), table])


def _write_jemx_rmf(path: Path, inst: _Instrument, response: _Response, t_stop: float) -> None:
    date = _processing_date(t_stop)
    n = len(response.chan_lo)
    common = [
        ("DATE", date),
        ("CREATOR", "RBNRMF  5.0.3"),
        ("BASETYPE", "DAL_TABLE"),
        ("ORIGIN", "DNSC"),
        ("CONFIGUR", "osa_sw-7.0 linux"),
    ]
    rsp = _matrix_hdu(
        inst,
        response,
        response.redistribution,
        extname="SPECRESP MATRIX",
        first_channel=1,
        chantype="PI",
        extra=[*common[:2], ("EXTREL", "4.3"), *common[2:]],
    )
    ebds = _ebounds_hdu(
        inst,
        response,
        extname="EBOUNDS",
        chantype="PI",
        extra=[*common[:2], ("EXTREL", "6.5"), *common[2:], ("DATAMODE", "FULL_SPTI_EVENTS")],
    )

    def arf(extname: str, values: np.ndarray) -> fits.BinTableHDU:
        cards = [
            ("EXTNAME", extname),
            ("EXTREL", "6.5"),
            ("BASETYPE", "DAL_TABLE"),
            ("TELESCOP", "INTEGRAL"),
            ("ORIGIN", "NSI/DTU"),
            ("INSTRUME", inst.instrume),
            ("ISDCLEVL", "SPE" if extname.endswith("AXIS-ARF") else None),
            ("CREATOR", "j_rmf_make 1.0.0"),
            ("CONFIGUR", "osa_sw-7.0 linux"),
            ("DATE", date),
            ("HDUCLASS", "OGIP"),
            ("HDUCLAS1", "RESPONSE"),
            ("HDUCLAS2", "SPECRESP"),
            ("HDUVERS", "1.3.0"),
            ("EXTVER", 1),
            ("GRPID1", 1),
        ]
        cards.append(("STAMP", _stamp(cards)))
        # The unit says dm**2 while the values are cm^2: a quirk of the real files.
        return fits.BinTableHDU.from_columns(
            _arf_columns(response, values, "dm**2"), _header(cards)
        )

    members = [f"{inst.prefix}-{kind}" for kind in ("RMF.-RSP", "FBDS-MOD", "AXIS-ARF", "IMAG-ARF")]
    grouping = _response_grouping(
        inst,
        members,
        [
            ("EXTNAME", "GROUPING"),
            ("EXTVER", 1),
            ("GRPNAME", f"{inst.prefix}-RMF.-GRP"),
            ("EXTREL", "9.9"),
            ("BASETYPE", "DAL_GROUP"),
            ("TELESCOP", "INTEGRAL"),
            ("ORIGIN", "NSI/DTU"),
            ("INSTRUME", inst.instrume),
            ("CREATOR", "j_rmf_make 1.0.0"),
            ("CONFIGUR", "osa_sw-7.0 linux"),
            ("DATE", date),
            *_time_cards(0.0, 0.0, dates=False)[:4],
            ("DETCHANS", n),
            ("STAMP", f"{date} j_rmf_make 1.0.0"),
            ("LONGSTRN", "OGIP 1.0"),
        ],
    )
    # The imaging ARF loses a little more at low energy, where the mask support absorbs.
    centre = np.sqrt(response.energ_lo * response.energ_hi)
    imaging = response.area * (1.0 - 0.3 * np.exp(-(centre - 2.0) / 1.5))
    hdus = [
        _primary(extname=True),
        grouping,
        rsp,
        ebds,
        arf(f"{inst.prefix}-AXIS-ARF", response.area),
        arf(f"{inst.prefix}-IMAG-ARF", imaging),
    ]
    _write(path, hdus)


def _write_jemx_arf(
    path: Path, inst: _Instrument, response: _Response, t_start: float, t_stop: float
) -> None:
    date = _processing_date(t_stop)
    cards = [
        ("EXTNAME", "SPECRESP"),
        ("EXTREL", "9.9"),
        ("BASETYPE", "DAL_TABLE"),
        ("TELESCOP", "INTEGRAL"),
        ("ORIGIN", "NSI/DTU"),
        ("INSTRUME", inst.instrume),
        ("CREATOR", "spe_pick 3.0.3"),
        ("CONFIGUR", _CONFIGUR["11"]),
        ("DATE", date),
        ("HDUCLASS", "OGIP"),
        ("HDUCLAS1", "RESPONSE"),
        ("HDUCLAS2", "SPECRESP"),
        ("HDUVERS", "1.3.0"),
        ("EXTVER", 1),
        ("STAMP", f"{date} spe_pick 3.0.3"),
        ("TSTART", t_start),
        ("TSTOP", t_stop),
    ]
    table = fits.BinTableHDU.from_columns(
        _arf_columns(response, response.area, "cm**2"), _header(cards)
    )
    _write(path, [_primary(extname=True), table])


# ----------------------------------------------------------------------------- light curves

_VARIABILITY = ("constant", "outburst", "sinusoid")
_WIDTH_STYLES = ("xax_e", "timedel_keyword", "timedel_column")


def _variability(kind: str, time: np.ndarray, t0: float, span: float) -> np.ndarray:
    """Relative light-curve shape (normalised to its mean by the caller)."""
    phase = (time - t0) / span
    if kind == "constant":
        return np.ones_like(time)
    if kind == "outburst":
        # Fast rise, exponential decay, peaking at ten times the quiescent level.
        peak, rise, decay = 0.25, 0.04, 0.30
        shape = np.where(
            phase < peak, np.exp(-(((phase - peak) / rise) ** 2)), np.exp(-(phase - peak) / decay)
        )
        return 1.0 + 9.0 * shape
    if kind == "sinusoid":
        # An orbital modulation: three cycles over the light curve.
        return 1.0 + 0.5 * np.sin(2.0 * np.pi * 3.0 * phase)
    raise ValueError(f"unknown variability {kind!r}; use one of {', '.join(_VARIABILITY)}")


def write_lightcurve(
    path: Path | str,
    *,
    instrument: str = "isgri",
    source: SkySource,
    t_start_ijd: float,
    n_bins: int,
    bin_s: float,
    rates: Sequence[float] | np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None,
    variability: str = "constant",
    width_style: str | None = None,
    t_stop_ijd: float | None = None,
    e_min_kev: float | None = None,
    e_max_kev: float | None = None,
    osa: str = "11",
    grouping: bool | None = None,
    seed: Seed = None,
) -> Path:
    """A source light curve: ``ISGR-SRC.-LCR`` or ``JMX1-SRC.-LCR``/``JMX2-SRC.-LCR``.

    True rates (counts/s) are ``rates`` (one per bin, or a function of the bin centres in IJD),
    else the source's band rate shaped by ``variability`` (constant; outburst: a fast rise to
    ten times the quiescent level and an exponential decay; sinusoid: an orbital modulation)
    with the source's flux as the mean; the file holds them with Gaussian noise.
    ``width_style`` says how bin widths are given: ``xax_e`` (half widths in days, with the
    TIMEDEL keyword: ISGRI's default),
    ``timedel_keyword`` (the keyword alone: JEM-X's default) or ``timedel_column``.
    ``t_stop_ijd`` before the end of the last bin cuts that bin short, as at the end of a ScW
    (not expressible with ``timedel_keyword``). JEM-X files have a GROUPING index except in the
    ``timedel_column`` style, as in the real files, unless ``grouping`` says otherwise.
    """
    inst = _instrument(instrument)
    osa = _check_osa(osa)
    if n_bins < 1 or not bin_s > 0:
        raise ValueError("a light curve needs n_bins >= 1 and bin_s > 0")
    width_style = width_style or ("xax_e" if inst.code == "isgri" else "timedel_keyword")
    if width_style not in _WIDTH_STYLES:
        raise ValueError(f"unknown width_style {width_style!r}; use one of {_WIDTH_STYLES}")
    if e_min_kev is None or e_max_kev is None:
        e_min_kev, e_max_kev = (20.0, 40.0) if inst.code == "isgri" else (3.04, 34.88)
    if grouping is None:
        grouping = inst.code != "isgri" and width_style != "timedel_column"
    rng = _rng(seed)

    bin_d = bin_s / 86400.0
    starts = t_start_ijd + np.arange(n_bins) * bin_d
    stops = starts + bin_d
    if t_stop_ijd is not None:
        if not starts[-1] < t_stop_ijd <= stops[-1] + 1e-12:
            raise ValueError("t_stop_ijd must fall within the last bin")
        if t_stop_ijd < stops[-1] - 1e-9 and width_style == "timedel_keyword":
            raise ValueError("a TIMEDEL keyword cannot describe a shortened last bin")
        stops[-1] = t_stop_ijd
    time = (starts + stops) / 2.0
    width_s = (stops - starts) * 86400.0

    if rates is None:
        # The source's flux is the mean over the light curve, as a mosaic of the same time
        # range would show it.
        shape = _variability(variability, time, t_start_ijd, n_bins * bin_d)
        true_rate = source_rate(source, inst.code, e_min_kev, e_max_kev) * shape / shape.mean()
    elif callable(rates):
        true_rate = np.asarray(rates(time), dtype=float)
    else:
        true_rate = np.asarray(rates, dtype=float)
    if true_rate.shape != (n_bins,):
        raise ValueError(f"rates must give one value per bin ({n_bins}), got {true_rate.shape}")

    if inst.code == "isgri":
        fracexp = rng.uniform(0.95, 1.0, n_bins)
    else:
        fracexp = rng.uniform(0.78, 0.88, n_bins)
    exposure = width_s * fracexp
    var_rate = _variance_rate(inst, e_min_kev, e_max_kev)
    error = np.sqrt((var_rate + inst.source_noise * np.clip(true_rate, 0, None)) / exposure)
    rate = true_rate + rng.standard_normal(n_bins) * error
    background = inst.background_fraction * var_rate * rng.normal(1.0, 0.03, n_bins)
    back_err = np.sqrt(background / exposure)

    t_stop = float(stops[-1])
    meta = _LightCurveMeta(
        inst=inst,
        source=source,
        t_start=t_start_ijd,
        t_stop=t_stop,
        bin_d=bin_d,
        e_min=e_min_kev,
        e_max=e_max_kev,
        osa=osa,
        ontime=float(np.sum(width_s)) * float(np.mean(fracexp)),
        mean_rate=float(np.sum(rate / error**2) / np.sum(1.0 / error**2)),
        mean_error=float(1.0 / np.sqrt(np.sum(1.0 / error**2))),
    )
    make_table = _isgri_lc_hdu if inst.code == "isgri" else _jemx_lc_hdu
    table = make_table(
        meta, time, rate, error, fracexp, background, back_err, stops - starts, width_style
    )
    hdus: list[Any] = [_primary(extname=inst.code == "isgri")]
    if grouping:
        hdus.append(_lc_grouping(meta))
    hdus.append(table)
    return _write(path, hdus)


@dataclass
class _LightCurveMeta:
    inst: _Instrument
    source: SkySource
    t_start: float
    t_stop: float
    bin_d: float
    e_min: float
    e_max: float
    osa: str
    ontime: float
    mean_rate: float  # error-weighted mean rate and its error (SRCCNT, SRCCNTE)
    mean_error: float

    @property
    def detsig(self) -> float:
        return self.mean_rate / self.mean_error


def _lc_common_cards(meta: _LightCurveMeta) -> list[tuple[str, Any]]:
    return [
        ("MJDREF", timeline.MJDREF_IJD),
        ("TIMESYS", "TT"),
        ("TIMEUNIT", "d"),
        ("TIMEREF", "LOCAL"),
        ("REVOL", _revolution(meta.t_start)),
        ("SWID", _scw_id(meta.t_start)),
        ("SW_TYPE", "POINTING"),
    ]


def _isgri_lc_hdu(
    meta: _LightCurveMeta,
    time: np.ndarray,
    rate: np.ndarray,
    error: np.ndarray,
    fracexp: np.ndarray,
    background: np.ndarray,
    back_err: np.ndarray,
    width_d: np.ndarray,
    width_style: str,
) -> fits.BinTableHDU:
    inst, source = meta.inst, meta.source
    date = _processing_date(meta.t_stop)
    creator = "ii_lc_extract 2.7.1"
    telapse = (meta.t_stop - meta.t_start) * 86400.0
    cards: list[tuple[str, Any]] = [
        ("EXTNAME", "ISGR-SRC.-LCR"),
        ("EXTREL", "7.9.4"),
        ("BASETYPE", "DAL_TABLE"),
        ("TELESCOP", "INTEGRAL"),
        ("ORIGIN", "ISDC"),
        ("INSTRUME", inst.instrume),
        ("DETNAM", inst.detnam),
        ("ISDCLEVL", "LCR"),
        ("CREATOR", creator),
        ("CONFIGUR", _CONFIGUR[meta.osa]),
        ("DATE", date),
        *_lc_common_cards(meta),
        ("SWBOUND", "OTF"),
        ("TSTART", meta.t_start),
        ("TSTOP", meta.t_stop),
        ("TFIRST", meta.t_start),
        ("TLAST", meta.t_stop),
        ("TELAPSE", telapse),
        ("ONTIME", meta.ontime),
        ("DEADC", inst.deadc),
        ("EXPOSURE", meta.ontime * inst.deadc),
        ("EXP_SRC", meta.ontime * inst.deadc * 0.45),
        ("RADECSYS", "FK5"),
        ("EQUINOX", 2000.0),
        ("TIERRELA", 0.0),
        ("TIERABSO", 0.0),
        ("CHANTYPE", "PI"),
        ("E_MIN", meta.e_min),
        ("E_MAX", meta.e_max),
        ("EUNIT", "keV"),
        ("SOURCEID", _source_id(source.ra_deg, source.dec_deg)),
        ("NAME", source.name),
        ("RA_OBJ", source.ra_deg),
        ("DEC_OBJ", source.dec_deg),
        ("FITTYPE", 6),
        ("VIGNET", 1.0),
        ("SRCCNT", meta.mean_rate),
        ("SRCCNTE", meta.mean_error),
        ("BACKAPP", True),
        ("DEADAPP", True),
        ("VIGNAPP", True),
        ("BANDTYPE", "ENERGY"),
        ("TIMEDEL", meta.bin_d),
        ("TIMEPIXR", 0.5),
        ("EXTVER", 1),
        ("GRPID1", 1),
        ("STAMP", f"{date} {creator}"),
    ]
    columns = [
        fits.Column("TIME", "1D", unit="d", array=time),
        fits.Column("TOT_COUNTS", "1E", unit="count/s", array=rate + background),
        fits.Column("BACKV", "1E", unit="count/s", array=background),
        fits.Column("BACKE", "1E", unit="count/s", array=back_err),
        fits.Column("RATE", "1E", unit="count/s", array=rate),
        fits.Column("ERROR", "1E", unit="count/s", array=error),
        fits.Column("FRACEXP", "1E", array=fracexp),
    ]
    if width_style == "xax_e":
        # Half widths in days, without a unit, as ii_lc_extract writes them.
        columns.append(fits.Column("XAX_E", "1E", array=width_d / 2.0))
    elif width_style == "timedel_column":
        columns.append(fits.Column("TIMEDEL", "1D", unit="d", array=width_d))
    return fits.BinTableHDU.from_columns(columns, header=_header(cards))


def _jemx_lc_hdu(
    meta: _LightCurveMeta,
    time: np.ndarray,
    rate: np.ndarray,
    error: np.ndarray,
    fracexp: np.ndarray,
    background: np.ndarray,
    back_err: np.ndarray,
    width_d: np.ndarray,
    width_style: str,
) -> fits.BinTableHDU:
    inst, source = meta.inst, meta.source
    date = _processing_date(meta.t_stop)
    creator = "lc_pick 3.4.3" if meta.osa == "11" else "lc_pick 3.3"
    cards: list[tuple[str, Any]] = [
        ("EXTNAME", f"{inst.prefix}-SRC.-LCR"),
        ("EXTREL", "11.1" if meta.osa == "11" else "7.7"),
        ("BASETYPE", "DAL_TABLE"),
        ("TELESCOP", "INTEGRAL"),
        ("ORIGIN", "ISDC"),
        ("INSTRUME", inst.instrume),
        ("ISDCLEVL", "LCR"),
        ("CREATOR", creator),
        ("CONFIGUR", _CONFIGUR[meta.osa]),
        ("DATE", date),
        *_lc_common_cards(meta),
        ("SWBOUND", "OTF"),
        ("TSTART", meta.t_start),
        ("TSTOP", meta.t_stop),
        ("TFIRST", meta.t_start),
        ("TLAST", meta.t_stop),
        ("TELAPSE", (meta.t_stop - meta.t_start) * 86400.0),
        ("ONTIME", meta.ontime),
        ("DEADC", inst.deadc),
        ("RADECSYS", "FK5"),
        ("EQUINOX", 2000.0),
        ("DATAMODE", "FULL"),
        ("TIMVERS", "OGIP/93-003"),
        ("TIERRELA", 0.0),
        ("TIERABSO", 0.0001220703125),
        ("CHANTYPE", "PI"),
        ("CHANMIN", _jemx_channel(meta.e_min)),
        ("CHANMAX", _jemx_channel(meta.e_max)),
        ("E_MIN", meta.e_min),
        ("E_MAX", meta.e_max),
        ("EUNIT", "keV"),
        ("SOURCEID", _source_id(source.ra_deg, source.dec_deg)),
        ("NAME", source.name),
        ("RA_OBJ", source.ra_deg),
        ("DEC_OBJ", source.dec_deg),
        ("OFFANGLE", 0.0),
        ("VIGNET", 1.0),
        ("SRCCNT", meta.mean_rate),
        ("SRCCNTE", meta.mean_error),
        ("DETSIG", meta.detsig),
        ("BACKAPP", True),
        ("DEADAPP", True),
        ("VIGNAPP", True),
        ("TIMEDEL", meta.bin_d),
        ("TIMEPIXR", 0.5),
        ("EXTVER", 1),
        ("GRPID1", 1),
        ("STAMP", f"{date} {creator}"),
    ]
    # The TIMEDEL-column variant (lc_pick of OSA 11.2 as served by MMODA) has no units at all.
    bare = width_style == "timedel_column"

    def unit(value: str) -> str | None:
        return None if bare else value

    fmt_d, fmt_e = ("D", "E") if bare else ("1D", "1E")
    columns = [
        fits.Column("TIME", fmt_d, unit=unit("d"), array=time),
        fits.Column("RATE", fmt_e, unit=unit("count/s"), array=rate),
        fits.Column("ERROR", fmt_e, unit=unit("count/s"), array=error),
        fits.Column("BRATE", fmt_e, unit=unit("count/s"), array=background),
        fits.Column("BERROR", fmt_e, unit=unit("count/s"), array=back_err),
        # Barycentring is not done by lc_pick: the column is there, full of zeros.
        fits.Column("BARYTIME", fmt_d, unit=unit("d"), array=np.zeros_like(time)),
        fits.Column("FRACEXP", fmt_e, array=fracexp),
    ]
    if width_style == "timedel_column":
        columns.append(fits.Column("TIMEDEL", "D", array=width_d))
    elif width_style == "xax_e":
        columns.append(fits.Column("XAX_E", "1E", array=width_d / 2.0))
    return fits.BinTableHDU.from_columns(columns, header=_header(cards))


def _uint16(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint16)


def _lc_grouping(meta: _LightCurveMeta) -> fits.BinTableHDU:
    inst, source = meta.inst, meta.source
    extname = f"{inst.prefix}-SRC.-LCR"
    columns = _member_columns(1, extname, "BINTABLE", first_position=3)
    columns += [
        fits.Column("SOURCEID", "16A", array=[_source_id(source.ra_deg, source.dec_deg)]),
        fits.Column("NAME", "20A", array=[source.name[:20]]),
        fits.Column("RA_OBJ", "1E", unit="deg", array=[source.ra_deg]),
        fits.Column("DEC_OBJ", "1E", unit="deg", array=[source.dec_deg]),
        fits.Column("DETSIG", "1E", array=[meta.detsig]),
        fits.Column("OFFANGLE", "1E", unit="deg", array=[0.0]),
        fits.Column("DATAMODE", "4A", array=["FULL"]),
        fits.Column("CHANMIN", "1I", bzero=32768, array=_uint16(_jemx_channel(meta.e_min))),
        fits.Column("CHANMAX", "1I", bzero=32768, array=_uint16(_jemx_channel(meta.e_max))),
        fits.Column("E_MIN", "1E", unit="keV", array=[meta.e_min]),
        fits.Column("E_MAX", "1E", unit="keV", array=[meta.e_max]),
    ]
    cards = [
        ("EXTNAME", "GROUPING"),
        ("EXTVER", 1),
        ("GRPNAME", f"{extname}-IDX"),
        ("IDXMEMBR", extname),
        ("EXTREL", "7.7"),
        ("BASETYPE", "DAL_GROUP"),
        ("TELESCOP", "INTEGRAL"),
        ("ORIGIN", "ISDC"),
        ("INSTRUME", inst.instrume),
        ("ISDCLEVL", "LCR"),
        ("CREATOR", "lc_pick 3.4.3" if meta.osa == "11" else "lc_pick 3.3"),
        ("CONFIGUR", _CONFIGUR[meta.osa]),
        ("DATE", _processing_date(meta.t_stop)),
        *_lc_common_cards(meta),
        ("SWBOUND", "OTF"),
        ("TSTART", meta.t_start),
        ("TSTOP", meta.t_stop),
        ("RADECSYS", "FK5"),
        ("EQUINOX", 2000.0),
    ]
    return fits.BinTableHDU.from_columns(columns, header=_header(cards))


# ----------------------------------------------------------------------------- catalogues

_FLAVOURS = ("mmoda", "mmoda_jemx", "jemx_sloc")


def _as_entry(item: Any) -> CatalogEntry:
    """A catalogue row from a CatalogEntry, a tuple or any object with the usual attributes."""
    if isinstance(item, CatalogEntry):
        return item
    if isinstance(item, tuple | list):
        name, ra, dec, significance, *rest = item
        is_new = bool(rest[0]) if rest else False
        return CatalogEntry(name, float(ra), float(dec), float(significance), is_new)

    def attribute(*names: str, default: Any = None) -> Any:
        for name in names:
            if getattr(item, name, None) is not None:
                return getattr(item, name)
        return default

    return CatalogEntry(
        name=attribute("name"),
        ra_deg=float(attribute("ra_deg", "ra")),
        dec_deg=float(attribute("dec_deg", "dec")),
        significance=float(attribute("significance", default=0.0)),
        is_new=bool(attribute("is_new", default=False)),
        flux=attribute("flux"),
        flux_err=attribute("flux_err", "flux_error"),
        err_rad_deg=attribute("err_rad_deg", "error_radius_deg"),
        xpix=attribute("xpix"),
        ypix=attribute("ypix"),
    )


def write_catalog(
    path: Path | str,
    *,
    sources: Iterable[Any],
    flavour: str = "mmoda",
    instrument: str = "jemx1",
    e_min_kev: float = 3.04,
    e_max_kev: float = 34.88,
) -> Path:
    """A source catalogue as MMODA or OSA writes it.

    ``mmoda``: the ISGRI catalogue table (no EXTNAME) with meta_ID, src_names, significance,
    ra, dec, NEW_SOURCE, ISGRI_FLAG, FLAG, ERR_RAD and the FRAME/COORD_UNIT/LON_NAME/LAT_NAME
    keywords; new sources without a name become ``NEW_1``, ``NEW_2``... ``mmoda_jemx``: the
    JEM-X variant (no NEW_SOURCE or ISGRI_FLAG; new sources named ``NEW SOURCE``).
    ``jemx_sloc``: the OSA source list ``JMX1-SLOC-RES`` (``instrument`` and the band serve this
    flavour). ``sources`` holds CatalogEntry objects, tuples (name, ra, dec, significance,
    is_new) or objects with those attributes. The catalogue is deterministic: no seed.
    """
    if flavour not in _FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}; use one of {', '.join(_FLAVOURS)}")
    entries = [_as_entry(item) for item in sources]
    if flavour == "jemx_sloc":
        table = _sloc_hdu(entries, _instrument(instrument), e_min_kev, e_max_kev)
    else:
        table = _mmoda_catalog_hdu(entries, jemx=flavour == "mmoda_jemx")
    return _write(path, [_primary(), table])


def _catalog_names(entries: Sequence[CatalogEntry], placeholder: str | None) -> list[str]:
    names, counter = [], 0
    for entry in entries:
        if entry.name:
            names.append(entry.name)
        else:
            counter += 1
            names.append(placeholder or f"NEW_{counter}")
    return names


def _mmoda_catalog_hdu(entries: Sequence[CatalogEntry], *, jemx: bool) -> fits.BinTableHDU:
    n = len(entries)
    names = _catalog_names(entries, "NEW SOURCE" if jemx else None)
    width = max([len(name) for name in names] + [1])
    columns = [
        fits.Column("meta_ID", "K", null=999999, array=np.arange(n)),
        fits.Column("src_names", f"{width}A", array=names),
        fits.Column("significance", "E", array=[e.significance for e in entries]),
        fits.Column("ra", "E", array=[e.ra_deg for e in entries]),
        fits.Column("dec", "E", array=[e.dec_deg for e in entries]),
    ]
    if not jemx:
        columns += [
            # MMODA asks for TNULL 999999 in a 16-bit column, which wraps to 16959, and writes
            # -32768 for known sources.
            fits.Column(
                "NEW_SOURCE",
                "I",
                null=16959,
                array=np.array([1 if e.is_new else -32768 for e in entries], dtype=np.int16),
            ),
            fits.Column(
                "ISGRI_FLAG", "K", null=999999, array=[0 if e.is_new else 2 for e in entries]
            ),
        ]
    default_err = 0.05 if jemx else 0.00028
    columns += [
        fits.Column("FLAG", "K", null=999999, array=np.zeros(n, dtype=np.int64)),
        fits.Column(
            "ERR_RAD",
            "D",
            array=[
                e.err_rad_deg
                if e.err_rad_deg is not None
                else (_new_source_error(e.significance) if e.is_new and not jemx else default_err)
                for e in entries
            ],
        ),
    ]
    cards = [("FRAME", "fk5"), ("COORD_UNIT", "deg"), ("LON_NAME", "ra"), ("LAT_NAME", "dec")]
    return fits.BinTableHDU.from_columns(columns, header=_header(cards))


def _new_source_error(significance: float) -> float:
    """ISGRI 90% localisation radius (deg) of a source found at a given significance."""
    significance = max(significance, 5.0)
    return float(np.hypot(22.1 / significance**0.95, 0.35) / 60.0)


def _sloc_hdu(
    entries: Sequence[CatalogEntry], inst: _Instrument, e_min: float, e_max: float
) -> fits.BinTableHDU:
    if inst.code == "isgri":
        raise ValueError("a JEM-X source list needs instrument 'jemx1' or 'jemx2'")
    n = len(entries)
    names = _catalog_names(entries, "NEW SOURCE")

    def vector(first: Sequence[float], width: int) -> np.ndarray:
        out = np.zeros((n, width), dtype=np.float32)
        if n:
            out[:, 0] = first
        return out

    def floats(values: Iterable[float | None]) -> np.ndarray:
        return np.array([0.0 if v is None else v for v in values], dtype=np.float32)

    unsigned = np.full(n, 32768, dtype=np.uint16)  # "undefined" in OSA's unsigned columns
    columns = [
        fits.Column("SOURCE_ID", "16A", array=[
            "UNKNOWN" if e.is_new else _source_id(e.ra_deg, e.dec_deg) for e in entries]),
        fits.Column("DAY_ID", "1D", unit="d", array=np.zeros(n)),
        fits.Column("NAME", "20A", array=[name[:20] for name in names]),
        fits.Column("CLASS", "1I", bzero=32768, array=unsigned),
        fits.Column("RA_OBJ", "1E", unit="deg", array=[e.ra_deg for e in entries]),
        fits.Column("DEC_OBJ", "1E", unit="deg", array=[e.dec_deg for e in entries]),
        fits.Column("ERR_RAD", "1E", unit="deg", array=[
            0.05 if e.err_rad_deg is None else e.err_rad_deg for e in entries]),
        fits.Column("RELDIST", "1E", array=[100.0 if e.is_new else 0.05 for e in entries]),
        fits.Column("XPIX", "1E", unit="pixel", array=floats(e.xpix for e in entries)),
        fits.Column("YPIX", "1E", unit="pixel", array=floats(e.ypix for e in entries)),
        fits.Column("PEAKSIZE", "1E", unit="count", array=floats(e.flux for e in entries)),
        fits.Column("DETSIG", "1E", array=[e.significance for e in entries]),
        fits.Column("QUALITY", "1I", array=np.zeros(n, dtype=np.int16)),
        fits.Column("AMPL", "1E", array=floats(e.flux for e in entries)),
        fits.Column("SIGMA", "1E", unit="pixel", array=np.full(n, 1.15, dtype=np.float32)),
        fits.Column("CHI2", "1E", array=np.ones(n, dtype=np.float32)),
        fits.Column("KVAL", "1E", array=np.zeros(n, dtype=np.float32)),
        fits.Column("SVAL", "1E", array=np.zeros(n, dtype=np.float32)),
        fits.Column("RVAL", "1E", array=np.ones(n, dtype=np.float32)),
        fits.Column("INIXPIX", "1E", unit="pixel", array=np.round(
            floats(e.xpix for e in entries))),
        fits.Column("INIYPIX", "1E", unit="pixel", array=np.round(
            floats(e.ypix for e in entries))),
        fits.Column("SPA_MODL", "32A", array=[""] * n),
        fits.Column("SPA_NPAR", "1I", bzero=32768, array=unsigned),
        fits.Column("SPA_PARS", "8E", array=np.zeros((n, 8), dtype=np.float32)),
        fits.Column("SPE_MODL", "128A", array=[""] * n),
        fits.Column("SPE_NPAR", "1I", bzero=32768, array=unsigned),
        fits.Column("SPE_PARS", "32E", array=np.zeros((n, 32), dtype=np.float32)),
        fits.Column("VAR_MODL", "128A", array=[""] * n),
        fits.Column("VAR_NPAR", "1I", bzero=32768, array=unsigned),
        fits.Column("VAR_PARS", "8E", array=np.zeros((n, 8), dtype=np.float32)),
        fits.Column("COMMENTS", "64A", array=[""] * n),
        *[
            fits.Column(f"{prefix}_FLUX_{i}", "1E", unit=unit, array=np.zeros(n))
            for prefix, unit in (("SPI", "photon/cm**2/s"), ("ISGR", "count/s"),
                                 ("PICS", "count/s"), ("JEMX", "count/s"))
            for i in (1, 2)
        ],
        fits.Column("E_MIN", "256E", unit="keV", array=vector([e_min] * n, 256)),
        fits.Column("E_MAX", "256E", unit="keV", array=vector([e_max] * n, 256)),
        fits.Column("FLUX", "256E", unit="count/s", array=vector(
            floats(e.flux for e in entries), 256)),
        fits.Column("FLUX_ERR", "256E", unit="count/s", array=vector(
            floats(e.flux_err for e in entries), 256)),
        fits.Column("SEL_FLAG", "1I", bzero=32768, array=unsigned),
        fits.Column("FLAG", "1I", array=np.zeros(n, dtype=np.int16)),
        fits.Column("COSX_JMX", "1D", array=np.zeros(n)),
        fits.Column("COSY_JMX", "1D", array=np.zeros(n)),
        fits.Column("COSZ_JMX", "1D", array=np.zeros(n)),
        fits.Column("SWID", "12A", array=["000000000000"] * n),
    ]  # fmt: skip
    cards = [
        ("EXTNAME", f"{inst.prefix}-SLOC-RES"),
        ("EXTREL", "9.2"),
        ("BASETYPE", "DAL_TABLE"),
        ("TELESCOP", "INTEGRAL"),
        ("ORIGIN", "j_ima_src_locator-6.4"),
        ("INSTRUME", inst.instrume),
        ("ISDCLEVL", "IMA"),
        ("CREATOR", "j_ima_src_locator 6.4"),
        ("CONFIGUR", _CONFIGUR["11"]),
        ("RADECSYS", "FK5"),
        ("EQUINOX", 2000.0),
        ("JMXEMIN1", 3.0),
        ("JMXEMAX1", 10.0),
        ("JMXEMIN2", 10.0),
        ("JMXEMAX2", 30.0),
        ("EXTVER", 1),
    ]
    return fits.BinTableHDU.from_columns(columns, header=_header(cards))


# ----------------------------------------------------------------------------- demo set

# Well-known sources (ICRS from SIMBAD, to better than an arcsecond); fluxes in mCrab at
# 20-40 keV and photon indices are typical values, not measurements of any epoch.
_DEMO_SOURCES = {
    s.name: s
    for s in (
        SkySource("Crab", 83.63308, 22.01450, 1000.0, 2.1),
        SkySource("1A 0535+262", 84.72738, 26.31582, 80.0, 2.5),
        SkySource("Geminga", 98.47563, 17.77025, 0.0, 1.9),
        SkySource("GX 5-1", 270.28417, -25.07917, 60.0, 3.0),
        SkySource("GX 3+1", 266.98333, -26.56361, 40.0, 3.0),
        SkySource("GX 1+4", 263.00900, -24.74556, 50.0, 2.5),
        SkySource("GRS 1758-258", 270.30167, -25.74336, 60.0, 1.8),
        SkySource("1E 1740.7-2942", 265.97846, -29.74517, 50.0, 1.8),
        SkySource("1A 1742-294", 266.52167, -29.51481, 25.0, 2.3),
        SkySource("H 1743-322", 266.56500, -32.23358, 120.0, 1.8),
        SkySource("GX 354-0", 262.99054, -33.83403, 30.0, 2.5),
        SkySource("SLX 1735-269", 264.57133, -26.99406, 15.0, 2.2),
        SkySource("GX 9+1", 270.38396, -20.52947, 25.0, 3.2),
        SkySource("H 1820-303", 275.91854, -30.36114, 40.0, 3.0),
        SkySource("4U 1700-377", 255.98654, -37.84414, 150.0, 2.6),
        SkySource("Cyg X-1", 299.59032, 35.20161, 1000.0, 1.7),
        SkySource("Cyg X-3", 308.10742, 40.95775, 150.0, 3.0),
        SkySource("EXO 2030+375", 308.06367, 37.63744, 30.0, 2.3),
        SkySource("Cyg A", 299.86815, 40.73392, 5.0, 1.9),
        SkySource("Sco X-1", 244.97946, -15.64022, 900.0, 3.3),
    )
}
# A transient the demo's Galactic Centre mosaic "discovers" (no catalogue name).
_DEMO_NEW_SOURCE = SkySource("", 267.61250, -27.20000, 14.0, 2.0)


@dataclass(frozen=True)
class _DemoField:
    slug: str
    revolution: int
    center: tuple[float, float]
    sources: tuple[str, ...]
    jemx: str | None  # JEM-X unit with a mosaic of this field
    overrides: tuple[tuple[str, float], ...] = ()  # (name, mCrab) for this revolution
    new_source: bool = False


_DEMO_FIELDS = (
    _DemoField("crab_field", 1516, (84.2, 24.0), ("Crab", "1A 0535+262", "Geminga"), "jemx1"),
    _DemoField("crab_field", 1517, (84.2, 24.0), ("Crab", "1A 0535+262", "Geminga"), None,
               overrides=(("1A 0535+262", 600.0),)),
    _DemoField("galactic_centre", 1521, (266.8, -28.0),
               ("GX 5-1", "GX 3+1", "GX 1+4", "GRS 1758-258", "1E 1740.7-2942", "1A 1742-294",
                "H 1743-322", "GX 354-0", "SLX 1735-269", "GX 9+1", "H 1820-303",
                "4U 1700-377"), "jemx2", new_source=True),
    _DemoField("cygnus", 1555, (302.0, 37.5), ("Cyg X-1", "Cyg X-3", "EXO 2030+375", "Cyg A"),
               None),
)  # fmt: skip


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9+.-]+", "_", text).strip("_")


def _catalog_from_mosaic(
    mosaic: _Mosaic,
    inst: _Instrument,
    field_sources: Sequence[SkySource],
    rng: np.random.Generator,
    *,
    e_min: float,
    e_max: float,
    threshold: float = 7.0,
    keep_undetected: bool,
) -> list[CatalogEntry]:
    """What a source finder would report: significance read off the map at each source."""
    entries = []
    ny, nx = mosaic.significance.shape
    sigma_deg = inst.psf_fwhm_deg / 2.3548
    for source in field_sources:
        px, py = (float(v) for v in mosaic.wcs.all_world2pix(source.ra_deg, source.dec_deg, 0))
        ix, iy = int(round(px)), int(round(py))
        if not (1 <= ix < nx - 1 and 1 <= iy < ny - 1) or not mosaic.inside[iy, ix]:
            continue
        significance = float(np.nanmax(mosaic.significance[iy - 1 : iy + 2, ix - 1 : ix + 2]))
        detected = significance >= threshold
        if not detected and not keep_undetected:
            continue
        ra, dec = source.ra_deg, source.dec_deg
        if detected:
            # A fitted position scatters by the PSF width over the significance.
            scatter = sigma_deg / significance
            dec += rng.normal(0.0, scatter)
            ra += rng.normal(0.0, scatter) / np.cos(np.radians(dec))
        rate = source_rate(source, inst.code, e_min, e_max)
        entries.append(
            CatalogEntry(
                name=source.name or None,
                ra_deg=ra % 360.0,
                dec_deg=dec,
                significance=significance if detected else 0.0,
                is_new=not source.name,
                flux=rate,
                flux_err=rate / max(significance, 1.0),
                xpix=px + 1.0,
                ypix=py + 1.0,
            )
        )
    return entries


def write_demo_set(out_dir: Path | str, seed: int = 0) -> list[list[Path]]:
    """A coherent small set of products for the demo; each inner list is one product's files.

    Four revolutions of 2015: the Crab field twice (1A 0535+262 going into outburst), the
    Galactic Centre (with a new transient) and Cygnus. Per field an ISGRI mosaic and its MMODA
    catalogue, JEM-X mosaics with their source lists for two of them, a single-HDU
    significance map of the Galactic Centre, and spectra ([pha, rmf, arf]) and light curves of
    the bright sources. Times lie inside each revolution; nothing is read from outside the
    project.
    """
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    groups: list[list[Path]] = []
    for field in _DEMO_FIELDS:
        rev_start = timeline.time_to_ijd(timeline.revolution_start(field.revolution))
        t_start = rev_start + 5.0 / 24.0  # science starts once out of the radiation belts
        t_stop = t_start + 20.0 / 24.0
        folder = out / f"{field.revolution:04d}"
        stem = f"{field.revolution:04d}_{field.slug}"
        overrides = dict(field.overrides)
        sources = [
            SkySource(
                s.name, s.ra_deg, s.dec_deg, overrides.get(s.name, s.flux_mcrab), s.photon_index
            )
            for s in (_DEMO_SOURCES[name] for name in field.sources)
        ]
        if field.new_source:
            sources.append(_DEMO_NEW_SOURCE)
        window = _DemoWindow(field, folder, stem, sources, t_start, t_stop, rng)

        groups += window.mosaic("isgri", 20.0, 40.0, shape=(440, 440), dither="5x5")
        if field.jemx:
            groups += window.mosaic(field.jemx, 3.04, 20.0, shape=(360, 360), dither="staring")
        if field.slug == "galactic_centre":
            path = write_significance_map(
                folder / f"{stem}_isgri_significance_28-40keV.fits",
                center_ra=field.center[0],
                center_dec=field.center[1],
                sources=sources,
                e_min_kev=28.0,
                e_max_kev=40.0,
                t_start_ijd=t_start,
                t_stop_ijd=t_stop,
                exposure_s=_DEMO_EXPOSURE_S["isgri"],
                shape=(440, 440),
                dither="5x5",
                seed=window.seed(),
            )
            groups.append([path])
        for target in _DEMO_TARGETS[field.revolution]:
            groups += window.source_products(*target)
    return groups


_DEMO_EXPOSURE_S = {"isgri": 55000.0, "jemx1": 50000.0, "jemx2": 50000.0}


@dataclass
class _DemoWindow:
    """One field observed in one revolution, and the products made of it."""

    field: _DemoField
    folder: Path
    stem: str
    sources: list[SkySource]
    t_start: float
    t_stop: float
    rng: np.random.Generator

    def seed(self) -> int:
        return int(self.rng.integers(2**31))

    def mosaic(
        self, instrument: str, e_min: float, e_max: float, *, shape: tuple[int, int], dither: str
    ) -> list[list[Path]]:
        """The mosaic of one instrument and the catalogue of the sources found in it."""
        inst = _INSTRUMENTS[instrument]
        exposure = _DEMO_EXPOSURE_S[instrument]
        mosaic = _render_mosaic(
            instrument=instrument,
            center_ra=self.field.center[0],
            center_dec=self.field.center[1],
            sources=self.sources,
            e_min_kev=e_min,
            e_max_kev=e_max,
            t_start_ijd=self.t_start,
            t_stop_ijd=self.t_stop,
            exposure_s=exposure,
            shape=shape,
            pixel_deg=None,
            rotation_deg=0.0,
            use_cd_matrix=True,
            dither=dither,
            seed=self.seed(),
        )
        band = f"{e_min:g}-{e_max:g}keV"
        hdus = _mosaic_hdus(inst, mosaic, e_min, e_max, self.t_start, self.t_stop, exposure, "11")
        image = _write(self.folder / f"{self.stem}_{instrument}_mosaic_{band}.fits", hdus)
        entries = _catalog_from_mosaic(
            mosaic,
            inst,
            self.sources,
            self.rng,
            e_min=e_min,
            e_max=e_max,
            keep_undetected=instrument == "isgri",
        )
        # ISGRI and JEM-X 1: MMODA's tables (which do not say which JEM-X unit they come
        # from); JEM-X 2: OSA's source list, whose EXTNAME and INSTRUME name the unit.
        flavour = {"isgri": "mmoda", "jemx1": "mmoda_jemx"}.get(instrument, "jemx_sloc")
        name = "sloc_res" if flavour == "jemx_sloc" else "catalog"
        catalog = write_catalog(
            self.folder / f"{self.stem}_{instrument}_{name}.fits",
            sources=entries,
            flavour=flavour,
            instrument=instrument if instrument != "isgri" else "jemx1",
            e_min_kev=e_min,
            e_max_kev=e_max,
        )
        return [[image], [catalog]]

    def source_products(
        self, name: str, instrument: str, osa: str, width_style: str, variability: str
    ) -> list[list[Path]]:
        """A spectrum ([pha, rmf, arf]) and a light curve of one source."""
        source = next(s for s in self.sources if s.name == name)
        base = f"{self.stem}_{_slug(name)}_{instrument}"
        spectrum = write_spectrum(
            self.folder / f"{base}_spectrum.fits",
            self.folder / f"{base}_rmf.fits",
            self.folder / f"{base}_arf.fits",
            instrument=instrument,
            source=source,
            t_start_ijd=self.t_start,
            t_stop_ijd=self.t_stop,
            exposure_s=_DEMO_EXPOSURE_S[instrument],
            osa=osa,
            seed=self.seed(),
        )
        bin_s = 1000.0 if instrument == "isgri" else 600.0
        lightcurve = write_lightcurve(
            self.folder / f"{base}_lc.fits",
            instrument=instrument,
            source=source,
            t_start_ijd=self.t_start,
            n_bins=int((self.t_stop - self.t_start) * 86400.0 // bin_s),
            bin_s=bin_s,
            variability=variability,
            width_style=width_style,
            osa=osa,
            seed=self.seed(),
        )
        return [list(spectrum), [lightcurve]]


# Per field: (source, instrument, OSA, light-curve width style, variability)
_DEMO_TARGETS = {
    1516: (("Crab", "isgri", "11", "xax_e", "constant"),
           ("Crab", "jemx1", "11", "timedel_keyword", "constant"),
           ("1A 0535+262", "isgri", "10", "xax_e", "constant")),
    1517: (("1A 0535+262", "isgri", "11", "xax_e", "outburst"),
           ("1A 0535+262", "jemx1", "11", "timedel_keyword", "outburst")),
    1521: (("GX 5-1", "isgri", "10", "timedel_keyword", "constant"),
           ("1E 1740.7-2942", "isgri", "11", "xax_e", "constant")),
    1555: (("Cyg X-1", "isgri", "10", "xax_e", "sinusoid"),
           ("Cyg X-1", "jemx1", "11", "timedel_column", "sinusoid")),
}  # fmt: skip
