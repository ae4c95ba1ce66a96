"""The pipeline's products as OSA-format FITS files, so the ingest readers take them as real.

Mosaics (``ISGR-MOSA-IMA``/``JMX1-MOSA-IMA``: a GROUPING index, then INTENSITY (JEM-X:
RECONSTRUCTED), VARIANCE, SIGNIFICANCE and EXPOSURE told apart by IMATYPE), source lists
(``ISGR-SRCL-RES``: NAME, RA_OBJ, DEC_OBJ, ERR_RAD, FLUX and FLUX_ERR per band, DETSIG),
spectra (PHA type I ``ISGR-EVTS-SPE``/``JMX1-PHA1-SPE`` with RMF and ARF: OSA 10's convention,
the area in the ARF and RMF rows summing to the fraction of photons reconstructed in the
bands; JEM-X channels numbered from 1 as OSA does), source light curves (``ISGR-SRC.-LCR``/
``JMX1-SRC.-LCR``, one bin per ScW given by XAX_E half widths) and SPI-ACS light curves (an
OGIP RATE table with INSTRUME 'SPI-ACS'). Times are IJD (TT, MJDREF 51544.0).

Files are byte-for-byte reproducible: no wall-clock time is written (no DATE card; fixed
CHECKSUM comments), so processing the same data again gives the same files, which the ingest
service recognises and does not store twice. What made a file (pipeline version, OSA-like
label, data level, ScWs with their versions) is in its headers, so that consolidated data
give new files, and new product versions, where near-real-time ones did.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from products import timeline

from . import PIPELINE_VERSION
from .config import InstrumentSpec
from .physics import BandResponse


@dataclass
class FileMeta:
    """What every file of a run carries in its headers."""

    revolution: int
    osa_label: str
    backend: str
    data_level: str
    obsid: str = ""
    scw_ids: list[str] = field(default_factory=list)

    @property
    def configur(self) -> str:
        return f"osa_{self.osa_label} gallery_pipeline_{PIPELINE_VERSION}_{self.backend}"

    @property
    def creator(self) -> str:
        return f"gallery-pipeline {PIPELINE_VERSION}"


def _utc(ijd: float) -> str:
    return str(timeline.format_time(timeline.ijd_to_time(ijd), "isot"))


def _header(cards: Iterable[tuple[str, Any]]) -> fits.Header:
    header = fits.Header()
    for key, value in cards:
        if value is None:
            continue
        header[key if len(key) <= 8 else f"HIERARCH {key}"] = value
    return header


def _instrument_cards(spec: InstrumentSpec) -> list[tuple[str, Any]]:
    return [
        ("TELESCOP", "INTEGRAL"),
        ("ORIGIN", "ISDC"),
        ("INSTRUME", spec.instrume),
        ("DETNAM", spec.detnam),
    ]


def _time_cards(t_start: float, t_stop: float) -> list[tuple[str, Any]]:
    return [
        ("MJDREF", timeline.MJDREF_IJD),
        ("TIMESYS", "TT"),
        ("TIMEUNIT", "d"),
        ("TIMEREF", "LOCAL"),
        ("DATE-OBS", _utc(t_start)),
        ("DATE-END", _utc(t_stop)),
        ("TSTART", float(t_start)),
        ("TSTOP", float(t_stop)),
    ]


def _run_cards(meta: FileMeta) -> list[tuple[str, Any]]:
    return [
        ("CREATOR", meta.creator),
        ("CONFIGUR", meta.configur),
        ("REVOL", int(meta.revolution)),
        ("OBS_ID", meta.obsid or None),
        ("DATALVL", meta.data_level),
    ]


def _primary(meta: FileMeta, extname: bool = True) -> fits.PrimaryHDU:
    hdu = fits.PrimaryHDU()
    if extname:
        hdu.header["EXTNAME"] = "PRIMARY"
    hdu.header["TELESCOP"] = "INTEGRAL"
    hdu.header["CREATOR"] = meta.creator
    hdu.header["CONFIGUR"] = meta.configur
    hdu.header["DATALVL"] = (meta.data_level, "NRT or CONS input data")
    if meta.scw_ids:
        hdu.header["NSCW"] = (len(meta.scw_ids), "ScWs used")
        for start in range(0, len(meta.scw_ids), 4):
            hdu.header.add_history("ScWs: " + " ".join(meta.scw_ids[start : start + 4]))
    return hdu


def write_hdus(path: Path | str, hdus: list) -> Path:
    """Write with CHECKSUM/DATASUM (fixed comments) through a temporary file: a reader never
    sees half a file, and a step killed while writing leaves no product behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hdulist = fits.HDUList(hdus)
    for hdu in hdulist:
        hdu.update_header()
        hdu.add_checksum(when="HDU checksum")
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    hdulist.writeto(temporary, overwrite=True)
    os.replace(temporary, path)
    return path


