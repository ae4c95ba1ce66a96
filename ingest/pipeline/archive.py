"""The archive the pipeline reads, laid out like the ISDC's, and the plan of a revolution.

Layout (paths relative to the archive folder)::

    scw/RRRR/RRRRPPPPSSSF.VVV/isgri_sky_ima.fits[.gz]   per-ScW ISGRI sky images
    scw/RRRR/RRRRPPPPSSSF.VVV/jmx1_sky_ima.fits[.gz]    per-ScW JEM-X1 sky images
    scw/RRRR/observations.json                           optional observation index
    spi_acs/RRRR/*.fits                                  SPI-ACS count rates (optional)
    grb_triggers.json                                    GRB triggers (optional)

A ScW folder is named by its id with its version: ``.001`` is consolidated data, ``.000``
near-real-time (or private) data; where both exist the consolidated one is used, and a
revolution with any ``.000`` ScW left is NRT.

The observation index is a JSON list of ``{"obsid", "expid", "title", "pi_name",
"scw_ids": [...]}`` (every key but ``scw_ids`` optional). Without it, the ScWs of a revolution
form one observation. The ScWs of an observation are split into *fields* of pointings close
together (within ``FIELD_RADIUS_DEG``), so that each mosaic is a sensible tangent-plane image;
one mosaic is made per field and instrument (a *unit* of work).
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from products import timeline
from sources.sky import angular_distance_deg

from .config import InstrumentSpec, instrument

SCW_DIR = "scw"
OBSERVATION_INDEX = "observations.json"
GRB_TRIGGERS = "grb_triggers.json"
SPI_ACS_DIR = "spi_acs"
TRUTH = "truth.json"

#: Pointings further apart than this from a field's first pointing start another field.
FIELD_RADIUS_DEG = 20.0

_SCW_FOLDER = re.compile(r"^(\d{4})(\d{4})(\d{3})([01])\.(\d{3})$")
_REV_FOLDER = re.compile(r"^\d{4}$")
INTENSITY_TYPES = ("INTENSITY", "RECONSTRUCTED", "FLUX")


class CorruptScw(Exception):
    """A ScW file that cannot be used; the message says why, in one line."""


@dataclass
class ScwEntry:
    scw_id: str  # with version, e.g. 066500280010.001
    files: dict[str, Path]  # instrument code -> sky image file

    @property
    def base(self) -> str:
        return self.scw_id.split(".")[0]

    @property
    def is_consolidated(self) -> bool:
        return not self.scw_id.endswith(".000")


@dataclass
class ScwInfo:
    """What the plan needs of one ScW image, from its headers only."""

    scw_id: str
    path: str
    t_start_ijd: float
    t_stop_ijd: float
    exposure_s: float
    ra_deg: float  # pointing (image centre)
    dec_deg: float
    corners: list[list[float]]  # world positions of the image corners and edge middles
    pixel_deg: float
    bands: list[list[float]]


@dataclass
class Unit:
    """One mosaic's worth of work: the ScWs of one field seen by one instrument."""

    key: str
    observation: str  # Observation title
    obsid: str
    instrument: str
    scws: list[ScwInfo] = field(default_factory=list)


@dataclass
class ObservationPlan:
    title: str
    obsid: str = ""
    expid: str = ""
    pi_name: str = ""
    scw_ids: list[str] = field(default_factory=list)
    t_start_ijd: float | None = None
    t_stop_ijd: float | None = None
    ra_deg: float | None = None
    dec_deg: float | None = None


@dataclass
class GrbTrigger:
    name: str
    time_utc: str
    ra_deg: float | None = None
    dec_deg: float | None = None

    @property
    def t0_ijd(self) -> float:
        return timeline.time_to_ijd(timeline.parse_time(self.time_utc, "isot"))


