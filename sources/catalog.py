"""Catalogue import: source lists in CSV, FITS, VOTable or MMODA JSON become Source rows.

Every format goes through ``astropy.table``, so the columns are found by name whatever the
file: ``name``/``NAME``/``src_names`` for the name, ``ra_deg``/``RA_OBJ``/``ra`` and
``dec_deg``/``DEC_OBJ``/``dec`` for the position (degrees unless the column carries a unit),
``error_radius_arcmin`` (arcmin) or ``ERR_RAD`` (degrees, as in the ISDC reference catalogue
and MMODA tables), ``class`` and ``aliases`` (separated by ``|``).

An import is one transaction: the whole file is read and checked before the first write, and
a row that cannot be stored aborts the import with a message naming the row, leaving the
database as it was. Rows are matched to existing sources by their normalised name or any of
their aliases, so importing the same file twice changes nothing the second time.

A provisional source (a new detection) that a catalogue names is confirmed: it stops being
provisional. One that a catalogue entry only lies near is not merged: the report lists the
likely duplicates among the sources the import touched (``sources.stats``), for curators to
merge in the admin.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle
from astropy.io import fits
from astropy.table import Table
from django.db import transaction

from .classes import SOURCE_CLASSES
from .models import Source, SourceClass, SourceName
from .names import clean_display_name, normalize_name, validate_source_name
from .sky import angular_distance_deg, validate_position
from .stats import duplicate_candidates

#: The Gallery's own reference list of well-known INTEGRAL sources.
REFERENCE_CATALOG_PATH = Path(__file__).with_name("data") / "reference_catalog.csv"

FORMATS = ("csv", "ecsv", "fits", "votable", "json")

#: Accepted column names (compared case-insensitively), most specific first.
NAME_COLUMNS = ("name", "src_names", "src_name", "source_name", "main_id", "object")
RA_COLUMNS = ("ra_deg", "ra_obj", "raj2000", "_raj2000", "ra_icrs", "ra")
DEC_COLUMNS = ("dec_deg", "dec_obj", "dej2000", "_dej2000", "de_icrs", "dec_icrs", "dec")
CLASS_COLUMNS = ("class", "object_class", "src_class", "otype")
ALIAS_COLUMNS = ("aliases", "alt_names", "other_names")
#: Error-radius columns and the unit assumed when the column carries none.
ERROR_COLUMNS = (("error_radius_arcmin", u.arcmin), ("err_rad", u.deg), ("error_radius", u.deg))

ALIAS_SEPARATOR = "|"
#: OSA's names for detections without a catalogue counterpart ("NEW SOURCE", "NEW_3"): such
#: rows are part of a detection list, not of a catalogue, and are skipped.
_OSA_NEW_SOURCE = re.compile(r"^new(?:[\s_-]*source)?[\s_-]*\d*$", re.IGNORECASE)
#: A position that moves by more than this (or the error radius) is reported, not applied.
POSITION_WARNING_ARCMIN = 1.0
MAX_WARNINGS = 20


class CatalogImportError(ValueError):
    """A catalogue that cannot be imported; the message names the file row when there is one."""


@dataclass(frozen=True)
class CatalogEntry:
    """One validated row of a catalogue."""

    row: int  # 1-based number of the data row in the file
    name: str
    ra_deg: float
    dec_deg: float
    class_code: str = ""
    error_radius_arcmin: float | None = None
    aliases: tuple[str, ...] = ()


@dataclass
class ImportReport:
    """What an import did, row by row summed up."""

    path: str
    fmt: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    aliases_added: int = 0
    skipped: int = 0
    confirmed: int = 0
    warnings: list[str] = field(default_factory=list)
    duplicates: list = field(default_factory=list)  # sources.stats.DuplicateCandidate
    touched: set[int] = field(default_factory=set)

    def warn(self, message: str) -> None:
        # A catalogue of thousands of rows must not bury the summary under its warnings.
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append("further warnings not shown")

    def summary(self) -> str:
        text = (
            f"{self.path} ({self.fmt}): {self.rows} rows; {self.created} sources created, "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.aliases_added} aliases "
            f"added, {self.skipped} rows skipped"
        )
        if self.confirmed:
            text += f"; {self.confirmed} provisional sources confirmed"
        if self.duplicates:
            text += f"; {len(self.duplicates)} likely duplicates to review"
        return text


# --- reading -------------------------------------------------------------------------------


def sniff_format(path: str | Path) -> str:
    """Guess the format of a catalogue file from its first bytes (not from its extension)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as handle:
                head = handle.read(4096)
        except (OSError, EOFError) as exc:
            raise CatalogImportError(f"{path}: a damaged gzip file ({exc})") from exc
    if head.startswith(b"SIMPLE  ="):
        return "fits"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:5].lower() == b"<?xml" or text[:8].upper() == b"<VOTABLE":
        if b"VOTABLE" in head.upper():
            return "votable"
        raise CatalogImportError(f"{path}: an XML file that is not a VOTable")
    if text.startswith(b"{"):
        return "json"
    if text.startswith(b"# %ECSV"):
        return "ecsv"
    if not text:
        raise CatalogImportError(f"{path}: the file is empty")
    if b"\x00" in head:
        raise CatalogImportError(f"{path}: not a catalogue (binary content that is not FITS)")
    return "csv"