# ------------------------------------------------------------------------------- mosaics


def _grouping(
    spec: InstrumentSpec, imatypes: Sequence[str], band: tuple[float, float], t: tuple
) -> fits.BinTableHDU:
    n = len(imatypes)
    columns = [
        fits.Column("MEMBER_XTENSION", "8A", array=["IMAGE"] * n),
        fits.Column("MEMBER_NAME", "32A", array=[spec.mosaic_extname] * n),
        fits.Column("MEMBER_VERSION", "1J", null=0, array=np.arange(1, n + 1)),
        fits.Column("MEMBER_POSITION", "1J", null=0, array=np.arange(n) + 3),
        fits.Column("MEMBER_LOCATION", "256A", array=[""] * n),
        fits.Column("MEMBER_URI_TYPE", "3A", array=[""] * n),
        fits.Column("IMATYPE", "32A", array=list(imatypes)),
        fits.Column("E_MIN", "1E", unit="keV", array=np.full(n, band[0])),
        fits.Column("E_MAX", "1E", unit="keV", array=np.full(n, band[1])),
        fits.Column("TFIRST", "1D", unit="d", array=np.full(n, t[0])),
        fits.Column("TLAST", "1D", unit="d", array=np.full(n, t[1])),
    ]
    cards = [
        ("EXTNAME", "GROUPING"),
        ("EXTVER", 1),
        ("GRPNAME", f"{spec.mosaic_extname}-IDX"),
        ("IDXMEMBR", spec.mosaic_extname),
        ("BASETYPE", "DAL_GROUP"),
        *_instrument_cards(spec),
    ]
    return fits.BinTableHDU.from_columns(columns, header=_header(cards))


def write_mosaic(
    path: Path | str,
    spec: InstrumentSpec,
    grid_cards: list[tuple[str, Any]],
    band: tuple[float, float],
    intensity: np.ndarray,
    variance: np.ndarray,
    exposure: np.ndarray,
    *,
    t_start: float,
    t_stop: float,
    exposure_s: float,
    meta: FileMeta,
) -> Path:
    """An OSA mosaic of one band: PRIMARY, GROUPING, then the four images by IMATYPE."""
    with np.errstate(divide="ignore", invalid="ignore"):
        signif = np.where(variance > 0, intensity / np.sqrt(variance), 0.0)
    outside = variance <= 0
    images = [
        (spec.intensity_type, spec.intensity_unit, intensity),
        ("VARIANCE", spec.variance_unit, variance),
        ("SIGNIFICANCE", "no units", signif),
        ("EXPOSURE", "sec", exposure),
    ]
    hdus: list[Any] = [
        _primary(meta, extname=spec.code == "isgri"),
        _grouping(spec, [i[0] for i in images], band, (t_start, t_stop)),
    ]
    for extver, (imatype, unit, data) in enumerate(images, start=1):
        data = np.array(data, dtype=np.float32)
        if spec.code != "isgri" and imatype != "EXPOSURE":
            data[outside] = np.nan  # OSA's JEM-X mosaics are NaN outside the field
        cards = [
            ("EXTNAME", spec.mosaic_extname),
            ("BASETYPE", "DAL_ARRAY"),
            *_instrument_cards(spec),
            ("ISDCLEVL", "IMA2" if spec.code != "isgri" else "IMA"),
            *_run_cards(meta),
            *_time_cards(t_start, t_stop),
            ("EXPOSURE", float(exposure_s)),
            ("BUNIT", unit),
            *grid_cards,
            ("HDUCLASS", "OGIP"),
            ("HDUCLAS1", "IMAGE"),
            ("CHANTYPE", "PI"),
            ("E_MIN", float(band[0])),
            ("E_MEAN", float(band[0] + band[1]) / 2.0),
            ("E_MAX", float(band[1])),
            ("IMATYPE", imatype),
            ("EXTVER", extver),
            ("GRPID1", 1),
        ]
        if imatype != "EXPOSURE":
            cards.append(("PSFSIGMA", spec.psf_sigma_deg))
        hdus.append(fits.ImageHDU(data=data, header=_header(cards)))
    return write_hdus(path, hdus)


