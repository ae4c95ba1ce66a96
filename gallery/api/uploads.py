"""Uploads through the API: size limit, content sniffing, staging, and the ingest job.

An upload is checked before anything is kept: its declared size, each file's size, and each
file's content (sniffed from its bytes, never from its name). The files are written into a
folder of the staging area named by a random id, as ``00``, ``01``…: the client's file names
are kept in the job for display and response matching only, never used as paths. The folder
is built under a ``.partial`` name and renamed once complete, so a failure leaves nothing.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.db import transaction
from rest_framework.exceptions import ValidationError

# ``ingest.readers`` first: importing ``ingest.fitsio`` before it is a circular import.
from ingest import readers
from ingest.fitsio import load_json, sniff
from ingest.linking import find_observation
from ingest.models import IngestJob
from ingest.readers.catalog import is_api_catalog
from ingest.service import IngestOptions
from ingest.tasks import enqueue_ingest

from .exceptions import PayloadTooLarge, UnsupportedContent

#: Attachment content and the role the product file gets.
ATTACHMENT_ROLES = {"png": "preview", "html": "other", "yaml": "other"}


def limit_text() -> str:
    size = settings.GALLERY_UPLOAD_MAX_BYTES
    return f"{size / 1024 / 1024:g} MiB" if size >= 1024 * 1024 else f"{size} bytes"


def check_declared_size(meta: dict) -> None:
    """Refuse a request whose Content-Length exceeds the limit before reading its body."""
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > settings.GALLERY_UPLOAD_MAX_BYTES:
        raise PayloadTooLarge(
            f"The upload ({declared} bytes) is larger than the limit of {limit_text()}."
        )


class SizeLimitHandler(FileUploadHandler):
    """Stops reading an upload as soon as it passes the limit, whatever Content-Length said
    (a chunked request has none), so an oversized body is never spooled to disk whole."""

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > settings.GALLERY_UPLOAD_MAX_BYTES:
            raise PayloadTooLarge(f"The upload is larger than the limit of {limit_text()}.")
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def watch_upload_size(request) -> None:
    """Install SizeLimitHandler on a Django request whose body has not been read yet."""
    request.upload_handlers.insert(0, SizeLimitHandler(request))


def safe_display_name(name: str | None) -> str:
    """The client's file name for display: no folders, no control characters, 255 at most."""
    base = Path(str(name or "").replace("\\", "/")).name
    return "".join(c for c in base if c.isprintable() and c not in '"<>|')[:255]


@dataclass
class StagedFile:
    path: Path
    role: str
    original_name: str

    def as_json(self) -> dict:
        return {"path": str(self.path), "role": self.role, "original_name": self.original_name}


def _describe(field: str, index: int, upload: UploadedFile) -> str:
    return f"file {index + 1} ({safe_display_name(upload.name)!r})"


def _check_sizes(files: list[UploadedFile], attachments: list[UploadedFile]) -> None:
    limit = settings.GALLERY_UPLOAD_MAX_BYTES
    total = 0
    for field, uploads in (("files", files), ("attachments", attachments)):
        for index, upload in enumerate(uploads):
            total += upload.size or 0
            if (upload.size or 0) > limit:
                raise PayloadTooLarge(
                    {field: [f"{_describe(field, index, upload)} is larger than {limit_text()}"]}
                )
    if total > limit:
        raise PayloadTooLarge({"files": [f"the files together exceed {limit_text()}"]})


def _write(upload: UploadedFile, target: Path) -> None:
    with open(target, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)


def _check_data_file(path: Path, label: str) -> None:
    """Refuse a data file that cannot be a product: 415 for another type, 400 for bad content."""
    content = sniff(path)
    if content in ("fits", "fits.gz"):
        return
    if content == "empty":
        raise ValidationError({"files": [f"{label} is empty"]})
    if content == "json":
        try:
            ok = is_api_catalog(load_json(path))
        except readers.IngestError as exc:
            raise ValidationError({"files": [f"{label}: {exc}"]}) from None
        if ok:
            return
        raise ValidationError({"files": [f"{label} is JSON but not an MMODA API source catalogue"]})
    if content in ATTACHMENT_ROLES:
        raise UnsupportedContent(
            {"files": [f"{label} is {content.upper()}: send it in 'attachments', not 'files'"]}
        )
    raise UnsupportedContent(
        {"files": [f"{label} is not FITS, gzip-compressed FITS or an MMODA JSON catalogue"]}
    )


def _check_attachment(path: Path, label: str) -> str:
    content = sniff(path)
    if content == "empty":
        raise ValidationError({"attachments": [f"{label} is empty"]})
    role = ATTACHMENT_ROLES.get(content)
    if role is None:
        raise UnsupportedContent(
            {"attachments": [f"{label}: attachments may be PNG, HTML or YAML only"]}
        )
    return role


def stage(files: list[UploadedFile], attachments: list[UploadedFile]) -> list[StagedFile]:
    """Check and write the uploads into a new staging folder; nothing stays on failure."""
    _check_sizes(files, attachments)
    root = Path(settings.GALLERY_STAGING_DIR)
    name = uuid.uuid4().hex
    partial = root / f"{name}.partial"
    partial.mkdir(parents=True)
    staged: list[StagedFile] = []
    try:
        index = 0
        for field, uploads in (("files", files), ("attachments", attachments)):
            for position, upload in enumerate(uploads):
                target = partial / f"{index:02d}"
                index += 1
                _write(upload, target)
                label = _describe(field, position, upload)
                if field == "files":
                    _check_data_file(target, label)
                    role = "data"
                else:
                    role = _check_attachment(target, label)
                staged.append(StagedFile(target, role, safe_display_name(upload.name)))
        final = root / name
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return [StagedFile(final / s.path.name, s.role, s.original_name) for s in staged]


def options_from(data: dict, user) -> IngestOptions:
    """IngestOptions from the validated upload fields (checked now, so errors are 400s)."""
    options = IngestOptions(
        source_name=data.get("source"),
        observation=data.get("observation"),
        title=data.get("title"),
        access=data.get("access", "public"),
        embargo_until=data.get("embargo_until"),
        granted_groups=data.get("granted_groups", []),
        tags=data.get("tags", []),
        provenance=data.get("provenance") or {},
        produced_by=data.get("produced_by") or f"upload by {user.get_username()}",
        external_id=data.get("external_id", ""),
        data_level=data.get("data_level", ""),
        status=data.get("status", "published"),
    )
    try:
        options.validate()
    except readers.IngestError as exc:
        raise ValidationError({"detail": str(exc)}) from None
    if options.observation and find_observation(options.observation) is None:
        raise ValidationError({"observation": [f"unknown observation {options.observation!r}"]})
    return options


def submit(data: dict, user) -> IngestJob:
    """Validate, stage and enqueue an upload; the job goes to a worker once committed."""
    options = options_from(data, user)
    staged = stage(data["files"], data.get("attachments", []))
    try:
        with transaction.atomic():
            job = IngestJob.objects.create(
                staged_files=[s.as_json() for s in staged],
                options=options.to_json(),
                submitted_by=user,
            )
            enqueue_ingest(job)
    except BaseException:
        shutil.rmtree(staged[0].path.parent, ignore_errors=True)
        raise
    return job
