"""Backups of the Gallery (database and stored files, with checksums) and their restore.

A backup is a folder::

    manifest.json            what the backup holds, with the SHA-256 of every file in it
    database.dump            PostgreSQL: ``pg_dump --format=custom``
    database.sqlite3         SQLite: a copy made with SQLite's online backup API
    files/products/ab/cd/…   the stored files, under their storage names

It is consistent: on PostgreSQL the list of files to copy is read in the very snapshot that
``pg_dump`` dumps (an exported snapshot); on SQLite it is read from the copy itself. Stored
files are content-addressed and never change, so copying them after the dump is safe. Files
under ``products/`` with no file record (orphans) are copied too, and marked as such.

A backup is written into ``DIR.partial-<random>`` beside ``DIR`` and renamed at the end, so a
folder named ``DIR`` is always a finished backup; it is readable by its owner only, as it
holds the whole database, proprietary products included. A restore checks every checksum before it
touches anything, wants an empty database and storage (or ``force``, which wipes them), loads
the database, copies the files, and ends with the checks of ``products.integrity``.

Only the storage API is used for the stored files (S3/MinIO work the same); the database dump
needs the PostgreSQL client tools (``pg_dump``/``pg_restore``) on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path, PurePosixPath

import django
from django.apps import apps
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.postgresql.client import DatabaseClient
from django.db.migrations.executor import MigrationExecutor

from .integrity import (
    PRODUCTS_PREFIX,
    Progress,
    StorageReport,
    check_storage,
    format_bytes,
    iter_stored_names,
)
from .models import Product, ProductFile
from .storage import CHUNK

MANIFEST = "manifest.json"
FORMAT = "integral-gallery-backup"
FORMAT_VERSION = 1
FILES_DIR = "files"
DUMP_FILES = {"postgresql": "database.dump", "sqlite": "database.sqlite3"}

#: Lookup tables that ``migrate`` seeds: rows there do not make a database "hold data".
SEEDED_MODELS = {
    "contenttypes.contenttype",
    "auth.permission",
    "auth.group",
    "sessions.session",
    "products.instrument",
    "products.productkind",
    "sources.sourceclass",
}


class BackupError(Exception):
    """A backup or restore that cannot go on. The message is one line for the operator;
    ``details`` lists the files concerned, one line each."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


@dataclass
class BackupResult:
    path: Path
    manifest: dict
    problems: list[str] = field(default_factory=list)  # recorded files it could not copy

    def summary(self) -> str:
        m = self.manifest
        db = m["database"]
        files = m["files"]
        orphans = sum(1 for f in files if not f["referenced"])
        size = format_bytes(sum(f["size_bytes"] for f in files))
        text = (
            f"backup written to {self.path}: {db['engine']} database "
            f"({m['counts']['products']} products, {format_bytes(db['size_bytes'])}), "
            f"{len(files)} stored files ({size}, {orphans} orphaned)"
        )
        if self.problems:
            text += f"; {len(self.problems)} files NOT backed up (listed in {MANIFEST})"
        return text


@dataclass
class RestoreResult:
    source: Path
    manifest: dict
    storage: StorageReport
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        m = self.manifest
        files = m["files"]
        size = format_bytes(sum(f["size_bytes"] for f in files))
        return (
            f"restored {self.source} (made {m['created']}): {m['database']['engine']} database "
            f"({m['counts']['products']} products), {len(files)} stored files ({size})"
        )


# --- backup --------------------------------------------------------------------------------


