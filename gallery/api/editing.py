"""Curation of products through the API: metadata edits and the soft delete.

Plain functions, one transaction each, with the history (django-simple-history) recording who
changed what. A hidden product keeps its files: it can be shown again by setting its status.
"""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction

from products.models import Product, ProductSource, Tag

SCALAR_FIELDS = ("title", "status", "is_highlight", "access", "embargo_until")


def update_product(product: Product, changes: dict, user) -> Product:
    """Apply validated ``changes`` (see ProductPatchSerializer) to ``product``."""
    with transaction.atomic():
        product = Product.objects.select_for_update().get(pk=product.pk)
        fields = [name for name in SCALAR_FIELDS if name in changes]
        for name in fields:
            setattr(product, name, changes[name])
        if fields:
            product._history_user = user
            product.save(update_fields=[*fields, "updated"])
        if "tags" in changes:
            product.tags.set([Tag.objects.get_or_create(name=t)[0] for t in changes["tags"]])
        if "granted_groups" in changes:
            product.granted_groups.set(Group.objects.filter(name__in=changes["granted_groups"]))
        if "sources" in changes:
            _replace_links(product, changes["sources"])
    return product


def _replace_links(product: Product, links: list[tuple]) -> None:
    """Make ``links`` [(source, role)] the product's links, keeping known significances."""
    existing = {link.source_id: link for link in product.source_links.all()}
    wanted: dict[int, tuple] = {}
    for source, role in links:
        wanted[source.pk] = (source, role)  # the last mention of a source wins
    product.source_links.exclude(source_id__in=list(wanted)).delete()
    for source_id, (source, role) in wanted.items():
        link = existing.get(source_id)
        if link is None:
            ProductSource.objects.create(product=product, source=source, role=role)
        elif link.role != role:
            link.role = role
            link.save(update_fields=["role"])


def hide_product(product: Product, user) -> Product:
    """The API's DELETE: the product disappears from every public view; its files stay."""
    product._history_user = user
    product.status = Product.Status.HIDDEN
    product.save(update_fields=["status", "updated"])
    return product
