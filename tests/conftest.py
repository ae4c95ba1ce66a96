"""Shared test set-up: a private media folder per test and access to the real fixtures.

Real OSA/MMODA files live in ``../shared/fixtures`` beside the project. They are read from
there, never copied; where that folder is absent (a fresh clone elsewhere) the tests that need
it skip with one line, and the tests on OSA-like files written by the project's own code
cover the same paths.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = PROJECT_DIR.parent / "shared" / "fixtures"
MISSING_FIXTURES = "real fixtures not found: ../shared/fixtures is absent beside the project"


def shared_fixture(relative: str) -> Path:
    """Path of a real fixture file; skips the calling test when ../shared is absent."""
    path = SHARED_FIXTURES / relative
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(MISSING_FIXTURES)
    if not path.exists():
        raise FileNotFoundError(path)
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(MISSING_FIXTURES)
    return SHARED_FIXTURES


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Every test writes stored files and staged uploads into its own temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.GALLERY_STAGING_DIR = tmp_path / "staging"
    # Ingests in tests do not leave refresh tasks on the broker for later tests' workers.
    settings.GALLERY_LIGHTCURVE_REFRESH_TASKS = False
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def _reference_rows_after_flush(request):
    """Tests on a transactional database find the seeded rows, as after ``migrate``."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
        or (marker is not None and marker.kwargs.get("transaction"))
    )
    if transactional:
        request.getfixturevalue("transactional_db")
        from tests.seed import ensure_reference_rows

        ensure_reference_rows()


def services_or_skip() -> None:
    """Integration tests need PostgreSQL and Redis. Where they are absent the tests skip with
    one line, unless GALLERY_REQUIRE_SERVICES=1 (CI), where their absence is a failure."""
    import os

    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    broker = settings.CELERY_BROKER_URL
    missing = []
    if "postgresql" not in engine:
        missing.append("PostgreSQL (DATABASE_URL)")
    if not broker.startswith("redis"):
        missing.append("Redis (CELERY_BROKER_URL)")
    if missing:
        message = "integration test needs " + " and ".join(missing)
        if os.environ.get("GALLERY_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def celery_worker_thread(transactional_db):
    """A real Celery worker (threads, in this process) consuming from the configured broker."""
    services_or_skip()
    from celery.contrib.testing.worker import start_worker

    from gallery.celery import app

    app.loader.import_default_modules()
    with start_worker(
        app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as worker:
        yield worker
