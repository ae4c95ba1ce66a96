"""Backups and restores: the backup folder and its manifest, refusals, and the restore drill.

The backup runs in this process, on the test database (``transaction=True``: ``pg_dump`` is
another process and sees committed rows only). Restores run as ``python manage.py restore``
in a subprocess whose DATABASE_URL and MEDIA_ROOT name an empty target (a second PostgreSQL
database created and dropped here, or a SQLite file), as an operator would run them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection

from ingest.readers.base import InputFile
from ingest.service import ingest_files
from ingest.synthetic import SkySource, write_lightcurve, write_spectrum
from products import backup, timeline
from products.catalogue import INSTRUMENTS, PRODUCT_KINDS
from products.models import Product
from tests.conftest import PROJECT_DIR
from tests.factories import InstrumentFactory, ProductFileFactory, ProductKindFactory

# pg_dump is another process: it sees committed rows only.
backs_up = pytest.mark.django_db(transaction=True)

CRAB = SkySource("Crab", 83.63308, 22.01450, 1000.0, 2.1)
T0 = timeline.time_to_ijd(timeline.revolution_start(1516)) + 0.3
# Rows of every model and the uuids of the products, printed by `manage.py shell` on a target.
SNAPSHOT_CODE = """
import json
from django.apps import apps
from products.models import Product
print(json.dumps({
    "counts": {m._meta.label: m._base_manager.count() for m in apps.get_models()},
    "uuids": sorted(str(u) for u in Product.objects.values_list("uuid", flat=True)),
}))
"""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_backup(target: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("backup", str(target), "--no-progress", stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def local_snapshot() -> dict:
    return {
        "counts": {m._meta.label: m._base_manager.count() for m in apps.get_models()},
        "uuids": sorted(str(u) for u in Product.objects.values_list("uuid", flat=True)),
    }


@pytest.fixture
def archive(tmp_path) -> list[Product]:
    """Products as ingest makes them (a light curve, a spectrum with its responses, their
    previews and flux points) and one made by the factories."""
    # the lookups migrations seed are gone after a transactional test's flush
    for row in INSTRUMENTS:
        InstrumentFactory(code=row[0])
    for row in PRODUCT_KINDS:
        ProductKindFactory(code=row[0])
    folder = tmp_path / "incoming"
    folder.mkdir()
    lc = write_lightcurve(
        folder / "lc.fits", source=CRAB, t_start_ijd=T0, n_bins=20, bin_s=1000, seed=3
    )
    spectrum = write_spectrum(
        folder / "s.fits",
        folder / "s_rmf.fits",
        folder / "s_arf.fits",
        source=CRAB,
        t_start_ijd=T0,
        t_stop_ijd=T0 + 0.5,
        exposure_s=30000,
        osa="10",
        seed=2,
    )
    report = ingest_files([InputFile(p, "data", p.name) for p in [lc, *spectrum]])
    assert report.ok, report.rejected
    made = [outcome.product for outcome in report.outcomes]
    return [*made, ProductFileFactory().product]


@dataclass
class Target:
    """An empty database and media folder to restore into, and how to run commands there."""

    env: dict[str, str]
    media: Path
    database: str  # the SQLite file, or the PostgreSQL database name

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT_DIR,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def snapshot(self) -> dict:
        result = self.manage("shell", "-c", SNAPSHOT_CODE)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    def tables(self) -> list[str]:
        if connection.vendor == "sqlite":
            if not Path(self.database).exists():
                return []
            with sqlite3.connect(self.database) as db:
                return [r[0] for r in db.execute("SELECT name FROM sqlite_master")]
        with _admin_connection(self.database) as db:
            rows = db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return [r[0] for r in rows]


def _admin_connection(dbname: str = "postgres"):
    import psycopg

    s = connection.settings_dict
    return psycopg.connect(
        dbname=dbname,
        user=s["USER"] or None,
        password=s["PASSWORD"] or None,
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        autocommit=True,
    )


@pytest.fixture
def target(tmp_path):
    env = {
        **os.environ,
        "MEDIA_ROOT": str(tmp_path / "target" / "media"),
        "GALLERY_DATA_DIR": str(tmp_path / "target" / "data"),
        "GALLERY_STAGING_DIR": str(tmp_path / "target" / "staging"),
    }
    if connection.vendor == "sqlite":
        name = str(tmp_path / "target" / "restored.sqlite3")
        env["DATABASE_URL"] = f"sqlite:///{name}"
        yield Target(env, tmp_path / "target" / "media", name)
        return
    name = f"gallery_backup_restore_{uuid.uuid4().hex[:8]}"
    with _admin_connection() as db:
        db.execute(f'CREATE DATABASE "{name}"')
    s = connection.settings_dict
    credentials = quote(s["USER"] or "", safe="")
    if s["PASSWORD"]:
        credentials += ":" + quote(s["PASSWORD"], safe="")
    host = f"{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}"
    env["DATABASE_URL"] = f"postgres://{credentials}@{host}/{name}"
    try:
        yield Target(env, tmp_path / "target" / "media", name)
    finally:
        with _admin_connection() as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- backup --------------------------------------------------------------------------------


@backs_up
def test_backup_folder_and_manifest(archive, tmp_path, settings):
    orphan = default_storage.save("products/00/00/left-behind.bin", ContentFile(b"orphan"))
    target = tmp_path / "backups" / "tonight"
    target.mkdir(parents=True)  # an existing empty folder is fine

    code, out, err = run_backup(target)
    assert (code, err) == (0, "")
    assert out.startswith(f"backup written to {target}: {connection.vendor} database (3 products")
    assert sorted(p.name for p in target.parent.iterdir()) == ["tonight"]  # no .partial-

    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["format"] == "integral-gallery-backup"
    assert manifest["created"].endswith("Z")
    assert manifest["database"]["engine"] == connection.vendor
    dump = target / manifest["database"]["file"]
    assert manifest["database"]["sha256"] == sha256(dump)
    assert manifest["counts"]["products"] == 3
    assert "products.0001_initial" in manifest["migrations"]
    assert manifest["problems"] == []

    stored = {
        str(p.relative_to(settings.MEDIA_ROOT)): p
        for p in settings.MEDIA_ROOT.rglob("*")
        if p.is_file()
    }
    entries = {f["name"]: f for f in manifest["files"]}
    assert set(entries) == set(stored)
    for name, entry in entries.items():
        copy = target / "files" / name
        assert entry["sha256"] == sha256(copy) == sha256(stored[name])
        assert entry["size_bytes"] == copy.stat().st_size
        assert entry["referenced"] == (name != orphan)
    assert sum(not e["referenced"] for e in entries.values()) == 1


def test_backup_refuses_a_non_empty_folder(tmp_path):
    target = tmp_path / "backup"
    target.mkdir()
    (target / "keep.txt").write_text("an earlier backup")
    with pytest.raises(CommandError, match="is not empty"):
        call_command("backup", str(target), "--no-progress")
    assert sorted(p.name for p in tmp_path.iterdir() if "backup" in p.name) == ["backup"]
    assert [p.name for p in target.iterdir()] == ["keep.txt"]


@backs_up
def test_a_failed_backup_leaves_nothing(tmp_path, monkeypatch):
    ProductFileFactory.create_batch(2)
    copies = []
    real_copy = backup._copy_out

    def copy_then_fail(name, out):
        if copies:
            raise backup.BackupError(f"cannot copy {name} from the storage: Input/output error")
        copies.append(name)
        return real_copy(name, out)

    monkeypatch.setattr(backup, "_copy_out", copy_then_fail)
    with pytest.raises(CommandError, match="Input/output error"):
        call_command("backup", str(tmp_path / "backup"), "--no-progress")
    assert copies  # it failed half-way, after writing the dump and a file
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("backup")]


@backs_up
def test_missing_and_corrupt_recorded_files_are_named(tmp_path, settings):
    missing, corrupt, _ = (f.file.name for f in ProductFileFactory.create_batch(3))
    default_storage.delete(missing)
    (settings.MEDIA_ROOT / corrupt).write_bytes(b"not what was stored")

    code, out, err = run_backup(tmp_path / "backup")
    assert code == 1
    assert err.splitlines() == sorted(
        [f"not backed up: missing  {missing}", f"not backed up: corrupt  {corrupt}"],
        key=lambda line: line.split()[-1],
    )
    assert "; 2 files NOT backed up (listed in manifest.json)" in out
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert {(p["name"], p["problem"]) for p in manifest["problems"]} == {
        (missing, "missing"),
        (corrupt, "corrupt"),
    }
    names = {f["name"] for f in manifest["files"]}
    assert missing not in names and corrupt not in names
    assert not (tmp_path / "backup" / "files" / corrupt).exists()


# --- checks of a backup before a restore (no database touched) ------------------------------


def minimal_manifest(engine: str = "sqlite") -> dict:
    return {
        "format": backup.FORMAT,
        "format_version": backup.FORMAT_VERSION,
        "created": "2025-01-31T12:00:00Z",
        "database": {
            "engine": engine,
            "file": backup.DUMP_FILES[engine],
            "size_bytes": 0,
            "sha256": hashlib.sha256(b"").hexdigest(),
        },
        "migrations": [],
        "counts": {"products": 0, "product_files": 0},
        "files": [
            {
                "name": "products/ab/cd/x.fits",
                "size_bytes": 1,
                "sha256": "0" * 64,
                "referenced": True,
            }
        ],
        "problems": [],
    }


@pytest.fixture
def made_backup(archive, tmp_path) -> tuple[Path, dict]:
    folder = tmp_path / "backup"
    assert run_backup(folder)[0] == 0
    return folder, backup.read_manifest(folder)


@backs_up
def test_verify_backup_names_every_damaged_file(made_backup):
    folder, manifest = made_backup
    assert backup.verify_backup(folder, manifest) == []
    first, second = manifest["files"][0]["name"], manifest["files"][1]["name"]
    data = bytearray((folder / "files" / first).read_bytes())
    data[-1] ^= 0xFF
    (folder / "files" / first).write_bytes(bytes(data))
    (folder / "files" / second).unlink()
    dump = folder / manifest["database"]["file"]
    dump.write_bytes(dump.read_bytes()[:100])

    assert backup.verify_backup(folder, manifest) == [
        f"{dump.name}: 100 bytes, the manifest says {manifest['database']['size_bytes']}",
        f"files/{first}: does not match its SHA-256 in manifest.json",
        f"files/{second}: missing from the backup",
    ]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda m: m.update(format="something-else"), "not the manifest of a Gallery backup"),
        (lambda m: m.update(format_version=99), "format version 99"),
        (lambda m: m["files"][0].update(name="../../etc/passwd"), "damaged or incomplete"),
        (lambda m: m["files"][0].update(name="/etc/passwd"), "damaged or incomplete"),
        (lambda m: m["database"].update(file="../dump"), "damaged or incomplete"),
        (lambda m: m.pop("counts"), "damaged or incomplete"),
    ],
)
def test_a_damaged_manifest_is_refused(tmp_path, damage, message):
    manifest = minimal_manifest()
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert backup.read_manifest(tmp_path) == manifest
    damage(manifest)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupError, match=message):
        backup.read_manifest(tmp_path)


def test_not_a_backup(tmp_path):
    with pytest.raises(backup.BackupError, match="has no manifest.json"):
        backup.read_manifest(tmp_path)


@pytest.mark.django_db
def test_restore_refuses_a_backup_of_another_engine(tmp_path):
    kept = ProductFileFactory()
    other = "sqlite" if connection.vendor != "sqlite" else "postgresql"
    (tmp_path / "manifest.json").write_text(json.dumps(minimal_manifest(other)))
    with pytest.raises(CommandError, match=f"holds a {other} database and the configured"):
        call_command("restore", str(tmp_path), "--no-progress")
    assert list(Product.objects.all()) == [kept.product]
    assert default_storage.exists(kept.file.name)


# --- restores in another process, into another database ------------------------------------


@backs_up
@pytest.mark.slow
def test_restore_drill(archive, tmp_path, settings, target):
    """Back up, restore into an empty database and media folder, and find the Gallery whole
    there: verify_storage passes, every table has its rows and every product its uuid."""
    folder = tmp_path / "backup"
    assert run_backup(folder)[0] == 0
    expected = local_snapshot()
    assert len(expected["uuids"]) == 3

    restored = target.manage("restore", str(folder), "--no-progress")
    assert restored.returncode == 0, restored.stderr
    lines = restored.stdout.splitlines()
    assert lines[0].startswith(f"restored {folder} (made ")
    assert lines[1].startswith("storage whole:")

    verified = target.manage("verify_storage", "--no-progress")
    assert verified.returncode == 0, verified.stdout
    assert target.snapshot() == expected
    source_files = {
        p.relative_to(settings.MEDIA_ROOT): p.read_bytes()
        for p in settings.MEDIA_ROOT.rglob("*")
        if p.is_file()
    }
    restored_files = {
        p.relative_to(target.media): p.read_bytes() for p in target.media.rglob("*") if p.is_file()
    }
    assert restored_files == source_files

    # A second restore over the restored Gallery is refused, unless --force wipes it first.
    (target.media / "products" / "stray.bin").write_bytes(b"stray")
    again = target.manage("restore", str(folder), "--no-progress")
    assert again.returncode == 1
    assert again.stderr.startswith("CommandError: refusing to restore over existing data")
    assert len(again.stderr.strip().splitlines()) == 1
    forced = target.manage("restore", str(folder), "--force", "--no-progress")
    assert forced.returncode == 0, forced.stderr
    assert not (target.media / "products" / "stray.bin").exists()
    assert target.snapshot() == expected


@backs_up
def test_restore_refuses_a_corrupt_backup_before_touching_anything(made_backup, target):
    folder, manifest = made_backup
    damaged = manifest["files"][-1]["name"]
    with open(folder / "files" / damaged, "r+b") as handle:
        handle.seek(10)
        handle.write(b"\x00\xff")

    result = target.manage("restore", str(folder), "--no-progress")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"CommandError: corrupt backup, nothing restored: files/{damaged}: "
        f"does not match its SHA-256 in manifest.json"
    )
    assert target.tables() == []
    assert not target.media.exists() or not any(p.is_file() for p in target.media.rglob("*"))
