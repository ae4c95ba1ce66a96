"""A synthetic archive of per-ScW sky images, for the demo, the tests and the benchmarks.

``make_archive`` writes, for chosen revolutions, the ISGRI and JEM-X sky images of every
pointing ScW in the ISDC layout (``scw/RRRR/RRRRPPPPSSSF.001/isgri_sky_ima.fits``), an
observation index per revolution, GRB triggers with SPI-ACS count rates around them, and the
truth beside the data (``truth.json``): the sources (positions, fluxes, photon indices,
variability), each ScW's time, pointing and roll, and the count rates the pipeline should
measure. The same seed gives the same archive.

What makes it realistic enough to test the pipeline:

- ScW ids and times follow the revolution table: pointings start a few hours after the
  perigee, last ~30-60 min and are separated by slews, all within the revolution.
- Pointings follow 5x5 dither patterns (2.17 degree steps) around each observation's target;
  each observation has its own roll angle, which drifts slowly (images carry a rotated CD
  matrix, as OSA's do).
- ISGRI images have 4.94' pixels, a 12' FWHM PSF and the coded field of view: fully coded
  within 4.5 degrees of the axis (per detector axis), partially coded out to 14.5 degrees;
  JEM-X images have 1.56' pixels, a 3.7' PSF and a collimator response falling to zero at 6.6
  degrees. The exposure map follows the coding (collimator) fraction and the variance is the
  background's over the exposure, plus the source's own coded-mask noise.
- The noise is correlated over the PSF, as in deconvolved coded-mask images (white noise
  smoothed by a Gaussian of sigma_PSF / sqrt(2), scaled back to the variance map).
- Sources are power laws normalised in mCrab (20-40 keV), folded through the band response of
  ``physics`` (the same the pipeline's spectra use); variable sources follow a constant, an
  outburst (fast rise, exponential decay) or a sinusoid over the revolution.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy import ndimage

from products import timeline
from sources.catalog import REFERENCE_CATALOG_PATH

from ..synthetic import SkySource
from .archive import GRB_TRIGGERS, OBSERVATION_INDEX, SCW_DIR, SPI_ACS_DIR, TRUTH
from .config import DEFAULT_INSTRUMENTS, InstrumentSpec, instrument
from .physics import SOURCE_NOISE, background_variance_rate, band_rates, band_response

#: ScW image sizes (pixels): the ISGRI field (29 degrees) and the useful JEM-X field.
IMAGE_SHAPE = {"isgri": (360, 360), "jemx": (320, 320)}
DITHER_STEP_DEG = 2.17
#: Pointings start this long after the perigee (out of the radiation belts) and the last
#: ends this long before the next one.
BELT_MARGIN_S = (3.0 * 3600.0, 2.0 * 3600.0)
SLEW_S = 120.0
DEAD_TIME = 0.75  # effective exposure over duration
ACS_BIN_S = 0.05


@dataclass
class Variability:
    kind: str = "constant"  # constant | outburst | sinusoid
    quiescent: float = 1.0  # outburst: factor before and long after
    peak: float = 1.0  # outburst: factor at the peak
    rise_d: float = 0.1
    decay_d: float = 0.4
    period_d: float = 1.0  # sinusoid
    amplitude: float = 0.5


@dataclass
class TruthSource:
    name: str  # catalogue name, or a label for sources the catalogue does not know
    ra_deg: float
    dec_deg: float
    flux_mcrab: float
    photon_index: float
    in_catalogue: bool = True
    variability: Variability = field(default_factory=Variability)

    def sky(self) -> SkySource:
        return SkySource(self.name, self.ra_deg, self.dec_deg, self.flux_mcrab, self.photon_index)


@dataclass(frozen=True)
class Field:
    name: str
    ra_deg: float
    dec_deg: float
    sources: tuple[tuple[str, float, float], ...]  # (catalogue name, mCrab, photon index)
    new_sources: tuple[
        tuple[str, float, float, float, float], ...
    ] = ()  # label, ra, dec, mCrab, index
    outbursts: tuple[str, ...] = ()  # sources in outburst whenever the field is observed


FIELDS = (
    Field(
        "Crab field",
        84.2,
        24.0,
        (("Crab", 1000.0, 2.1), ("1A 0535+262", 100.0, 2.5)),
        outbursts=("1A 0535+262",),
    ),
    Field(
        "Galactic Centre",
        266.8,
        -28.0,
        (
            ("GX 5-1", 60.0, 3.0),
            ("GX 3+1", 40.0, 3.0),
            ("GX 1+4", 50.0, 2.5),
            ("GRS 1758-258", 60.0, 1.8),
            ("1E 1740.7-2942", 50.0, 1.8),
            ("1A 1742-294", 25.0, 2.3),
            ("H 1743-322", 120.0, 1.8),
            ("GX 354-0", 30.0, 2.5),
            ("SLX 1735-269", 15.0, 2.2),
            ("GX 9+1", 25.0, 3.2),
            ("H 1820-303", 40.0, 3.0),
        ),  # fmt: skip
        new_sources=(("new transient", 267.60, -27.20, 40.0, 2.0),),
    ),
    Field(
        "Cygnus",
        302.0,
        37.5,
        (("Cyg X-1", 1000.0, 1.7), ("Cyg X-3", 150.0, 3.0), ("EXO 2030+375", 30.0, 2.3)),
    ),
)

BAND_SETS = {
    # One band per channel of the spectra the pipeline extracts.
    "spectral": lambda spec: spec.spectral_bands_kev,
    # The published image bands only (the pipeline then makes no spectra).
    "image": lambda spec: list(spec.image_bands_kev),
}


def _catalogue_positions() -> dict[str, tuple[float, float]]:
    positions = {}
    with open(REFERENCE_CATALOG_PATH, encoding="utf-8") as handle:
        for row in csv.reader(line for line in handle if not line.startswith("#")):
            if len(row) >= 3 and row[0] != "name":
                positions[row[0]] = (float(row[1]), float(row[2]))
    return positions


def field_sources(field_: Field) -> list[TruthSource]:
    positions = _catalogue_positions()
    found = []
    for name, mcrab, index in field_.sources:
        ra, dec = positions[name]
        variability = (
            Variability("outburst", quiescent=0.2, peak=6.0, rise_d=0.08, decay_d=0.35)
            if name in field_.outbursts
            else Variability()
        )
        found.append(TruthSource(name, ra, dec, mcrab, index, True, variability))
    for label, ra, dec, mcrab, index in field_.new_sources:
        found.append(TruthSource(label, ra, dec, mcrab, index, False))
    return found


def variability_factor(v: Variability, t_ijd: float, t0_ijd: float, t_ref_ijd: float) -> float:
    """Flux factor at ``t_ijd``; ``t0_ijd`` is the outburst's peak, ``t_ref_ijd`` the phase
    origin of a sinusoid."""
    if v.kind == "constant":
        return 1.0
    if v.kind == "outburst":
        dt = t_ijd - t0_ijd
        shape = math.exp(-((dt / v.rise_d) ** 2)) if dt < 0 else math.exp(-dt / v.decay_d)
        return v.quiescent + (v.peak - v.quiescent) * shape
    if v.kind == "sinusoid":
        return 1.0 + v.amplitude * math.sin(2 * math.pi * (t_ijd - t_ref_ijd) / v.period_d)
    raise ValueError(f"unknown variability {v.kind!r}")


# ------------------------------------------------------------------------------- pointings


@dataclass
class Pointing:
    scw_id: str
    t_start_ijd: float
    t_stop_ijd: float
    exposure_s: float
    ra_deg: float
    dec_deg: float
    roll_deg: float
    observation: int  # index in the revolution's observations


def _offset(ra0: float, dec0: float, dx_deg: float, dy_deg: float) -> tuple[float, float]:
    """The position (dx, dy) degrees from (ra0, dec0) on the tangent plane (dx to the east)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra0, dec0]
    wcs.wcs.crpix = [1.0, 1.0]  # pixel 0 (0-based) at the reference point
    wcs.wcs.cdelt = [-1.0, 1.0]
    ra, dec = wcs.wcs_pix2world(dx_deg, dy_deg, 0)
    return float(ra) % 360.0, float(dec)


