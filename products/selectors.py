"""Read-side queries shared by pages and API (visibility always through ``visible_to``)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from .models import Product, ProductFile, Revolution


def visible_products(user) -> QuerySet[Product]:
    return Product.objects.visible_to(user)


def product_for(user, uuid) -> Product | None:
    return (
        visible_products(user)
        .with_related()
        .prefetch_related("files", "fits", "source_links__source")
        .filter(uuid=uuid)
        .first()
    )


def products_of_source(source, user) -> QuerySet[Product]:
    return visible_products(user).latest_versions().filter(source_links__source=source)


def products_of_revolution(number: int, user) -> QuerySet[Product]:
    return (
        visible_products(user).latest_versions().filter(rev_first__lte=number, rev_last__gte=number)
    )


def latest_revolutions(user, limit: int = 10):
    """The most recent revolutions that hold visible products, with their counts."""
    visible = visible_products(user).latest_versions()
    numbers = list(
        visible.filter(rev_first__isnull=False, rev_span=0)
        .values_list("rev_first", flat=True)
        .distinct()
        .order_by("-rev_first")[:limit]
    )
    counts = dict(
        visible.filter(rev_first__in=numbers, rev_span=0)
        .values_list("rev_first")
        .annotate(n=Count("pk"))
        .values_list("rev_first", "n")
    )
    revs = Revolution.objects.in_bulk(numbers)
    return [(revs[n], counts.get(n, 0)) for n in numbers if n in revs]


def file_for(user, product_uuid, file_id) -> ProductFile | None:
    product = visible_products(user).filter(uuid=product_uuid).first()
    if product is None:
        return None
    return product.files.filter(pk=file_id).first()


def preview_map(products) -> dict[int, ProductFile]:
    """Preview file of each product in ``products`` (one query)."""
    ids = [p.pk for p in products]
    return {
        f.product_id: f
        for f in ProductFile.objects.filter(product_id__in=ids, role=ProductFile.Role.PREVIEW)
    }


def text_search(queryset: QuerySet[Product], text: str) -> QuerySet[Product]:
    return queryset.filter(Q(title__icontains=text))
