"""Recognise submitted files by their content and turn groups of them into ParsedProducts.

``plan_products`` sorts a list of files into products (a spectrum is grouped with its RMF and
ARF: by the RESPFILE/ANCRFILE names where they match, else by the order given — the response
files after a spectrum belong to it — else by the only compatible response) and lists the
files it rejects. ``read_product`` reads one group; neither touches the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from sources.sky import unit_vector

from ..fitsio import load_json, open_fits, sniff
from . import catalog, headers, image, lightcurve, spectrum
from .base import IngestError, InputFile, ParsedProduct

__all__ = ["FileInfo", "IngestError", "classify_file", "plan_products", "read_product"]


@dataclass
class FileInfo:
    path: Path
    original_name: str
    content: str  # fits | fits.gz | json | png | …
    kind: str  # image | pha | rmf | arf | lightcurve | catalog | api_catalog
    instrument: str | None = None
    n_channels: int | None = None
    n_energies: int | None = None
    respfile: str | None = None
    ancrfile: str | None = None
    error: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def match_name(self) -> str:
        return _match_key(self.original_name or self.path.name)


def _match_key(name: str) -> str:
    base = Path(name).name.lower()
    return re.sub(r"\.(gz|z)$", "", base)


def classify_file(path: Path, original_name: str = "") -> FileInfo:
    """What a file is, from its content; ``kind`` 'unknown' with ``error`` when unusable."""
    original_name = original_name or path.name
    content = sniff(path)
    info = FileInfo(path=path, original_name=original_name, content=content, kind="unknown")
    if content == "json":
        try:
            obj = load_json(path)
        except IngestError as exc:
            info.error = str(exc)
            return info
        if catalog.is_api_catalog(obj):
            info.kind = "api_catalog"
        else:
            info.error = "JSON file of no known kind (expected an MMODA API catalogue)"
        return info
    if content not in ("fits", "fits.gz"):
        info.error = {
            "empty": "the file is empty",
        }.get(content, "not a FITS file (it does not start with a FITS header)")
        return info
    try:
        with open_fits(path) as hdul:
            spectral = spectrum.classify_spectral_hdul(hdul)
            hdrs = [hdu.header for hdu in hdul]
            info.instrument = headers.instrument_code(hdrs)
            if spectral == "pha":
                info.kind = "pha"
                pha = spectrum.find_spectrum_hdu(hdul)
                info.n_channels = len(pha.data) if pha.data is not None else 0
                info.respfile = _keyword_file(pha.header, "RESPFILE")
                info.ancrfile = _keyword_file(pha.header, "ANCRFILE")
            elif spectral in ("rmf", "arf"):
                info.kind = spectral
                for hdu in hdul:
                    clas2 = (headers.text(hdu.header, "HDUCLAS2") or "").upper()
                    if clas2 == "EBOUNDS":
                        info.n_channels = len(hdu.data)
                    elif clas2 in ("RSP_MATRIX", "SPECRESP") and info.n_energies is None:
                        info.n_energies = len(hdu.data)
            elif lightcurve.find_lightcurve_hdu(hdul) is not None:
                info.kind = "lightcurve"
            elif catalog.find_catalog_hdu(hdul) is not None:
                info.kind = "catalog"
            elif image.is_image(hdul):
                info.kind = "image"
            else:
                info.error = (
                    "FITS file of no known kind (not a sky image, spectrum, response, "
                    "light curve or source catalogue)"
                )
    except IngestError as exc:
        info.error = str(exc)
    return info


def _keyword_file(header, key: str) -> str | None:
    value = headers.text(header, key)
    return _match_key(value) if value else None


def plan_products(files: list[InputFile]) -> tuple[list[list[FileInfo]], list[tuple[str, str]]]:
    """Group files into products. Returns (groups, rejected [(file name, reason)])."""
    infos = [classify_file(f.path, f.original_name) for f in files]
    rejected = [(i.original_name, i.error) for i in infos if i.kind == "unknown"]
    usable = [i for i in infos if i.kind != "unknown"]
    groups: list[list[FileInfo]] = []
    used_responses: set[int] = set()
    responses = [i for i in usable if i.kind in ("rmf", "arf")]
    for index, info in enumerate(usable):
        if info.kind in ("rmf", "arf"):
            continue
        if info.kind != "pha":
            groups.append([info])
            continue
        following = []
        for later in usable[index + 1 :]:
            if later.kind == "pha":
                break
            if later.kind in ("rmf", "arf"):
                following.append(later)
        rmf = _pick(info, "rmf", info.respfile, following, responses, used_responses)
        if rmf is None:
            rejected.append(
                (info.original_name, "spectrum without response: give its RMF (and ARF) with it")
            )
            continue
        arf = _pick(info, "arf", info.ancrfile, following, responses, used_responses, rmf=rmf)
        used_responses.update(id(x) for x in (rmf, arf) if x is not None)
        groups.append([info, rmf] + ([arf] if arf is not None else []))
    for resp in responses:
        if id(resp) not in used_responses:
            rejected.append(
                (
                    resp.original_name,
                    f"response file ({resp.kind.upper()}) given without a spectrum that uses it",
                )
            )
    return groups, rejected


def _pick(
    pha: FileInfo,
    kind: str,
    named: str | None,
    following: list[FileInfo],
    responses: list[FileInfo],
    used: set[int],
    rmf: FileInfo | None = None,
) -> FileInfo | None:
    def compatible(resp: FileInfo) -> bool:
        if resp.kind != kind:
            return False
        if pha.instrument and resp.instrument and pha.instrument != resp.instrument:
            return False
        if kind == "rmf":
            return resp.n_channels in (None, pha.n_channels)
        return rmf is None or resp.n_energies in (None, rmf.n_energies)

    if named:
        for resp in responses:
            if resp.kind == kind and resp.match_name == named:
                return resp
    near = [r for r in following if compatible(r)]
    if near:
        return near[0]
    free = [r for r in responses if compatible(r) and id(r) not in used]
    return free[0] if len(free) == 1 else None


def read_product(group: list[FileInfo], threshold: float | None = None) -> ParsedProduct:
    """Read one product's files (the data file first) into a ParsedProduct."""
    threshold = settings.GALLERY_DETECTION_THRESHOLD if threshold is None else threshold
    main = group[0]
    files = [InputFile(main.path, "data", main.original_name)]
    if main.kind == "pha":
        return _read_spectrum(group, files)
    if main.kind == "api_catalog":
        facts = catalog.read_api_catalog(load_json(main.path))
        return _catalog_product(facts, files)
    with open_fits(main.path) as hdul:
        if main.kind == "image":
            return _image_product(image.read_image(hdul, threshold), files)
        if main.kind == "lightcurve":
            return _lightcurve_product(lightcurve.read_lightcurve(hdul), files)
        if main.kind == "catalog":
            return _catalog_product(catalog.read_catalog_fits(hdul), files)
    raise IngestError(f"cannot read a file of kind {main.kind}")