def plan_pointings(
    revolution: int, n_scw: int, fields: Sequence[Field], rng: np.random.Generator
) -> list[Pointing]:
    """``n_scw`` pointings filling the revolution, split between ``fields`` (one observation
    each), each dithering in a 5x5 pattern around its field's centre."""
    start = timeline.time_to_ijd(timeline.revolution_start(revolution))
    stop = timeline.time_to_ijd(timeline.revolution_end(revolution))
    usable = (stop - start) * 86400.0 - sum(BELT_MARGIN_S)
    slot = min(3600.0, usable / max(n_scw, 1))
    duration = slot - SLEW_S
    if duration < 600.0:
        raise ValueError(f"{n_scw} ScWs do not fit in revolution {revolution}")
    shares = [0.6, 0.4] if len(fields) == 2 else [1.0 / len(fields)] * len(fields)
    counts = [int(round(n_scw * s)) for s in shares]
    counts[-1] = n_scw - sum(counts[:-1])
    dither = [
        (DITHER_STEP_DEG * i, DITHER_STEP_DEG * j) for j in range(-2, 3) for i in range(-2, 3)
    ]
    pointings = []
    k = 0
    for obs, (field_, count) in enumerate(zip(fields, counts, strict=True)):
        roll = float(rng.uniform(0.0, 360.0))
        first = int(rng.integers(len(dither)))
        for i in range(count):
            dx, dy = dither[(first + i) % len(dither)]
            ra, dec = _offset(field_.ra_deg, field_.dec_deg, dx, dy)
            t0 = start + (BELT_MARGIN_S[0] + k * slot) / 86400.0
            pointings.append(
                Pointing(
                    scw_id=f"{revolution:04d}{k + 1:04d}0010",
                    t_start_ijd=t0,
                    t_stop_ijd=t0 + duration / 86400.0,
                    exposure_s=duration * DEAD_TIME,
                    ra_deg=ra,
                    dec_deg=dec,
                    roll_deg=(roll + 0.05 * i) % 360.0,
                    observation=obs,
                )
            )
            k += 1
    return pointings


