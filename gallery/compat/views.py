"""The endpoints of the previous gallery's dispatcher that ``oda_api.gallery_api`` calls.

Thin views: values are read by ``params``, writes done by ``ingest.posting``, reads by
``queries``, answers shaped by ``nodes``; ``http.endpoint`` does methods, sizes, tokens and
error bodies. Posting, updating, deleting and the term lists need the token of a Gallery
contributor; listing products, resolving names and converting times need no role.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from astropy.time import Time
from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from ingest import posting
from ingest.linking import find_by_name
from ingest.readers.base import InputFile
from products import timeline
from products.models import Observation, Product, ProductSource
from sources.models import Source
from sources.names import validate_source_name

from . import nodes, queries, terms
from .http import CONTRIBUTOR, OPTIONAL, Caller, CompatError, endpoint, json_response
from .params import Params

#: Form fields of a product post that are not stored as the product's details.
_PRODUCT_FIELDS = {
    "token", "content_type", "product_title", "title", "product_id", "observation_id",
    "insert_new_source", "instrument", "product_type", "src_name", "e1_kev", "e2_kev", "ra",
    "dec", "t1", "t2", "rev1", "rev2", "obsid", "produced_by", "in_evidence", "osa_version",
    "entity_portal_link_list", "source_coord_list", "object_ids_list", "object_type_list",
    "time_bin", "additional_information", "detected_sources",
}  # fmt: skip
_EXTRA_KEY = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
MAX_EXTRA_FIELDS = 40
MAX_EXTRA_CHARS = 10_000
#: File parts and the role their files take.
_PART = re.compile(r"^(img|fits_file|yaml_file|html_file)(?:_(\d{1,3}))?$")
_ROLE = {"img": "preview", "fits_file": "data", "yaml_file": "other", "html_file": "other"}


# --- terms ------------------------------------------------------------------------------------


@endpoint(("GET",), CONTRIBUTOR)
def get_parents_term(request: HttpRequest, caller: Caller) -> HttpResponse:
    params = Params(request.GET)
    term = params.text("term", 60)
    if term is None:
        raise CompatError("give the term whose parents are wanted")
    group = (params.text("group", 40) or "products").lower()
    return json_response(terms.parents_of(term) if group in ("products", "all") else [])


@endpoint(("GET",), CONTRIBUTOR)
def get_list_terms(request: HttpRequest, caller: Caller) -> HttpResponse:
    params = Params(request.GET)
    group = (params.text("group", 40) or "").lower()
    parent = (params.text("parent", 40) or "").lower()
    if group == "instruments":
        return json_response(terms.instrument_terms())
    if group == "products":
        if parent in ("", "all"):
            return json_response(terms.product_type_terms())
        try:
            return json_response(terms.product_type_terms(terms.family_of(parent)))
        except terms.TermError as exc:
            raise CompatError(str(exc)) from None
    if group == "sources":
        names = Source.objects.active().order_by("name").values_list("name", flat=True)
        return json_response(list(names))
    raise CompatError("group must be one of instruments, products, sources")


# --- names and times --------------------------------------------------------------------------


@endpoint(("GET",), OPTIONAL)
def resolve_name(request: HttpRequest, caller: Caller) -> HttpResponse:
    """The local catalogue's answer for a name (canonical or alternative)."""
    raw = Params(request.GET).text("name", 200)
    if raw is None:
        raise CompatError("give the name to resolve")
    name = raw.replace("_", " ").strip()
    source = None
    with contextlib.suppress(ValueError):
        source = find_by_name(validate_source_name(name))
    if source is None:
        return json_response({"name": name, "message": f"{name} could not be resolved"})
    source = (
        Source.objects.select_related("object_class").prefetch_related("names").get(pk=source.pk)
    )
    return json_response(nodes.resolved(source, name))


@endpoint(("GET",), OPTIONAL)
def get_revnum(request: HttpRequest, caller: Caller) -> HttpResponse:
    """The revolution during which a UTC time falls (now when no time is given)."""
    value = Params(request.GET).text("time_to_convert", 40)
    try:
        when = timeline.parse_time(value, "isot") if value else Time.now()
        return json_response({"revnum": timeline.revolution_of(when)})
    except timeline.TimeConversionError as exc:
        raise CompatError(f"time_to_convert: {exc}") from None


# --- product lists ----------------------------------------------------------------------------


def _product_list(request: HttpRequest, queryset) -> HttpResponse:
    rows = queries.bounded(queries.ordered(nodes.with_list_relations(queryset)))
    firsts = nodes.first_versions(rows)
    return json_response([nodes.product_item(request, p, firsts[p.series_key]) for p in rows])


@endpoint(("GET",), OPTIONAL)
def get_data_product_list_by_source_name(request: HttpRequest, caller: Caller) -> HttpResponse:
    params = Params(request.GET)
    names = params.names("src_name")
    if not names:
        raise CompatError("give src_name, the name of a source")
    return _product_list(request, queries.of_sources(queries.visible_latest(caller.user), names))