def _common(parsed: ParsedProduct, hdrs: list) -> ParsedProduct:
    if parsed.t_start_ijd is None:
        parsed.t_start_ijd, parsed.t_stop_ijd = headers.time_range_ijd(hdrs)
    parsed.revolutions = headers.revolutions(hdrs, parsed.t_start_ijd, parsed.t_stop_ijd)
    parsed.scw_ids = headers.scw_ids(hdrs)
    parsed.osa_version, config = headers.osa_version(hdrs)
    if hdrs:
        parsed.facts = headers.facts(hdrs[0])
    if config:
        parsed.facts["CONFIGUR"] = config
    if parsed.exposure_s is None:
        parsed.exposure_s = headers.exposure(hdrs)
    return parsed


def _require_instrument(code: str | None) -> str:
    if not code:
        raise IngestError("the file does not say which instrument made it (INSTRUME/DETNAM)")
    return code


def _image_product(facts: dict, files: list[InputFile]) -> ParsedProduct:
    parsed = ParsedProduct(
        kind="image",
        instrument=_require_instrument(facts["instrument"]),
        files=files,
        e_min_kev=facts["e_min_kev"],
        e_max_kev=facts["e_max_kev"],
        ra_deg=facts["ra_deg"],
        dec_deg=facts["dec_deg"],
        detected=facts["peaks"],
        image=facts["image"],
        notes=facts["notes"],
    )
    return _common(parsed, facts["headers"])


