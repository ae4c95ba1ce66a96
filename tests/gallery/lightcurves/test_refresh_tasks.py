"""The refresh tasks: one task per revolution however many products arrive, enqueued on commit,
run again when products arrive meanwhile; and a real worker doing the work."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from ingest import lightcurve_tasks
from products.models import LightCurveSummary, SummaryRefreshRequest
from tests.factories import SourceFactory
from tests.gallery.lightcurves.series import add_revolution, random_series, rng


@pytest.fixture
def sent(monkeypatch):
    """The tasks sent to the broker, instead of sending them."""
    calls = []

    def record(args=None, kwargs=None, **options):
        calls.append((args, options))

    monkeypatch.setattr(lightcurve_tasks.refresh_revolution_summaries, "apply_async", record)
    return calls


@pytest.mark.django_db
def test_requests_wait_for_the_commit_and_make_one_task(
    sent, django_capture_on_commit_callbacks
) -> None:
    source = SourceFactory(name="Crab")
    products = [add_revolution(source, 300, [10.0], [1.0]) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        for product in products:
            lightcurve_tasks.request_refresh(product)
    assert sent == [] and len(callbacks) == 3
    for callback in callbacks:
        callback()
    assert sent == [((300,), {"countdown": lightcurve_tasks.REFRESH_DELAY_S})]
    assert SummaryRefreshRequest.objects.filter(revolution=300).count() == 1


@pytest.mark.django_db
def test_products_without_points_or_revolution_ask_nothing(
    sent, django_capture_on_commit_callbacks
) -> None:
    from tests.factories import ProductFactory

    with django_capture_on_commit_callbacks(execute=True):
        lightcurve_tasks.request_refresh(ProductFactory(rev_first=5, rev_last=5))
        lightcurve_tasks.request_refresh(
            ProductFactory(rev_first=None, rev_last=None, time_start=None, time_end=None)
        )
    assert sent == []


@pytest.mark.django_db
def test_task_refreshes_and_runs_again_for_late_requests(sent) -> None:
    source = SourceFactory(name="Crab")
    random_series(source, [400, 401], rng(1))
    SummaryRefreshRequest.objects.create(revolution=401, requested=timezone.now())
    result = lightcurve_tasks.refresh_revolution_summaries(401)
    assert result["revolution"] == 401
    assert LightCurveSummary.objects.get(source=source).latest_revolution == 401
    assert not SummaryRefreshRequest.objects.exists() and sent == []
    # A request made while the task ran (requested after it started) makes it run once more.
    SummaryRefreshRequest.objects.create(
        revolution=401, requested=timezone.now() + timedelta(seconds=30)
    )
    lightcurve_tasks.refresh_revolution_summaries(401)
    assert sent == [((401,), {"countdown": lightcurve_tasks.REFRESH_DELAY_S})]


@pytest.mark.django_db
def test_full_refresh_answers_every_earlier_request(sent) -> None:
    source = SourceFactory(name="Crab")
    random_series(source, [500, 501], rng(1))
    SummaryRefreshRequest.objects.create(revolution=500, requested=timezone.now())
    lightcurve_tasks.refresh_all_summaries()
    assert not SummaryRefreshRequest.objects.exists()
    assert LightCurveSummary.objects.get(source=source).n_revolutions == 1


@pytest.mark.django_db
def test_refresh_command(capsys) -> None:
    source = SourceFactory(name="Crab")
    random_series(source, [600, 601], rng(1))
    call_command("refresh_lightcurves")
    assert "everything: 0 series updated incrementally, 1 recomputed" in capsys.readouterr().out
    call_command("refresh_lightcurves", "--revolution", "601", "--no-statistics")
    assert "revolution 601: 1 series updated incrementally" in capsys.readouterr().out


@pytest.mark.integration
def test_a_worker_refreshes_after_the_commit(celery_worker_thread, monkeypatch) -> None:
    monkeypatch.setattr(lightcurve_tasks, "REFRESH_DELAY_S", 0)
    source = SourceFactory(name="Crab")
    random_series(source, [700, 701], rng(3))
    lightcurve_tasks.request_refresh(add_revolution(source, 702, [50.0], [1.0]))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        summary = LightCurveSummary.objects.filter(source=source).first()
        if summary is not None and not SummaryRefreshRequest.objects.exists():
            break
        time.sleep(0.2)
    assert summary is not None and summary.latest_revolution == 702
    assert not SummaryRefreshRequest.objects.exists()