def create_backup(target: Path | str, progress: Progress | None = None) -> BackupResult:
    """Write a backup of the database and the stored files into the new folder ``target``."""
    target = Path(os.path.abspath(target))
    if target.exists():
        if not target.is_dir():
            raise BackupError(f"{target} exists and is not a folder")
        if any(target.iterdir()):
            raise BackupError(f"{target} is not empty: a backup goes into a new or empty folder")
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist")
    connection = connections[DEFAULT_DB_ALIAS]
    engine = _engine(connection)
    if connection.in_atomic_block:
        raise BackupError("a backup cannot run inside a database transaction")

    work = Path(tempfile.mkdtemp(prefix=f"{target.name}.partial-", dir=target.parent))
    try:
        dump = work / DUMP_FILES[engine]
        if progress:
            progress("database", 0, 1)
        if engine == "postgresql":
            snapshot = _dump_postgresql(connection, dump)
        else:
            snapshot = _dump_sqlite(connection, dump)
        if progress:
            progress("database", 1, 1)
        files, problems = _copy_stored_files(snapshot.files, work / FILES_DIR, progress)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "gallery_version": _gallery_version(),
            "django_version": django.get_version(),
            "database": {
                "engine": engine,
                "file": dump.name,
                "size_bytes": dump.stat().st_size,
                "sha256": _sha256_of(dump),
            },
            "migrations": snapshot.migrations,
            "counts": snapshot.counts,
            "files": files,
            "problems": problems,
        }
        _write_durably(work / MANIFEST, _manifest_text(manifest).encode())
        _fsync_dir(work)
        if target.exists():
            target.rmdir()  # empty, as checked above
        os.rename(work, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return BackupResult(target, manifest, [f"{p['problem']:8} {p['name']}" for p in problems])


@dataclass
class _Snapshot:
    """What the dumped database says: its stored files, row counts and applied migrations."""

    files: dict[str, tuple[str, int]]  # storage name -> (sha256, size in bytes)
    counts: dict[str, int]
    migrations: list[str]


def _manifest_text(manifest: dict) -> str:
    """JSON with one line per key and one line per file: readable, and a manifest of
    millions of files stays a file one can grep."""
    parts = []
    for key, value in manifest.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            items = ",\n".join(f"  {json.dumps(item)}" for item in value)
            parts.append(f" {json.dumps(key)}: [\n{items}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _engine(connection) -> str:
    if connection.vendor not in DUMP_FILES:
        raise BackupError(f"backups support PostgreSQL and SQLite, not {connection.vendor}")
    return connection.vendor


def _dump_postgresql(connection, dump: Path) -> _Snapshot:
    pg_dump = _client_tool("pg_dump")
    connection.ensure_connection()
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        # One snapshot for pg_dump and for the list of files: the backup holds exactly the
        # files its database refers to, whatever ingests run meanwhile.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        (snapshot_id,) = cursor.fetchone()
        _run(
            [
                pg_dump,
                "--format=custom",
                "--no-password",
                f"--snapshot={snapshot_id}",
                f"--file={dump}",
                f"--dbname={connection.settings_dict['NAME']}",
            ],
            _pg_environment(connection.settings_dict),
            "pg_dump",
        )
        return _read_snapshot(cursor)


def _dump_sqlite(connection, dump: Path) -> _Snapshot:
    connection.ensure_connection()
    copy = sqlite3.connect(dump)
    try:
        # The online backup API copies a consistent state while others keep writing.
        connection.connection.backup(copy)
        # One self-contained file (no -wal beside it), whatever the live database uses.
        copy.execute("PRAGMA journal_mode=DELETE")
        return _read_snapshot(copy.cursor())
    finally:
        copy.close()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _read_snapshot(cursor) -> _Snapshot:
    """Read through a DB-API cursor on the dumped state (same SQL on both engines)."""
    meta = ProductFile._meta
    columns = ", ".join(_quote(meta.get_field(f).column) for f in ("file", "sha256", "size_bytes"))
    cursor.execute(f"SELECT {columns} FROM {_quote(meta.db_table)}")  # noqa: S608
    files: dict[str, tuple[str, int]] = {}
    while rows := cursor.fetchmany(5000):
        for name, sha, size in rows:
            files.setdefault(name, (sha, size))
    counts = {}
    for key, model in (("products", Product), ("product_files", ProductFile)):
        cursor.execute(f"SELECT COUNT(*) FROM {_quote(model._meta.db_table)}")  # noqa: S608
        counts[key] = cursor.fetchone()[0]
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
    migrations = [f"{app}.{name}" for app, name in cursor.fetchall()]
    return _Snapshot(files, counts, migrations)


def _copy_stored_files(
    recorded: dict[str, tuple[str, int]], out: Path, progress: Progress | None
) -> tuple[list[dict], list[dict]]:
    """Copy the recorded files (checking their SHA-256) and the orphans into ``out``."""
    orphans = [name for name in iter_stored_names() if name not in recorded]
    total = len(recorded) + len(orphans)
    entries: list[dict] = []
    problems: list[dict] = []
    done = 0
    for name, (sha, _size) in sorted(recorded.items()):
        done += 1
        problem = _copy_recorded(name, sha, out, entries)
        if problem:
            problems.append({"name": name, "problem": problem})
        if progress:
            progress("files", done, total)
    for name in orphans:
        done += 1
        if not _is_safe_name(name):
            problems.append({"name": name, "problem": "bad name"})
        else:
            try:
                digest, size = _copy_out(name, out)
            except FileNotFoundError:
                pass  # removed since the listing: nothing to keep
            else:
                entries.append(
                    {"name": name, "size_bytes": size, "sha256": digest, "referenced": False}
                )
        if progress:
            progress("files", done, total)
    return entries, problems


def _copy_recorded(name: str, sha: str, out: Path, entries: list[dict]) -> str | None:
    """Copy one recorded file; returns the problem (missing, corrupt, bad name) or None.

    A missing or corrupt file is left out rather than failing the backup: the database and
    every other file are worth keeping, and the manifest says what is not there."""
    if not _is_safe_name(name):
        return "bad name"
    try:
        digest, size = _copy_out(name, out)
    except FileNotFoundError:
        return "missing"
    if digest != sha:
        (out / name).unlink()
        return "corrupt"
    entries.append({"name": name, "size_bytes": size, "sha256": sha, "referenced": True})
    return None


def _copy_out(name: str, out: Path) -> tuple[str, int]:
    """Copy a stored file to ``out/name`` through the storage API; its SHA-256 and size."""
    destination = out / name
    destination.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    try:
        with default_storage.open(name, "rb") as source, open(destination, "wb") as copy:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                copy.write(chunk)
                size += len(chunk)
            copy.flush()
            os.fsync(copy.fileno())
    except FileNotFoundError:
        destination.unlink(missing_ok=True)
        raise
    except OSError as exc:
        raise BackupError(f"cannot copy {name} from the storage: {_os_error(exc)}") from None
    return digest.hexdigest(), size


# --- restore -------------------------------------------------------------------------------


def read_manifest(source: Path | str) -> dict:
    """The manifest of the backup in ``source``, checked for the fields a restore needs."""
    source = Path(source)
    path = source / MANIFEST
    if not source.is_dir():
        raise BackupError(f"{source} is not a folder")
    if not path.is_file():
        raise BackupError(f"{source} is not a Gallery backup: it has no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise BackupError(f"{path} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not the manifest of a Gallery backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{path} is of format version {manifest.get('format_version')}; this version of "
            f"the Gallery restores version {FORMAT_VERSION}"
        )
    try:
        db = manifest["database"]
        if db["engine"] not in DUMP_FILES or db["file"] != DUMP_FILES[db["engine"]]:
            raise ValueError("database")
        for entry in manifest["files"]:
            if not _is_safe_name(entry["name"]) or not isinstance(entry["size_bytes"], int):
                raise ValueError(entry.get("name"))
            if not isinstance(entry["sha256"], str):
                raise ValueError(entry["name"])
        if not isinstance(manifest["counts"]["products"], int):
            raise ValueError("counts")
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(f"{path} is damaged or incomplete (at {exc})") from None
    return manifest


def verify_backup(
    source: Path | str, manifest: dict, progress: Progress | None = None
) -> list[str]:
    """Check every file of the backup against its size and SHA-256 in the manifest; one line
    per file that does not match (an empty list: the backup is intact)."""
    source = Path(source)
    db = manifest["database"]
    expected = [(db["file"], db["size_bytes"], db["sha256"])] + [
        (f"{FILES_DIR}/{f['name']}", f["size_bytes"], f["sha256"]) for f in manifest["files"]
    ]
    problems = []
    for done, (relative, size, sha) in enumerate(expected, start=1):
        path = source / relative
        if not path.is_file():
            problems.append(f"{relative}: missing from the backup")
        elif path.stat().st_size != size:
            problems.append(f"{relative}: {path.stat().st_size} bytes, the manifest says {size}")
        elif _sha256_of(path) != sha:
            problems.append(f"{relative}: does not match its SHA-256 in {MANIFEST}")
        if progress:
            progress("verify backup", done, len(expected))
    return problems


def database_holdings() -> list[str]:
    """What the configured database holds beyond what ``migrate`` seeds, e.g. ``["12
    products", "1 user"]``; empty for an empty (or only migrated) database."""
    connection = connections[DEFAULT_DB_ALIAS]
    tables = set(connection.introspection.table_names())
    held = []
    for model in apps.get_models():
        meta = model._meta
        if meta.proxy or meta.label_lower in SEEDED_MODELS or meta.db_table not in tables:
            continue
        count = model._base_manager.using(connection.alias).count()
        if count:
            name = model._meta.verbose_name if count == 1 else model._meta.verbose_name_plural
            held.append(f"{count} {name}")
    return held


def restore_backup(
    source: Path | str, *, force: bool = False, progress: Progress | None = None
) -> RestoreResult:
    """Restore the backup in ``source`` into the configured database and storage.

    Both must be empty (a database only ``migrate`` has written counts as empty), unless
    ``force``: then every table of the database and every file under ``products/`` in the
    storage is deleted first. Nothing is touched before every checksum has been verified.
    """
    source = Path(os.path.abspath(source))
    manifest = read_manifest(source)
    connection = connections[DEFAULT_DB_ALIAS]
    engine = _engine(connection)
    if manifest["database"]["engine"] != engine:
        raise BackupError(
            f"this backup holds a {manifest['database']['engine']} database and the configured "
            f"database is {engine}: restore into the same engine"
        )
    if connection.in_atomic_block:
        raise BackupError("a restore cannot run inside a database transaction")
    if engine == "postgresql":
        pg_restore = _client_tool("pg_restore")  # before anything is wiped
    elif _is_memory_database(connection.settings_dict["NAME"]):
        raise BackupError("cannot restore into an in-memory SQLite database")

    problems = verify_backup(source, manifest, progress)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BackupError(f"corrupt backup, nothing restored: {problems[0]}{more}", problems)

    held = database_holdings()
    stored = next(iter_stored_names(), None)
    if (held or stored) and not force:
        what = []
        if held:
            what.append("the database holds " + ", ".join(held[:4]))
        if stored:
            what.append(f"the storage holds files under {PRODUCTS_PREFIX}/")
        raise BackupError(
            f"refusing to restore over existing data ({'; '.join(what)}): restore into an "
            f"empty database and media folder, or pass --force to wipe them"
        )

    dump = source / manifest["database"]["file"]
    if engine == "postgresql":
        _restore_postgresql(connection, dump, pg_restore)
    else:
        _restore_sqlite(connection, dump)
    connections.close_all()  # the next query sees the restored database afresh

    _wipe_stored_files()
    _restore_files(source, manifest, progress)
    report = check_storage(progress)
    notes = _migration_notes(connection)
    if manifest.get("problems"):
        notes.append(
            f"the backup lacks {len(manifest['problems'])} recorded files, missing or corrupt "
            f"in the storage when it was made (listed in its {MANIFEST})"
        )
    return RestoreResult(source, manifest, report, notes)


def _restore_postgresql(connection, dump: Path, pg_restore: str) -> None:
    _drop_all_tables(connection)
    _run(
        [
            pg_restore,
            "--clean",
            "--if-exists",
            # Restored objects belong to the configured user, whoever owned them before.
            "--no-owner",
            "--no-acl",
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
            f"--dbname={connection.settings_dict['NAME']}",
            str(dump),
        ],
        _pg_environment(connection.settings_dict),
        "pg_restore",
    )


def _drop_all_tables(connection) -> None:
    """Empty the database, so that no table of another version survives beside the dump's
    (restoring only proceeds over an empty database or with --force)."""
    with connection.cursor() as cursor:
        relations = connection.introspection.get_table_list(cursor)
    tables = [_quote(r.name) for r in relations if r.type in ("t", "p")]
    views = [_quote(r.name) for r in relations if r.type == "v"]
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if views:
            cursor.execute(f"DROP VIEW IF EXISTS {', '.join(views)} CASCADE")
        if tables:
            cursor.execute(f"DROP TABLE IF EXISTS {', '.join(tables)} CASCADE")


def _restore_sqlite(connection, dump: Path) -> None:
    """Copy the database file into place with the online backup API: the copy is one
    transaction, and a -wal file of the old database cannot be replayed over it."""
    target = Path(connection.settings_dict["NAME"])
    target.parent.mkdir(parents=True, exist_ok=True)
    connection.close()
    backup = sqlite3.connect(f"{dump.as_uri()}?mode=ro", uri=True)
    live = sqlite3.connect(target, timeout=30)
    try:
        backup.backup(live)
    except sqlite3.Error as exc:
        raise BackupError(f"restoring the database into {target} failed: {exc}") from None
    finally:
        live.close()
        backup.close()


def _wipe_stored_files() -> None:
    for name in list(iter_stored_names()):
        default_storage.delete(name)


def _restore_files(source: Path, manifest: dict, progress: Progress | None) -> None:
    files = manifest["files"]
    for done, entry in enumerate(files, start=1):
        name = entry["name"]
        try:
            with open(source / FILES_DIR / name, "rb") as handle:
                saved = default_storage.save(name, File(handle, name=name))
        except OSError as exc:
            raise BackupError(
                f"restoring {name} into the storage failed: {_os_error(exc)} (the database is "
                f"restored; fix the cause and run the restore again with --force)"
            ) from None
        if saved != name:
            default_storage.delete(saved)
            raise BackupError(f"{name} appeared in the storage during the restore")
        if progress:
            progress("restore files", done, len(files))


def _migration_notes(connection) -> list[str]:
    """Say when the restored database and this version of the code disagree on migrations."""
    executor = MigrationExecutor(connections[connection.alias])
    graph = executor.loader.graph
    notes = []
    pending = executor.migration_plan(graph.leaf_nodes())
    if pending:
        notes.append(
            f"{len(pending)} migrations of this version are not applied to the restored "
            f"database: run manage.py migrate"
        )
    unknown = sorted(
        f"{a}.{n}" for a, n in executor.loader.applied_migrations if (a, n) not in graph.nodes
    )
    if unknown:
        notes.append(
            f"the backup comes from a newer version (migrations unknown here: "
            f"{', '.join(unknown[:5])}{', …' if len(unknown) > 5 else ''})"
        )
    return notes


# --- helpers -------------------------------------------------------------------------------


def _client_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} not found: install the PostgreSQL client tools (postgresql-client)"
        )
    return path