def _lightcurve_product(facts: dict, files: list[InputFile]) -> ParsedProduct:
    hdrs = facts["headers"]
    ra, dec = headers.position(hdrs)
    parsed = ParsedProduct(
        kind="lightcurve",
        instrument=_require_instrument(headers.instrument_code(hdrs)),
        files=files,
        source_name=headers.source_name(hdrs),
        ra_deg=ra,
        dec_deg=dec,
        t_start_ijd=facts["t_start_ijd"],
        t_stop_ijd=facts["t_stop_ijd"],
        lightcurve=facts["lightcurve"],
        notes=facts["notes"],
    )
    parsed.e_min_kev, parsed.e_max_kev = _band(hdrs)
    parsed = _common(parsed, hdrs)
    parsed.facts["n_bins"] = facts["n_bins"]
    return parsed


def _band(hdrs) -> tuple[float | None, float | None]:
    e_min, e_max = headers.first(hdrs, "E_MIN"), headers.first(hdrs, "E_MAX")
    if e_min is not None and e_max is not None and 0 < e_min < e_max:
        return round(e_min, 3), round(e_max, 3)
    return None, None


def _catalog_product(facts: dict, files: list[InputFile]) -> ParsedProduct:
    sources = facts["sources"]
    ra = dec = None
    if sources:
        vec = np.sum([unit_vector(s.ra_deg, s.dec_deg) for s in sources], axis=0)
        if np.linalg.norm(vec) > 1e-9:
            vec = vec / np.linalg.norm(vec)
            ra = float(np.degrees(np.arctan2(vec[1], vec[0])) % 360)
            dec = float(np.degrees(np.arcsin(np.clip(vec[2], -1, 1))))
    parsed = ParsedProduct(
        kind="catalog",
        instrument=_require_instrument(facts["instrument"]),
        files=files,
        detected=sources,
        ra_deg=ra,
        dec_deg=dec,
        notes=facts["notes"],
        e_min_kev=facts["e_min_kev"],
        e_max_kev=facts["e_max_kev"],
    )
    parsed = _common(parsed, facts["headers"])
    parsed.facts["catalog_flavour"] = facts["flavour"]
    parsed.facts["n_rows"] = len(sources)
    return parsed


def _band_edge(kev: float) -> float:
    """A channel edge as it is quoted: 0.01 keV below 10 keV, 0.1 keV above."""
    return round(kev, 2 if kev < 10 else 1)


def _read_spectrum(group: list[FileInfo], files: list[InputFile]) -> ParsedProduct:
    pha, rmf = group[0], group[1]
    arf = group[2] if len(group) > 2 else None
    files.append(InputFile(rmf.path, "rmf", rmf.original_name))
    if arf is not None:
        files.append(InputFile(arf.path, "arf", arf.original_name))
    data = spectrum.read_spectrum(pha.path, rmf.path, arf.path if arf else None)
    with open_fits(pha.path) as hdul:
        hdu = spectrum.find_spectrum_hdu(hdul)
        hdrs = [hdu.header] + [x.header for x in hdul if x is not hdu]
        ra, dec = headers.position(hdrs)
        name = headers.source_name(hdrs)
        instrument = _require_instrument(headers.instrument_code(hdrs))
    good = data.quality == 0
    parsed = ParsedProduct(
        kind="spectrum",
        instrument=instrument,
        files=files,
        source_name=name,
        ra_deg=ra,
        dec_deg=dec,
        spectrum=data,
        exposure_s=data.exposure_s,
        e_min_kev=_band_edge(float(data.e_min[good].min())),
        e_max_kev=_band_edge(float(data.e_max[good].max())),
    )
    parsed = _common(parsed, hdrs)
    parsed.facts["n_channels"] = int(len(data.channel))
    if arf is None:
        parsed.notes.append("no ARF: the RMF is taken to hold the effective area (OSA 11)")
    return parsed
