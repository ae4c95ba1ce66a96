"""Integrity of the stored files: every ProductFile row against the bytes in the storage.

A stored file is *missing* when its row names a file the storage does not hold, *corrupt* when
its bytes no longer hash to the SHA-256 recorded on the row, and *orphaned* when it lies under
``products/`` with no row naming it. Orphans are harmless to readers but cost space; they also
appear for a moment while an ingest is in flight (files are stored before its transaction
commits), which is why nothing here deletes them.

Everything goes through Django's storage API, so the same checks run on a local disk or on
S3/MinIO. ``check_storage`` is used by ``manage.py verify_storage`` and after a restore.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from django.core.files.storage import Storage, default_storage
from tqdm import tqdm

from .models import ProductFile
from .storage import verify

#: Folder of the storage that holds the products' files (see products.storage.storage_name).
PRODUCTS_PREFIX = "products"

#: ``progress(stage, done, total)``: called as work advances, for a progress bar.
Progress = Callable[[str, int, int], None]

MISSING = "missing"
CORRUPT = "corrupt"
ORPHAN = "orphan"


@dataclass(frozen=True)
class StorageProblem:
    """One file that is not as the database says: ``kind`` is missing, corrupt or orphan."""

    kind: str
    name: str
    detail: str = ""
    size_bytes: int | None = None

    def line(self) -> str:
        return f"{self.kind:8} {self.name}" + (f"  {self.detail}" if self.detail else "")


@dataclass
class StorageReport:
    """The outcome of ``check_storage``: what was checked and what is wrong."""

    rows: int = 0
    files_checked: int = 0
    bytes_checked: int = 0
    problems: list[StorageProblem] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[StorageProblem]:
        return [p for p in self.problems if p.kind == kind]

    @property
    def missing(self) -> list[StorageProblem]:
        return self.of_kind(MISSING)

    @property
    def corrupt(self) -> list[StorageProblem]:
        return self.of_kind(CORRUPT)

    @property
    def orphans(self) -> list[StorageProblem]:
        return self.of_kind(ORPHAN)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        checked = (
            f"{self.files_checked} stored files ({format_bytes(self.bytes_checked)}, "
            f"{self.rows} file records)"
        )
        if self.ok:
            return f"storage whole: {checked} match their SHA-256, no orphaned file"
        counts = ", ".join(
            f"{len(self.of_kind(kind))} {label}"
            for kind, label in ((MISSING, "missing"), (CORRUPT, "corrupt"), (ORPHAN, "orphaned"))
        )
        return f"storage NOT whole: {counts} among {checked}"


def format_bytes(n: int) -> str:
    """``1536`` → ``1.5 kB`` (decimal units, as disks and object stores count)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def iter_stored_names(
    prefix: str = PRODUCTS_PREFIX, storage: Storage | None = None
) -> Iterator[str]:
    """Every file name under ``prefix`` in the storage, depth first, in sorted order."""
    storage = storage or default_storage
    try:
        dirs, files = storage.listdir(prefix)
    except FileNotFoundError:
        return
    for name in sorted(files):
        yield f"{prefix}/{name}"
    for name in sorted(dirs):
        yield from iter_stored_names(f"{prefix}/{name}", storage)


@dataclass
class RecordedFile:
    """A stored file as the database records it (held per file: a mission-size archive has
    millions, so the products using it are looked up only when something is wrong)."""

    sha256: str
    size_bytes: int
    conflicting_sha256: int = 0  # rows naming the same file with another content


def recorded_files() -> tuple[dict[str, RecordedFile], int]:
    """The stored names the ProductFile rows refer to (a file shared by several products is
    stored once), and the number of rows."""
    recorded: dict[str, RecordedFile] = {}
    rows = 0
    query = ProductFile.objects.order_by().values_list("file", "sha256", "size_bytes")
    for name, sha, size in query.iterator(chunk_size=5000):
        rows += 1
        entry = recorded.setdefault(name, RecordedFile(sha, size))
        if sha != entry.sha256:
            entry.conflicting_sha256 += 1
    return recorded, rows


def _users(name: str) -> str:
    """``product <uuid> (data), …``: the products that lose this file."""
    users = list(
        ProductFile.objects.filter(file=name)
        .order_by("pk")
        .values_list("product__uuid", "role")[:4]
    )
    shown = ", ".join(f"{uuid} ({role})" for uuid, role in users[:3])
    more = " and more" if len(users) > 3 else ""
    return f"product {shown}{more}"


def check_storage(progress: Progress | None = None) -> StorageReport:
    """Check every stored file against its recorded SHA-256 and look for orphaned files."""
    recorded, rows = recorded_files()
    report = StorageReport(rows=rows)
    total = len(recorded)
    for done, (name, entry) in enumerate(sorted(recorded.items()), start=1):
        report.files_checked += 1
        report.bytes_checked += entry.size_bytes
        problem = _check_one(name, entry)
        if problem is not None:
            report.problems.append(problem)
        if progress:
            progress("verify", done, total)

    orphans = [n for n in iter_stored_names() if n not in recorded]
    for done, name in enumerate(orphans, start=1):
        try:
            size = default_storage.size(name)
        except OSError:
            size = None  # deleted meanwhile: still worth a line
        detail = f"no file record, {format_bytes(size)}" if size is not None else "no file record"
        report.problems.append(StorageProblem(ORPHAN, name, detail, size))
        if progress:
            progress("orphans", done, len(orphans))
    return report


def _check_one(name: str, entry: RecordedFile) -> StorageProblem | None:
    if not name:
        return StorageProblem(
            MISSING, "(no name)", f"a file record without a stored file, {_users(name)}"
        )
    if entry.conflicting_sha256:
        return StorageProblem(
            CORRUPT, name, f"file records disagree on its SHA-256, {_users(name)}"
        )
    if verify(name, entry.sha256):
        return None
    if not default_storage.exists(name):
        return StorageProblem(MISSING, name, _users(name))
    try:
        size = default_storage.size(name)
    except OSError:
        size = None
    sizes = f"{size} bytes, recorded {entry.size_bytes}" if size is not None else "unreadable"
    return StorageProblem(
        CORRUPT, name, f"SHA-256 differs from the record ({sizes}), {_users(name)}"
    )


class ConsoleProgress:
    """A ``Progress`` drawing one tqdm bar per stage, on a terminal only (not in logs, cron
    mail or tests)."""

    def __init__(self, enabled: bool = True, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self._bar: tqdm | None = None
        self._stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._bar is None or stage != self._stage:
            self.close()
            self._stage = stage
            self._bar = tqdm(total=total, desc=stage, unit="file", file=self.stream, leave=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