# ------------------------------------------------------------------------------- images


def _family(spec: InstrumentSpec) -> str:
    return "isgri" if spec.code == "isgri" else "jemx"


def scw_wcs(spec: InstrumentSpec, pointing: Pointing) -> tuple[WCS, list[tuple[str, float]]]:
    ny, nx = IMAGE_SHAPE[_family(spec)]
    p = spec.pixel_deg
    cos, sin = math.cos(math.radians(pointing.roll_deg)), math.sin(math.radians(pointing.roll_deg))
    cards = [
        ("CTYPE1", "RA---TAN"),
        ("CRPIX1", (nx + 1) / 2.0),
        ("CRVAL1", pointing.ra_deg),
        ("CUNIT1", "deg"),
        ("CTYPE2", "DEC--TAN"),
        ("CRPIX2", (ny + 1) / 2.0),
        ("CRVAL2", pointing.dec_deg),
        ("CUNIT2", "deg"),
        # East left; the rotation is the satellite's roll, as OSA writes it.
        ("CD1_1", -p * cos + 0.0),
        ("CD1_2", -p * sin + 0.0),
        ("CD2_1", -p * sin + 0.0),
        ("CD2_2", p * cos + 0.0),
    ]
    header = fits.Header()
    for key, value in cards:
        header[key] = value
    return WCS(header), cards


def field_response(spec: InstrumentSpec) -> np.ndarray:
    """Fraction of the on-axis exposure across the image (0 outside the field of view)."""
    ny, nx = IMAGE_SHAPE[_family(spec)]
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    dx = (xx - (nx - 1) / 2.0) * spec.pixel_deg
    dy = (yy - (ny - 1) / 2.0) * spec.pixel_deg
    if spec.code == "isgri":
        # Square coded field along the detector axes: fully coded to 4.5 degrees.
        fx = np.clip((14.5 - np.abs(dx)) / 10.0, 0.0, 1.0)
        fy = np.clip((14.5 - np.abs(dy)) / 10.0, 0.0, 1.0)
        return fx * fy
    response = np.clip(1.0 - np.hypot(dx, dy) / 6.6, 0.0, 1.0)
    return np.where(response >= 0.15, response, 0.0)


def smoothed_noise_std(sigma: float) -> float:
    """Standard deviation of unit white noise smoothed in 2-D by a Gaussian of ``sigma``
    pixels (the product of the two axes' sums of squared kernel weights, square-rooted)."""
    impulse = np.zeros(81)
    impulse[40] = 1.0
    kernel = ndimage.gaussian_filter1d(impulse, sigma)
    return float(np.sum(kernel**2))


@dataclass
class RenderedScw:
    bands: list[tuple[float, float]]
    intensity: list[np.ndarray]
    variance: list[np.ndarray]
    exposure: np.ndarray