@dataclass
class RevolutionPlan:
    revolution: int
    data_level: str
    observations: list[ObservationPlan] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    grbs: list[GrbTrigger] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # [{scw, instrument, reason}]

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> RevolutionPlan:
        units = [
            Unit(
                **{k: v for k, v in u.items() if k != "scws"},
                scws=[ScwInfo(**s) for s in u["scws"]],
            )
            for u in data.get("units", [])
        ]
        return cls(
            revolution=data["revolution"],
            data_level=data["data_level"],
            observations=[ObservationPlan(**o) for o in data.get("observations", [])],
            units=units,
            grbs=[GrbTrigger(**g) for g in data.get("grbs", [])],
            skipped=list(data.get("skipped", [])),
        )

    def unit(self, key: str) -> Unit:
        for unit in self.units:
            if unit.key == key:
                return unit
        raise KeyError(key)


# ------------------------------------------------------------------------------- archive


def revolution_folder(root: Path, revolution: int) -> Path:
    return Path(root) / SCW_DIR / f"{int(revolution):04d}"


def revolutions_in_archive(root: Path | str) -> list[int]:
    """Revolutions with at least one ScW folder in the archive, in order."""
    base = Path(root) / SCW_DIR
    if not base.is_dir():
        return []
    found = []
    for folder in base.iterdir():
        if (
            folder.is_dir()
            and _REV_FOLDER.match(folder.name)
            and any(_SCW_FOLDER.match(p.name) for p in folder.iterdir() if p.is_dir())
        ):
            found.append(int(folder.name))
    return sorted(found)


def scw_file(folder: Path, spec: InstrumentSpec) -> Path | None:
    for suffix in (".fits.gz", ".fits"):
        path = folder / f"{spec.scw_file}{suffix}"
        if path.is_file():
            return path
    return None


def scw_entries(root: Path | str, revolution: int, instruments: list[str]) -> list[ScwEntry]:
    """The pointing ScWs of a revolution with their image files (consolidated versions first)."""
    folder = revolution_folder(Path(root), revolution)
    if not folder.is_dir():
        return []
    chosen: dict[str, Path] = {}
    for sub in sorted(folder.iterdir()):
        match = _SCW_FOLDER.match(sub.name)
        if not sub.is_dir() or not match or int(match.group(1)) != int(revolution):
            continue
        if match.group(4) == "1":  # slews have no sky images worth mosaicking
            continue
        base = sub.name.split(".")[0]
        if base not in chosen or sub.name > chosen[base].name:  # .001 wins over .000
            chosen[base] = sub
    entries = []
    for base in sorted(chosen):
        sub = chosen[base]
        files = {}
        for code in instruments:
            path = scw_file(sub, instrument(code))
            if path is not None:
                files[code] = path
        entries.append(ScwEntry(sub.name, files))
    return entries


def data_level(entries: list[ScwEntry]) -> str:
    return "CONS" if entries and all(e.is_consolidated for e in entries) else "NRT"


def load_observation_index(root: Path | str, revolution: int) -> list[dict] | None:
    path = revolution_folder(Path(root), revolution) / OBSERVATION_INDEX
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"observation index {path}: unreadable ({exc})") from None
    if not isinstance(data, list) or not all(
        isinstance(o, dict) and isinstance(o.get("scw_ids"), list) for o in data
    ):
        raise ValueError(f"observation index {path}: expected a list of objects with scw_ids")
    return data