# ------------------------------------------------------------------------------- catalogues


@dataclass
class SourceRow:
    name: str
    ra_deg: float
    dec_deg: float
    err_rad_deg: float
    significance: float
    fluxes: list[float]  # per band of the list
    flux_errors: list[float]
    is_new: bool = False


def write_source_list(
    path: Path | str,
    spec: InstrumentSpec,
    rows: list[SourceRow],
    bands: list[tuple[float, float]],
    *,
    t_start: float,
    t_stop: float,
    meta: FileMeta,
) -> Path:
    """The detected sources of a mosaic (OSA's ``ISGR-SRCL-RES`` layout), strongest first."""
    n, m = len(rows), max(len(bands), 1)

    def vector(values: list[list[float]]) -> np.ndarray:
        out = np.full((n, m), np.nan, dtype=np.float32)
        for i, row in enumerate(values):
            out[i, : len(row)] = row
        return out

    columns = [
        fits.Column("SOURCE_ID", "16A", array=[_source_id(r.ra_deg, r.dec_deg) for r in rows]),
        fits.Column("NAME", "32A", array=[r.name[:32] for r in rows]),
        fits.Column("RA_OBJ", "1D", unit="deg", array=[r.ra_deg for r in rows]),
        fits.Column("DEC_OBJ", "1D", unit="deg", array=[r.dec_deg for r in rows]),
        fits.Column("ERR_RAD", "1E", unit="deg", array=[r.err_rad_deg for r in rows]),
        fits.Column("DETSIG", "1E", array=[r.significance for r in rows]),
        fits.Column("NEW_SOURCE", "1I", array=np.array([int(r.is_new) for r in rows], np.int16)),
        fits.Column(
            "FLUX", f"{m}E", unit=spec.intensity_unit, array=vector([r.fluxes for r in rows])
        ),
        fits.Column(
            "FLUX_ERR",
            f"{m}E",
            unit=spec.intensity_unit,
            array=vector([r.flux_errors for r in rows]),
        ),
        fits.Column("E_MIN", f"{m}E", unit="keV", array=vector([[b[0] for b in bands]] * n)),
        fits.Column("E_MAX", f"{m}E", unit="keV", array=vector([[b[1] for b in bands]] * n)),
    ]
    cards = [
        ("EXTNAME", f"{spec.prefix}-SRCL-RES"),
        ("BASETYPE", "DAL_TABLE"),
        *_instrument_cards(spec),
        ("ISDCLEVL", "IMA2" if spec.code != "isgri" else "IMA"),
        *_run_cards(meta),
        *_time_cards(t_start, t_stop),
        ("RADESYS", "FK5"),
        ("EQUINOX", 2000.0),
    ]
    table = fits.BinTableHDU.from_columns(columns, header=_header(cards))
    return write_hdus(path, [_primary(meta), table])


