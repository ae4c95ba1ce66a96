"""Products, observations and sources posted with their metadata (the oda_api channel).

A pipeline or a person posts a product as files (FITS, a PNG, HTML and YAML attachments) plus
metadata the files may not carry: title, band, times, position, revolutions, the observation,
the sources it describes, who produced it, and a producer's ``product_id``. ``post_product``
turns such a post into a product synchronously, in one transaction:

* FITS files the ingest readers recognise go through ``ingest_files`` (spectral fit, previews,
  flux points, links); the posted metadata then fills what the files do not say. Values read
  from the files win over posted ones (a difference is noted in the product's metadata).
* A post without FITS, or with FITS of no known kind, becomes a product made from the metadata
  alone, its files stored as they are; its identity is its files and its metadata.
* A post with the ``product_id`` of an existing product is an update: a NEW VERSION of that
  product that supersedes the previous one (every version is kept; the newest is shown).
  Values not posted are carried over from the previous version, as the previous gallery did.
  A post that would change nothing returns the existing product: the same post twice is one
  product.
* Files already known as a product (same SHA-256) are not ingested twice: the new version
  reuses that product's stored files, fits and flux points.

Nothing is written before every value and file has been checked; on any failure the
transaction is rolled back and the files stored by the attempt are removed.

Observations (``post_observation``) and sources (``post_source``) posted the same way are
created or updated here too, and ``hide_product`` is the soft delete by ``product_id``.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import math
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, transaction

from products import timeline
from products.models import (
    FluxPoint,
    Instrument,
    Observation,
    Product,
    ProductFile,
    ProductKind,
    ProductSource,
    Revolution,
    SpectralFit,
)
from products.storage import remove, sha256_of_file, storage_name, store
from sources.models import Source, SourceClass, SourceName
from sources.names import clean_display_name, normalize_name, validate_source_name
from sources.sky import validate_position

# linking first: it loads the readers, which ingest.fitsio needs loaded before itself.
from . import linking
from .fitsio import CONTENT_TYPES, EXTENSIONS, sniff
from .readers import FileInfo, classify_file, plan_products
from .readers.base import InputFile
from .service import IngestOptions, content_key, ingest_files

#: What the readers' file kinds make.
_KIND_OF = {
    "pha": "spectrum",
    "image": "image",
    "lightcurve": "lightcurve",
    "catalog": "catalog",
    "api_catalog": "catalog",
}
#: Roles of the files that are the product's data (the rest are attachments).
DATA_ROLES = ("data", "rmf", "arf", "region")
#: Content accepted for text attachments (HTML views, YAML descriptions).
_TEXT_CONTENT = ("html", "yaml", "text", "json")
_UNKNOWN_FITS = "FITS file of no known kind"

MAX_SOURCES = 50
MAX_OBSIDS = 100
MAX_DETAIL_CHARS = 100_000
MAX_DETAILS_CHARS = 1_000_000
MAX_TEXT = {"title": 200, "product_id": 128, "produced_by": 300, "osa_version": 40}


class PostingError(ValueError):
    """A post that cannot be accepted; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# What a post says


@dataclass
class SourceHint:
    """What the poster's name resolution said about a source, used if it must be created."""

    portal_link: str = ""
    ra_deg: float | None = None
    dec_deg: float | None = None
    class_code: str | None = None
    aliases: list[str] = field(default_factory=list)