def load_grb_triggers(path: Path | str) -> list[GrbTrigger]:
    """Triggers from a JSON list of {name, time (UTC ISO), ra_deg, dec_deg}; [] if absent."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        rows = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"GRB triggers {path}: unreadable ({exc})") from None
    triggers = []
    for row in rows:
        trigger = GrbTrigger(
            name=str(row["name"]),
            time_utc=str(row.get("time_utc") or row["time"]),
            ra_deg=row.get("ra_deg"),
            dec_deg=row.get("dec_deg"),
        )
        trigger.t0_ijd  # noqa: B018 - validates the time now rather than mid-run
        triggers.append(trigger)
    return triggers


# ------------------------------------------------------------------------------- headers


def _quiet_wcs(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(header, naxis=2).celestial


def read_scw_info(scw_id: str, path: Path, spec: InstrumentSpec) -> ScwInfo:
    """Times, pointing and footprint of a ScW image from its headers (data not read)."""
    from . import fastfits

    try:
        with fastfits.opened(path, mapped=True) as buffer:
            hdus = fastfits.scan(buffer)
            times = None
            first_image = None
            bands = set()
            for hdu in hdus:
                start, stop = hdu.get("TSTART"), hdu.get("TSTOP")
                if (
                    times is None
                    and isinstance(start, int | float)
                    and isinstance(stop, int | float)
                ):
                    times = (float(start), float(stop))
                imatype = str(hdu.get("IMATYPE", "")).strip().upper()
                if hdu.is_image and imatype in INTENSITY_TYPES:
                    if first_image is None:
                        first_image = hdu.header()
                    lo, hi = hdu.get("E_MIN"), hdu.get("E_MAX")
                    if isinstance(lo, int | float) and isinstance(hi, int | float) and 0 < lo < hi:
                        bands.add((round(float(lo), 3), round(float(hi), 3)))
    except (fastfits.FitsScanError, OSError, ValueError, TypeError, KeyError) as exc:
        raise CorruptScw(f"unreadable headers ({_first_line(exc)})") from None
    if first_image is None:
        raise CorruptScw(f"no {spec.intensity_type} image")
    if times is None or not times[1] > times[0]:
        raise CorruptScw("no valid TSTART/TSTOP")
    wcs = _quiet_wcs(first_image)
    if not wcs.has_celestial:
        raise CorruptScw("the image has no celestial WCS")
    ny, nx = int(first_image["NAXIS2"]), int(first_image["NAXIS1"])
    xs = np.array([0, nx - 1, nx - 1, 0, (nx - 1) / 2, nx - 1, (nx - 1) / 2, 0, (nx - 1) / 2])
    ys = np.array([0, 0, ny - 1, ny - 1, 0, (ny - 1) / 2, ny - 1, (ny - 1) / 2, (ny - 1) / 2])
    ra, dec = wcs.wcs_pix2world(xs, ys, 0)
    if not (np.all(np.isfinite(ra)) and np.all(np.isfinite(dec))):
        raise CorruptScw("the image WCS gives no position for its corners")
    scale = float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))))
    exposure = first_image.get("EXPOSURE") or first_image.get("ONTIME") or 0.0
    return ScwInfo(
        scw_id=scw_id,
        path=str(path),
        t_start_ijd=times[0],
        t_stop_ijd=times[1],
        exposure_s=float(exposure),
        ra_deg=float(ra[-1]) % 360.0,
        dec_deg=float(dec[-1]),
        corners=[[float(r) % 360.0, float(d)] for r, d in zip(ra[:-1], dec[:-1], strict=True)],
        pixel_deg=scale,
        bands=[list(b) for b in sorted(bands)],
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


# ------------------------------------------------------------------------------- plan


def _fields(infos: list[ScwInfo]) -> list[list[str]]:
    """Group ScWs (time order) into fields of pointings within FIELD_RADIUS_DEG."""
    centres: list[tuple[float, float]] = []
    groups: list[list[str]] = []
    for info in sorted(infos, key=lambda i: i.t_start_ijd):
        for index, (ra, dec) in enumerate(centres):
            if float(angular_distance_deg(ra, dec, info.ra_deg, info.dec_deg)) <= FIELD_RADIUS_DEG:
                groups[index].append(info.scw_id)
                break
        else:
            centres.append((info.ra_deg, info.dec_deg))
            groups.append([info.scw_id])
    return groups


def _mean_position(infos: list[ScwInfo]) -> tuple[float | None, float | None]:
    if not infos:
        return None, None
    ra, dec = np.radians([i.ra_deg for i in infos]), np.radians([i.dec_deg for i in infos])
    vec = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)]).sum(axis=1)
    norm = np.linalg.norm(vec)
    if norm < 1e-9:
        return float(np.degrees(ra[0])), float(np.degrees(dec[0]))
    vec /= norm
    return float(np.degrees(np.arctan2(vec[1], vec[0])) % 360.0), float(
        np.degrees(np.arcsin(np.clip(vec[2], -1.0, 1.0)))
    )


def plan_revolution(
    root: Path | str,
    revolution: int,
    instruments: list[str],
    triggers: list[GrbTrigger] | None = None,
) -> RevolutionPlan:
    """Observations, fields and units of a revolution from the archive (headers only)."""
    root = Path(root)
    entries = scw_entries(root, revolution, instruments)
    plan = RevolutionPlan(revolution=int(revolution), data_level=data_level(entries))
    infos: dict[str, dict[str, ScwInfo]] = {}  # base id -> instrument -> info
    version_of = {e.base: e.scw_id for e in entries}
    for entry in entries:
        for code, path in entry.files.items():
            try:
                info = read_scw_info(entry.scw_id, path, instrument(code))
            except CorruptScw as exc:
                plan.skipped.append({"scw": entry.scw_id, "instrument": code, "reason": str(exc)})
                continue
            infos.setdefault(entry.base, {})[code] = info

    index = load_observation_index(root, revolution)
    if index is None:
        index = [
            {
                "title": f"Revolution {int(revolution):04d} pointings",
                "scw_ids": sorted(version_of),
            }
        ]
    claimed: set[str] = set()
    for row in index:
        bases = [str(s).split(".")[0] for s in row["scw_ids"]]
        bases = [b for b in bases if b in version_of and b not in claimed]
        claimed.update(bases)
        obsid = str(row.get("obsid") or "")
        title = (
            str(row.get("title") or (f"{obsid} (Rev. {int(revolution):04d})" if obsid else ""))
            or f"Revolution {int(revolution):04d} observation {len(plan.observations) + 1}"
        )
        seen = [i for b in bases for i in infos.get(b, {}).values()]
        ra, dec = _mean_position(seen)
        observation = ObservationPlan(
            title=title[:200],
            obsid=obsid[:20],
            expid=str(row.get("expid") or "")[:20],
            pi_name=str(row.get("pi_name") or "")[:100],
            scw_ids=[version_of[b] for b in bases],
            t_start_ijd=min((i.t_start_ijd for i in seen), default=None),
            t_stop_ijd=max((i.t_stop_ijd for i in seen), default=None),
            ra_deg=ra,
            dec_deg=dec,
        )
        plan.observations.append(observation)
        # Fields from every instrument's pointings (one ScW, one pointing).
        pointing = {b: next(iter(infos[b].values())) for b in bases if b in infos}
        groups = _fields(list(pointing.values()))
        stem = obsid or f"obs{len(plan.observations)}"
        for number, group in enumerate(groups, start=1):
            field_key = stem if len(groups) == 1 else f"{stem}-f{number}"
            group_bases = [s.split(".")[0] for s in group]
            for code in instruments:
                scws = [infos[b][code] for b in group_bases if code in infos.get(b, {})]
                if scws:
                    plan.units.append(
                        Unit(
                            key=f"{field_key}/{code}",
                            observation=observation.title,
                            obsid=observation.obsid,
                            instrument=code,
                            scws=sorted(scws, key=lambda s: s.t_start_ijd),
                        )
                    )
    start = timeline.time_to_ijd(timeline.revolution_start(revolution))
    stop = timeline.time_to_ijd(timeline.revolution_end(revolution))
    plan.grbs = [t for t in (triggers or []) if start <= t.t0_ijd < stop]
    return plan