def _source_id(ra_deg: float, dec_deg: float) -> str:
    ra_s = round(ra_deg / 15.0 * 3600.0, 1) % 86400.0
    h, rem = divmod(ra_s, 3600.0)
    m, s = divmod(rem, 60.0)
    sign = "-" if dec_deg < 0 else "+"
    d, rem2 = divmod(round(abs(dec_deg) * 3600.0), 3600)
    dm, ds = divmod(rem2, 60)
    return f"J{int(h):02d}{int(m):02d}{s:04.1f}{sign}{int(d):02d}{int(dm):02d}{int(ds):02d}"


# ------------------------------------------------------------------------------- spectra


@dataclass
class Target:
    name: str
    ra_deg: float
    dec_deg: float


def write_spectrum(
    pha_path: Path | str,
    spec: InstrumentSpec,
    target: Target,
    rate: np.ndarray,
    error: np.ndarray,
    *,
    respfile: str,
    ancrfile: str,
    t_start: float,
    t_stop: float,
    exposure_s: float,
    meta: FileMeta,
) -> Path:
    """A spectrum with one channel per band (its response: ``write_response``)."""
    n = len(rate)
    rate = np.asarray(rate, dtype=float)
    error = np.asarray(error, dtype=float)
    quality = np.where(np.isfinite(rate) & np.isfinite(error) & (error > 0), 0, 1).astype(np.int16)
    first = 0 if spec.code == "isgri" else 1  # JEM-X numbers its channels from 1
    extname = "ISGR-EVTS-SPE" if spec.code == "isgri" else f"{spec.prefix}-PHA1-SPE"
    cards = [
        ("EXTNAME", extname),
        ("BASETYPE", "DAL_TABLE"),
        *_instrument_cards(spec),
        ("ISDCLEVL", "SPE"),
        *_run_cards(meta),
        *_time_cards(t_start, t_stop),
        ("EXPOSURE", float(exposure_s)),
        ("RADESYS", "FK5"),
        ("EQUINOX", 2000.0),
        ("NAME", target.name),
        ("RA_OBJ", float(target.ra_deg)),
        ("DEC_OBJ", float(target.dec_deg)),
        ("SOURCEID", _source_id(target.ra_deg, target.dec_deg)),
        ("HDUCLASS", "OGIP"),
        ("HDUCLAS1", "SPECTRUM"),
        ("HDUVERS", "1.2.1"),
        ("HDUCLAS2", "NET"),
        ("HDUCLAS3", "RATE"),
        ("DETCHANS", n),
        ("CHANTYPE", "PI"),
        ("POISSERR", False),
        ("AREASCAL", 1.0),
        ("BACKSCAL", 1.0),
        ("CORRSCAL", 0.0),
        ("BACKFILE", "NONE"),
        ("CORRFILE", "NONE"),
        ("RESPFILE", respfile),
        ("ANCRFILE", ancrfile),
        ("TLMIN1", first),
        ("TLMAX1", first + n - 1),
    ]
    columns = [
        fits.Column("CHANNEL", "1I", array=np.arange(first, first + n, dtype=np.int16)),
        fits.Column("RATE", "1E", unit="count/s", array=np.where(quality == 0, rate, np.nan)),
        fits.Column("STAT_ERR", "1E", unit="count/s", array=np.where(quality == 0, error, 0.0)),
        fits.Column("SYS_ERR", "1E", array=np.zeros(n)),
        fits.Column("QUALITY", "1I", array=quality),
        fits.Column("GROUPING", "1I", array=np.ones(n, dtype=np.int16)),
    ]
    return write_hdus(
        pha_path, [_primary(meta), fits.BinTableHDU.from_columns(columns, header=_header(cards))]
    )


def write_response(
    rmf_path: Path | str,
    arf_path: Path | str,
    spec: InstrumentSpec,
    response: BandResponse,
    meta: FileMeta,
) -> tuple[Path, Path]:
    """The RMF and ARF of band spectra (shared by every spectrum of a mosaic)."""
    first = 0 if spec.code == "isgri" else 1
    _write_rmf(Path(rmf_path), spec, response, first, meta)
    _write_arf(Path(arf_path), spec, response, meta)
    return Path(rmf_path), Path(arf_path)