def read_table(path: str | Path, fmt: str) -> Table:
    """Read the catalogue table of a file in one of ``FORMATS``."""
    try:
        if fmt == "csv":
            return Table.read(path, format="ascii.csv", comment="#")
        if fmt == "ecsv":
            return Table.read(path, format="ascii.ecsv")
        if fmt == "fits":
            return _read_fits_table(path)
        if fmt == "votable":
            return _read_votable(path)
        if fmt == "json":
            return _read_mmoda_json(path)
    except CatalogImportError:
        raise
    except Exception as exc:  # astropy raises many kinds for unreadable files
        raise CatalogImportError(f"{path}: cannot be read as {fmt} ({exc})") from exc
    raise CatalogImportError(f"unknown catalogue format {fmt!r}; use one of {', '.join(FORMATS)}")


def _has_catalogue_columns(colnames: Iterable[str]) -> bool:
    names = {c.lower() for c in colnames}
    return (
        any(c in names for c in NAME_COLUMNS)
        and any(c in names for c in RA_COLUMNS)
        and any(c in names for c in DEC_COLUMNS)
    )


def _read_fits_table(path: str | Path) -> Table:
    # The first table HDU with a name and a position: HDU 1 in ISDC and MMODA files.
    with warnings.catch_warnings():
        # Damaged files are reported by the exception that follows, not by warnings.
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        warnings.simplefilter("ignore", u.UnitsWarning)
        with fits.open(path, memmap=False) as hdul:
            for index, hdu in enumerate(hdul):
                if isinstance(hdu, fits.BinTableHDU | fits.TableHDU) and _has_catalogue_columns(
                    hdu.columns.names
                ):
                    return Table.read(hdul, hdu=index)
    raise CatalogImportError(f"{path}: no FITS table with name, RA and Dec columns")


def _read_votable(path: str | Path) -> Table:
    from astropy.io.votable import parse

    with warnings.catch_warnings():
        # Archives write VOTables that bend the standard; the columns are all that matters.
        warnings.simplefilter("ignore")
        votable = parse(str(path), verify="ignore")
        for resource_table in votable.iter_tables():
            table = resource_table.to_table(use_names_over_ids=True)
            if _has_catalogue_columns(table.colnames):
                return table
    raise CatalogImportError(f"{path}: no VOTable table with name, RA and Dec columns")


def _read_mmoda_json(path: str | Path) -> Table:
    """The MMODA "API catalogue" (cat_column_names / cat_column_list / cat_frame …)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict) or "cat_column_names" not in data:
        raise CatalogImportError(f"{path}: a JSON file that is not an MMODA catalogue")
    names, columns = data["cat_column_names"], data.get("cat_column_list") or []
    if len(names) != len(columns):
        raise CatalogImportError(f"{path}: cat_column_names and cat_column_list differ in length")
    frame = str(data.get("cat_frame", "icrs")).lower()
    if frame not in ("icrs", "fk5"):
        # FK5 J2000 and ICRS agree to far better than any catalogue error radius.
        raise CatalogImportError(f"{path}: unsupported catalogue frame {frame!r}")
    table = Table({name: list(values) for name, values in zip(names, columns, strict=True)})
    # The JSON names the position columns; give them the names the import looks for.
    for key, wanted in (("cat_lon_name", "ra"), ("cat_lat_name", "dec")):
        source_col = data.get(key)
        if source_col and source_col in table.colnames and source_col != wanted:
            if wanted in table.colnames:
                table.remove_column(wanted)
            table.rename_column(source_col, wanted)
    return table


# --- validation ----------------------------------------------------------------------------


def _find_column(table: Table, candidates: Iterable[str]) -> str | None:
    by_lower = {name.lower(): name for name in table.colnames}
    for candidate in candidates:
        if candidate in by_lower:
            return by_lower[candidate]
    return None


def _cell(table: Table, column: str | None, index: int):
    """The value of a cell, or None when the column is absent or the cell masked/null."""
    if column is None:
        return None
    value = table[column][index]
    if value is np.ma.masked or (np.ma.isMaskedArray(value) and value.mask.all()):
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _angle_deg(value, unit, *, is_ra: bool) -> float:
    """An angle in degrees from a number (in ``unit``) or a sexagesimal string."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("the position is empty")
        if re.search(r"[\s:hdms]", text):
            angle = Angle(text, unit=u.hourangle if is_ra else u.deg)
            return float(angle.to_value(u.deg))
        value = float(text)
    number = float(value)
    if unit is not None and unit != u.deg:
        number = (number * unit).to_value(u.deg)
    return number


