"""What the pipeline knows of each instrument, and the parameters of a run.

The energy bands come in two sets. *Spectral bands* are the narrow bands the per-ScW images
are made in (about ten per instrument): each becomes one channel of the extracted spectra.
*Image bands* are the broad bands of the published mosaics; each is the sum of consecutive
spectral bands (count rates add, and so do variances), so that no band is mosaicked twice.
When the ScW images hold other bands (real archives hold whatever OSA was asked for), the
image bands are those of the configured ones that the available bands can form, else the
available bands themselves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from django.conf import settings


@dataclass(frozen=True)
class InstrumentSpec:
    code: str  # isgri | jemx1 | jemx2 (products.Instrument.code)
    prefix: str  # EXTNAME prefix of OSA files: ISGR | JMX1 | JMX2
    instrume: str  # INSTRUME keyword
    detnam: str | None  # DETNAM keyword
    scw_file: str  # per-ScW sky image file name in the archive, without .fits[.gz]
    pixel_deg: float  # sky-image pixel
    psf_fwhm_deg: float
    intensity_type: str  # IMATYPE of the intensity image OSA writes
    intensity_unit: str
    variance_unit: str
    # Images of JEM-X are in counts/cm2/s; spectra and light curves in counts/s. This factor
    # turns one into the other with the normalisation of ingest.synthetic's JEM-X images.
    rate_per_intensity: float
    spectral_edges_kev: tuple[float, ...]
    image_bands_kev: tuple[tuple[float, float], ...]
    lightcurve_band_kev: tuple[float, float]
    mmoda_instrument: str  # instrument name in MMODA requests
    mmoda_prefix: str  # product_type prefix in MMODA requests: isgri | jemx

    @property
    def psf_sigma_deg(self) -> float:
        return self.psf_fwhm_deg / 2.354820045

    @property
    def psf_sigma_pix(self) -> float:
        return self.psf_sigma_deg / self.pixel_deg

    @property
    def spectral_bands_kev(self) -> list[tuple[float, float]]:
        edges = self.spectral_edges_kev
        return list(zip(edges[:-1], edges[1:], strict=True))

    @property
    def sky_extname(self) -> str:
        return f"{self.prefix}-SKY.-IMA"

    @property
    def mosaic_extname(self) -> str:
        return f"{self.prefix}-MOSA-IMA"


ISGRI = InstrumentSpec(
    code="isgri",
    prefix="ISGR",
    instrume="IBIS",
    detnam="ISGRI",
    scw_file="isgri_sky_ima",
    pixel_deg=0.0822862539155913,  # 4.94 arcmin, the ISGRI detector pixel seen from the mask
    psf_fwhm_deg=12.0 / 60.0,
    intensity_type="INTENSITY",
    intensity_unit="counts/sec",
    variance_unit="(counts/sec)**2",
    rate_per_intensity=1.0,
    spectral_edges_kev=(20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0, 200.0, 300.0),
    image_bands_kev=((20.0, 40.0), (40.0, 100.0), (100.0, 300.0)),
    lightcurve_band_kev=(20.0, 40.0),
    mmoda_instrument="isgri",
    mmoda_prefix="isgri",
)


def _jemx(unit: int) -> InstrumentSpec:
    return InstrumentSpec(
        code=f"jemx{unit}",
        prefix=f"JMX{unit}",
        instrume=f"JMX{unit}",
        detnam=None,
        scw_file=f"jmx{unit}_sky_ima",
        pixel_deg=0.026,  # 1.56 arcmin, as OSA's JEM-X images
        psf_fwhm_deg=3.7 / 60.0,
        intensity_type="RECONSTRUCTED",
        intensity_unit="counts/cm2/s",
        variance_unit="counts2/cm4/s2",
        rate_per_intensity=740.0,
        spectral_edges_kev=(3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 35.0),
        image_bands_kev=((3.0, 10.0), (10.0, 20.0), (20.0, 35.0)),
        lightcurve_band_kev=(3.0, 10.0),
        mmoda_instrument="jemx",
        mmoda_prefix="jemx",
    )


INSTRUMENTS: dict[str, InstrumentSpec] = {"isgri": ISGRI, "jemx1": _jemx(1), "jemx2": _jemx(2)}
DEFAULT_INSTRUMENTS = ("isgri", "jemx1")


def instrument(code: str) -> InstrumentSpec:
    try:
        return INSTRUMENTS[code]
    except KeyError:
        raise ValueError(
            f"unknown instrument {code!r}; the pipeline knows {', '.join(INSTRUMENTS)}"
        ) from None


def band_label(band: tuple[float, float]) -> str:
    return f"{band[0]:g}-{band[1]:g}keV"


def image_bands(
    spec: InstrumentSpec, available: list[tuple[float, float]]
) -> list[tuple[tuple[float, float], list[int]]]:
    """The image bands formable from ``available`` (sorted, contiguous spectral bands).

    Returns [(band, indices of the available bands summed into it)].
    """
    formed = []
    for lo, hi in spec.image_bands_kev:
        members = [i for i, (a, b) in enumerate(available) if a >= lo - 1e-6 and b <= hi + 1e-6]
        if not members:
            continue
        covered = [available[i] for i in members]
        contiguous = all(
            abs(covered[k][1] - covered[k + 1][0]) < 1e-6 for k in range(len(covered) - 1)
        )
        if contiguous and abs(covered[0][0] - lo) < 1e-6 and abs(covered[-1][1] - hi) < 1e-6:
            formed.append(((lo, hi), members))
    if formed:
        return formed
    return [(band, [i]) for i, band in enumerate(available)]


def lightcurve_members(
    spec: InstrumentSpec, available: list[tuple[float, float]]
) -> tuple[tuple[float, float], list[int]]:
    """The light-curve band and the available bands summed into it (else the first band)."""
    for band, members in image_bands(spec, available):
        if band == spec.lightcurve_band_kev:
            return band, members
    return image_bands(spec, available)[0]


@dataclass
class RunParameters:
    """The parameters of a run; their hash (with the product's own) identifies a series."""

    backend: str = "local"
    instruments: list[str] = field(default_factory=lambda: list(DEFAULT_INSTRUMENTS))
    threshold: float = 7.0
    osa_label: str = "11.2"
    archive: str = ""
    mmoda_url: str = ""
    grb_triggers: str = ""  # a JSON file of triggers (default: grb_triggers.json in the archive)

    @classmethod
    def from_settings(cls, **overrides) -> RunParameters:
        values = {
            "backend": settings.GALLERY_PIPELINE_BACKEND,
            "threshold": settings.GALLERY_DETECTION_THRESHOLD,
            "osa_label": settings.GALLERY_PIPELINE_OSA_LABEL,
            "archive": str(settings.GALLERY_ARCHIVE_DIR),
            "mmoda_url": settings.GALLERY_MMODA_URL,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        params = cls(**values)
        params.validate()
        return params

    @classmethod
    def from_json(cls, data: dict) -> RunParameters:
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_json(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        if self.backend not in ("local", "mmoda"):
            raise ValueError(f"unknown backend {self.backend!r}: use local or mmoda")
        for code in self.instruments:
            instrument(code)
        if not self.threshold > 0:
            raise ValueError("the detection threshold must be positive")

    @property
    def key(self) -> str:
        """A short hash of what changes the products (not where the archive lives)."""
        basis = {
            "backend": self.backend,
            "instruments": sorted(self.instruments),
            "threshold": self.threshold,
            "osa": self.osa_label,
        }
        return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


def external_id(**parameters) -> str:
    """The producer's id of a product: a hash of the parameters that make it.

    Reprocessing with the same parameters gives the same id, so the new product becomes a new
    version of the old one (``ingest.service`` supersedes it); a different band, threshold,
    OSA-like label, instrument, product, revolution or observation starts another series.
    """
    text = json.dumps(parameters, sort_keys=True, default=str)
    return "pipeline:" + hashlib.sha256(text.encode()).hexdigest()
