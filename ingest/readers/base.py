"""What every reader returns: a ``ParsedProduct`` describing one product found in files.

Readers recognise files by their headers (EXTNAME, HDUCLAS*, IMATYPE, columns), never by
their names. They do not touch the database: linking to sources, revolutions and
observations, previews and fits happen in the ingest service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IngestError  # noqa: F401 - re-exported: every reader raises it


@dataclass
class InputFile:
    path: Path
    role: str  # data | rmf | arf | preview | region | other
    original_name: str = ""


@dataclass
class DetectedSource:
    """A source listed in a catalogue or found in an image."""

    name: str | None  # None or a placeholder when the producer gave no name
    ra_deg: float
    dec_deg: float
    significance: float | None = None
    flux: float | None = None
    flux_error: float | None = None
    error_radius_deg: float | None = None
    is_new: bool = False  # flagged by the producer as a new source
    object_class: str | None = None


@dataclass
class ImageData:
    """A sky image: the significance map is always there; the others when the file has them."""

    header: Any  # astropy.io.fits.Header with the WCS
    significance: np.ndarray
    intensity: np.ndarray | None = None
    variance: np.ndarray | None = None
    exposure: np.ndarray | None = None


@dataclass
class ResponseData:
    """A spectral response folded to counts/s per channel for a photon flux per keV.

    ``matrix[i, j]`` is the effective area (cm^2) times the redistribution probability of
    photon energy bin i into detector channel j (ARF times RMF, whatever file holds the area).
    """

    energ_lo: np.ndarray  # keV, photon energy bins
    energ_hi: np.ndarray
    matrix: np.ndarray  # shape (n_energy, n_channels)
    channel_e_min: np.ndarray  # keV, EBOUNDS of the channels, in spectrum channel order
    channel_e_max: np.ndarray


@dataclass
class SpectrumData:
    channel: np.ndarray  # as numbered in the file
    rate: np.ndarray  # counts/s
    stat_err: np.ndarray  # counts/s
    sys_err: np.ndarray  # fractional systematic error (0 where absent)
    quality: np.ndarray  # 0 good; NaN rates are flagged bad too
    e_min: np.ndarray  # keV, channel bounds from the response's EBOUNDS
    e_max: np.ndarray
    exposure_s: float | None
    response: ResponseData


@dataclass
class LightCurveData:
    time_ijd: np.ndarray  # bin centres, IJD (TT)
    half_width_d: np.ndarray  # half bin widths, days
    rate: np.ndarray
    error: np.ndarray
    fracexp: np.ndarray | None = None
    background: np.ndarray | None = None


@dataclass
class ParsedProduct:
    kind: str  # image | spectrum | lightcurve | catalog
    instrument: str  # instrument code: isgri, jemx1, jemx2, spi_acs
    files: list[InputFile]
    title_hint: str = ""
    e_min_kev: float | None = None
    e_max_kev: float | None = None
    t_start_ijd: float | None = None
    t_stop_ijd: float | None = None
    revolutions: list[int] = field(default_factory=list)
    scw_ids: list[str] = field(default_factory=list)
    source_name: str | None = None  # the target, when the file names one
    ra_deg: float | None = None
    dec_deg: float | None = None
    exposure_s: float | None = None
    osa_version: str = ""
    detected: list[DetectedSource] = field(default_factory=list)
    image: ImageData | None = None
    spectrum: SpectrumData | None = None
    lightcurve: LightCurveData | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # header facts kept as metadata
    notes: list[str] = field(default_factory=list)  # what the reader had to infer

    @property
    def data_files(self) -> list[InputFile]:
        return [f for f in self.files if f.role in ("data", "rmf", "arf")]