def _angle_unit(table: Table, column: str, default):
    unit = getattr(table[column], "unit", None)
    if unit is None:
        return default
    try:
        unit.to(u.deg)
    except u.UnitConversionError:
        return default
    return unit


def _check_name(name: str, what: str) -> str:
    cleaned = validate_source_name(name)
    # NFKC can lengthen a name ("\ufb03" is "ffi"): the search key has to fit its column too.
    if len(normalize_name(cleaned)) > SourceName._meta.get_field("normalized").max_length:
        raise ValueError(f"the {what} {cleaned[:40]!r} is too long once normalised")
    return cleaned


def _class_code(value, class_map: dict[str, str], known: dict[str, str]) -> str:
    """A SourceClass code from a class cell: mapped, or a known code, or "" (numeric, unmapped)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    key = _text(value)
    if not key:
        return ""
    if key in class_map:
        return class_map[key]
    if re.fullmatch(r"[+-]?\d+", key):
        # Numeric ISDC class codes mean nothing without a mapping: leave the class empty.
        return ""
    code = known.get(key.lower())
    if code is None:
        raise ValueError(f"unknown source class {key!r} (map it with a class map)")
    return code


def known_class_codes() -> dict[str, str]:
    """Lower-cased code -> code of every class: the database's and the built-in ones."""
    codes = [code for code, _, _ in SOURCE_CLASSES]
    codes += SourceClass.objects.values_list("code", flat=True)
    return {code.lower(): code for code in codes}


def _classes_by_code(codes: set[str]) -> dict[str, SourceClass]:
    """The SourceClass rows of ``codes``; built-in classes missing from the database (after a
    test flush, say) are created with their parents."""
    found = {c.code: c for c in SourceClass.objects.filter(code__in=codes)}
    builtin = {code: (label, parent) for code, label, parent in SOURCE_CLASSES}

    def get(code: str) -> SourceClass:
        if code not in found:
            label, parent = builtin[code]
            found[code] = SourceClass.objects.filter(code=code).first() or (
                SourceClass.objects.create(
                    code=code, label=label, parent=get(parent) if parent else None
                )
            )
        return found[code]

    return {code: get(code) for code in codes}


def _checked_class_map(class_map: dict[str, str] | None, known: dict[str, str]) -> dict[str, str]:
    checked = {}
    for key, code in (class_map or {}).items():
        code = _text(code)
        if code and code.lower() not in known:
            raise CatalogImportError(f"class map: {key!r} maps to the unknown class {code!r}")
        checked[_text(key)] = known[code.lower()] if code else ""
    return checked