def _pg_environment(settings_dict: dict) -> dict[str, str]:
    """libpq's variables for the configured database: no password on a command line, and no
    prompt (``--no-password``) that would hang an unattended run."""
    _, extra = DatabaseClient.settings_to_cmd_args_env(settings_dict, [])
    env = {**os.environ, **(extra or {})}
    for variable, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER")):
        if settings_dict.get(key):
            env[variable] = str(settings_dict[key])
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    try:
        result = subprocess.run(  # noqa: S603 (fixed tool, arguments from settings)
            args, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise BackupError(f"{what} could not start: {_os_error(exc)}") from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()] or lines or ["no message"]
        raise BackupError(f"{what} failed (exit {result.returncode}): {errors[0]}")


def _is_safe_name(name: object) -> bool:
    """A storage name a backup may hold: relative, under products/, no '..' (a damaged or
    hostile manifest must not write outside the storage or read outside the backup)."""
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        return False
    path = PurePosixPath(name)
    return (
        not path.is_absolute()
        and path.parts[0] == PRODUCTS_PREFIX
        and len(path.parts) > 1
        and all(part not in ("", ".", "..") for part in path.parts)
    )


def _is_memory_database(name) -> bool:
    return not name or str(name) == ":memory:" or "mode=memory" in str(name)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_durably(path: Path, content: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename or new entries in ``path`` survive a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _gallery_version() -> str:
    try:
        return metadata.version("integral-gallery")
    except metadata.PackageNotFoundError:
        return "unknown"
