"""The ingest service: files in, whole products out (or nothing at all).

Every entry point (the ``ingest`` command, the upload API, the oda_api-compatible endpoint,
the pipeline) comes here. For each product the files are read and checked, the spectrum fitted
and the previews drawn *before* the database is touched; then one transaction links sources,
revolutions and observation, stores the files (content-addressed) and writes the product with
its fits and flux points. A failure rolls the transaction back and deletes the files this
attempt stored, so a bad file leaves no row and no file behind.

A product's identity is the SHA-256 over its kind and its data files (``content_key``):
ingesting the same files again returns the existing product and changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from products import timeline
from products.models import (
    FluxPoint,
    Instrument,
    Product,
    ProductFile,
    ProductKind,
    ProductSource,
    SpectralFit,
    Tag,
)
from products.storage import remove, sha256_of_file, store
from sources.models import Source
from sources.names import validate_source_name
from sources.sky import cone_filter

from . import fitting, linking, previews
from .fitsio import CONTENT_TYPES, EXTENSIONS, sniff
from .lightcurve_tasks import request_refresh
from .readers import FileInfo, IngestError, plan_products, read_product
from .readers.base import DetectedSource, InputFile, ParsedProduct
from .readers.image import footprint_radius_deg, measure_at

log = logging.getLogger(__name__)


@dataclass
class IngestOptions:
    source_name: str | None = None
    observation: str | None = None
    title: str | None = None
    access: str = Product.Access.PUBLIC
    embargo_until: datetime | None = None
    granted_groups: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    produced_by: str = ""
    external_id: str = ""
    data_level: str = ""
    status: str = Product.Status.PUBLISHED
    is_highlight: bool = False
    submitted_by: object | None = None
    attachments: list[InputFile] = field(default_factory=list)  # previews, html, yaml, …
    detection_threshold: float | None = None
    reprocess_of: str = ""  # uuid of the product whose files are processed again
    job_id: str = ""  # the ingest job doing the work (set by the task)

    #: Options a job may carry as JSON (the others are set by the caller).
    JSON_FIELDS = (
        "source_name",
        "observation",
        "title",
        "access",
        "embargo_until",
        "granted_groups",
        "tags",
        "provenance",
        "produced_by",
        "external_id",
        "data_level",
        "status",
        "is_highlight",
        "detection_threshold",
        "reprocess_of",
    )

    @classmethod
    def from_json(cls, data: dict, **extra) -> IngestOptions:
        values = {k: v for k, v in (data or {}).items() if k in cls.JSON_FIELDS}
        if values.get("embargo_until"):
            from django.utils.dateparse import parse_datetime

            values["embargo_until"] = parse_datetime(values["embargo_until"])
        return cls(**values, **extra)

    def to_json(self) -> dict:
        out = {k: getattr(self, k) for k in self.JSON_FIELDS}
        if self.embargo_until is not None:
            out["embargo_until"] = self.embargo_until.isoformat()
        return out

    def validate(self) -> None:
        if self.source_name:
            try:
                self.source_name = validate_source_name(self.source_name)
            except ValueError as exc:
                raise IngestError(str(exc)) from None
        if self.access not in Product.Access.values:
            raise IngestError(f"access must be one of {', '.join(Product.Access.values)}")
        if self.status not in Product.Status.values:
            raise IngestError(f"status must be one of {', '.join(Product.Status.values)}")
        if self.title is not None and len(self.title) > 200:
            raise IngestError("the title cannot be longer than 200 characters")
        for tag in self.tags:
            if not tag or len(tag) > 50 or not all(c.isalnum() or c in "-_" for c in tag):
                raise IngestError(f"invalid tag {tag[:50]!r}: letters, digits, - and _ only")


@dataclass
class IngestOutcome:
    product: Product
    created: bool  # False: the same files were already a product


@dataclass
class IngestReport:
    outcomes: list[IngestOutcome] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)

    @property
    def ok(self) -> bool:
        return not self.rejected


def ingest_files(
    files: list[InputFile], options: IngestOptions | None = None, progress=None
) -> IngestReport:
    """Ingest every product found in ``files``; a bad product never stops the others."""
    options = options or IngestOptions()
    options.validate()
    report = IngestReport()
    for f in files:
        if not Path(f.path).is_file():
            report.rejected.append((f.original_name or str(f.path), "no such file"))
    files = [f for f in files if Path(f.path).is_file()]
    groups, rejected = plan_products(files)
    report.rejected += rejected
    for group in groups:
        try:
            report.outcomes.append(ingest_group(group, options))
        except IngestError as exc:
            report.rejected.append((group[0].original_name, str(exc)))
        except Exception as exc:  # a bug must not stop the batch; it is logged in full
            log.exception("ingest of %s failed", group[0].original_name)
            report.rejected.append(
                (group[0].original_name, f"internal error ({type(exc).__name__}); see the log")
            )
        if progress:
            progress(group)
    return report


def content_key(kind: str, hashes: list[tuple[str, str]]) -> str:
    """SHA-256 over the product kind and the (role, SHA-256) of each data file."""
    digest = hashlib.sha256(kind.encode())
    for role, sha in sorted(hashes):
        digest.update(f"|{role}:{sha}".encode())
    return digest.hexdigest()


def ingest_group(group: list[FileInfo], options: IngestOptions) -> IngestOutcome:
    parsed = read_product(group, options.detection_threshold)
    hashes = [(f.role, sha256_of_file(f.path)) for f in parsed.data_files]
    salt = []
    if options.reprocess_of:
        # The same files processed again make a new version; the job id keeps a redelivered
        # reprocessing job from making two.
        salt = [("reprocess", f"{options.reprocess_of}/{options.job_id or 'direct'}")]
    key = content_key(parsed.kind, hashes + salt)
    existing = Product.objects.filter(content_key=key).first()
    if existing is not None:
        return IngestOutcome(existing, created=False)
    instrument = Instrument.objects.filter(code=parsed.instrument).first()
    if instrument is None:
        raise IngestError(f"unknown instrument {parsed.instrument!r}")
    fits_results = _fit(parsed, instrument)
    written: list[str] = []
    try:
        with transaction.atomic():
            product = _write_product(
                parsed, instrument, key, dict(hashes), fits_results, options, written
            )
    except IntegrityError:
        remove(written)
        existing = Product.objects.filter(content_key=key).first()
        if existing is not None:  # a concurrent ingest of the same files won
            return IngestOutcome(existing, created=False)
        raise
    except BaseException:
        remove(written)
        raise
    # Bin the new flux points for the long-term light curves at once; the revolution's
    # monitor and statistics refresh follows in a task.
    request_refresh(product, enqueue=settings.GALLERY_LIGHTCURVE_REFRESH_TASKS)
    return IngestOutcome(product, created=True)


def _fit(parsed: ParsedProduct, instrument: Instrument) -> list[fitting.FitResult]:
    if parsed.kind != "spectrum":
        return []
    band = tuple(instrument.default_fit_band_kev) if instrument.default_fit_band_kev else None
    try:
        return fitting.fit_spectrum(parsed.spectrum, band)
    except IngestError as exc:
        # A spectrum that cannot be fitted (too few channels, no signal) is still a product.
        parsed.notes.append(f"not fitted: {exc}")
        return []


def _ijd_to_datetime(ijd: float | None):
    return None if ijd is None else timeline.to_datetime(timeline.ijd_to_time(ijd))


def _write_product(
    parsed: ParsedProduct,
    instrument: Instrument,
    key: str,
    hashes: dict[str, str],
    fit_results: list[fitting.FitResult],
    options: IngestOptions,
    written: list[str],
) -> Product:
    threshold = (
        options.detection_threshold
        if options.detection_threshold is not None
        else settings.GALLERY_DETECTION_THRESHOLD
    )
    links, detected_rows, unidentified, row_sources = _link_sources(
        parsed, instrument, options, threshold
    )
    revs = linking.revolutions_for(parsed.revolutions)
    observation = None
    if options.observation:
        observation = linking.find_observation(options.observation)
        if observation is None:
            raise IngestError(f"unknown observation {options.observation!r}")
    elif parsed.t_start_ijd is not None and revs:
        start, stop = _ijd_to_datetime(parsed.t_start_ijd), _ijd_to_datetime(parsed.t_stop_ijd)
        observation = revs[0].observations.filter(time_start__lte=start, time_end__gte=stop).first()

    product = Product(
        title=options.title or _title(parsed, instrument, links, revs),
        kind=ProductKind.objects.get(code=parsed.kind),
        instrument=instrument,
        e_min_kev=parsed.e_min_kev,
        e_max_kev=parsed.e_max_kev,
        time_start=_ijd_to_datetime(parsed.t_start_ijd),
        time_end=_ijd_to_datetime(parsed.t_stop_ijd),
        rev_first=revs[0].number if revs else None,
        rev_last=revs[-1].number if revs else None,
        observation=observation,
        exposure_s=parsed.exposure_s,
        osa_version=parsed.osa_version,
        data_level=options.data_level,
        content_key=key,
        external_id=options.external_id,
        status=options.status,
        is_highlight=options.is_highlight,
        access=options.access,
        embargo_until=options.embargo_until,
        provenance=options.provenance,
        produced_by=options.produced_by,
        submitted_by=options.submitted_by,
        metadata={
            "facts": parsed.facts,
            "notes": parsed.notes,
            "scw_ids": parsed.scw_ids,
            "detected_sources": detected_rows,
            "unidentified_peaks": unidentified,
        },
    )
    target = next((link for link in links if link[1] == ProductSource.Role.TARGET), None)
    if (
        target is not None
        and target[0].ra_deg is not None
        and parsed.kind in ("spectrum", "lightcurve")
        and parsed.ra_deg is None
    ):
        product.set_position(target[0].ra_deg, target[0].dec_deg)
    else:
        product.set_position(parsed.ra_deg, parsed.dec_deg)
    original = (
        Product.objects.filter(uuid=options.reprocess_of).first() if options.reprocess_of else None
    )
    product.series_key = (
        original.series_key
        if original is not None
        else _series_key(
            product, options, [s.pk for s, role, _ in links if role == ProductSource.Role.TARGET]
        )
    )
    previous = (
        Product.objects.select_for_update()
        .filter(series_key=product.series_key, superseded_by__isnull=True)
        .order_by("-version")
        .first()
    )
    if previous is not None:
        product.version = previous.version + 1
    product.save()
    if previous is not None:
        previous.superseded_by = product
        previous.save(update_fields=["superseded_by", "updated"])

    ProductSource.objects.bulk_create(
        [
            ProductSource(product=product, source=s, role=role, significance=sig)
            for s, role, sig in links
        ]
    )
    if options.tags:
        product.tags.set([Tag.objects.get_or_create(name=t)[0] for t in options.tags])
    if options.granted_groups:
        product.granted_groups.set(
            [Group.objects.get_or_create(name=g)[0] for g in options.granted_groups]
        )

    for f in parsed.data_files:
        _store_file(product, f.path, f.role, f.original_name, hashes.get(f.role), written)
    for attachment in options.attachments:
        _store_file(
            product, attachment.path, attachment.role, attachment.original_name, None, written
        )
    preview = _preview(parsed, fit_results, product.title, links)
    if preview is not None and not any(a.role == "preview" for a in options.attachments):
        _store_bytes(product, preview, "preview", "preview.png", written)

    for index, result in enumerate(fit_results):
        SpectralFit.objects.create(
            product=product,
            model=result.model,
            parameters=[
                {"name": p.name, "value": p.value, "error": p.error, "unit": p.unit}
                for p in result.parameters
            ],
            statistic=result.statistic,
            statistic_value=result.statistic_value,
            dof=result.dof,
            e_min_kev=result.e_min_kev,
            e_max_kev=result.e_max_kev,
            flux_erg_cm2_s=result.flux_erg_cm2_s,
            flux_error=result.flux_error,
            is_preferred=result.is_preferred
            or (index == 0 and not any(r.is_preferred for r in fit_results)),
            details=_fit_details(parsed, result),
        )
    FluxPoint.objects.bulk_create(
        _flux_points(parsed, product, links, row_sources, threshold), batch_size=2000
    )
    return product


def _link_sources(
    parsed: ParsedProduct, instrument: Instrument, options: IngestOptions, threshold: float
):
    """[(source, role, significance)], the detected-source table, unidentified peaks, and the
    source of each catalogue row (in row order)."""
    links: dict[int, tuple] = {}
    row_sources: list = []
    rows: list[dict] = []
    unidentified: list[dict] = []

    def add(source, role, significance):
        old = links.get(source.pk)
        rank = {
            ProductSource.Role.TARGET: 2,
            ProductSource.Role.DETECTED: 1,
            ProductSource.Role.IN_FIELD: 0,
        }
        if (
            old is None
            or rank[role] > rank[old[1]]
            or (rank[role] == rank[old[1]] and (significance or 0) > (old[2] or 0))
        ):
            links[source.pk] = (source, role, significance)

    if parsed.kind in ("spectrum", "lightcurve"):
        name = options.source_name or parsed.source_name
        linked = linking.resolve_source(name, parsed.ra_deg, parsed.dec_deg, instrument)
        add(linked.source, ProductSource.Role.TARGET, None)
        parsed.facts["source_linked_by"] = linked.how
    elif parsed.kind == "catalog":
        for row in parsed.detected:
            linked = linking.resolve_source(
                row.name, row.ra_deg, row.dec_deg, instrument, is_new=row.is_new
            )
            detected = row.is_new or (row.significance or 0) >= threshold
            role = ProductSource.Role.DETECTED if detected else ProductSource.Role.IN_FIELD
            add(linked.source, role, row.significance)
            rows.append(_row(row, linked.source))
            row_sources.append(linked.source)
    elif parsed.kind == "image":
        radius = linking.match_radius_deg(instrument)
        # One query for every known source on the map (and just beyond its edge, where a peak
        # at the edge may have its counterpart); peaks are matched among them.
        field_sources = list(
            cone_filter(
                Source.objects.active(),
                parsed.ra_deg,
                parsed.dec_deg,
                footprint_radius_deg(parsed.image) + radius,
            )
        )
        for peak in parsed.detected:
            source = linking.nearest_within(field_sources, peak.ra_deg, peak.dec_deg, radius)
            if source is None:
                unidentified.append(_row(peak, None))
                continue
            add(source, ProductSource.Role.DETECTED, peak.significance)
            rows.append(_row(peak, source))
        for source in field_sources:
            if source.pk in links:
                continue
            measured = measure_at(parsed.image, source.ra_deg, source.dec_deg, radius)
            if measured is None:
                continue
            add(source, ProductSource.Role.IN_FIELD, measured["significance"])
        if options.source_name:
            linked = linking.resolve_source(options.source_name, None, None, instrument)
            add(linked.source, ProductSource.Role.TARGET, None)
    return list(links.values()), rows, unidentified, row_sources


def _row(row: DetectedSource, source) -> dict:
    out = {
        "name": source.name if source else row.name,
        "ra_deg": round(row.ra_deg, 5),
        "dec_deg": round(row.dec_deg, 5),
        "significance": _round(row.significance),
        "flux": _round(row.flux),
        "flux_error": _round(row.flux_error),
        "is_new": row.is_new,
    }
    if source is not None:
        out["source"] = source.slug
    return out


def _round(value, digits=4):
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def _series_key(product: Product, options: IngestOptions, target_ids: list[int]) -> str:
    if options.external_id:
        basis = f"external:{options.external_id}"
    else:
        start = product.time_start.strftime("%Y-%m-%dT%H") if product.time_start else ""
        basis = "|".join(
            str(x)
            for x in (
                product.kind.code,
                product.instrument.code,
                _round(product.e_min_kev, 1),
                _round(product.e_max_kev, 1),
                product.rev_first,
                product.rev_last,
                product.observation_id,
                sorted(target_ids),
                start,
                _round(product.ra_deg, 2),
                _round(product.dec_deg, 2),
            )
        )
    return hashlib.sha256(basis.encode()).hexdigest()


def _title(parsed: ParsedProduct, instrument: Instrument, links, revs) -> str:
    targets = [s.name for s, role, _ in links if role == ProductSource.Role.TARGET]
    detected = sorted(
        ((sig or 0, s.name) for s, role, sig in links if role != ProductSource.Role.TARGET),
        reverse=True,
    )
    band = f" {parsed.e_min_kev:g}–{parsed.e_max_kev:g} keV" if parsed.e_min_kev is not None else ""
    rev = ""
    if revs:
        rev = (
            f", Rev. {revs[0].number}"
            if len(revs) == 1
            else f", Rev. {revs[0].number}–{revs[-1].number}"
        )
    if parsed.kind == "image":
        field_name = (
            f"{detected[0][1]} field"
            if detected
            else f"RA {parsed.ra_deg:.1f} Dec {parsed.dec_deg:+.1f}"
        )
        return f"{field_name}, {instrument.name}{band} image{rev}"
    if parsed.kind == "catalog":
        field_name = f", {detected[0][1]} field" if detected else ""
        return f"{instrument.name} source catalogue ({len(parsed.detected)} sources){field_name}"
    what = "spectrum" if parsed.kind == "spectrum" else "light curve"
    return f"{', '.join(targets)} {instrument.name}{band} {what}{rev}"


def _store_file(
    product: Product, path: Path, role: str, original_name: str, sha: str | None, written: list[str]
) -> None:
    content = sniff(Path(path))
    extension = EXTENSIONS.get(content, ".bin")
    sha = sha or sha256_of_file(path)
    name, created = store(sha, extension, path=Path(path))
    if created:
        written.append(name)
    ProductFile.objects.get_or_create(
        product=product,
        role=role,
        sha256=sha,
        defaults=dict(
            file=name,
            size_bytes=Path(path).stat().st_size,
            original_name=_safe_name(original_name),
            extension=extension,
            content_type=CONTENT_TYPES.get(content, "application/octet-stream"),
        ),
    )


def _store_bytes(
    product: Product, content: bytes, role: str, original_name: str, written: list[str]
) -> None:
    sha = hashlib.sha256(content).hexdigest()
    name, created = store(sha, ".png", content=content)
    if created:
        written.append(name)
    ProductFile.objects.get_or_create(
        product=product,
        role=role,
        sha256=sha,
        defaults=dict(
            file=name,
            size_bytes=len(content),
            original_name=original_name,
            extension=".png",
            content_type="image/png",
        ),
    )


def _safe_name(name: str) -> str:
    """The original file name, kept for downloads only: no directories, no control chars."""
    base = Path(str(name).replace("\\", "/")).name
    base = "".join(c for c in base if c.isprintable() and c not in '"<>|')
    return base[:255]


def _preview(parsed: ParsedProduct, fit_results, title: str, links) -> bytes | None:
    if parsed.kind == "image":
        marked = [
            DetectedSource(name=s.name, ra_deg=s.ra_deg, dec_deg=s.dec_deg, significance=sig)
            for s, role, sig in links
            if s.ra_deg is not None and (role == ProductSource.Role.DETECTED or (sig or 0) >= 4.0)
        ]
        return previews.render_image_preview(parsed.image, marked, title)
    if parsed.kind == "spectrum":
        return previews.render_spectrum_preview(parsed.spectrum, fit_results, title)
    if parsed.kind == "lightcurve":
        return previews.render_lightcurve_preview(parsed.lightcurve, title)
    return None


def _fit_details(parsed: ParsedProduct, result: fitting.FitResult) -> dict:
    """What the page needs to plot the spectrum with this model (JSON-safe)."""
    spec = parsed.spectrum

    def clean(values):
        return [None if not np.isfinite(v) else round(float(v), 8) for v in values]

    width = spec.e_max - spec.e_min
    return {
        "e_min": clean(spec.e_min),
        "e_max": clean(spec.e_max),
        "rate_per_kev": clean(spec.rate / width),
        "error_per_kev": clean(np.sqrt(spec.stat_err**2 + (spec.sys_err * spec.rate) ** 2) / width),
        "model_per_kev": clean(result.model_rate / width) if result.model_rate is not None else [],
        "residuals": clean(result.residuals) if result.residuals is not None else [],
        "used": [bool(u) for u in result.used] if result.used is not None else [],
    }


def _flux_points(
    parsed: ParsedProduct, product: Product, links, row_sources, threshold: float
) -> list[FluxPoint]:
    common = dict(
        instrument=product.instrument,
        product=product,
        observation=product.observation,
        e_min_kev=parsed.e_min_kev,
        e_max_kev=parsed.e_max_kev,
        revolution=product.rev_first if product.rev_first == product.rev_last else None,
    )
    scw = parsed.scw_ids[0] if len(parsed.scw_ids) == 1 else ""
    points = []
    if parsed.kind == "lightcurve":
        target = next(s for s, role, _ in links if role == ProductSource.Role.TARGET)
        lc = parsed.lightcurve
        fracexp = lc.fracexp if lc.fracexp is not None else np.ones_like(lc.rate)
        for t, half, rate, err, frac in zip(
            lc.time_ijd, lc.half_width_d, lc.rate, lc.error, fracexp, strict=True
        ):
            if not (np.isfinite(t) and np.isfinite(rate) and np.isfinite(err)):
                continue
            points.append(
                FluxPoint(
                    source=target,
                    t_start_ijd=float(t - half),
                    t_stop_ijd=float(t + half),
                    flux=float(rate),
                    flux_error=float(err),
                    significance=float(rate / err) if err > 0 else None,
                    exposure_s=float(2 * half * 86400 * (frac if np.isfinite(frac) else 1)),
                    scw_id=scw,
                    **common,
                )
            )
    elif parsed.kind == "image" and parsed.t_start_ijd is not None:
        radius = linking.match_radius_deg(product.instrument)
        for source, role, _ in links:
            if role == ProductSource.Role.TARGET or source.ra_deg is None:
                continue
            measured = measure_at(parsed.image, source.ra_deg, source.dec_deg, radius)
            if measured is None or measured["flux"] is None:
                continue
            points.append(
                FluxPoint(
                    source=source,
                    t_start_ijd=parsed.t_start_ijd,
                    t_stop_ijd=parsed.t_stop_ijd,
                    flux=measured["flux"],
                    flux_error=measured["flux_error"],
                    significance=measured["significance"],
                    exposure_s=parsed.exposure_s,
                    is_upper_limit=measured["significance"] < threshold,
                    scw_id=scw,
                    **common,
                )
            )
    elif parsed.kind == "catalog" and parsed.t_start_ijd is not None:
        for row, source in zip(parsed.detected, row_sources, strict=True):
            if row.flux is None:
                continue
            points.append(
                FluxPoint(
                    source=source,
                    t_start_ijd=parsed.t_start_ijd,
                    t_stop_ijd=parsed.t_stop_ijd,
                    flux=row.flux,
                    flux_error=row.flux_error,
                    significance=row.significance,
                    scw_id=scw,
                    **common,
                )
            )
    return points