@dataclass
class _Columns:
    """Where the fields of a row are in a table, and in which units."""

    table: Table
    name: str
    ra: str
    dec: str
    error: str | None
    object_class: str | None
    aliases: str | None
    ra_unit: u.UnitBase
    dec_unit: u.UnitBase
    error_unit: u.UnitBase | None
    class_map: dict[str, str]
    known_classes: dict[str, str]

    def entry(self, index: int, raw_name: str) -> CatalogEntry:
        name = _check_name(raw_name, "source name")
        ra_value, dec_value = _cell(self.table, self.ra, index), _cell(self.table, self.dec, index)
        if ra_value is None or dec_value is None:
            raise ValueError("RA and Dec are required")
        ra = _angle_deg(ra_value, self.ra_unit, is_ra=True)
        dec = _angle_deg(dec_value, self.dec_unit, is_ra=False)
        if not (math.isfinite(ra) and math.isfinite(dec)):
            raise ValueError("RA and Dec must be finite numbers")
        if not 0.0 <= ra <= 360.0:
            # A catalogue RA outside [0, 360] is a broken file, not something to wrap.
            raise ValueError(f"RA must lie within [0, 360] degrees, got {ra}")
        ra, dec = validate_position(ra, dec)
        aliases = tuple(
            _check_name(alias, "alias")
            for alias in _text(_cell(self.table, self.aliases, index)).split(ALIAS_SEPARATOR)
            if alias.strip()
        )
        return CatalogEntry(
            row=index + 1,
            name=name,
            ra_deg=ra,
            dec_deg=dec,
            class_code=_class_code(
                _cell(self.table, self.object_class, index), self.class_map, self.known_classes
            ),
            error_radius_arcmin=self._error_arcmin(index),
            aliases=aliases,
        )

    def _error_arcmin(self, index: int) -> float | None:
        value = _cell(self.table, self.error, index)
        if value is None or _text(value) == "":
            return None
        error = float(value)
        if math.isnan(error):
            return None
        if not math.isfinite(error) or error < 0:
            raise ValueError(f"the error radius must be a positive number, got {value}")
        return float((error * self.error_unit).to_value(u.arcmin))


def _columns(path: Path, table: Table, class_map: dict[str, str] | None) -> _Columns:
    name_col = _find_column(table, NAME_COLUMNS)
    ra_col = _find_column(table, RA_COLUMNS)
    dec_col = _find_column(table, DEC_COLUMNS)
    missing = [
        what for what, col in (("name", name_col), ("RA", ra_col), ("Dec", dec_col)) if not col
    ]
    if missing:
        raise CatalogImportError(
            f"{path}: no {' / '.join(missing)} column among {', '.join(table.colnames)}"
        )
    err_col, err_default = None, None
    for candidate, default_unit in ERROR_COLUMNS:
        err_col = _find_column(table, (candidate,))
        if err_col:
            err_default = default_unit
            break
    known = known_class_codes()
    return _Columns(
        table=table,
        name=name_col,
        ra=ra_col,
        dec=dec_col,
        error=err_col,
        object_class=_find_column(table, CLASS_COLUMNS),
        aliases=_find_column(table, ALIAS_COLUMNS),
        ra_unit=_angle_unit(table, ra_col, u.deg),
        dec_unit=_angle_unit(table, dec_col, u.deg),
        error_unit=_angle_unit(table, err_col, err_default) if err_col else None,
        class_map=_checked_class_map(class_map, known),
        known_classes=known,
    )


def read_catalog(
    path: str | Path, *, fmt: str | None = None, class_map: dict[str, str] | None = None
) -> tuple[str, list[CatalogEntry], int]:
    """Read and check every row: (format, entries, rows skipped). Raises CatalogImportError."""
    path = Path(path)
    if not path.is_file():
        raise CatalogImportError(f"{path}: no such file")
    fmt = (fmt or sniff_format(path)).lower()
    table = read_table(path, fmt)
    columns = _columns(path, table, class_map)  # even an empty table must be a catalogue
    entries, skipped = [], 0
    for index in range(len(table)):
        raw_name = _text(_cell(table, columns.name, index))
        if _OSA_NEW_SOURCE.match(clean_display_name(raw_name)):
            skipped += 1
            continue
        try:
            entries.append(columns.entry(index, raw_name))
        except (ValueError, TypeError) as exc:
            label = f" ({clean_display_name(raw_name)[:40]!r})" if raw_name else ""
            raise CatalogImportError(f"{path}: row {index + 1}{label}: {exc}") from exc
    return fmt, entries, skipped


# --- writing -------------------------------------------------------------------------------


