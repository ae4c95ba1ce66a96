"""Security headers, request ids, structured logs and the production deployment check."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from gallery.observability import ContextFilter, JsonFormatter, current_request_id
from tests.conftest import PROJECT_DIR

pytestmark = pytest.mark.django_db


def test_every_page_has_a_strict_content_security_policy(client):
    response = client.get("/")
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe" not in directives["script-src"]
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_request_id_is_echoed_or_made(client):
    made = client.get("/")["X-Request-ID"]
    assert len(made) == 32
    assert client.get("/", HTTP_X_REQUEST_ID="abc-123-def-456")["X-Request-ID"] == (
        "abc-123-def-456")
    hostile = client.get("/", HTTP_X_REQUEST_ID="<script>\n")["X-Request-ID"]
    assert hostile != "<script>\n" and len(hostile) == 32


def test_json_log_lines_carry_the_request_id():
    record = logging.LogRecord("gallery", logging.WARNING, __file__, 1, "hello %s", ("x",), None)
    token = current_request_id.set("req-0001")
    try:
        ContextFilter().filter(record)
    finally:
        current_request_id.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello x" and line["request_id"] == "req-0001"
    assert line["task_id"] == "-"


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        **os.environ,
        "GALLERY_PRODUCTION": "1",
        "SECRET_KEY": "x9!" + "k" * 60 + "Qz#w",
        "ALLOWED_HOSTS": "gallery.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path}/deploy.sqlite3",
        "GALLERY_DATA_DIR": str(tmp_path),
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {**os.environ, "GALLERY_PRODUCTION": "1", "GALLERY_DATA_DIR": str(tmp_path)}
    env.pop("SECRET_KEY", None)
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=PROJECT_DIR, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
