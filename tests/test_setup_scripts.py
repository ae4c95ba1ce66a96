"""The set-up files of the README: the scripts run, and docker-compose.yml describes the stack."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
SCRIPTS = ["scripts/run.sh", "scripts/test.sh", ".ci/run"]
GALLERY_SERVICES = ["migrate", "web", "worker", "beat", "flower"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_is_executable_bash(script):
    path = PROJECT_DIR / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_sourced_helpers_parse():
    subprocess.run(["bash", "-n", str(PROJECT_DIR / "scripts/services.sh")], check=True)


@pytest.fixture(scope="module")
def compose():
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())


def test_compose_names_the_services(compose):
    assert set(compose["services"]) == {"postgres", "redis", *GALLERY_SERVICES}


def test_compose_runs_every_process_from_one_image(compose):
    services = compose["services"]
    images = {services[name]["image"] for name in GALLERY_SERVICES}
    assert len(images) == 1
    assert all(services[name]["build"]["context"] == "." for name in GALLERY_SERVICES)


def test_compose_commands(compose):
    services = compose["services"]
    web = " ".join(services["web"]["command"])
    assert "gunicorn gallery.wsgi:application" in web
    assert "0.0.0.0:8000" in web
    assert "celery -A gallery worker" in " ".join(services["worker"]["command"])
    assert "celery -A gallery beat" in " ".join(services["beat"]["command"])
    assert "celery -A gallery flower" in " ".join(services["flower"]["command"])
    assert "migrate" in services["migrate"]["command"]


def test_compose_waits_for_healthy_services(compose):
    services = compose["services"]
    assert "healthcheck" in services["postgres"]
    assert "healthcheck" in services["redis"]
    for name in GALLERY_SERVICES:
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy"
        assert depends_on["redis"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_env_example_sets_what_production_needs():
    names = {
        line.split("=", 1)[0]
        for line in (PROJECT_DIR / ".env.example").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    assert {
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "GALLERY_PRODUCTION",
        "MEDIA_ROOT",
        "POSTGRES_PASSWORD",
    } <= names


def test_dockerfile_builds_a_non_root_python_311_image():
    lines = (PROJECT_DIR / "Dockerfile").read_text().splitlines()
    instructions = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    assert ["FROM", "python:3.11-slim"] in instructions
    users = [args for word, *args in instructions if word == "USER"]
    assert users and users[-1] != ["root"]
    assert any("collectstatic" in line for line in lines if line.startswith("RUN"))