def import_catalog(
    path: str | Path,
    *,
    fmt: str | None = None,
    class_map: dict[str, str] | None = None,
    update_positions: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Create or update the sources of a catalogue file, in one transaction.

    Existing sources are found by normalised name or alias (a merged source stands for the
    source it was merged into). Blank fields of an existing source are filled in; its position
    and error radius change only with ``update_positions``, and a curated class is never
    replaced. Every name of a row that the source does not have yet becomes an alias.
    ``progress(done, total)`` is called as rows are stored.
    """
    fmt, entries, skipped = read_catalog(path, fmt=fmt, class_map=class_map)
    report = ImportReport(path=str(path), fmt=fmt, rows=len(entries) + skipped, skipped=skipped)
    with transaction.atomic():
        classes = _classes_by_code({e.class_code for e in entries if e.class_code})
        for done, entry in enumerate(entries, start=1):
            try:
                _store(entry, report, classes, update_positions)
            except (ValueError, TypeError) as exc:
                message = f"{path}: row {entry.row} ({entry.name!r}): {exc}"
                raise CatalogImportError(message) from exc
            if progress is not None:
                progress(done, len(entries))
        touched = Source.objects.filter(pk__in=report.touched)
        report.duplicates = duplicate_candidates(touched) if report.touched else []
    return report


def _matching_source(entry: CatalogEntry) -> Source | None:
    keys = {normalize_name(n) for n in (entry.name, *entry.aliases)}
    ids = set(SourceName.objects.filter(normalized__in=keys).values_list("source_id", flat=True))
    sources = list(Source.objects.filter(pk__in=ids).select_related("merged_into"))
    resolved = {}
    for source in sources:
        # Follow merges to the surviving source (chains are short; guard against loops).
        seen = set()
        while source.merged_into_id and source.pk not in seen:
            seen.add(source.pk)
            source = source.merged_into
        resolved[source.pk] = source
    if len(resolved) > 1:
        names = ", ".join(sorted(s.name for s in resolved.values()))
        raise ValueError(f"its names belong to different sources: {names}")
    return next(iter(resolved.values()), None)


def _store(entry: CatalogEntry, report: ImportReport, classes: dict, update: bool) -> None:
    source = _matching_source(entry)
    object_class = classes.get(entry.class_code) if entry.class_code else None
    if source is None:
        source = Source(
            name=entry.name,
            object_class=object_class,
            error_radius_arcmin=entry.error_radius_arcmin,
        )
        source.set_position(entry.ra_deg, entry.dec_deg)
        source.save()
        report.created += 1
    else:
        confirmed = source.is_provisional
        if confirmed:
            # The catalogue names it: no longer a detection waiting for a counterpart.
            source.is_provisional = False
            report.confirmed += 1
        changed = _update_source(source, entry, object_class, update, report)
        if changed or confirmed:
            source.save()
            report.updated += 1
        else:
            report.unchanged += 1
    report.touched.add(source.pk)
    # A name already taken (by this source, or by one merged into it) is not added again.
    names = {normalize_name(n): n for n in (entry.name, *entry.aliases)}
    taken = set(
        SourceName.objects.filter(normalized__in=names).values_list("normalized", flat=True)
    )
    for key, name in names.items():
        if key not in taken:
            source.add_alias(name)
            report.aliases_added += 1


def _update_source(
    source: Source, entry: CatalogEntry, object_class, update: bool, report: ImportReport
) -> bool:
    changed = False
    if source.object_class_id is None and object_class is not None:
        source.object_class = object_class
        changed = True
    if source.ra_deg is None or source.dec_deg is None:
        source.set_position(entry.ra_deg, entry.dec_deg)
        changed = True
    else:
        moved_arcmin = 60.0 * float(
            angular_distance_deg(source.ra_deg, source.dec_deg, entry.ra_deg, entry.dec_deg)
        )
        if update and moved_arcmin > 1e-6:
            source.set_position(entry.ra_deg, entry.dec_deg)
            changed = True
        elif moved_arcmin > max(POSITION_WARNING_ARCMIN, entry.error_radius_arcmin or 0.0):
            report.warn(
                f"row {entry.row} ({entry.name}): {moved_arcmin:.2f} arcmin from the stored "
                f"position of {source.name}; kept the stored one (use update_positions)"
            )
    if entry.error_radius_arcmin is not None and (
        source.error_radius_arcmin is None
        or (update and source.error_radius_arcmin != entry.error_radius_arcmin)
    ):
        source.error_radius_arcmin = entry.error_radius_arcmin
        changed = True
    return changed


def load_reference_catalog(*, update_positions: bool = False) -> ImportReport:
    """Load the Gallery's shipped reference catalogue (running it again changes nothing)."""
    return import_catalog(REFERENCE_CATALOG_PATH, fmt="csv", update_positions=update_positions)


def load_class_map(path: str | Path) -> dict[str, str]:
    """A class map from a JSON object file: {"<catalogue class>": "<SourceClass code>", …}."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise CatalogImportError(f"class map {path}: cannot be read ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise CatalogImportError(f"class map {path}: must be a JSON object of strings")
    return {str(k): v for k, v in data.items()}
