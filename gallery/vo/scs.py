"""IVOA Simple Cone Search 1.03 for sources and products.

``GET /vo/scs/sources?RA=…&DEC=…&SR=…[&VERB=1|2|3]`` (and ``/vo/scs/products``) answers a
VOTable with one RESOURCE and one TABLE, nearest first: exactly one FIELD of each of the UCDs
``ID_MAIN``, ``POS_EQ_RA_MAIN`` and ``POS_EQ_DEC_MAIN`` that the standard requires (and that
clients such as pyvo read), then more columns as VERB asks. Errors are VOTables too: an INFO
``QUERY_STATUS`` = ``ERROR`` (as DALI clients read it) and the INFO ``Error`` of SCS 1.03
(as cone-search clients read it), both with the message.

Positions are searched with the HEALPix cone search of ``sources.sky``; products are those
an anonymous visitor may see (``Product.objects.visible_to``), newest versions only.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from astropy.io.votable.tree import Field, Info, Resource, TableElement, VOTableFile
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.views.decorators.http import require_GET

from products.models import Product
from sources.models import Source
from sources.sky import angular_distance_deg, cone_filter, order_by_distance

CONTENT_TYPE = "text/xml; charset=utf-8"
#: Largest search radius (degrees) and number of rows of each service.
MAX_SR_SOURCES = 180.0
MAX_SR_PRODUCTS = 30.0
MAX_ROWS = 10000


class ConeError(ValueError):
    """A request the service refuses (the message goes into the error VOTable)."""


@dataclass(frozen=True)
class Column:
    """A FIELD of the result: name, VOTable datatype, UCD, unit, lowest VERB that shows it."""

    name: str
    datatype: str
    ucd: str
    unit: str | None = None
    verb: int = 1
    description: str = ""
    value: Callable | None = None

    def field(self, votable: VOTableFile) -> Field:
        extra = {"arraysize": "*"} if self.datatype == "char" else {}
        field = Field(
            votable,
            name=self.name,
            ID=self.name,
            datatype=self.datatype,
            ucd=self.ucd,
            unit=self.unit,
            **extra,
        )
        field.description = self.description
        return field


def _param(params, name: str) -> str | None:
    """A parameter by name, case-insensitively (clients write ra, Ra or RA)."""
    for key, value in params.items():
        if key.upper() == name:
            return value
    return None


@dataclass(frozen=True)
class Cone:
    ra_deg: float
    dec_deg: float
    sr_deg: float
    verb: int


def parse_cone(params, max_sr: float) -> Cone:
    values = {}
    for name in ("RA", "DEC", "SR"):
        text = _param(params, name)
        if text is None or not str(text).strip():
            raise ConeError(f"the parameter {name} is required (decimal degrees)")
        try:
            values[name] = float(text)
        except ValueError:
            raise ConeError(f"{name} must be a number of decimal degrees, not {text!r}") from None
        if not math.isfinite(values[name]):
            raise ConeError(f"{name} must be a finite number")
    if not 0.0 <= values["RA"] <= 360.0:
        raise ConeError("RA must lie within [0, 360] degrees")
    if not -90.0 <= values["DEC"] <= 90.0:
        raise ConeError("DEC must lie within [-90, 90] degrees")
    if values["SR"] < 0:
        raise ConeError("SR must not be negative")
    if values["SR"] > max_sr:
        raise ConeError(f"SR must not exceed {max_sr:g} degrees for this service")
    verb_text = _param(params, "VERB")
    verb = 2
    if verb_text not in (None, ""):
        if str(verb_text).strip() not in ("1", "2", "3"):
            raise ConeError("VERB must be 1, 2 or 3")
        verb = int(verb_text)
    return Cone(values["RA"] % 360.0, values["DEC"], values["SR"], verb)


# --- VOTable writing --------------------------------------------------------------------------


def _new_votable(description: str) -> tuple[VOTableFile, Resource]:
    votable = VOTableFile(version="1.3")
    votable.description = description
    resource = Resource(type="results")
    votable.resources.append(resource)
    return votable, resource


def _xml(votable: VOTableFile) -> bytes:
    buffer = io.BytesIO()
    votable.to_xml(buffer, tabledata_format="tabledata")
    return buffer.getvalue()


def error_votable(message: str, description: str) -> bytes:
    votable, resource = _new_votable(description)
    status = Info(name="QUERY_STATUS", value="ERROR")
    status.content = message
    votable.infos.append(status)
    error = Info(name="Error", value=message)
    resource.infos.append(error)
    return _xml(votable)


def result_votable(
    description: str,
    table_name: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence],
    overflow: bool,
) -> bytes:
    votable, resource = _new_votable(description)
    status = Info(name="QUERY_STATUS", value="OVERFLOW" if overflow else "OK")
    if overflow:
        status.content = f"only the nearest {MAX_ROWS} rows are returned"
    resource.infos.append(status)
    table = TableElement(votable, name=table_name)
    resource.tables.append(table)
    table.fields.extend(column.field(votable) for column in columns)
    table.create_arrays(len(rows))
    for index, column in enumerate(columns):
        values = [row[index] for row in rows]
        mask = [v is None for v in values]
        if column.datatype == "char":
            filled = ["" if v is None else str(v) for v in values]
        elif column.datatype == "boolean":
            filled = [bool(v) for v in values]
        elif column.datatype in ("int", "long", "short"):
            filled = [0 if v is None else int(v) for v in values]
        else:
            filled = [np.nan if v is None else float(v) for v in values]
        if rows:
            table.array[column.name] = filled
            table.array.mask[column.name] = mask
    return _xml(votable)


# --- the two services -------------------------------------------------------------------------


def _distances(rows, cone: Cone) -> list[float]:
    if not rows:
        return []
    ra = np.array([r.ra_deg for r in rows])
    dec = np.array([r.dec_deg for r in rows])
    return np.atleast_1d(angular_distance_deg(cone.ra_deg, cone.dec_deg, ra, dec)).tolist()


def _absolute(request, path: str) -> str:
    return request.build_absolute_uri(path)


SOURCE_COLUMNS = (
    Column("id", "char", "ID_MAIN", description="Source name"),
    Column("ra", "double", "POS_EQ_RA_MAIN", "deg", description="Right ascension (ICRS)"),
    Column("dec", "double", "POS_EQ_DEC_MAIN", "deg", description="Declination (ICRS)"),
    Column("distance", "double", "pos.angDistance", "deg", 2, "Distance from the cone centre"),
    Column("object_class", "char", "src.class", None, 2, "Object type (Simbad vocabulary)"),
    Column("error_radius", "double", "stat.error;pos", "arcmin", 2, "Position error radius"),
    Column("provisional", "boolean", "meta.code", None, 2, "New detection, not catalogued"),
    Column("n_detections", "int", "meta.number", None, 2, "Detections in public data"),
    Column("url", "char", "meta.ref.url", None, 2, "Page of the source in the Gallery"),
    Column("slug", "char", "meta.id", None, 3, "Identifier of the source in the Gallery"),
    Column("aliases", "char", "meta.id", None, 3, "Alternative names, separated by |"),
    Column("first_detection", "double", "time.start", "d", 3, "First detection (IJD, TT)"),
    Column("last_detection", "double", "time.end", "d", 3, "Last detection (IJD, TT)"),
    Column("peak_significance", "double", "stat.snr;stat.max", None, 3, "Peak significance"),
)


def _source_rows(request, cone: Cone, columns: Sequence[Column]) -> tuple[list, bool]:
    found = order_by_distance(
        cone_filter(Source.objects.active(), cone.ra_deg, cone.dec_deg, cone.sr_deg)
    ).select_related("object_class")
    if cone.verb >= 3:
        found = found.prefetch_related("names")
    found = list(found[: MAX_ROWS + 1])
    overflow = len(found) > MAX_ROWS
    found = found[:MAX_ROWS]
    rows = []
    for source, distance in zip(found, _distances(found, cone), strict=True):
        values = {
            "id": source.name,
            "ra": source.ra_deg,
            "dec": source.dec_deg,
            "distance": distance,
            "object_class": source.object_class.code if source.object_class else None,
            "error_radius": source.error_radius_arcmin,
            "provisional": source.is_provisional,
            "n_detections": source.n_detections,
            "url": _absolute(request, source.get_absolute_url()),
            "slug": source.slug,
            "aliases": "|".join(source.aliases) if cone.verb >= 3 else None,
            "first_detection": source.first_detection_ijd,
            "last_detection": source.last_detection_ijd,
            "peak_significance": source.peak_significance,
        }
        rows.append([values[c.name] for c in columns])
    return rows, overflow


PRODUCT_COLUMNS = (
    Column("id", "char", "ID_MAIN", description="Product identifier (UUID)"),
    Column("ra", "double", "POS_EQ_RA_MAIN", "deg", description="Right ascension (ICRS)"),
    Column("dec", "double", "POS_EQ_DEC_MAIN", "deg", description="Declination (ICRS)"),
    Column("distance", "double", "pos.angDistance", "deg", 2, "Distance from the cone centre"),
    Column("title", "char", "meta.title", None, 2, "Title of the product"),
    Column("kind", "char", "meta.code.class", None, 2, "image, spectrum, lightcurve, catalog"),
    Column("instrument", "char", "meta.id;instr", None, 2, "Instrument"),
    Column("e_min", "double", "em.energy;stat.min", "keV", 2, "Lower bound of the band"),
    Column("e_max", "double", "em.energy;stat.max", "keV", 2, "Upper bound of the band"),
    Column("time_start", "char", "time.start", None, 2, "Start (ISO 8601 UTC)"),
    Column("time_end", "char", "time.end", None, 2, "End (ISO 8601 UTC)"),
    Column("exposure", "double", "time.duration;obs.exposure", "s", 2, "Exposure"),
    Column("url", "char", "meta.ref.url", None, 2, "Page of the product in the Gallery"),
    Column("rev_first", "int", "meta.number", None, 3, "First revolution"),
    Column("rev_last", "int", "meta.number", None, 3, "Last revolution"),
    Column("osa_version", "char", "meta.version", None, 3, "OSA version"),
    Column("data_level", "char", "meta.code.qual", None, 3, "NRT or CONS"),
    Column("sources", "char", "meta.id", None, 3, "Names of the linked sources, separated by |"),
)


def _iso(value) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S") if value is not None else None


def _product_rows(request, cone: Cone, columns: Sequence[Column]) -> tuple[list, bool]:
    visible = Product.objects.visible_to(AnonymousUser()).latest_versions()
    found = order_by_distance(
        cone_filter(visible, cone.ra_deg, cone.dec_deg, cone.sr_deg)
    ).select_related("kind", "instrument")
    if cone.verb >= 3:
        found = found.prefetch_related("sources")
    found = list(found[: MAX_ROWS + 1])
    overflow = len(found) > MAX_ROWS
    found = found[:MAX_ROWS]
    rows = []
    for product, distance in zip(found, _distances(found, cone), strict=True):
        values = {
            "id": str(product.uuid),
            "ra": product.ra_deg,
            "dec": product.dec_deg,
            "distance": distance,
            "title": product.title,
            "kind": product.kind.code,
            "instrument": product.instrument.code,
            "e_min": product.e_min_kev,
            "e_max": product.e_max_kev,
            "time_start": _iso(product.time_start),
            "time_end": _iso(product.time_end),
            "exposure": product.exposure_s,
            "url": _absolute(request, product.get_absolute_url()),
            "rev_first": product.rev_first,
            "rev_last": product.rev_last,
            "osa_version": product.osa_version,
            "data_level": product.data_level,
            "sources": "|".join(s.name for s in product.sources.all()) if cone.verb >= 3 else None,
        }
        rows.append([values[c.name] for c in columns])
    return rows, overflow


def _service(request, *, what: str, columns, max_sr: float, rows_of) -> HttpResponse:
    description = f"INTEGRAL Gallery cone search of {what}"
    try:
        cone = parse_cone(request.GET, max_sr)
    except ConeError as exc:
        return HttpResponse(error_votable(str(exc), description), content_type=CONTENT_TYPE)
    shown = [c for c in columns if c.verb <= cone.verb]
    rows, overflow = ([], False) if cone.sr_deg == 0 else rows_of(request, cone, shown)
    body = result_votable(description, what, shown, rows, overflow)
    return HttpResponse(body, content_type=CONTENT_TYPE)


@require_GET
def source_cone(request) -> HttpResponse:
    """Sources of the catalogue (merged ones excluded) within SR of (RA, DEC)."""
    return _service(
        request,
        what="sources",
        columns=SOURCE_COLUMNS,
        max_sr=MAX_SR_SOURCES,
        rows_of=_source_rows,
    )


@require_GET
def product_cone(request) -> HttpResponse:
    """Public products (newest versions) whose position lies within SR of (RA, DEC)."""
    return _service(
        request,
        what="products",
        columns=PRODUCT_COLUMNS,
        max_sr=MAX_SR_PRODUCTS,
        rows_of=_product_rows,
    )
