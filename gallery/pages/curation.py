"""Curation work that needs the ingest layer: reprocessing products from their stored files.

``products.admin`` lists products and changes their fields; asking a worker to read a
product's files again belongs to the layer that may import ``ingest``. The action is added to
the product admin from here (``install_admin_actions``, called when the URLs load).
"""

from __future__ import annotations

import shutil
import uuid as uuid_lib
from pathlib import Path

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.exceptions import NotRegistered
from django.db import transaction

from ingest.models import IngestJob
from ingest.tasks import enqueue_ingest
from products.models import Product, ProductFile, ProductSource

#: Files a reprocessing reads again (previews and other attachments are made anew).
REPROCESSED_ROLES = (ProductFile.Role.DATA, ProductFile.Role.RMF, ProductFile.Role.ARF)


def job_options(product: Product) -> dict:
    """The ingest options that keep what curators decided about the product."""
    target = next(
        (link.source.name for link in product.source_links.all()
         if link.role == ProductSource.Role.TARGET),
        None,
    )  # fmt: skip
    return {
        "source_name": target,
        "access": product.access,
        "embargo_until": product.embargo_until.isoformat() if product.embargo_until else None,
        "granted_groups": [g.name for g in product.granted_groups.all()],
        "tags": [t.name for t in product.tags.all()],
        "provenance": product.provenance,
        "produced_by": product.produced_by,
        "external_id": product.external_id,
        "data_level": product.data_level,
        "status": product.status,
        "is_highlight": product.is_highlight,
        # Read by the ingest service to make a new version of this product even though its
        # files (and so its content key) are unchanged.
        "reprocess_of": str(product.uuid),
    }


def stage_product_files(product: Product) -> list[dict]:
    """Copy the product's stored data files into a new staging folder of their own."""
    folder = Path(settings.GALLERY_STAGING_DIR) / f"reprocess-{uuid_lib.uuid4().hex}"
    folder.mkdir(parents=True, exist_ok=False)
    staged = []
    for index, stored in enumerate(f for f in product.files.all() if f.role in REPROCESSED_ROLES):
        target = folder / f"{index:02d}{stored.extension or '.bin'}"
        with stored.file.open("rb") as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
        # Response files go in as data files too: the ingest groups them with the spectrum.
        staged.append({"path": str(target), "role": "data", "original_name": stored.download_name})
    return staged


def reprocess(product: Product, user=None) -> IngestJob:
    """Enqueue the re-ingest of ``product``'s stored files (a worker does the work)."""
    staged = stage_product_files(product)
    if not staged:
        raise ValueError(f"{product.title!r} has no stored data file to reprocess")
    with transaction.atomic():
        job = IngestJob.objects.create(
            staged_files=staged,
            options=job_options(product),
            submitted_by=user if getattr(user, "is_authenticated", False) else None,
        )
        enqueue_ingest(job)
    return job


@admin.action(description="Reprocess: ingest the stored files again", permissions=["change"])
def reprocess_products(modeladmin, request, queryset):
    done, failed = 0, []
    for product in queryset.prefetch_related(
        "files", "tags", "granted_groups", "source_links__source"
    ):
        try:
            reprocess(product, request.user)
            done += 1
        except (OSError, ValueError) as exc:
            failed.append(f"{product.title}: {exc}")
    if done:
        modeladmin.message_user(request, f"{done} product(s) queued for reprocessing.")
    for message in failed:
        modeladmin.message_user(request, message, level=messages.ERROR)


def install_admin_actions() -> None:
    """Add the reprocess action to the product admin (idempotent)."""
    try:
        product_admin = admin.site.get_model_admin(Product)
    except NotRegistered:
        return
    if reprocess_products not in product_admin.actions:
        product_admin.actions = [*product_admin.actions, reprocess_products]
