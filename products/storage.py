"""Content-addressed file storage through Django's storage API (so S3/MinIO can replace the
local disk): a file is stored once under its SHA-256, whatever its name and however many
products use it."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage

CHUNK = 1024 * 1024


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def storage_name(sha256: str, extension: str) -> str:
    return f"products/{sha256[:2]}/{sha256[2:4]}/{sha256}{extension}"


def store(
    sha256: str, extension: str, *, path: Path | None = None, content: bytes | None = None
) -> tuple[str, bool]:
    """Store the file once; returns (storage name, whether it was written now)."""
    name = storage_name(sha256, extension)
    if default_storage.exists(name):
        return name, False
    if path is not None:
        with open(path, "rb") as handle:
            saved = default_storage.save(name, File(handle))
    else:
        saved = default_storage.save(name, ContentFile(content or b""))
    if saved != name:
        # Another process stored the same content meanwhile: keep one copy.
        default_storage.delete(saved)
        return name, False
    return name, True


def remove(names: list[str]) -> None:
    """Delete stored files (used to undo the writes of a failed ingest)."""
    for name in names:
        with contextlib.suppress(OSError):
            default_storage.delete(name)


def verify(name: str, sha256: str) -> bool:
    digest = hashlib.sha256()
    try:
        with default_storage.open(name, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    except (FileNotFoundError, OSError):
        return False
    return digest.hexdigest() == sha256