def _response_cards(spec: InstrumentSpec, n: int, meta: FileMeta) -> list[tuple[str, Any]]:
    return [
        ("BASETYPE", "DAL_TABLE"),
        *_instrument_cards(spec),
        ("CREATOR", meta.creator),
        ("CONFIGUR", meta.configur),
        ("HDUCLASS", "OGIP"),
        ("HDUCLAS1", "RESPONSE"),
        ("HDUVERS", "1.3.0"),
        ("FILTER", "NONE"),
        ("DETCHANS", n),
        ("CHANTYPE", "PI"),
    ]


def _write_rmf(
    path: Path, spec: InstrumentSpec, response: BandResponse, first: int, meta: FileMeta
) -> None:
    n_e, n = response.redistribution.shape
    matrix_name = "ISGR-RMF.-RSP" if spec.code == "isgri" else "SPECRESP MATRIX"
    ebounds_name = "ISGR-EBDS-MOD" if spec.code == "isgri" else "EBOUNDS"
    matrix = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "1E", unit="keV", array=response.energ_lo),
            fits.Column("ENERG_HI", "1E", unit="keV", array=response.energ_hi),
            fits.Column("N_GRP", "1I", array=np.ones(n_e, dtype=np.int16)),
            fits.Column("F_CHAN", "1I", array=np.full(n_e, first, dtype=np.int16)),
            fits.Column("N_CHAN", "1I", array=np.full(n_e, n, dtype=np.int16)),
            fits.Column("MATRIX", f"{n}E", array=response.redistribution.astype(np.float32)),
        ],
        header=_header(
            [
                ("EXTNAME", matrix_name),
                *_response_cards(spec, n, meta),
                ("HDUCLAS2", "RSP_MATRIX"),
                ("HDUCLAS3", "REDIST"),
                ("LO_THRES", 0.0),
                ("TLMIN4", first),
                ("TLMAX4", first + n - 1),
            ]
        ),
    )
    ebounds = fits.BinTableHDU.from_columns(
        [
            fits.Column("CHANNEL", "1J", array=np.arange(n)),
            fits.Column("E_MIN", "1E", unit="keV", array=response.chan_lo),
            fits.Column("E_MAX", "1E", unit="keV", array=response.chan_hi),
        ],
        header=_header(
            [
                ("EXTNAME", ebounds_name),
                *_response_cards(spec, n, meta),
                ("HDUCLAS2", "EBOUNDS"),
                ("TLMIN1", 0),
                ("TLMAX1", n - 1),
            ]
        ),
    )
    write_hdus(path, [_primary(meta), matrix, ebounds])


def _write_arf(path: Path, spec: InstrumentSpec, response: BandResponse, meta: FileMeta) -> None:
    extname = "ISGR-ARF.-RSP" if spec.code == "isgri" else "SPECRESP"
    n = len(response.chan_lo)
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column("ENERG_LO", "1E", unit="keV", array=response.energ_lo),
            fits.Column("ENERG_HI", "1E", unit="keV", array=response.energ_hi),
            fits.Column("SPECRESP", "1E", unit="cm**2", array=response.area_cm2),
        ],
        header=_header(
            [("EXTNAME", extname), *_response_cards(spec, n, meta), ("HDUCLAS2", "SPECRESP")]
        ),
    )
    write_hdus(path, [_primary(meta), table])


# ------------------------------------------------------------------------------- light curves


@dataclass
class LightCurveBin:
    scw_id: str
    t_start: float  # IJD
    t_stop: float
    rate: float  # counts/s
    error: float
    fracexp: float


