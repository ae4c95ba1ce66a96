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
    return settings.MEDIA_ROOT
