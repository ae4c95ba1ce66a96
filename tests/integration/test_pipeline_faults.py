"""Faults with real worker processes: a worker killed with SIGKILL mid-revolution, and the
broker restarted mid-batch. ``manage.py process_revolutions --workers`` drives the batch (it
revives stalled runs); ``celery -A gallery worker`` processes are started and killed here.

The Redis these tests restart is their own (a ``redis-server`` on a free port, without
persistence), never the shared one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from ingest.models import RevolutionRun
from ingest.pipeline import service
from ingest.pipeline.generator import make_archive
from products.models import Product
from tests.conftest import PROJECT_DIR, services_or_skip

from .test_pipeline_celery import seed_lookups

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REDIS_SERVER = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own, without persistence: restarting it loses every queue,
    as a crashed broker would."""

    def __init__(self, folder: Path):
        self.port = _free_port()
        self.folder = folder
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def private_redis(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def environment(transactional_db, private_redis, settings, tmp_path):
    """The environment of the worker and command processes: the test database, the private
    Redis, the test's media and work folders, short heartbeats."""
    services_or_skip()
    seed_lookups()
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": private_redis.url,
        "CELERY_RESULT_BACKEND": "",
        "GALLERY_DATA_DIR": str(tmp_path / "data"),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "GALLERY_PIPELINE_WORK_DIR": str(tmp_path / "work"),
        "GALLERY_PIPELINE_KEEP_WORK": "1",
        "GALLERY_PIPELINE_HEARTBEAT_SECONDS": "0.5",
        "GALLERY_PIPELINE_STALE_SECONDS": "4",
        "LOG_LEVEL": "WARNING",
    }
    if db.get("PASSWORD"):
        env["DATABASE_URL"] = url.replace(db["USER"], f"{db['USER']}:{db['PASSWORD']}", 1)
    settings.MEDIA_ROOT = Path(env["MEDIA_ROOT"])
    processes: list[subprocess.Popen] = []
    yield env, processes, tmp_path
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def start_worker(env: dict, processes: list, name: str, folder: Path) -> subprocess.Popen:
    log = open(folder / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gallery", "worker", "--pool", "prefork",
         "--concurrency", "1", "--hostname", f"{name}@%h", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
        cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    processes.append(process)
    return process


def start_command(env: dict, processes: list, args: list[str], folder: Path) -> subprocess.Popen:
    log = open(folder / "command.log", "w")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "manage.py", "process_revolutions", *args, "--poll", "0.5",
         "--timeout", "100"],
        cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    processes.append(process)
    return process


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _logs(folder: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in folder.glob("*.log"))


def assert_complete_without_duplicates(run: RevolutionRun, work: Path) -> None:
    assert run.status == RevolutionRun.Status.DONE, run.log
    plan = service.load_plan(run)
    for unit in plan.units:
        assert run.steps[unit.key]["done"] == list(service.UNIT_STEPS)
    listed = sum(
        len(json.loads(p.read_text()))
        for p in (work / f"rev{run.revolution_id:04d}-run{run.pk}").glob("*/manifest-*.json")
    )
    products = list(Product.objects.filter(pipeline_runs=run))
    assert len(products) == listed, "a product is missing or was ingested twice"
    series = [p.series_key for p in products]
    assert len(series) == len(set(series))
    assert all(p.status == Product.Status.PUBLISHED and p.version == 1 for p in products)


def test_a_worker_killed_mid_revolution_is_taken_over(environment):
    env, processes, folder = environment
    archive = folder / "archive"
    make_archive(
        archive, [1320], scws_per_revolution=20, seed=8, instruments=["isgri"], bands="image",
        grbs=False,
    )  # fmt: skip
    start_worker(env, processes, "doomed", folder)
    command = start_command(
        env, processes, ["1320", "--archive", str(archive), "--instruments", "isgri",
                         "--workers", "1"], folder,
    )  # fmt: skip

    def mid_ingest() -> bool:
        # The worker is ingesting a unit's products (its longest step): killing it now loses
        # the task it is running.
        run = RevolutionRun.objects.filter(revolution_id=1320).first()
        return run is not None and any(
            s.get("current") == "ingest" for s in run.steps.values() if isinstance(s, dict)
        )

    wait_until(mid_ingest, 60, "the first ingest step")
    os.killpg(processes[0].pid, signal.SIGKILL)  # the worker and its pool, mid-revolution
    processes[0].wait(timeout=10)
    start_worker(env, processes, "rescuer", folder)
    try:
        command.wait(timeout=110)
    except subprocess.TimeoutExpired:
        pytest.fail("the batch did not finish:\n" + _logs(folder))
    assert command.returncode == 0, _logs(folder)
    run = RevolutionRun.objects.get(revolution_id=1320)
    assert "taken over" in run.log or "stalled" in run.log, run.log
    assert_complete_without_duplicates(run, folder / "work")


def test_a_batch_survives_a_broker_restart(environment, private_redis):
    env, processes, folder = environment
    archive = folder / "archive"
    make_archive(
        archive, [1330, 1331], scws_per_revolution=6, seed=9, instruments=["isgri"],
        bands="image", grbs=False,
    )  # fmt: skip
    start_worker(env, processes, "steady", folder)
    command = start_command(
        env, processes, ["1330-1331", "--archive", str(archive), "--instruments", "isgri",
                         "--workers", "2"], folder,
    )  # fmt: skip
    wait_until(
        lambda: RevolutionRun.objects.filter(status=RevolutionRun.Status.RUNNING).exists(),
        60,
        "a running revolution",
    )
    private_redis.stop()  # every queue is lost with it
    time.sleep(1.0)
    private_redis.start()
    try:
        command.wait(timeout=110)
    except subprocess.TimeoutExpired:
        pytest.fail("the batch did not finish:\n" + _logs(folder))
    assert command.returncode == 0, _logs(folder)
    for run in RevolutionRun.objects.order_by("revolution_id"):
        assert_complete_without_duplicates(run, folder / "work")
    assert RevolutionRun.objects.count() == 2
