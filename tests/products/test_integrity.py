"""Storage integrity: missing, corrupt and orphaned files, and ``manage.py verify_storage``."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command

from products.integrity import ConsoleProgress, check_storage, format_bytes
from tests.factories import ProductFileFactory

pytestmark = pytest.mark.django_db


def verify_storage(*args: str) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = 0
    try:
        call_command("verify_storage", *args, "--no-progress", stdout=out)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue().splitlines()


@pytest.fixture
def stored():
    """Three products, one of them sharing a stored file with another (stored once)."""
    first = ProductFileFactory(content=b"SIMPLE = T first")
    second = ProductFileFactory(content=b"SIMPLE = T second")
    # as ingest does: a row naming the file already stored under its SHA-256
    ProductFileFactory(content=b"SIMPLE = T first", file=first.file.name)
    return first, second


def test_a_whole_storage(stored, settings):
    report = check_storage()
    assert report.ok and report.problems == []
    assert (report.rows, report.files_checked) == (3, 2)
    assert report.bytes_checked == len(b"SIMPLE = T first") + len(b"SIMPLE = T second")

    code, lines = verify_storage()
    assert code == 0
    assert lines == [report.summary()]
    assert lines[0].startswith("storage whole: 2 stored files")


def test_an_empty_archive_is_whole():
    report = check_storage()
    assert report.ok and report.files_checked == 0
    assert verify_storage()[0] == 0


def test_missing_file(stored):
    first, _ = stored
    default_storage.delete(first.file.name)

    report = check_storage()
    assert [(p.kind, p.name) for p in report.problems] == [("missing", first.file.name)]
    # the line names the products that lose the file (two share it)
    assert str(first.product.uuid) in report.missing[0].detail

    code, lines = verify_storage()
    assert code == 1
    assert lines[0].startswith(f"missing  {first.file.name}")
    assert lines[-1].startswith("storage NOT whole: 1 missing, 0 corrupt, 0 orphaned")


def test_corrupt_file(stored, settings):
    _, second = stored
    path = settings.MEDIA_ROOT / second.file.name
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01  # one flipped bit, same size
    path.write_bytes(bytes(data))

    report = check_storage()
    assert [(p.kind, p.name) for p in report.problems] == [("corrupt", second.file.name)]
    code, lines = verify_storage()
    assert code == 1
    assert lines[0].startswith(f"corrupt  {second.file.name}")
    assert "1 corrupt" in lines[-1]


def test_rows_disagreeing_on_the_content_of_one_file(stored):
    first, _ = stored
    ProductFileFactory(content=b"other bytes", file=first.file.name)

    report = check_storage()
    assert [(p.kind, p.name) for p in report.problems] == [("corrupt", first.file.name)]
    assert "file records disagree on its SHA-256" in report.problems[0].detail


def test_orphans_and_the_dry_run(stored):
    orphan = default_storage.save("products/ab/cd/left-behind.fits", ContentFile(b"x" * 1500))
    # files outside products/ (e.g. the health probe's folder) are none of its business
    default_storage.save("elsewhere/note.txt", ContentFile(b"note"))

    report = check_storage()
    assert [(p.kind, p.name, p.size_bytes) for p in report.problems] == [("orphan", orphan, 1500)]
    code, lines = verify_storage("--fix-orphans-dry-run")
    assert code == 1
    assert lines[0] == f"orphan   {orphan}  no file record, 1.5 kB"
    assert lines[1].startswith(f"would delete {orphan} (modified ")
    assert lines[2] == ("dry run: removing 1 orphaned files would free 1.5 kB; nothing was deleted")
    assert "1 orphaned" in lines[-1]
    assert default_storage.exists(orphan)


def test_progress_is_reported_per_stage(stored):
    default_storage.save("products/zz/orphan.bin", ContentFile(b"o"))
    calls = []
    check_storage(lambda stage, done, total: calls.append((stage, done, total)))
    assert calls == [("verify", 1, 2), ("verify", 2, 2), ("orphans", 1, 1)]


@pytest.mark.parametrize(
    ("n", "text"), [(0, "0 B"), (999, "999 B"), (1500, "1.5 kB"), (2_500_000_000, "2.5 GB")]
)
def test_format_bytes(n, text):
    assert format_bytes(n) == text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_on_a_terminal_only():
    terminal, log = Terminal(), io.StringIO()
    for stream in (terminal, log):
        progress = ConsoleProgress(stream=stream)
        progress("verify", 1, 2)
        progress("verify", 2, 2)
        progress("orphans", 1, 1)
        progress.close()
    assert "verify" in terminal.getvalue() and "orphans" in terminal.getvalue()
    assert log.getvalue() == ""
    silenced = Terminal()
    progress = ConsoleProgress(enabled=False, stream=silenced)
    progress("verify", 1, 1)
    assert silenced.getvalue() == ""
