"""The product lists the oda_api client asks for, with the previous gallery's semantics.

A product matches an energy range when its own band [E1, E2] lies inside it, a revolution
range when its [rev1, rev2] lies inside it; span filters compare ``rev2 - rev1`` (0 for a
single-revolution product); names match canonical names and alternative names alike. Only the
newest published version of each product is listed, and only products the caller may see.
"""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Q, QuerySet

from products.models import Product, ProductSource
from sources.models import Source

from . import terms
from .http import CompatError
from .params import Params

#: The conditions ``get_data_product_list_with_conditions`` understands.
CONDITIONS = (
    "instrument_name",
    "product_type",
    "src_name",
    "e1_kev_value",
    "e2_kev_value",
    "rev1_value",
    "rev2_value",
    "min_span_rev_value",
    "max_span_rev_value",
    "product_id",
)
#: Longest list answered at once; the client splits long revolution ranges itself.
MAX_PRODUCTS = 5000


def visible_latest(user) -> QuerySet[Product]:
    """The newest published version of each product ``user`` may see. Curators may see hidden
    and draft products elsewhere; these lists, like the previous gallery's, show published
    ones only, so that a deleted product disappears from them for everyone."""
    return (
        Product.objects.visible_to(user).latest_versions().filter(status=Product.Status.PUBLISHED)
    )


def source_ids(names: list[str]) -> list[int]:
    """Ids of the sources any of ``names`` names (canonical or alternative)."""
    ids: set[int] = set()
    for name in names:
        ids.update(Source.objects.named(name).values_list("pk", flat=True))
    return sorted(ids)


def of_sources(queryset: QuerySet[Product], names: list[str]) -> QuerySet[Product]:
    ids = source_ids(names)
    if not ids:
        return queryset.none()
    linked = ProductSource.objects.filter(product=OuterRef("pk"), source_id__in=ids)
    return queryset.filter(Exists(linked))


def with_conditions(queryset: QuerySet[Product], params: Params) -> QuerySet[Product]:
    """``queryset`` narrowed by the conditions in ``params`` (unknown ones are refused)."""
    unknown = sorted(params.keys() - set(CONDITIONS) - {"token"})
    if unknown:
        raise CompatError(
            f"unknown condition {unknown[0]!r}; the conditions are {', '.join(CONDITIONS)}"
        )
    try:
        if instrument := params.text("instrument_name", 40):
            queryset = queryset.filter(instrument__code__in=terms.instrument_codes(instrument))
        if product_type := params.text("product_type", 60):
            parsed = terms.parse_product_type(product_type)
            queryset = queryset.filter(Q(kind__code=parsed.kind) | Q(kind__category=parsed.kind))
            if parsed.family:
                queryset = queryset.filter(instrument__family=parsed.family)
    except terms.TermError as exc:
        raise CompatError(str(exc)) from None
    if params.has("src_name"):
        queryset = of_sources(queryset, params.names("src_name"))
    if (product_id := params.text("product_id", 128)) is not None:
        queryset = queryset.filter(external_id=product_id)
    bounds = {
        "e1_kev_value": ("e_min_kev__gte", params.number),
        "e2_kev_value": ("e_max_kev__lte", params.number),
        "rev1_value": ("rev_first__gte", params.integer),
        "rev2_value": ("rev_last__lte", params.integer),
        "min_span_rev_value": ("rev_span__gte", params.integer),
        "max_span_rev_value": ("rev_span__lte", params.integer),
    }
    for name, (lookup, read) in bounds.items():
        value = read(name)
        if value is not None:
            queryset = queryset.filter(**{lookup: value})
    return queryset


def ordered(queryset: QuerySet[Product]) -> QuerySet[Product]:
    """Oldest data first; the same order on SQLite and PostgreSQL (nulls last)."""
    return queryset.order_by(
        F("rev_first").asc(nulls_last=True), F("time_start").asc(nulls_last=True), "pk"
    )


def bounded(queryset: QuerySet[Product]) -> list[Product]:
    rows = list(queryset[: MAX_PRODUCTS + 1])
    if len(rows) > MAX_PRODUCTS:
        raise CompatError(
            f"more than {MAX_PRODUCTS} products match: narrow the conditions "
            "(a revolution range with rev1_value and rev2_value, say)"
        )
    return rows