@dataclass
class PostedProductMeta:
    """The metadata of a posted product; None means "not posted" (an update keeps the value)."""

    product_id: str = ""
    title: str | None = None
    instrument: str | None = None  # Instrument code or family ("jemx")
    kind: str | None = None  # ProductKind code
    product_type: str = ""  # the term as posted, kept with the product
    source_names: list[str] = field(default_factory=list)
    insert_new_source: bool = False
    source_hints: dict[str, SourceHint] = field(default_factory=dict)
    e_min_kev: float | None = None
    e_max_kev: float | None = None
    ra_deg: float | None = None
    dec_deg: float | None = None
    time_start: datetime | None = None
    time_end: datetime | None = None
    rev_first: int | None = None
    rev_last: int | None = None
    observation: str | None = None  # an observation's title (or obsid)
    obsids: list[str] = field(default_factory=list)
    produced_by: str | None = None
    is_highlight: bool | None = None
    osa_version: str | None = None
    details: dict = field(default_factory=dict)  # time_bin, additional_information, …

    def validate(self) -> PostedProductMeta:
        for name, limit in MAX_TEXT.items():
            value = getattr(self, name)
            if value is not None:
                _check_text(name, value, limit)
        if self.title is not None and not self.title.strip():
            raise PostingError("the title cannot be empty")
        if self.product_id and not self.product_id.strip():
            raise PostingError("product_id cannot be blank")
        self._validate_numbers()
        self._validate_times()
        if len(self.source_names) > MAX_SOURCES:
            raise PostingError(f"a product can describe at most {MAX_SOURCES} sources")
        try:
            self.source_names = _unique([validate_source_name(n) for n in self.source_names])
        except ValueError as exc:
            raise PostingError(str(exc)) from None
        if len(self.obsids) > MAX_OBSIDS:
            raise PostingError(f"give at most {MAX_OBSIDS} obsids")
        for obsid in self.obsids:
            _check_obsid(obsid)
        if self.observation is not None:
            _check_text("observation_id", self.observation, 200)
        self._validate_details()
        for hint in self.source_hints.values():
            _check_hint(hint)
        return self

    def _validate_numbers(self) -> None:
        for name in ("e_min_kev", "e_max_kev", "ra_deg", "dec_deg"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise PostingError(f"{name} must be a finite number")
        if (self.e_min_kev is None) != (self.e_max_kev is None):
            raise PostingError("give both E1_keV and E2_keV, or neither")
        if self.e_min_kev is not None and not 0 < self.e_min_kev < self.e_max_kev <= 1e7:
            raise PostingError("the band must satisfy 0 < E1_keV < E2_keV <= 1e7 keV")
        if (self.ra_deg is None) != (self.dec_deg is None):
            raise PostingError("give both RA and DEC, or neither")
        if self.ra_deg is not None:
            try:
                self.ra_deg, self.dec_deg = validate_position(self.ra_deg, self.dec_deg)
            except ValueError as exc:
                raise PostingError(str(exc)) from None
        for name in ("rev_first", "rev_last"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 99999:
                raise PostingError(
                    f"{name.replace('_first', '1').replace('_last', '2')} "
                    "must be a revolution number from 1 to 99999"
                )
        if self.rev_first is not None and self.rev_last is None:
            self.rev_last = self.rev_first
        if self.rev_last is not None and self.rev_first is None:
            raise PostingError("give rev1 with rev2")
        if self.rev_first is not None and self.rev_first > self.rev_last:
            raise PostingError("rev1 must not be after rev2")

    def _validate_times(self) -> None:
        for name in ("time_start", "time_end"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise PostingError(f"{name} must be a UTC time")
        if self.time_start and self.time_end and self.time_start > self.time_end:
            raise PostingError("T1 must not be after T2")
        for value in (self.time_start, self.time_end):
            if value is not None and value < timeline.to_datetime(timeline.revolution_start(1)):
                raise PostingError(
                    f"{value:%Y-%m-%dT%H:%M:%S} is before INTEGRAL's first revolution "
                    "(2002-10-17T05:47:25)"
                )

    def _validate_details(self) -> None:
        total = 0
        for key, value in self.details.items():
            if not isinstance(value, str | int | float | bool):
                raise PostingError(f"{key}: only text and numbers can be stored")
            if isinstance(value, float) and not math.isfinite(value):
                raise PostingError(f"{key} must be a finite number")
            text = str(value)
            if len(text) > MAX_DETAIL_CHARS:
                raise PostingError(f"{key} is longer than {MAX_DETAIL_CHARS} characters")
            if "\x00" in text:
                raise PostingError(f"{key} holds a NUL character")
            total += len(text)
        if total > MAX_DETAILS_CHARS:
            raise PostingError("the metadata is too large (over a million characters)")


@dataclass
class PostOutcome:
    product: Product
    status: str  # created | updated | unchanged

    def first_version(self) -> Product:
        """The series' first version: its creation time is the product's "created"."""
        return (
            Product.objects.filter(series_key=self.product.series_key)
            .order_by("version", "pk")
            .first()
        ) or self.product


def external_series_key(product_id: str) -> str:
    """The series of a producer's ``product_id`` (the ingest service's formula for it)."""
    return hashlib.sha256(f"external:{product_id}".encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Posting a product


@dataclass
class _Plan:
    """What the posted FITS files are, decided before the database is touched."""

    group: list[FileInfo] | None = None  # the product the ingest readers recognise
    data_key: str | None = None  # ingest's content key of the group
    extra: list[InputFile] = field(default_factory=list)  # other FITS: stored as "other"
    unknown: list[InputFile] = field(default_factory=list)  # FITS of no known kind


@dataclass
class _Post:
    """One post being written: its inputs and what the attempt stored."""

    meta: PostedProductMeta
    user: object
    attachments: list[InputFile]
    stored: list[str] = field(default_factory=list)  # storage names that may be new
    preexisting: set[str] = field(default_factory=set)


def post_product(files: list[InputFile], meta: PostedProductMeta, user) -> PostOutcome:
    """Create (or version) the product a post describes; see the module docstring."""
    meta.validate()
    _require_perm(user, "products.add_product", "posting a product needs the contributor role")
    fits = [f for f in files if f.role == "data"]
    attachments = [f for f in files if f.role != "data"]
    _check_attachments(attachments)
    plan = _plan(fits, meta)
    preexisting = {
        name for name in (_storage_name_of(f) for f in files) if default_storage.exists(name)
    }
    for attempt in (1, 2):
        post = _Post(meta, user, list(attachments), preexisting=preexisting)
        try:
            with transaction.atomic():
                return _post(plan, post)
        except IntegrityError:
            # A concurrent post wrote the same product first: the second attempt finds it.
            _discard(post)
            if attempt == 2:
                raise PostingError(
                    "a concurrent post changed this product; post again", 409
                ) from None
        except BaseException:
            _discard(post)
            raise
    raise AssertionError("unreachable")


def _post(plan: _Plan, post: _Post) -> PostOutcome:
    meta = post.meta
    previous = None
    if meta.product_id:
        previous = _latest(external_series_key(meta.product_id))
        if previous is not None:
            _require_owner(previous, post.user, "post new versions of it")
    if plan.group is not None:
        same = Product.objects.filter(content_key=plan.data_key).first()
        if same is None:
            return _create_by_ingest(plan, post, previous)
        return _new_version(same, post, previous, extra_files=plan.extra)
    if previous is not None and not plan.unknown:
        return _new_version(previous, post, previous)
    return _create_from_metadata(plan, post, previous)


def _plan(fits: list[InputFile], meta: PostedProductMeta) -> _Plan:
    infos = []
    for f in fits:
        content = sniff(Path(f.path))
        if content not in ("fits", "fits.gz"):
            what = "empty" if content == "empty" else "not a FITS file"
            raise PostingError(f"{f.original_name}: {what} (FITS files only in fits_file parts)")
        if not _whole_records(Path(f.path), content, f.original_name):
            raise PostingError(
                f"{f.original_name}: truncated FITS file (not a whole number of 2880-byte records)"
            )
        info = classify_file(Path(f.path), f.original_name)
        if info.kind == "unknown" and not (info.error or "").startswith(_UNKNOWN_FITS):
            raise PostingError(f"{f.original_name}: {info.error}")
        infos.append(info)
    unknown = [InputFile(i.path, "data", i.original_name) for i in infos if i.kind == "unknown"]
    recognised = [i for i in infos if i.kind != "unknown"]
    if not recognised:
        return _Plan(unknown=unknown)
    groups, rejected = plan_products(
        [InputFile(i.path, "data", i.original_name) for i in recognised]
    )
    if rejected:
        raise PostingError("; ".join(f"{name}: {reason}" for name, reason in rejected))
    chosen = [g for g in groups if _matches(g[0], meta)]
    found = ", ".join(f"a {_KIND_OF[g[0].kind]} ({g[0].original_name})" for g in groups)
    if not chosen:
        raise PostingError(
            f"the instrument or product_type posted does not match the files: {found}"
        )
    if len(chosen) > 1:
        raise PostingError(
            f"the FITS files hold {len(groups)} products ({found}): give product_type to say "
            "which one this post is, or post them one at a time"
        )
    group = chosen[0]
    main = group[0]
    roles = ["data", "rmf", "arf"]
    hashes = [(roles[i], sha256_of_file(info.path)) for i, info in enumerate(group)]
    extra = [
        InputFile(i.path, "other", i.original_name) for g in groups if g is not group for i in g
    ]
    extra += [InputFile(f.path, "other", f.original_name) for f in unknown]
    return _Plan(group=group, data_key=content_key(_KIND_OF[main.kind], hashes), extra=extra)


#: A gzipped FITS file that inflates beyond this is refused rather than read.
MAX_INFLATED_BYTES = 2 * 1024**3


def _whole_records(path: Path, content: str, name: str) -> bool:
    """A FITS file is made of 2880-byte records: any other length means it was cut short."""
    if content == "fits":
        size = path.stat().st_size
    else:
        size = 0
        try:
            with gzip.open(path, "rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    size += len(chunk)
                    if size > MAX_INFLATED_BYTES:
                        raise PostingError(f"{name}: the gzipped file inflates too much")
        except (OSError, EOFError, zlib.error):
            return False
    return size > 0 and size % 2880 == 0


def _matches(info: FileInfo, meta: PostedProductMeta) -> bool:
    if meta.kind is not None and _KIND_OF[info.kind] != meta.kind:
        return False
    if meta.instrument is None or info.instrument is None:
        return True
    family = Instrument.objects.filter(code=info.instrument).values_list("family", flat=True)
    return meta.instrument in (info.instrument, family.first())


def _create_by_ingest(plan: _Plan, post: _Post, previous: Product | None) -> PostOutcome:
    """New FITS data: the ingest service makes the product, then the post's values apply."""
    meta = post.meta
    post.attachments = [*post.attachments, *plan.extra]
    sources = _resolve_sources(meta)
    target = next((s for s in sources if s is not None), None)
    options = IngestOptions(
        source_name=target.name if target is not None else None,
        title=meta.title or _default_title(meta, previous),
        produced_by=meta.produced_by or "",
        external_id=meta.product_id,
        is_highlight=bool(meta.is_highlight),
        submitted_by=post.user,
        attachments=post.attachments,
        provenance={"posted_with": "oda_api", "product_type": meta.product_type},
    )
    group_files = [InputFile(info.path, "data", info.original_name) for info in plan.group]
    report = ingest_files(group_files, options)
    if report.rejected:
        name, reason = report.rejected[0]
        status = 500 if reason.startswith("internal error") else 400
        raise PostingError(f"{name}: {reason}", status=status)
    product = report.outcomes[0].product
    if not report.outcomes[0].created:
        # The same files became a product meanwhile (a concurrent post): never edit it in place.
        return _new_version(product, post, previous)
    post.stored += list(product.files.values_list("file", flat=True))
    _apply(product, product, previous, post, sources)
    FluxPoint.objects.filter(product=product).update(observation=product.observation)
    carried = [] if _posted_role(post, "other") or previous is None else _files(previous, "other")
    _copy_files(carried, product)
    status = "updated" if product.version > 1 else "created"
    return PostOutcome(product, status)


def _create_from_metadata(plan: _Plan, post: _Post, previous: Product | None) -> PostOutcome:
    """No FITS the readers know: the product is made from the metadata, files kept as given."""
    meta = post.meta
    kind = meta.kind or (previous.kind.code if previous else None)
    if kind is None:
        raise PostingError(
            "give product_type (the files, if any, are of no kind the Gallery reads)"
        )
    instrument = _instrument(meta, previous)
    hashes = sorted(
        [("data", sha256_of_file(f.path)) for f in plan.unknown]
        + [(f.role, sha256_of_file(f.path)) for f in post.attachments]
    )
    # Without data files of a known kind, a product is what was posted: files and metadata.
    key = _digest(
        "posted", kind, instrument.code, *(f"{r}:{s}" for r, s in hashes), _canonical(meta)
    )
    same = Product.objects.filter(content_key=key).first()
    if same is not None:
        return _new_version(same, post, previous)
    series_key = (
        external_series_key(meta.product_id) if meta.product_id else _digest("posted-series", key)
    )
    sources = _resolve_sources(meta)
    product = Product(
        kind=ProductKind.objects.get(code=kind),
        instrument=instrument,
        title=meta.title or _default_title(meta, previous) or kind,
        content_key=key,
        series_key=series_key,
        external_id=meta.product_id,
        submitted_by=post.user,
        metadata={"notes": [], "posted": {}},
        provenance={"posted_with": "oda_api", "product_type": meta.product_type},
    )
    _apply(product, None, previous, post, sources, save=False)
    _save_version(product, previous)
    _write_links(product, _compose_links(product, None, previous, sources))
    for f in plan.unknown:
        _store(product, f, "data", post)
    _attach(product, post, previous)
    status = "updated" if previous is not None else "created"
    return PostOutcome(product, status)


def _new_version(
    data_source: Product,
    post: _Post,
    previous: Product | None,
    extra_files: Iterable[InputFile] = (),
) -> PostOutcome:
    """A version made of ``data_source``'s data and the post's values (or the same product,
    when that would change nothing)."""
    meta, user = post.meta, post.user
    if meta.product_id:
        series_key = external_series_key(meta.product_id)
    elif data_source.submitted_by_id == getattr(user, "pk", None):
        series_key = data_source.series_key
        previous = _latest(series_key)
    else:
        # Never supersede someone else's product without a product_id: make one of our own.
        series_key = _digest("posted-series", str(user.pk), data_source.content_key)
        previous = _latest(series_key)
    post.attachments = [*post.attachments, *extra_files]
    sources = _resolve_sources(meta)
    candidate = _copy_product(data_source)
    candidate.series_key = series_key
    same_series = series_key == data_source.series_key
    candidate.external_id = meta.product_id or (data_source.external_id if same_series else "")
    candidate.submitted_by = user if getattr(user, "pk", None) else None
    _apply(candidate, data_source, previous, post, sources, save=False)
    links = _compose_links(candidate, data_source, previous, sources)
    files = _compose_files(data_source, previous, post)
    if (
        previous is not None
        and previous.status == Product.Status.PUBLISHED
        and _state(candidate, links, {(r, s) for r, s, _ in files})
        == _state(previous, _links_of(previous), _file_state(previous))
    ):
        return PostOutcome(previous, "unchanged")
    version = previous.version + 1 if previous is not None else 1
    state = json.dumps(_state(candidate, links, {(r, s) for r, s, _ in files}), default=str)
    candidate.content_key = _digest(
        "version", series_key, str(version), data_source.content_key, state
    )
    _save_version(candidate, previous)
    _write_links(candidate, links)
    for role, _, item in files:
        if isinstance(item, ProductFile):
            _copy_files([item], candidate)
        else:
            _store(candidate, item, role, post)
    candidate.tags.set(data_source.tags.all())
    candidate.granted_groups.set((previous or data_source).granted_groups.all())
    _copy_science(data_source, candidate)
    return PostOutcome(candidate, "updated" if version > 1 else "created")


# --- composing a version ----------------------------------------------------------------------


def _apply(
    product: Product,
    data_source: Product | None,
    previous: Product | None,
    post: _Post,
    sources: list[Source | None],
    save: bool = True,
) -> None:
    """Set on ``product`` the values carried over from ``previous`` and then the posted ones.

    Values that ``data_source``'s files gave (band, times, position, revolutions) are kept:
    a posted value only fills a gap, and a different one is noted.
    """
    meta = post.meta
    read_from_files = data_source is not None and "facts" in data_source.metadata
    if previous is not None and not _same(previous, data_source):
        carried = _CARRIED if data_source is not None else _CARRIED + _DESCRIBED
        for name in carried:
            setattr(product, name, getattr(previous, name))
    base = previous if previous is not None else data_source
    details = dict(_posted(base)["details"]) if base is not None else {}
    details.update(meta.details)
    if meta.product_type:
        details["product_type"] = meta.product_type
    if meta.obsids:
        details["obsid"] = ",".join(meta.obsids)

    if meta.title is not None:
        product.title = meta.title
    if meta.produced_by is not None:
        product.produced_by = meta.produced_by
    if meta.is_highlight is not None:
        product.is_highlight = meta.is_highlight
    if meta.osa_version and not product.osa_version:
        product.osa_version = meta.osa_version
    notes = [n for n in product.metadata.get("notes", []) if not n.startswith("posted ")]
    for fields, label in (
        (("e_min_kev", "e_max_kev"), "E1_keV/E2_keV"),
        (("ra_deg", "dec_deg"), "RA/DEC"),
        (("time_start", "time_end"), "T1/T2"),
        (("rev_first", "rev_last"), "rev1/rev2"),
    ):
        values = [getattr(meta, f) for f in fields]
        if values[0] is None and values[1] is None:
            continue
        current = [getattr(product, f) for f in fields]
        if not read_from_files or all(v is None for v in current):
            for name, value in zip(fields, values, strict=True):
                if value is not None:
                    setattr(product, name, value)
        elif [_plain(v) for v in values] != [_plain(v) for v in current]:
            notes.append(
                f"posted {label} {' '.join(_plain(v) for v in values)} differ from the files'"
            )
    if product.rev_first is None and product.time_start is not None:
        product.rev_first, product.rev_last = _revolutions(product.time_start, product.time_end)
    observation = _resolve_observation(meta, product)
    if observation is not None:
        product.observation = observation
    product.set_position(product.ra_deg, product.dec_deg)
    unlinked = [n for n, s in zip(meta.source_names, sources, strict=True) if s is None]
    metadata = dict(product.metadata)
    metadata["notes"] = notes
    metadata["posted"] = {"details": details, "unlinked_sources": unlinked}
    product.metadata = metadata
    if not save:
        return
    product.save()
    links = _compose_links(product, data_source, previous, sources)
    _write_links(product, links)


#: Values a new version takes from the previous one unless posted (an update changes only
#: what it names), and those it takes too when no data file describes the product.
_CARRIED = (
    "title", "produced_by", "is_highlight", "observation", "access", "embargo_until",
)  # fmt: skip
_DESCRIBED = (
    "e_min_kev", "e_max_kev", "time_start", "time_end", "rev_first", "rev_last", "ra_deg",
    "dec_deg", "osa_version", "exposure_s",
)  # fmt: skip


def _same(a: Product | None, b: Product | None) -> bool:
    return a is not None and b is not None and a.pk is not None and a.pk == b.pk


def _posted(product: Product) -> dict:
    """The posted part of a product's metadata, with its defaults."""
    posted = (product.metadata or {}).get("posted", {})
    return {
        "details": posted.get("details", {}),
        "unlinked_sources": posted.get("unlinked_sources", []),
    }


def _compose_links(
    product: Product,
    data_source: Product | None,
    previous: Product | None,
    sources: list[Source | None],
) -> dict[int, tuple[str, float | None]]:
    """{source id: (role, significance)} of the new version."""
    links: dict[int, tuple[str, float | None]] = {}
    if data_source is not None:
        links.update(_links_of(data_source))
    posted = [s for s in sources if s is not None]
    target = ProductSource.Role.TARGET
    if not posted and previous is not None and not _same(previous, data_source):
        for source_id, (role, sig) in _links_of(previous).items():
            if role == target:
                links[source_id] = (role, sig)
    if posted:
        read_from_files = data_source is not None and "facts" in data_source.metadata
        if not read_from_files:
            links = {k: v for k, v in links.items() if v[0] != target}
        for source in posted:
            links[source.pk] = (target, links.get(source.pk, (None, None))[1])
    return links


def _links_of(product: Product) -> dict[int, tuple[str, float | None]]:
    return {
        link.source_id: (link.role, link.significance)
        for link in ProductSource.objects.filter(product=product)
    }


def _write_links(product: Product, links: dict[int, tuple[str, float | None]]) -> None:
    ProductSource.objects.filter(product=product).exclude(source_id__in=links).delete()
    for source_id, (role, significance) in links.items():
        ProductSource.objects.update_or_create(
            product=product,
            source_id=source_id,
            defaults={"role": role, "significance": significance},
        )


def _compose_files(data_source: Product, previous: Product | None, post: _Post) -> list[tuple]:
    """[(role, sha256, ProductFile to copy or InputFile to store)] of the new version."""
    files: list[tuple] = [
        (f.role, f.sha256, f) for f in data_source.files.filter(role__in=DATA_ROLES)
    ]
    for role in ("preview", "other"):
        if _posted_role(post, role):
            files += [(role, sha256_of_file(f.path), f) for f in post.attachments if f.role == role]
            continue
        carried = _files(data_source, role) if role == "preview" else []
        if not carried and previous is not None:
            carried = _files(previous, role)
        files += [(f.role, f.sha256, f) for f in carried]
    return files


def _state(product: Product, links: dict, files: set) -> dict:
    """What makes two versions the same product (compared before writing a new one)."""
    names = (
        "title", "kind_id", "instrument_id", "e_min_kev", "e_max_kev", "ra_deg", "dec_deg",
        "time_start", "time_end", "rev_first", "rev_last", "observation_id", "produced_by",
        "is_highlight", "osa_version", "access", "embargo_until",
    )  # fmt: skip
    state = {name: _plain(getattr(product, name)) for name in names}
    state["posted"] = _posted(product)
    state["links"] = sorted((k, v[0]) for k, v in links.items())
    state["files"] = sorted(files)
    return state


def _file_state(product: Product) -> set[tuple[str, str]]:
    return set(product.files.values_list("role", "sha256"))


def _plain(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(round(value, 9))
    return "" if value is None else str(value)


def _copy_product(source: Product) -> Product:
    """An unsaved copy of ``source``'s row: same values, a new identity."""
    copy = Product.objects.get(pk=source.pk)
    copy.pk = copy.id = None
    copy._state.adding = True
    copy.uuid = uuid.uuid4()
    copy.superseded_by = None
    copy.status = Product.Status.PUBLISHED
    copy.metadata = dict(source.metadata)
    return copy


def _save_version(product: Product, previous: Product | None) -> None:
    """Save ``product`` as the newest version of its series, superseding ``previous``."""
    product.version = previous.version + 1 if previous is not None else 1
    product.save()
    if previous is not None:
        previous.superseded_by = product
        previous.save(update_fields=["superseded_by", "updated"])


def _copy_science(source: Product, target: Product) -> None:
    """Fits and flux points of ``source``'s data, for a version that reuses them."""
    fits = list(SpectralFit.objects.filter(product=source))
    for fit in fits:
        fit.pk = fit.id = None
        fit.product = target
    SpectralFit.objects.bulk_create(fits)
    points = list(FluxPoint.objects.filter(product=source))
    for point in points:
        point.pk = point.id = None
        point.product = target
        point.observation = target.observation
    FluxPoint.objects.bulk_create(points, batch_size=2000)


# --- files ------------------------------------------------------------------------------------


def _check_attachments(attachments: list[InputFile]) -> None:
    for f in attachments:
        content = sniff(Path(f.path))
        if f.role == "preview" and content != "png":
            raise PostingError(f"{f.original_name}: the image (img) must be a PNG file")
        if f.role == "other" and content not in _TEXT_CONTENT:
            raise PostingError(f"{f.original_name}: HTML and YAML attachments must be UTF-8 text")


def _posted_role(post: _Post, role: str) -> bool:
    return any(f.role == role for f in post.attachments)


def _files(product: Product, role: str) -> list[ProductFile]:
    return list(product.files.filter(role=role))


def _attach(product: Product, post: _Post, previous: Product | None) -> None:
    """Store the posted attachments, or carry over those of the previous version."""
    for role in ("preview", "other"):
        if _posted_role(post, role):
            for f in post.attachments:
                if f.role == role:
                    _store(product, f, role, post)
        elif previous is not None:
            _copy_files(_files(previous, role), product)


def _store(product: Product, f: InputFile, role: str, post: _Post) -> None:
    path = Path(f.path)
    content = sniff(path)
    extension = EXTENSIONS.get(content, ".bin")
    sha = sha256_of_file(path)
    name, created = store(sha, extension, path=path)
    if created:
        post.stored.append(name)
    ProductFile.objects.get_or_create(
        product=product,
        role=role,
        sha256=sha,
        defaults=dict(
            file=name,
            size_bytes=path.stat().st_size,
            original_name=_download_name(f.original_name),
            extension=extension,
            content_type=CONTENT_TYPES.get(content, "application/octet-stream"),
        ),
    )


def _copy_files(files: Iterable[ProductFile], product: Product) -> None:
    """Rows for files already stored (content-addressed: nothing is written again)."""
    for f in files:
        ProductFile.objects.get_or_create(
            product=product,
            role=f.role,
            sha256=f.sha256,
            defaults=dict(
                file=f.file.name,
                size_bytes=f.size_bytes,
                original_name=f.original_name,
                extension=f.extension,
                content_type=f.content_type,
            ),
        )


def _storage_name_of(f: InputFile) -> str:
    path = Path(f.path)
    return storage_name(sha256_of_file(path), EXTENSIONS.get(sniff(path), ".bin"))


def _discard(post: _Post) -> None:
    """Remove what a failed attempt stored, unless a committed product uses it."""
    names = [n for n in dict.fromkeys(post.stored) if n not in post.preexisting]
    try:
        unused = [n for n in names if not ProductFile.objects.filter(file=n).exists()]
    except DatabaseError:
        return  # the database is gone too: keeping a file is better than losing a used one
    remove(unused)


def _download_name(name: str) -> str:
    """The original file name, kept for downloads only: no folders, no control characters."""
    base = Path(str(name).replace("\\", "/")).name
    return "".join(c for c in base if c.isprintable() and c not in '"<>|')[:255]


# --- sources, observations, instruments -------------------------------------------------------


def _resolve_sources(meta: PostedProductMeta) -> list[Source | None]:
    """The source of each posted name (created when asked to); None for an unknown name."""
    found: list[Source | None] = []
    for name in meta.source_names:
        source = linking.find_by_name(name)
        if source is None and meta.insert_new_source:
            source = _create_source(name, meta.source_hints.get(name) or SourceHint())
        found.append(source)
    return found


def _create_source(name: str, hint: SourceHint) -> Source:
    source = Source(
        name=name,
        catalogue_url=hint.portal_link,
        object_class=SourceClass.objects.filter(code=hint.class_code).first()
        if hint.class_code
        else None,
    )
    source.set_position(hint.ra_deg, hint.dec_deg)
    source.save()
    for alias in hint.aliases:
        # Aliases from a resolver are hints: one that names another source is left out.
        if not SourceName.objects.filter(normalized=normalize_name(alias)).exists():
            source.add_alias(alias)
    return source


def _resolve_observation(meta: PostedProductMeta, product: Product) -> Observation | None:
    """The observation the post names, finds by obsid or time range, or creates; None when
    the post says nothing about it."""
    if meta.observation:
        found = Observation.objects.filter(title=meta.observation).first()
        if found is None:
            found = Observation.objects.filter(obsid=meta.observation).first()
        if found is not None:
            return found
        if meta.time_start is None or meta.time_end is None:
            raise PostingError(
                f"unknown observation {meta.observation[:60]!r}: post it first, or give T1 and "
                "T2 to create it"
            )
        return _create_observation(meta.observation, meta.time_start, meta.time_end, meta.obsids)
    if meta.obsids:
        found = Observation.objects.filter(obsid=meta.obsids[0]).order_by("-time_start").first()
        if found is not None:
            return found
    if meta.time_start is not None and meta.time_end is not None:
        found = Observation.objects.filter(
            time_start=meta.time_start, time_end=meta.time_end
        ).first()
        if found is not None:
            return found
        title = default_observation_title(meta.time_start, meta.time_end)
        return Observation.objects.filter(title=title).first() or _create_observation(
            title, meta.time_start, meta.time_end, meta.obsids
        )
    return None


def default_observation_title(t1: datetime | None, t2: datetime | None) -> str:
    """``observation_<T1>_<T2>`` as the previous gallery named them (random without times)."""
    if t1 is None or t2 is None:
        return f"observation_{uuid.uuid4()}"
    return f"observation_{t1:%Y-%m-%dT%H:%M:%S}_{t2:%Y-%m-%dT%H:%M:%S}"


def _create_observation(title: str, t1, t2, obsids: list[str]) -> Observation:
    observation = Observation(title=title, obsid=obsids[0] if obsids else "")
    _set_times(observation, t1, t2)
    observation.save()
    return observation


def _set_times(observation: Observation, t1: datetime, t2: datetime) -> None:
    observation.time_start, observation.time_end = t1, t2
    observation.rev_first, observation.rev_last = _revolutions(t1, t2)
    observation.revolution = Revolution.for_number(observation.rev_first)


def _revolutions(t1: datetime, t2: datetime | None) -> tuple[int, int]:
    first = timeline.revolution_of(timeline.from_datetime(t1))
    last = timeline.revolution_of(timeline.from_datetime(t2)) if t2 is not None else first
    return first, max(first, last)


def _instrument(meta: PostedProductMeta, previous: Product | None) -> Instrument:
    if meta.instrument is None:
        if previous is not None:
            return previous.instrument
        raise PostingError("give the instrument (the files do not say which one made them)")
    units = list(
        Instrument.objects.filter(code=meta.instrument)
        or Instrument.objects.filter(family=meta.instrument).order_by("code")
    )
    if not units:
        raise PostingError(f"unknown instrument {meta.instrument[:40]!r}")
    if len(units) > 1:
        codes = " or ".join(u.code for u in units)
        raise PostingError(
            f"instrument {meta.instrument!r} names {len(units)} units and the files do not say "
            f"which: give {codes}"
        )
    return units[0]


def _default_title(meta: PostedProductMeta, previous: Product | None) -> str | None:
    """``<src1_src2>_<product_type>`` as the previous gallery built it (None: no basis)."""
    if previous is not None:
        return previous.title
    parts = ["_".join(meta.source_names)] if meta.source_names else []
    if meta.product_type:
        parts.append(meta.product_type)
    return "_".join(parts)[:200] or None


def _latest(series_key: str) -> Product | None:
    return (
        Product.objects.select_for_update()
        .filter(series_key=series_key, superseded_by__isnull=True)
        .order_by("-version")
        .first()
    )


# --- permissions and checks -------------------------------------------------------------------


def _require_perm(user, perm: str, message: str) -> None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.has_perm(perm):
        raise PostingError(message, status=403)


def _require_owner(product: Product, user, action: str) -> None:
    if product.submitted_by_id is not None and product.submitted_by_id == user.pk:
        return
    if user.has_perm("products.change_product"):
        return
    raise PostingError(
        f"product_id {product.external_id!r} is another user's product: only its submitter or "
        f"a curator may {action}",
        status=403,
    )


def _check_text(name: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise PostingError(f"{name} cannot be longer than {limit} characters")
    if any(not c.isprintable() for c in value):
        raise PostingError(f"{name} holds control characters")


def _check_obsid(obsid: str) -> None:
    if not obsid or len(obsid) > 20 or not all(c.isalnum() or c in "._-" for c in obsid):
        raise PostingError(f"invalid obsid {obsid[:30]!r}: up to 20 letters and digits")


def _check_hint(hint: SourceHint) -> None:
    if hint.portal_link:
        _check_url(hint.portal_link)
    if (hint.ra_deg is None) != (hint.dec_deg is None):
        hint.ra_deg = hint.dec_deg = None
    if hint.ra_deg is not None:
        try:
            hint.ra_deg, hint.dec_deg = validate_position(hint.ra_deg, hint.dec_deg)
        except ValueError as exc:
            raise PostingError(f"source position: {exc}") from None
    clean = []
    for alias in hint.aliases[:MAX_SOURCES]:
        try:
            clean.append(validate_source_name(alias))
        except ValueError:
            continue  # a resolver's identifier the Gallery cannot store as a name
    hint.aliases = clean


def _check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(url) > 200:
        raise PostingError(f"invalid link {url[:60]!r}: an http(s) URL of up to 200 characters")
    return url


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _canonical(meta: PostedProductMeta) -> str:
    """The posted values as one text (hints for creating sources are not part of a product)."""
    values = {
        name: getattr(meta, name)
        for name in meta.__dataclass_fields__
        if name not in ("insert_new_source", "source_hints")
    }
    return json.dumps(values, sort_keys=True, default=_plain)


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Observations


@dataclass
class PostedObservationMeta:
    title: str | None = None
    time_start: datetime | None = None
    time_end: datetime | None = None
    obsids: list[str] | None = None  # None: not posted
    update: bool = False
    create_new: bool = False

    def validate(self) -> PostedObservationMeta:
        if self.title is not None:
            self.title = " ".join(self.title.split())
            if not self.title:
                raise PostingError("the observation title cannot be empty")
            _check_text("title", self.title, 200)
        if (self.time_start is None) != (self.time_end is None):
            raise PostingError("give both T1 and T2, or neither")
        if self.time_start is not None:
            PostedProductMeta(time_start=self.time_start, time_end=self.time_end)._validate_times()
        if self.obsids is not None:
            if len(self.obsids) > MAX_OBSIDS:
                raise PostingError(f"give at most {MAX_OBSIDS} obsids")
            for obsid in self.obsids:
                _check_obsid(obsid)
            self.obsids = _unique(self.obsids)
        if self.update and self.title is None:
            raise PostingError("an update names the observation by its title")
        return self


@dataclass
class ObservationOutcome:
    observation: Observation
    created: bool
    extras: dict  # obsids and attachments (see observation_extras)


def post_observation(
    meta: PostedObservationMeta, attachments: list[InputFile], user
) -> ObservationOutcome:
    """Create an observation, or update one found by title (``update``; ``create_new`` makes
    it when missing). YAML attachments are added to those it has."""
    meta.validate()
    _require_perm(user, "products.add_product", "posting an observation needs the contributor role")
    for f in attachments:
        if sniff(Path(f.path)) not in _TEXT_CONTENT:
            raise PostingError(f"{f.original_name}: YAML attachments must be UTF-8 text")
    title = meta.title or default_observation_title(meta.time_start, meta.time_end)
    written: list[str] = []
    saved_extras: tuple[Observation, bytes | None] | None = None
    try:
        with transaction.atomic():
            observation = Observation.objects.select_for_update().filter(title=title).first()
            created = observation is None
            if not created and not meta.update:
                raise PostingError(
                    f"an observation titled {title[:60]!r} exists: post it as an update "
                    "(update_observation) to change it",
                    status=409,
                )
            if created and meta.update and not meta.create_new:
                raise PostingError(
                    f"no observation titled {title[:60]!r}; post with create_new to create it",
                    status=404,
                )
            if created:
                observation = Observation(title=title)
            extras = _empty_extras() if created else observation_extras(observation)
            if meta.time_start is not None:
                _set_times(observation, meta.time_start, meta.time_end)
            if meta.obsids is not None:
                observation.obsid = meta.obsids[0] if meta.obsids else ""
                extras["obsids"] = meta.obsids
            observation.save()
            known = {a["sha256"] for a in extras["attachments"]}
            for f in attachments:
                record = _store_attachment(f, written)
                if record["sha256"] not in known:
                    extras["attachments"].append(record)
                    known.add(record["sha256"])
            saved_extras = (observation, _read_extras(observation))
            _save_extras(observation, extras)
    except IntegrityError:
        _undo_observation(written, saved_extras)
        raise PostingError(f"an observation titled {title[:60]!r} exists", status=409) from None
    except BaseException:
        _undo_observation(written, saved_extras)
        raise
    return ObservationOutcome(observation, created, extras)


# Observation extras: the full obsid list and the YAML attachments. The Observation model has
# one obsid and no attachment table, so they are kept beside it in storage, as a small JSON
# document keyed by the observation's id and creation time.


def _empty_extras() -> dict:
    return {"obsids": [], "attachments": []}


def _extras_name(observation: Observation) -> str:
    return f"observations/extras/{observation.pk}.json"


def observation_extras(observation: Observation) -> dict:
    """The obsids and YAML attachments recorded for an observation."""
    if observation.pk is None:
        return _empty_extras()
    raw = _read_extras(observation)
    try:
        data = json.loads(raw.decode("utf-8")) if raw else {}
    except ValueError:
        return _empty_extras()
    if data.get("created") != observation.created.isoformat():
        return _empty_extras()  # left by an observation deleted since
    return {"obsids": data.get("obsids", []), "attachments": data.get("attachments", [])}


def _read_extras(observation: Observation) -> bytes | None:
    try:
        with default_storage.open(_extras_name(observation), "rb") as handle:
            return handle.read()
    except (FileNotFoundError, OSError):
        return None


def _save_extras(observation: Observation, extras: dict) -> None:
    body = json.dumps({**extras, "created": observation.created.isoformat()}, indent=1)
    _write_extras(observation, body.encode("utf-8"))


def _write_extras(observation: Observation, body: bytes | None) -> None:
    name = _extras_name(observation)
    if default_storage.exists(name):
        default_storage.delete(name)
    if body is not None:
        default_storage.save(name, ContentFile(body))


def _undo_observation(written: list[str], saved: tuple[Observation, bytes | None] | None) -> None:
    """Put back what a failed observation post changed outside the database."""
    remove(written)
    if saved is not None:
        with contextlib.suppress(OSError):
            _write_extras(*saved)


def _store_attachment(f: InputFile, written: list[str]) -> dict:
    path = Path(f.path)
    content = sniff(path)
    sha = sha256_of_file(path)
    name, created = store(sha, EXTENSIONS.get(content, ".txt"), path=path)
    if created:
        written.append(name)
    return {
        "sha256": sha,
        "name": _download_name(f.original_name) or f"{sha[:16]}.yaml",
        "size": path.stat().st_size,
        "file": name,
    }


def attachment_text(record: dict) -> str:
    with default_storage.open(record["file"], "rb") as handle:
        return handle.read().decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------
# Sources (astrophysical entities)


@dataclass
class PostedSourceMeta:
    name: str
    update: bool = False
    ra_deg: float | None = None
    dec_deg: float | None = None
    portal_link: str | None = None
    class_code: str | None = None
    object_type: str | None = None  # as posted (kept when no class matches)
    aliases: list[str] | None = None

    def validate(self) -> PostedSourceMeta:
        try:
            self.name = validate_source_name(self.name)
        except ValueError as exc:
            raise PostingError(str(exc)) from None
        # Each coordinate alone is checked here; an update may change one of them.
        try:
            validate_position(self.ra_deg or 0.0, self.dec_deg or 0.0)
        except ValueError as exc:
            raise PostingError(str(exc)) from None
        if self.portal_link:
            _check_url(self.portal_link)
        if self.aliases is not None:
            if len(self.aliases) > MAX_SOURCES:
                raise PostingError(f"give at most {MAX_SOURCES} alternative names")
            try:
                self.aliases = _unique(validate_source_name(a) for a in self.aliases)
            except ValueError as exc:
                raise PostingError(f"alternative name: {exc}") from None
        return self


@dataclass
class SourceOutcome:
    source: Source
    created: bool


def post_source(meta: PostedSourceMeta, user) -> SourceOutcome:
    """Create a source, or update one found by any of its names (``update``)."""
    meta.validate()
    with transaction.atomic():
        existing = linking.find_by_name(meta.name)
        if existing is not None and not meta.update:
            raise PostingError(
                f"{meta.name!r} already names the source {existing.name!r}: post it as an "
                "update (update_astro_entity) to change it",
                status=409,
            )
        if existing is None and meta.update:
            raise PostingError(f"no source is named {meta.name!r}", status=404)
        if existing is None:
            _require_perm(user, "sources.add_source", "adding a source needs the contributor role")
            source = Source(name=meta.name)
        else:
            source = Source.objects.select_for_update().get(pk=existing.pk)
            before = _source_state(source)
        for alias in meta.aliases or []:
            owner = SourceName.objects.filter(normalized=normalize_name(alias)).first()
            if owner is not None and owner.source_id != source.pk:
                raise PostingError(
                    f"{alias!r} already names the source {owner.source.name!r}", status=409
                )
        if meta.ra_deg is not None or meta.dec_deg is not None:
            ra = meta.ra_deg if meta.ra_deg is not None else source.ra_deg
            dec = meta.dec_deg if meta.dec_deg is not None else source.dec_deg
            if ra is None or dec is None:
                raise PostingError("give both source_ra and source_dec for a source without one")
            source.set_position(*validate_position(ra, dec))
        if meta.portal_link is not None:
            source.catalogue_url = meta.portal_link
        if meta.class_code is not None:
            source.object_class = SourceClass.objects.filter(code=meta.class_code).first()
        known = {normalize_name(source.name)}
        if source.pk is not None:
            known |= set(source.names.values_list("normalized", flat=True))
        aliases = [
            clean_display_name(a) for a in meta.aliases or [] if normalize_name(a) not in known
        ]
        if existing is not None and not aliases and _source_state(source) == before:
            return SourceOutcome(source, False)  # nothing to change: any contributor may ask
        if existing is not None:
            _require_perm(user, "sources.change_source", "changing a source needs the curator role")
        source.save()
        for alias in aliases:
            source.add_alias(alias)
    return SourceOutcome(source, existing is None)


def _source_state(source: Source) -> tuple:
    return (source.ra_deg, source.dec_deg, source.catalogue_url, source.object_class_id)


# --------------------------------------------------------------------------------------------
# Deleting


def hide_product(product_id: str, user) -> list[Product]:
    """Hide every version of the product with ``product_id`` (a soft delete: rows and files are
    kept for curators)."""
    if not product_id or len(product_id) > MAX_TEXT["product_id"]:
        raise PostingError("give the product_id of the product to delete")
    with transaction.atomic():
        versions = list(
            Product.objects.select_for_update()
            .filter(series_key=external_series_key(product_id))
            .exclude(status=Product.Status.HIDDEN)
            .order_by("-version")
        )
        if not versions:
            raise PostingError(f"no product has product_id {product_id[:60]!r}", status=404)
        _require_owner(versions[0], user, "delete it")
        for product in versions:
            product.status = Product.Status.HIDDEN
            product.save(update_fields=["status", "updated"])
    return versions
