"""Source catalogues: the MMODA catalogue table (FITS), the JEM-X ``SLOC-RES`` list and the
MMODA "API catalogue" JSON."""

from __future__ import annotations

import math
import re

import numpy as np
from astropy.io import fits

from sources.names import is_placeholder

from . import headers as h
from .base import DetectedSource, IngestError

_MMODA_COLUMNS = {"src_names", "ra", "dec"}
_SLOC_COLUMNS = {"NAME", "RA_OBJ", "DEC_OBJ"}
# MMODA labels unknown detections "NEW SOURCE" or "NEW_1", "NEW_2", …: labels, not names.
_NEW_LABEL = re.compile(r"^new[ _]?(source)?[ _]?\d*$", re.IGNORECASE)


def find_catalog_hdu(hdul: fits.HDUList) -> fits.BinTableHDU | None:
    for hdu in hdul:
        if not isinstance(hdu, fits.BinTableHDU):
            continue
        names = set(hdu.columns.names)
        upper = {n.upper() for n in names}
        extname = (h.text(hdu.header, "EXTNAME") or "").upper()
        if (
            names >= _MMODA_COLUMNS
            or extname.endswith(("-SLOC-RES", "-SRCL-RES"))
            or (upper >= _SLOC_COLUMNS and "TIME" not in upper and "CHANNEL" not in upper)
        ):
            return hdu
    return None


def _is_new(name: str | None, flag) -> bool:
    if name and _NEW_LABEL.match(name.strip()):
        return True
    try:
        return flag is not None and int(flag) == 1
    except (TypeError, ValueError):
        return False


def _row_name(value) -> str | None:
    name = " ".join(str(value).split()) if value is not None else ""
    if not name or is_placeholder(name) or _NEW_LABEL.match(name):
        return None
    if len(name) > 100:
        raise IngestError(f"source name longer than 100 characters: {name[:40]}…")
    return name


def _rows_to_sources(
    names, ras, decs, sigs, errs, new_flags, fluxes=None, flux_errs=None
) -> list[DetectedSource]:
    out = []
    for i, (name, ra, dec) in enumerate(zip(names, ras, decs, strict=True)):
        ra, dec = float(ra), float(dec)
        if not (math.isfinite(ra) and math.isfinite(dec) and -90 <= dec <= 90):
            raise IngestError(f"catalogue row {i + 1} has an invalid position ({ra}, {dec})")
        raw = str(name)
        sig = _finite(sigs[i]) if sigs is not None else None
        out.append(
            DetectedSource(
                name=_row_name(raw),
                ra_deg=ra % 360.0,
                dec_deg=dec,
                significance=sig,
                error_radius_deg=_finite(errs[i]) if errs is not None else None,
                is_new=_is_new(raw, new_flags[i] if new_flags is not None else None),
                flux=_finite(fluxes[i]) if fluxes is not None else None,
                flux_error=_finite(flux_errs[i]) if flux_errs is not None else None,
            )
        )
    return out


def _finite(value) -> float | None:
    try:
        value = float(np.ravel(value)[0]) if np.ndim(value) else float(value)
    except (TypeError, ValueError, IndexError):
        return None
    return value if math.isfinite(value) else None


def read_catalog_fits(hdul: fits.HDUList) -> dict:
    hdu = find_catalog_hdu(hdul)
    if hdu is None:
        raise IngestError("no source-catalogue table in the file")
    data, names = hdu.data, set(hdu.columns.names)
    headers = [hdu.header] + [x.header for x in hdul if x is not hdu]
    notes = []
    if names >= _MMODA_COLUMNS:
        frame = (h.text(hdu.header, "FRAME") or "fk5").lower()
        if frame not in ("fk5", "icrs"):
            raise IngestError(f"unsupported catalogue frame {frame!r} (fk5 or icrs expected)")
        col = lambda n: data[n] if n in names else None  # noqa: E731
        sources = _rows_to_sources(
            col("src_names"),
            col("ra"),
            col("dec"),
            col("significance"),
            col("ERR_RAD"),
            col("NEW_SOURCE"),
        )
        instrument = h.instrument_code(headers)
        if instrument is None:
            # MMODA writes no instrument keyword: its ISGRI table alone has ISGRI_FLAG.
            instrument = "isgri" if "ISGRI_FLAG" in names else "jemx1"
            notes.append(f"instrument {instrument} inferred from the catalogue's columns")
        flavour = "mmoda"
    else:
        upper = {n.upper(): n for n in names}
        col = lambda n: data[upper[n]] if n in upper else None  # noqa: E731
        sources = _rows_to_sources(
            col("NAME"),
            col("RA_OBJ"),
            col("DEC_OBJ"),
            col("DETSIG"),
            col("ERR_RAD"),
            None,
            col("FLUX"),
            col("FLUX_ERR"),
        )
        instrument = h.instrument_code(headers)
        flavour = "osa_source_list"
    band = _band(data, set(names))
    return {
        "sources": sources,
        "headers": headers,
        "instrument": instrument,
        "flavour": flavour,
        "notes": notes,
        "e_min_kev": band[0],
        "e_max_kev": band[1],
    }


def _band(data, names: set[str]) -> tuple[float | None, float | None]:
    if {"E_MIN", "E_MAX"} <= names and len(data):
        e_min, e_max = _finite(data["E_MIN"][0]), _finite(data["E_MAX"][0])
        if e_min and e_max and 0 < e_min < e_max:
            return e_min, e_max
    return None, None


def is_api_catalog(obj) -> bool:
    return isinstance(obj, dict) and {"cat_column_list", "cat_column_names"} <= set(obj)


def read_api_catalog(obj: dict) -> dict:
    """The MMODA "API catalogue": parallel column lists named by ``cat_column_names``."""
    names = obj.get("cat_column_names")
    columns = obj.get("cat_column_list")
    if not isinstance(names, list) or not isinstance(columns, list) or len(names) != len(columns):
        raise IngestError("malformed API catalogue: cat_column_names and cat_column_list differ")
    table = dict(zip(names, columns, strict=True))
    lon, lat = obj.get("cat_lon_name", "ra"), obj.get("cat_lat_name", "dec")
    if (obj.get("cat_coord_units") or "deg") != "deg":
        raise IngestError("API catalogue coordinates must be in degrees")
    if str(obj.get("cat_frame", "fk5")).lower() not in ("fk5", "icrs"):
        raise IngestError("unsupported API catalogue frame (fk5 or icrs expected)")
    for needed in ("src_names", lon, lat):
        if needed not in table:
            raise IngestError(f"API catalogue without a {needed} column")
    lengths = {len(v) for v in table.values() if isinstance(v, list)}
    if len(lengths) != 1:
        raise IngestError("API catalogue columns have different lengths")
    try:
        sources = _rows_to_sources(
            table["src_names"],
            table[lon],
            table[lat],
            table.get("significance"),
            table.get("ERR_RAD"),
            table.get("NEW_SOURCE"),
        )
    except (TypeError, ValueError) as exc:
        raise IngestError(f"API catalogue with non-numeric positions ({exc})") from None
    instrument = "isgri" if "ISGRI_FLAG" in table else "jemx1"
    return {
        "sources": sources,
        "headers": [],
        "instrument": instrument,
        "flavour": "api",
        "notes": [f"instrument {instrument} inferred from the catalogue's columns"],
        "e_min_kev": None,
        "e_max_kev": None,
    }