def render_scw(
    spec: InstrumentSpec,
    pointing: Pointing,
    sources: list[tuple[TruthSource, np.ndarray]],  # (source, band rates counts/s x factor)
    bands: list[tuple[float, float]],
    rng: np.random.Generator,
) -> RenderedScw:
    wcs, _ = scw_wcs(spec, pointing)
    response = field_response(spec)
    inside = response > 0
    exposure = (pointing.exposure_s * response).astype(np.float32)
    ny, nx = response.shape
    sigma_pix = spec.psf_sigma_pix
    half = int(math.ceil(5 * sigma_pix)) + 1
    noise_sigma = sigma_pix / math.sqrt(2.0)
    noise_scale = 1.0 / smoothed_noise_std(noise_sigma)
    models = np.zeros((len(bands), ny, nx))
    for source, rates in sources:
        px, py = (float(v) for v in wcs.wcs_world2pix(source.ra_deg, source.dec_deg, 0))
        if not (math.isfinite(px) and math.isfinite(py)):
            continue  # on the far side of the sky
        ix, iy = int(round(px)), int(round(py))
        if not (0 <= ix < nx and 0 <= iy < ny) or not inside[iy, ix]:
            continue
        x0, x1 = max(0, int(px) - half), min(nx, int(px) + half + 1)
        y0, y1 = max(0, int(py) - half), min(ny, int(py) + half + 1)
        gx = np.exp(-0.5 * ((np.arange(x0, x1) - px) / sigma_pix) ** 2)
        gy = np.exp(-0.5 * ((np.arange(y0, y1) - py) / sigma_pix) ** 2)
        psf = np.outer(gy, gx)
        for b, rate in enumerate(rates):
            models[b, y0:y1, x0:x1] += rate * psf
    intensities, variances = [], []
    safe_exposure = np.where(inside, exposure, 1.0)
    for b, (lo, hi) in enumerate(bands):
        counts = np.clip(models[b], 0.0, None)
        variance = (
            background_variance_rate(spec, lo, hi) + SOURCE_NOISE[_family(spec)] * counts
        ) / (safe_exposure)
        noise = ndimage.gaussian_filter(rng.standard_normal((ny, nx)), noise_sigma) * noise_scale
        intensity = models[b] + noise * np.sqrt(variance)
        scale = spec.rate_per_intensity
        intensities.append(np.where(inside, intensity / scale, 0.0).astype(np.float32))
        variances.append(np.where(inside, variance / scale**2, 0.0).astype(np.float32))
    return RenderedScw(list(bands), intensities, variances, exposure)