def write_lightcurve(
    path: Path | str,
    spec: InstrumentSpec,
    target: Target,
    bins: list[LightCurveBin],
    band: tuple[float, float],
    *,
    meta: FileMeta,
) -> Path:
    """A source light curve with one bin per ScW (widths as XAX_E half widths, in days)."""
    if not bins:
        raise ValueError("a light curve needs at least one bin")
    start = np.array([b.t_start for b in bins])
    stop = np.array([b.t_stop for b in bins])
    cards = [
        ("EXTNAME", f"{spec.prefix}-SRC.-LCR"),
        ("BASETYPE", "DAL_TABLE"),
        *_instrument_cards(spec),
        ("ISDCLEVL", "LCR"),
        *_run_cards(meta),
        *_time_cards(float(start.min()), float(stop.max())),
        ("TIMEPIXR", 0.5),
        ("E_MIN", float(band[0])),
        ("E_MAX", float(band[1])),
        ("EUNIT", "keV"),
        ("NAME", target.name),
        ("RA_OBJ", float(target.ra_deg)),
        ("DEC_OBJ", float(target.dec_deg)),
        ("SOURCEID", _source_id(target.ra_deg, target.dec_deg)),
        ("RADESYS", "FK5"),
        ("EQUINOX", 2000.0),
        ("BACKAPP", True),
        ("DEADAPP", True),
        ("VIGNAPP", True),
        ("HDUCLASS", "OGIP"),
        ("HDUCLAS1", "LIGHTCURVE"),
    ]
    columns = [
        fits.Column("TIME", "1D", unit="d", array=(start + stop) / 2.0),
        fits.Column("XAX_E", "1D", unit="d", array=(stop - start) / 2.0),
        fits.Column("RATE", "1E", unit="count/s", array=[b.rate for b in bins]),
        fits.Column("ERROR", "1E", unit="count/s", array=[b.error for b in bins]),
        fits.Column("FRACEXP", "1E", array=[b.fracexp for b in bins]),
        fits.Column("SWID", "16A", array=[b.scw_id for b in bins]),
    ]
    table = fits.BinTableHDU.from_columns(columns, header=_header(cards))
    return write_hdus(path, [_primary(meta), table])


def write_acs_lightcurve(
    path: Path | str,
    grb: Target,
    t0_ijd: float,
    time_ijd: np.ndarray,
    bin_s: float,
    rate: np.ndarray,
    error: np.ndarray,
    background: np.ndarray,
    *,
    meta: FileMeta,
) -> Path:
    """An SPI-ACS light curve around a trigger: net rate, its error, the background and the
    significance of each bin (an OGIP RATE table; INSTRUME 'SPI-ACS')."""
    with np.errstate(divide="ignore", invalid="ignore"):
        signif = np.where(error > 0, rate / error, 0.0)
    half = bin_s / 86400.0 / 2.0
    cards = [
        ("EXTNAME", "RATE"),
        ("TELESCOP", "INTEGRAL"),
        ("INSTRUME", "SPI-ACS"),
        ("CREATOR", meta.creator),
        ("CONFIGUR", meta.configur),
        ("REVOL", int(meta.revolution)),
        ("DATALVL", meta.data_level),
        *_time_cards(float(time_ijd.min() - half), float(time_ijd.max() + half)),
        ("TIMEDEL", bin_s / 86400.0),
        ("TIMEPIXR", 0.5),
        ("TRIGTIME", float(t0_ijd), "trigger time T0 (IJD, TT)"),
        ("E_MIN", 80.0),
        ("E_MAX", 10000.0),
        ("EUNIT", "keV"),
        ("NAME", grb.name),
        ("RA_OBJ", None if grb.ra_deg is None else float(grb.ra_deg)),
        ("DEC_OBJ", None if grb.dec_deg is None else float(grb.dec_deg)),
        ("HDUCLASS", "OGIP"),
        ("HDUCLAS1", "LIGHTCURVE"),
        ("HDUCLAS2", "NET"),
        ("HDUCLAS3", "RATE"),
    ]
    header = fits.Header()
    for card in cards:
        if card[1] is not None:
            header.append(card)
    columns = [
        fits.Column("TIME", "1D", unit="d", array=time_ijd),
        fits.Column("RATE", "1E", unit="count/s", array=rate),
        fits.Column("ERROR", "1E", unit="count/s", array=error),
        fits.Column("BACKV", "1E", unit="count/s", array=background),
        fits.Column("SIGNIF", "1E", array=signif),
    ]
    table = fits.BinTableHDU.from_columns(columns, header=header)
    return write_hdus(path, [_primary(meta), table])
