"""``GET /health/``: 200 when database, broker and storage answer, 503 naming the one that
does not, and never a traceback nor a password."""

from __future__ import annotations

import json
import os
import threading

import pytest
from django.db import connections
from django.urls import path

from gallery import health

pytestmark = pytest.mark.django_db

# The route as gallery/urls.py declares it, so that the tests do not depend on that file.
urlpatterns = [path("health/", health.view, name="health")]


@pytest.fixture(autouse=True)
def _routes_and_broker(settings, tmp_path):
    """The health route, and an embedded filesystem broker with its folders in tmp_path."""
    settings.ROOT_URLCONF = __name__
    folders = {key: tmp_path / "broker" / key for key in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "store_processed": False,
        "control_folder": str(folders["control"]),
    }
    return folders


def get_health(client) -> tuple[int, dict, str]:
    response = client.get("/health/")
    assert response["Content-Type"] == "application/json"
    text = response.content.decode()
    assert "Traceback" not in text
    return response.status_code, json.loads(text), text


def test_all_ok(client, settings):
    status, body, _ = get_health(client)
    assert status == 200
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "broker", "storage"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert body["checks"]["broker"]["transport"] == "filesystem"
    # the probe file is gone again
    probes = settings.MEDIA_ROOT / health.PROBE_FOLDER
    assert not probes.exists() or not any(probes.iterdir())


def test_never_cached_and_read_only(client):
    response = client.get("/health/")
    assert "no-cache" in response["Cache-Control"]
    assert client.head("/health/").status_code == 200
    assert client.post("/health/").status_code == 405


def test_a_reachable_redis_broker(client, settings):
    url = os.environ.get("GALLERY_TEST_REDIS_URL")
    if not url:
        pytest.skip("GALLERY_TEST_REDIS_URL not set (no Redis for the tests)")
    settings.CELERY_BROKER_URL = url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    status, body, _ = get_health(client)
    assert status == 200, body
    broker = body["checks"]["broker"]
    assert (broker["status"], broker["transport"]) == ("ok", "redis")


def test_unreachable_broker_without_its_password(client, settings):
    settings.CELERY_BROKER_URL = "redis://gallery:s3cret-pw@127.0.0.1:1/0"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    status, body, text = get_health(client)
    assert status == 503
    assert body["status"] == "degraded"
    broker = body["checks"]["broker"]
    assert broker["status"] == "error"
    assert broker["error"].startswith("OperationalError")
    assert "s3cret-pw" not in text
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["storage"]["status"] == "ok"


def test_filesystem_broker_without_its_folder(client, _routes_and_broker):
    _routes_and_broker["control"].rmdir()
    status, body, text = get_health(client)
    assert status == 503
    assert body["checks"]["broker"]["error"] == "the broker's control folder does not exist"
    assert str(_routes_and_broker["control"]) not in text


def test_unwritable_media_root(client, settings, tmp_path):
    # Below a plain file no folder can be made, whoever runs the tests (root included).
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings.MEDIA_ROOT = blocker / "media"
    status, body, text = get_health(client)
    assert status == 503
    storage = body["checks"]["storage"]
    assert storage["status"] == "error"
    assert storage["error"] == "NotADirectoryError: Not a directory"
    assert str(tmp_path) not in text
    assert body["checks"]["database"]["status"] == "ok"


def test_unreachable_database(client, monkeypatch, tmp_path):
    # The check connects afresh in its own thread, from the configured settings: point them
    # nowhere (a closed port, or a SQLite file in a folder that does not exist). This test's
    # own connection keeps its settings.
    broken = dict(connections.settings["default"])
    if broken["ENGINE"].endswith("sqlite3"):
        broken["NAME"] = str(tmp_path / "absent" / "db.sqlite3")
    else:
        broken.update(HOST="127.0.0.1", PORT=1, PASSWORD="db-s3cret")
    monkeypatch.setitem(connections.settings, "default", broken)

    status, body, text = get_health(client)
    assert status == 503
    database = body["checks"]["database"]
    assert database["status"] == "error"
    assert database["error"].startswith("OperationalError")
    assert "db-s3cret" not in text and str(tmp_path) not in text
    assert body["checks"]["broker"]["status"] == "ok"


def test_a_hung_check_times_out(client, settings, monkeypatch):
    settings.GALLERY_HEALTH_TIMEOUT_S = 0.2
    release = threading.Event()
    monkeypatch.setitem(health.CHECKS, "storage", lambda: release.wait(30) and {})
    try:
        status, body, _ = get_health(client)
    finally:
        release.set()
    assert status == 503
    assert body["checks"]["storage"] == {"status": "error", "error": "no answer within 0.2 s"}


def test_an_unexpected_error_is_one_line(client, monkeypatch):
    def boom():
        raise RuntimeError("probe exploded\nsecond line with details")

    monkeypatch.setitem(health.CHECKS, "storage", boom)
    status, body, _ = get_health(client)
    assert status == 503
    assert body["checks"]["storage"]["error"] == "RuntimeError: probe exploded"


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (
            "cannot reach redis://user:pw@host:6379/0",
            "ValueError: cannot reach redis://***@host:6379/0",
        ),
        ("amqp://guest@host//", "ValueError: amqp://***@host//"),
        ("x" * 300, "ValueError: " + "x" * 187 + "…"),
    ],
)
def test_brief_error(message, shown):
    assert health.brief_error(ValueError(message)) == shown