def scw_hdus(
    spec: InstrumentSpec, pointing: Pointing, rendered: RenderedScw, revolution: int
) -> list:
    """The OSA ScW image file: PRIMARY, GROUPING, then per band the four images."""
    _, wcs_cards = scw_wcs(spec, pointing)
    imatypes = [
        (spec.intensity_type, spec.intensity_unit),
        ("VARIANCE", spec.variance_unit),
        ("SIGNIFICANCE", "no units"),
        ("EXPOSURE", "sec"),
    ]
    time_cards = [
        ("MJDREF", timeline.MJDREF_IJD),
        ("TIMESYS", "TT"),
        ("TIMEUNIT", "d"),
        ("TIMEREF", "LOCAL"),
        ("REVOL", revolution),
        ("SWID", pointing.scw_id),
        ("SW_TYPE", "POINTING"),
        ("TSTART", pointing.t_start_ijd),
        ("TSTOP", pointing.t_stop_ijd),
    ]
    instrument_cards = [
        ("TELESCOP", "INTEGRAL"),
        ("ORIGIN", "ISDC"),
        ("INSTRUME", spec.instrume),
        ("DETNAM", spec.detnam),
        ("ISDCLEVL", "IMA"),
        ("CREATOR", "ingest.pipeline.generator"),
        ("CONFIGUR", "synthetic"),
    ]

    def header(cards) -> fits.Header:
        h = fits.Header()
        for key, value in cards:
            if value is not None:
                h[key] = value
        return h

    n = len(rendered.bands) * len(imatypes)
    rows = [(t, band) for band in rendered.bands for t, _ in imatypes]
    grouping = fits.BinTableHDU.from_columns(
        [
            fits.Column("MEMBER_XTENSION", "8A", array=["IMAGE"] * n),
            fits.Column("MEMBER_NAME", "32A", array=[spec.sky_extname] * n),
            fits.Column("MEMBER_VERSION", "1J", array=np.arange(1, n + 1)),
            fits.Column("MEMBER_POSITION", "1J", array=np.arange(n) + 3),
            fits.Column("IMATYPE", "32A", array=[t for t, _ in rows]),
            fits.Column("E_MIN", "1E", unit="keV", array=[b[0] for _, b in rows]),
            fits.Column("E_MAX", "1E", unit="keV", array=[b[1] for _, b in rows]),
            fits.Column("EXPOSURE", "1D", unit="s", array=np.full(n, pointing.exposure_s)),
        ],
        header=header(
            [
                ("EXTNAME", "GROUPING"),
                ("GRPNAME", f"{spec.sky_extname}-IDX"),
                *instrument_cards,
                *time_cards,
            ]
        ),
    )
    primary = fits.PrimaryHDU()
    primary.header["COMMENT"] = "Synthetic ScW sky image written by ingest.pipeline.generator."
    hdus = [primary, grouping]
    duration = (pointing.t_stop_ijd - pointing.t_start_ijd) * 86400.0
    extver = 0
    for b, (lo, hi) in enumerate(rendered.bands):
        intensity, variance = rendered.intensity[b], rendered.variance[b]
        with np.errstate(divide="ignore", invalid="ignore"):
            significance = np.where(variance > 0, intensity / np.sqrt(variance), 0.0)
        images = [intensity, variance, significance.astype(np.float32), rendered.exposure]
        for (imatype, unit), data in zip(imatypes, images, strict=True):
            extver += 1
            cards = [
                ("EXTNAME", spec.sky_extname),
                *instrument_cards,
                *time_cards,
                ("TELAPSE", duration),
                ("ONTIME", duration),
                ("EXPOSURE", pointing.exposure_s),
                ("BUNIT", unit),
                *wcs_cards,
                ("RADESYS", "FK5"),
                ("EQUINOX", 2000.0),
                ("HDUCLASS", "OGIP"),
                ("HDUCLAS1", "IMAGE"),
                ("E_MIN", lo),
                ("E_MEAN", (lo + hi) / 2.0),
                ("E_MAX", hi),
                ("IMATYPE", imatype),
                ("EXTVER", extver),
            ]
            hdus.append(fits.ImageHDU(data=data, header=header(cards)))
    return hdus


def _write_fits(path: Path, hdus: list, compress: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not compress:
        fits.HDUList(hdus).writeto(path, overwrite=True)
        return path
    buffer = io.BytesIO()
    fits.HDUList(hdus).writeto(buffer)
    # Fast compression (level 1): ScW images are noise, which hardly compresses anyway.
    path.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=1, mtime=0))
    return path


# ------------------------------------------------------------------------------- GRBs


def _grb_name(t0_ijd: float) -> str:
    iso = str(timeline.format_time(timeline.ijd_to_time(t0_ijd), "isot"))
    return f"GRB {iso[2:4]}{iso[5:7]}{iso[8:10]}A"


def write_acs_rates(path: Path, t0_ijd: float, peak_rate: float, rng: np.random.Generator) -> Path:
    """SPI-ACS counts in 50 ms bins over T0 +- 600 s: a drifting background of ~9e4 counts/s
    and a burst with a fast rise and an exponential decay from T0."""
    offsets = np.arange(-600.0, 600.0, ACS_BIN_S) + ACS_BIN_S / 2.0
    background = 9.0e4 * (1.0 + 0.02 * offsets / 600.0) + 1500.0 * np.sin(offsets / 300.0)
    burst = np.where(
        offsets < 0,
        0.0,
        peak_rate * (1.0 - np.exp(-offsets / 1.5)) * np.exp(-offsets / 20.0),
    )
    expected = (background + burst) * ACS_BIN_S
    counts = rng.poisson(expected).astype(np.int32)
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column("TIME", "1D", unit="d", array=t0_ijd + offsets / 86400.0),
            fits.Column("COUNTS", "1J", unit="count", array=counts),
        ],
        header=fits.Header(
            [
                ("EXTNAME", "SPI.-ACS.-RAT"),
                ("TELESCOP", "INTEGRAL"),
                ("INSTRUME", "SPI-ACS"),
                ("MJDREF", timeline.MJDREF_IJD),
                ("TIMESYS", "TT"),
                ("TIMEUNIT", "d"),
                ("TIMEDEL", ACS_BIN_S / 86400.0),
                ("TSTART", float(t0_ijd - 600.0 / 86400.0)),
                ("TSTOP", float(t0_ijd + 600.0 / 86400.0)),
            ]
        ),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(path, overwrite=True)
    return path


