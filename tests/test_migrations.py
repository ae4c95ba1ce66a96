"""Migrations are complete (no model change without one) and reversible down to zero."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_DIR

APPS = ["gallery", "ingest", "products", "sources"]


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=env,
                          capture_output=True, text=True, check=False)


@pytest.fixture
def scratch_env(tmp_path):
    return {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/migrations.sqlite3",
            "GALLERY_DATA_DIR": str(tmp_path)}


def test_no_model_change_lacks_a_migration(scratch_env):
    result = manage("makemigrations", "--check", "--dry-run", env=scratch_env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_every_migration_reverses(scratch_env):
    forward = manage("migrate", "-v0", env=scratch_env)
    assert forward.returncode == 0, forward.stderr
    for app in APPS:  # the front first: it depends on the layers below
        back = manage("migrate", app, "zero", "-v0", env=scratch_env)
        assert back.returncode == 0, f"{app}: {back.stderr}"
    again = manage("migrate", "-v0", env=scratch_env)
    assert again.returncode == 0, again.stderr
