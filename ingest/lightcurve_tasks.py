"""Celery tasks that keep the light-curve bins, the transient monitor and the source
statistics up to date.

* After an ingest: ``request_refresh(product)`` (called by the ingest service once the product
  is stored) bins the product's flux points at once (light curves show them) and asks, when
  the transaction commits, for the revolution of the product to be refreshed. One
  ``SummaryRefreshRequest`` row per revolution turns the hundreds of products of a revolution
  into one task, run ``REFRESH_DELAY_S`` after the first request; a request that arrives while
  the task runs makes it run once more.
* Periodically (Celery beat): ``refresh_all_summaries`` rebuilds everything, which also catches
  what no ingest announces (an embargo that ends, a product a curator hides, a merge).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError, IntegrityError, OperationalError, transaction
from django.utils import timezone

from products import transients
from products.models import FluxPoint, Product, SummaryRefreshRequest

log = logging.getLogger(__name__)

#: Seconds between the first request for a revolution and its refresh (lets a batch land).
REFRESH_DELAY_S = 10

_TASK_OPTIONS = dict(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, ConnectionError),
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=8,
)


def request_refresh(product: Product, enqueue: bool = True) -> None:
    """Bin the product's flux points now, and ask for a refresh of its revolution once the
    current transaction commits.

    The bins make the points appear in light curves at once; the revolution's refresh (the
    monitor and the source statistics) follows. Multi-revolution products ask for their last
    revolution, whose refresh covers the products that end in it.
    """
    if not FluxPoint.objects.filter(product=product).exists():
        return
    try:
        transients.summarise_now([product.pk])
    except DatabaseError:
        # The revolution's refresh writes the bins too; the ingest must not fail for them.
        log.exception("could not bin the flux points of product %s", product.pk)
    revolution = product.rev_last
    if revolution is not None and enqueue:
        transaction.on_commit(lambda: enqueue_refresh(revolution))


def enqueue_refresh(revolution: int) -> bool:
    """Record the request and enqueue a task unless one is already waiting; True if enqueued.

    Never raises: the product is stored whatever happens here, and the periodic full refresh
    catches up with what a lost request would have done.
    """
    now = timezone.now()
    try:
        if SummaryRefreshRequest.objects.filter(revolution=revolution).update(requested=now):
            return False  # a task is waiting or running; it will see this request
        try:
            SummaryRefreshRequest.objects.create(revolution=revolution, requested=now)
        except IntegrityError:
            return False  # another process made the request a moment ago
        refresh_revolution_summaries.apply_async((revolution,), countdown=REFRESH_DELAY_S)
        return True
    except Exception:
        log.exception("could not request the light-curve refresh of revolution %s", revolution)
        SummaryRefreshRequest.objects.filter(revolution=revolution, requested=now).delete()
        return False


@shared_task(**_TASK_OPTIONS)
def refresh_revolution_summaries(revolution: int) -> dict:
    """Incremental refresh after ``revolution`` received products (idempotent)."""
    started = timezone.now()
    report = transients.refresh_revolution(int(revolution))
    done = SummaryRefreshRequest.objects.filter(
        revolution=revolution, requested__lte=started
    ).delete()[0]
    if not done and SummaryRefreshRequest.objects.filter(revolution=revolution).exists():
        # Products arrived while this ran: once more, so that none is left out.
        refresh_revolution_summaries.apply_async((revolution,), countdown=REFRESH_DELAY_S)
    log.info("light-curve refresh: %s", report.summary())
    return {"revolution": revolution, "seconds": round(report.seconds, 3)}


@shared_task(**_TASK_OPTIONS)
def refresh_all_summaries() -> dict:
    """Full rebuild of the summaries and of every source's statistics (Celery beat)."""
    started = timezone.now()
    report = transients.refresh_all()
    # Every request made before the rebuild started is answered by it.
    SummaryRefreshRequest.objects.filter(requested__lte=started).delete()
    log.info("light-curve refresh: %s", report.summary())
    return {"series": report.series_recomputed, "seconds": round(report.seconds, 3)}
