"""Read-side queries shared by pages and API (visibility always through ``visible_to``)."""

from __future__ import annotations

import binascii
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Min, Q, QuerySet

from sources.models import SourceClass
from sources.sky import cone_filter

from .models import Instrument, Product, ProductFile, ProductKind, ProductSource, Revolution


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
    return visible_products(user).latest_versions().covering_revolution(number)


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


# --- pages: lists that stay fast at mission scale -------------------------------------------


def instrument_ids(code: str) -> QuerySet:
    """Ids of the instruments selected by a code (``jemx1``) or a family (``jemx``: both
    units), as a subquery: no extra round trip, and the product table sees plain id
    conditions."""
    return Instrument.objects.filter(Q(code=code) | Q(family=code)).values("pk")


def kind_ids(code: str) -> QuerySet:
    """Ids of the product kinds selected by a code or a category (``lightcurve``), as a
    subquery."""
    return ProductKind.objects.filter(Q(code=code) | Q(category=code)).values("pk")


def revolution_products(number: int, user) -> QuerySet[Product]:
    """Latest visible products of exactly one revolution (an equality on the indexed
    ``rev_first``: a range over the whole table would not stay fast at mission scale)."""
    return visible_products(user).latest_versions().filter(rev_first=number, rev_last=number)


@dataclass(frozen=True)
class ProductFilters:
    """What a person can filter the product list on; every field is optional.

    Intervals follow the semantics of the previous gallery's client: a product matches an
    energy band, a revolution range or a time span when its own interval lies inside it.
    """

    instrument: str = ""  # code or family
    kind: str = ""  # code or category
    t_start: datetime | None = None
    t_end: datetime | None = None
    e_min_kev: float | None = None
    e_max_kev: float | None = None
    source_ids: tuple[int, ...] | None = None  # None: any; (): no source matched
    object_class: str = ""
    object_class_codes: tuple[str, ...] | None = None  # the class and its sub-classes, if known
    rev_min: int | None = None
    rev_max: int | None = None
    cone: tuple[float, float, float] | None = None  # (ra_deg, dec_deg, radius_deg)
    latest_only: bool = True


def filter_products(queryset: QuerySet[Product], filters: ProductFilters) -> QuerySet[Product]:
    """Apply ``filters`` with conditions the indexes of the product table can serve."""
    f = filters
    if f.latest_only:
        queryset = queryset.latest_versions()
    if f.instrument:
        queryset = queryset.filter(instrument_id__in=instrument_ids(f.instrument))
    if f.kind:
        queryset = queryset.filter(kind_id__in=kind_ids(f.kind))
    if f.t_start is not None:
        queryset = queryset.filter(time_start__gte=f.t_start)
    if f.t_end is not None:
        # time_start <= t_end bounds the index range; time_end <= t_end is the real test.
        queryset = queryset.filter(time_start__lte=f.t_end, time_end__lte=f.t_end)
    if f.e_min_kev is not None:
        queryset = queryset.filter(e_min_kev__gte=f.e_min_kev)
    if f.e_max_kev is not None:
        queryset = queryset.filter(e_max_kev__lte=f.e_max_kev)
    if f.rev_min is not None:
        queryset = queryset.filter(rev_first__gte=f.rev_min)
    if f.rev_max is not None:
        queryset = queryset.filter(rev_first__lte=f.rev_max, rev_last__lte=f.rev_max)
    if f.source_ids is not None:
        linked = ProductSource.objects.filter(source_id__in=f.source_ids).values("product_id")
        queryset = queryset.filter(pk__in=linked)
    if f.object_class:
        codes = (
            list(f.object_class_codes)
            if f.object_class_codes is not None
            else class_codes(f.object_class)
        )
        linked = ProductSource.objects.filter(source__object_class__code__in=codes).values(
            "product_id"
        )
        queryset = queryset.filter(pk__in=linked)
    if f.cone is not None:
        queryset = cone_filter(queryset, *f.cone)
    return queryset


def class_codes(code: str) -> list[str]:
    """A class code and those of all its sub-classes (an unknown code selects nothing)."""
    cls = SourceClass.objects.filter(code__iexact=code).first()
    return cls.descendant_codes() if cls is not None else []


@dataclass
class KeysetPage:
    """One page of a list read by keyset (no COUNT and no OFFSET over the whole table)."""

    items: list
    next_cursor: str | None
    previous_cursor: str | None

    @property
    def has_other_pages(self) -> bool:
        return bool(self.next_cursor or self.previous_cursor)


def _encode_cursor(product: Product, direction: str) -> str:
    raw = f"{direction}|{product.created.isoformat()}|{product.pk}"
    return urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, datetime, int] | None:
    try:
        raw = urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        direction, created, pk = raw.split("|")
        when = datetime.fromisoformat(created)
        if direction not in ("after", "before") or when.tzinfo is None:
            return None
        return direction, when, int(pk)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return None


def keyset_page(queryset: QuerySet[Product], cursor: str | None, size: int = 50) -> KeysetPage:
    """Newest first, ``size`` rows from where ``cursor`` points (a bad cursor: first page)."""
    decoded = _decode_cursor(cursor) if cursor else None
    if decoded is None:
        rows = list(queryset.order_by("-created", "-pk")[: size + 1])
        more, items = len(rows) > size, rows[:size]
        return KeysetPage(items, _encode_cursor(items[-1], "after") if more else None, None)
    direction, created, pk = decoded
    if direction == "after":
        # created <= x bounds the index range; the OR breaks ties between equal timestamps.
        page = queryset.filter(created__lte=created).filter(
            Q(created__lt=created) | Q(created=created, pk__lt=pk)
        )
        rows = list(page.order_by("-created", "-pk")[: size + 1])
        more, items = len(rows) > size, rows[:size]
        return KeysetPage(
            items,
            _encode_cursor(items[-1], "after") if more and items else None,
            _encode_cursor(items[0], "before") if items else None,
        )
    page = queryset.filter(created__gte=created).filter(
        Q(created__gt=created) | Q(created=created, pk__gt=pk)
    )
    rows = list(page.order_by("created", "pk")[: size + 1])
    more, items = len(rows) > size, rows[:size][::-1]
    return KeysetPage(
        items,
        _encode_cursor(items[-1], "after") if items else None,
        _encode_cursor(items[0], "before") if more and items else None,
    )


def limited_count(queryset: QuerySet, limit: int = 1000) -> tuple[int, bool]:
    """How many rows, counted up to ``limit`` only; returns (count, whether there are more)."""
    n = queryset.order_by()[: limit + 1].count()
    return min(n, limit), n > limit


def source_span(source, user) -> dict:
    """Number of products of a source and the time and revolution span of its data (one
    aggregate query)."""
    return products_of_source(source, user).aggregate(
        n=Count("pk"),
        t_first=Min("time_start"),
        t_last=Max("time_end"),
        rev_first=Min("rev_first"),
        rev_last=Max("rev_last"),
    )


def counts_by_instrument_and_kind(queryset: QuerySet[Product]) -> list[dict]:
    """[{instrument__code, instrument__name, kind__code, kind__name, n}] for a product list."""
    return list(
        queryset.order_by()
        .values("instrument__code", "instrument__name", "kind__code", "kind__name")
        .annotate(n=Count("pk"))
        .order_by("instrument__name", "kind__name")
    )