@endpoint(("GET",), OPTIONAL)
def get_data_product_list_with_conditions(request: HttpRequest, caller: Caller) -> HttpResponse:
    queryset = queries.with_conditions(queries.visible_latest(caller.user), Params(request.GET))
    return _product_list(request, queryset)


# --- posting ----------------------------------------------------------------------------------


@contextlib.contextmanager
def staged(request: HttpRequest, allowed: set[str]) -> Iterator[list[InputFile]]:
    """The uploaded parts written to a private folder (names never come from the client),
    removed when the post is done, whatever happens."""
    parts = []
    for key in request.FILES:
        match = _PART.match(key)
        if match is None or match.group(1) not in allowed:
            raise CompatError(
                f"unexpected file part {key[:40]!r}; send {', '.join(sorted(allowed))}"
            )
        for upload in request.FILES.getlist(key):
            parts.append((match.group(1), int(match.group(2) or -1), upload))
    if sum(1 for part, _, _ in parts if part == "img") > 1:
        raise CompatError("send one image (img) per product")
    parts.sort(key=lambda p: (p[0] != "fits_file", p[0], p[1]))
    total = sum(upload.size for _, _, upload in parts)
    if total > settings.GALLERY_UPLOAD_MAX_BYTES:
        raise CompatError(
            f"the files add up to {total} bytes: uploads are limited to "
            f"{settings.GALLERY_UPLOAD_MAX_BYTES} bytes",
            413,
        )
    folder = Path(settings.GALLERY_STAGING_DIR) / f"compat-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    try:
        files = []
        for index, (part, _, upload) in enumerate(parts):
            path = folder / f"{index:03d}"
            with open(path, "wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            files.append(InputFile(path, _ROLE[part], upload.name or f"{part}_{index}"))
        yield files
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@endpoint(("POST",), CONTRIBUTOR)
def post_product_to_gallery(request: HttpRequest, caller: Caller) -> HttpResponse:
    params = Params(request.POST, request.GET)
    content_type = params.text("content_type", 40)
    if content_type not in (None, "data_product"):
        raise CompatError("content_type must be data_product for this endpoint")
    meta = _product_meta(params)
    with staged(request, {"img", "fits_file", "yaml_file", "html_file"}) as files:
        outcome = posting.post_product(files, meta, caller.user)
    product = (
        Product.objects.select_related("kind", "instrument", "observation")
        .prefetch_related(
            Prefetch("source_links", queryset=ProductSource.objects.select_related("source")),
            "files",
        )
        .get(pk=outcome.product.pk)
    )
    return json_response(nodes.product_node(request, product, outcome.first_version()))


def _product_meta(params: Params) -> posting.PostedProductMeta:
    instrument = params.text("instrument", 40)
    product_type = params.text("product_type", 60)
    kind = family = None
    try:
        if instrument is not None:
            terms.instrument_codes(instrument)
            instrument = instrument.lower()
        if product_type is not None:
            parsed = terms.parse_product_type(product_type)
            kind, family = parsed.kind, parsed.family
            if family is not None and instrument is None:
                instrument = family
            elif family is not None and terms.family_of(instrument) != family:
                raise CompatError(
                    f"product_type {product_type!r} is not a product of {instrument!r}"
                )
    except terms.TermError as exc:
        raise CompatError(str(exc)) from None
    names = params.names("src_name")
    return posting.PostedProductMeta(
        product_id=params.text("product_id", 128) or "",
        title=params.text("product_title", 200) or params.text("title", 200),
        instrument=instrument,
        kind=kind,
        product_type=(product_type or "").lower(),
        source_names=names,
        insert_new_source=bool(params.boolean("insert_new_source")),
        source_hints=_source_hints(params, names),
        e_min_kev=params.number("e1_kev"),
        e_max_kev=params.number("e2_kev"),
        ra_deg=params.number("ra"),
        dec_deg=params.number("dec"),
        time_start=params.isot("t1"),
        time_end=params.isot("t2"),
        rev_first=params.integer("rev1"),
        rev_last=params.integer("rev2"),
        observation=params.text("observation_id", 200),
        obsids=params.items("obsid"),
        produced_by=params.text("produced_by", 300),
        is_highlight=params.boolean("in_evidence"),
        osa_version=params.text("osa_version", 40),
        details=_details(params),
    )


def _details(params: Params) -> dict:
    """time_bin, additional_information, detected_sources and the other parameters a post
    carries (kept with the product and echoed back as ``field_<name>``)."""
    details: dict = {}
    time_bin = params.number("time_bin")
    if time_bin is not None:
        if time_bin < 0:
            raise CompatError("time_bin must not be negative")
        details["time_bin"] = time_bin
    for name in ("additional_information", "detected_sources"):
        if (value := params.text(name)) is not None:
            details[name] = value
    extra = sorted(params.keys() - _PRODUCT_FIELDS)
    if len(extra) > MAX_EXTRA_FIELDS:
        raise CompatError(f"too many fields: at most {MAX_EXTRA_FIELDS} besides the known ones")
    for key in extra:
        if not _EXTRA_KEY.match(key):
            raise CompatError(f"invalid field name {key[:40]!r}")
        value = params.text(key, MAX_EXTRA_CHARS)
        if value is not None:
            details[key] = value
    return details


def _source_hints(params: Params, names: list[str]) -> dict[str, posting.SourceHint]:
    """What the client's own name resolution said about each posted source."""
    links = (params.raw("entity_portal_link_list") or "").split(",")
    coords = params.json_list("source_coord_list") or []
    ids = params.json_list("object_ids_list") or []
    types = params.json_list("object_type_list") or []
    hints = {}
    for index, name in enumerate(names):
        coord = coords[index] if index < len(coords) else {}
        aliases = ids[index] if index < len(ids) else []
        otype = types[index] if index < len(types) else ""
        if not isinstance(coord, dict) or not isinstance(aliases, list):
            raise CompatError("source_coord_list and object_ids_list must follow src_name")
        try:
            ra, dec = (float(coord[k]) if k in coord else None for k in ("source_ra", "source_dec"))
        except (TypeError, ValueError):
            raise CompatError("source_coord_list: positions must be numbers") from None
        hints[name] = posting.SourceHint(
            portal_link=links[index].strip() if index < len(links) else "",
            ra_deg=ra,
            dec_deg=dec,
            class_code=terms.class_for_otype(otype if isinstance(otype, str) else ""),
            aliases=[str(a) for a in aliases if isinstance(a, str)],
        )
    return hints


@endpoint(("POST",), CONTRIBUTOR)
def post_observation_to_gallery(request: HttpRequest, caller: Caller) -> HttpResponse:
    params = Params(request.POST, request.GET)
    meta = posting.PostedObservationMeta(
        title=params.text("title", 200),
        time_start=params.isot("t1"),
        time_end=params.isot("t2"),
        obsids=params.items("obsid") if params.has("obsid") else None,
        update=bool(params.boolean("update_observation")),
        create_new=bool(params.boolean("create_new")),
    )
    with staged(request, {"yaml_file"}) as files:
        outcome = posting.post_observation(meta, files, caller.user)
    return json_response(nodes.observation_node(request, outcome.observation, outcome.extras))


@endpoint(("POST",), CONTRIBUTOR)
def post_astro_entity_to_gallery(request: HttpRequest, caller: Caller) -> HttpResponse:
    params = Params(request.POST, request.GET)
    name = params.text("src_name", 200)
    if name is None:
        raise CompatError("give src_name, the name of the source")
    meta = posting.PostedSourceMeta(name=name, update=bool(params.boolean("update_astro_entity")))
    object_type = None
    if not params.boolean("auto_update"):
        # auto_update asks for the resolver's values: the local catalogue's are the source's.
        meta.ra_deg, meta.dec_deg = params.number("source_ra"), params.number("source_dec")
        meta.portal_link = params.text("src_portal_link", 200) or params.text(
            "entity_portal_link", 200
        )
        object_type = params.text("object_type", 60)
        meta.class_code = terms.class_for_otype(object_type)
        if params.has("object_ids"):
            meta.aliases = params.names("object_ids")
    outcome = posting.post_source(meta, caller.user)
    source = Source.objects.select_related("object_class").get(pk=outcome.source.pk)
    return json_response(nodes.source_node(request, source, object_type))


@endpoint(("POST",), CONTRIBUTOR)
def delete_product_to_gallery(request: HttpRequest, caller: Caller) -> HttpResponse:
    product_id = Params(request.POST, request.GET).text("product_id", 128)
    if product_id is None:
        raise CompatError("give the product_id of the product to delete")
    posting.hide_product(product_id, caller.user)
    return json_response({})


# --- observation attachments ------------------------------------------------------------------


@endpoint(("GET",), CONTRIBUTOR)
def get_observation_attachments(request: HttpRequest, caller: Caller) -> HttpResponse:
    title = Params(request.GET).text("title", 200)
    if title is None:
        raise CompatError("give the title of the observation")
    observation = Observation.objects.filter(title=title).first()
    if observation is None:
        raise CompatError(f"no observation titled {title[:60]!r}", 404)
    records = posting.observation_extras(observation)["attachments"]
    urls = [nodes.attachment_url(request, observation, r) for r in records]
    texts = [posting.attachment_text(r) for r in records]
    return json_response(
        {
            "title": observation.title,
            "file_path": ", ".join(urls),
            "file_content": "\n".join(texts),
            "attachments": [
                {"name": r["name"], "url": u, "content": text}
                for r, u, text in zip(records, urls, texts, strict=True)
            ],
        }
    )


@require_GET
def observation_attachment(request: HttpRequest, pk: int, sha256: str) -> FileResponse:
    """A YAML attachment of an observation, as a download."""
    observation = Observation.objects.filter(pk=pk).first()
    records = posting.observation_extras(observation)["attachments"] if observation else []
    record = next((r for r in records if r["sha256"] == sha256), None)
    if record is None:
        raise Http404("No such attachment.")
    response = FileResponse(
        default_storage.open(record["file"], "rb"),
        as_attachment=True,
        filename=record["name"],
        content_type="text/plain; charset=utf-8",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response
