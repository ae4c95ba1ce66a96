"""Merging two sources found to be one object (e.g. a provisional detection and its catalogue
counterpart): everything that pointed at the one moves to the other, in one transaction.

Plain service, called by the API and the admin. It imports ``products`` lazily: product links
and flux points hang off sources, and the merge must move them, but ``sources`` never needs
``products`` to be importable otherwise.
"""

from __future__ import annotations

from django.apps import apps
from django.db import transaction
from simple_history.utils import bulk_update_with_history

from .models import Source, SourceName


class MergeError(ValueError):
    """A merge that cannot be done (the message says why)."""


#: The stronger role wins when both sources are linked to the same product.
_ROLE_RANK = {"target": 2, "detected": 1, "in_field": 0}


def merge_sources(source: Source, into: Source) -> Source:
    """Merge ``source`` into ``into`` and return ``into``.

    Moves the names (``source``'s canonical name becomes an alias of ``into``), the product
    links (where both were linked to a product, one link is kept with the stronger role and
    the higher significance), the flux points, and the sources previously merged into
    ``source``; then marks ``source`` as merged into ``into`` (its pages redirect there).
    """
    if source.pk is None or into.pk is None:
        raise MergeError("both sources must be saved")
    if source.pk == into.pk:
        raise MergeError("a source cannot be merged into itself")
    ProductSource = apps.get_model("products", "ProductSource")
    FluxPoint = apps.get_model("products", "FluxPoint")
    with transaction.atomic():
        # Lock both rows (in id order, so two opposite merges cannot deadlock) and re-read them.
        locked = {
            s.pk: s
            for s in Source.objects.select_for_update()
            .filter(pk__in=[source.pk, into.pk])
            .order_by("pk")
        }
        if len(locked) != 2:
            raise MergeError("one of the sources no longer exists")
        source, into = locked[source.pk], locked[into.pk]
        if source.merged_into_id is not None:
            raise MergeError(f"{source.name!r} was already merged into another source")
        if into.merged_into_id is not None:
            raise MergeError(f"{into.name!r} was itself merged; merge into its target instead")

        SourceName.objects.filter(source=source).update(source=into, is_canonical=False)
        _move_product_links(ProductSource, source, into)
        FluxPoint.objects.filter(source=source).update(source=into)

        # Sources merged earlier into ``source`` now point straight at ``into`` (no chains).
        earlier = list(Source.objects.filter(merged_into=source))
        source.merged_into = into
        for row in earlier:
            row.merged_into = into
        # Source.save() would re-attach the canonical name; update the column with history.
        bulk_update_with_history([source, *earlier], Source, ["merged_into"])
    into.refresh_from_db()
    return into


def _move_product_links(ProductSource, source: Source, into: Source) -> None:
    """Re-point the product links of ``source``, merging those the target already has."""
    shared = ProductSource.objects.filter(source=source).values("product_id")
    theirs = {
        link.product_id: link
        for link in ProductSource.objects.filter(source=into, product_id__in=shared)
    }
    to_delete = []
    for link in ProductSource.objects.filter(source=source, product_id__in=list(theirs)):
        kept = theirs[link.product_id]
        # Unique (product, source): one link survives, with the stronger role and significance.
        if _ROLE_RANK.get(link.role, 0) > _ROLE_RANK.get(kept.role, 0):
            kept.role = link.role
        if link.significance is not None and (
            kept.significance is None or link.significance > kept.significance
        ):
            kept.significance = link.significance
        kept.save(update_fields=["role", "significance"])
        to_delete.append(link.pk)
    ProductSource.objects.filter(pk__in=to_delete).delete()
    ProductSource.objects.filter(source=source).update(source=into)