# ------------------------------------------------------------------------------- archive


@dataclass
class ArchiveSummary:
    root: Path
    revolutions: list[int]
    n_scw: int
    n_files: int
    truth: dict


def make_archive(
    out_dir: Path | str,
    revolutions: Sequence[int],
    *,
    scws_per_revolution: int = 20,
    seed: int = 0,
    instruments: Sequence[str] = DEFAULT_INSTRUMENTS,
    bands: str = "spectral",
    fields: Sequence[Field] | None = None,
    data_level: str = "CONS",
    compress: bool = False,
    grbs: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ArchiveSummary:
    """Write a synthetic archive for ``revolutions`` into ``out_dir``; returns its summary.

    Revolution r observes ``fields[r % n]`` (and, with 20 ScWs or more, the next field in a
    second observation). ``bands`` is ``spectral`` (about ten bands per instrument: spectra
    can be extracted) or ``image`` (the three broad bands). ``data_level`` NRT writes ScW
    folders ``.000``, CONS ``.001``. ``fields=[]`` gives empty skies (noise only).
    """
    if data_level not in ("NRT", "CONS"):
        raise ValueError("data_level must be NRT or CONS")
    if bands not in BAND_SETS:
        raise ValueError(f"bands must be one of {', '.join(BAND_SETS)}")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    fields = list(FIELDS if fields is None else fields)
    specs = [instrument(code) for code in instruments]
    version = "001" if data_level == "CONS" else "000"
    truth_path = root / TRUTH
    truth = json.loads(truth_path.read_text()) if truth_path.is_file() else {}
    truth.setdefault("revolutions", {})
    truth.update(
        {
            "generator": "ingest.pipeline.generator",
            "seed": seed,
            "instruments": list(instruments),
            "bands": {s.code: [list(b) for b in BAND_SETS[bands](s)] for s in specs},
        }
    )
    triggers_path = root / GRB_TRIGGERS
    triggers = json.loads(triggers_path.read_text()) if triggers_path.is_file() else []
    n_files = n_scw = 0
    for revolution in revolutions:
        rng = np.random.default_rng([seed, int(revolution)])
        if fields:
            chosen = [fields[revolution % len(fields)]]
            if scws_per_revolution >= 20 and len(fields) > 1:
                chosen.append(fields[(revolution + 1) % len(fields)])
        else:
            chosen = [
                Field("Empty sky", float(rng.uniform(0, 360)), float(rng.uniform(-60, 60)), ())
            ]
        pointings = plan_pointings(revolution, scws_per_revolution, chosen, rng)
        rev_truth = _revolution_truth(revolution, chosen, pointings, specs, bands, version)
        folder = root / SCW_DIR / f"{revolution:04d}"
        for p in pointings:
            scw_folder = folder / f"{p.scw_id}.{version}"
            for spec in specs:
                sources = _visible_sources(rev_truth, spec, p)
                rendered = render_scw(spec, p, sources, BAND_SETS[bands](spec), rng)
                name = f"{spec.scw_file}.fits" + (".gz" if compress else "")
                _write_fits(scw_folder / name, scw_hdus(spec, p, rendered, revolution), compress)
                n_files += 1
            n_scw += 1
            if progress:
                progress(f"{p.scw_id}.{version}")
        index = [
            {k: v for k, v in o.items() if k in ("obsid", "expid", "title", "pi_name", "scw_ids")}
            for o in rev_truth["observations"]
        ]
        (folder / OBSERVATION_INDEX).write_text(json.dumps(index, indent=1))
        if grbs:
            triggers = [t for t in triggers if t.get("revolution") != revolution]
            grb = _grb(revolution, rng)
            write_acs_rates(
                root / SPI_ACS_DIR / f"{revolution:04d}" / f"acs_rates_{revolution:04d}_1.fits",
                grb["t0_ijd"],
                grb["peak_rate"],
                rng,
            )
            triggers.append(grb)
            rev_truth["grbs"] = [grb]
        rev_truth.pop("_sources", None)
        truth["revolutions"][str(revolution)] = rev_truth
    if grbs:
        triggers_path.write_text(json.dumps(sorted(triggers, key=lambda t: t["t0_ijd"]), indent=1))
    truth_path.write_text(json.dumps(truth, indent=1, default=float))
    return ArchiveSummary(root, list(revolutions), n_scw, n_files, truth)


def _grb(revolution: int, rng: np.random.Generator) -> dict:
    start = timeline.time_to_ijd(timeline.revolution_start(revolution))
    stop = timeline.time_to_ijd(timeline.revolution_end(revolution))
    t0 = start + (stop - start) * float(rng.uniform(0.3, 0.7))
    return {
        "name": _grb_name(t0),
        "time_utc": str(timeline.format_time(timeline.ijd_to_time(t0), "isot")),
        "t0_ijd": t0,
        "ra_deg": float(rng.uniform(0, 360)),
        "dec_deg": float(np.degrees(np.arcsin(rng.uniform(-1, 1)))),
        "peak_rate": 3.0e4,
        "revolution": revolution,
    }


def _revolution_truth(
    revolution: int,
    chosen: list[Field],
    pointings: list[Pointing],
    specs: list[InstrumentSpec],
    bands: str,
    version: str,
) -> dict:
    observations = []
    all_sources: list[tuple[int, TruthSource, float]] = []  # (observation, source, peak time)
    for obs, field_ in enumerate(chosen):
        scws = [p for p in pointings if p.observation == obs]
        programme = 2000 + FIELDS.index(field_) if field_ in FIELDS else 2999
        obsid = f"{programme:04d}{revolution:04d}{obs + 1:03d}"
        observations.append(
            {
                "obsid": obsid,
                "expid": f"{revolution:04d}{obs + 1:04d}",
                "title": f"{field_.name}, Rev. {revolution:04d} ({obsid})",
                "pi_name": "Synthetic PI",
                "field": field_.name,
                "ra_deg": field_.ra_deg,
                "dec_deg": field_.dec_deg,
                "scw_ids": [f"{p.scw_id}.{version}" for p in scws],
            }
        )
        middle = (scws[0].t_start_ijd + scws[-1].t_stop_ijd) / 2.0 if scws else 0.0
        peak = (
            scws[0].t_start_ijd + 0.4 * (scws[-1].t_stop_ijd - scws[0].t_start_ijd) if scws else 0
        )
        for source in field_sources(field_):
            all_sources.append(
                (obs, source, peak if source.variability.kind == "outburst" else middle)
            )
    responses = {spec.code: band_response(spec, _edges(BAND_SETS[bands](spec))) for spec in specs}
    sources = []
    for obs, source, t0 in all_sources:
        factors = [
            variability_factor(source.variability, (p.t_start_ijd + p.t_stop_ijd) / 2, t0, t0)
            for p in pointings
        ]
        rates = {
            code: [float(r) for r in band_rates(source.sky(), response)]
            for code, response in responses.items()
        }
        sources.append(
            {
                **asdict(source),
                "observation": obs,
                "factors": factors,
                "band_rates": rates,  # counts/s on axis for a factor of 1
            }
        )
    return {
        "data_level": "CONS" if version == "001" else "NRT",
        "observations": observations,
        "scws": [{**asdict(p), "scw_id": f"{p.scw_id}.{version}"} for p in pointings],
        "sources": sources,
        "_sources": all_sources,
    }


def _edges(bands: list[tuple[float, float]]) -> list[float]:
    edges = [bands[0][0]]
    for lo, hi in bands:
        if abs(lo - edges[-1]) > 1e-6:
            raise ValueError("bands must be contiguous")
        edges.append(hi)
    return edges


def _visible_sources(
    rev_truth: dict, spec: InstrumentSpec, pointing: Pointing
) -> list[tuple[TruthSource, np.ndarray]]:
    index = next(
        i for i, s in enumerate(rev_truth["scws"]) if s["scw_id"].startswith(pointing.scw_id)
    )
    found = []
    for entry in rev_truth["sources"]:
        source = TruthSource(
            entry["name"],
            entry["ra_deg"],
            entry["dec_deg"],
            entry["flux_mcrab"],
            entry["photon_index"],
            entry["in_catalogue"],
        )
        rates = np.array(entry["band_rates"][spec.code]) * entry["factors"][index]
        found.append((source, rates))
    return found
