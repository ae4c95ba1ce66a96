"""Read-side queries shaped for the pages (visibility always through ``visible_to``).

Each page's queries are bounded whatever the size of the archive: lists are paginated by
index-friendly conditions, groups are aggregates, and previews are fetched for a whole page at
once. ``tests/gallery/pages/test_query_counts.py`` guards the number of queries per page.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import OperationalError, connection, transaction
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import TruncYear
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from products import selectors
from products.models import Product, ProductSource
from sources.models import Source

from .forms import INSTRUMENT_CHOICES, SOURCE_SORTS

log = logging.getLogger(__name__)

#: A product spanning at least this many revolutions counts as long-baseline.
LONG_BASELINE_MIN_SPAN = 1
STATISTICS_CACHE_SECONDS = 600
REVOLUTION_RUNS_TEMPLATE = "includes/revolution_runs.html"


# --- sources ---------------------------------------------------------------------------------


def source_list(q: str = "", class_code: str = "", sort: str = "name") -> QuerySet[Source]:
    """Active sources, searched in their names and aliases (normalised), of a class and its
    sub-classes, sorted by one of ``forms.SOURCE_SORTS``."""
    sources = Source.objects.active().select_related("object_class")
    if q:
        sources = sources.name_contains(q)
    if class_code:
        sources = sources.of_class(class_code)
    return sources.order_by(*SOURCE_SORTS.get(sort, SOURCE_SORTS["name"]))


@dataclass
class SourcePage:
    source: Source
    span: dict
    counts: list[dict]
    bands: list[dict]
    highlights: list[Product]
    long_baseline: list[Product]
    page: object
    previews: dict
    selected: dict = field(default_factory=dict)


class KnownCountPaginator(Paginator):
    """A paginator told its count (already known from an aggregate): no COUNT query."""

    def __init__(self, object_list, per_page, count: int):
        super().__init__(object_list, per_page)
        self.__dict__["count"] = count


#: Columns a product table needs; the JSON metadata is left in the database.
LISTING_DEFERRED = ("metadata", "provenance", "produced_by")


def source_page(
    source: Source, user, *, instrument: str = "", kind: str = "", page_number=None
) -> SourcePage:
    """Everything the source page shows, in six queries whatever the number of products."""
    # Built once: visibility_q reads the user's groups when the queryset is made.
    products = selectors.products_of_source(source, user)
    # One aggregate gives the counts per instrument and kind, the bands for the light curve,
    # the time and revolution span and the size of the (filtered) list.
    rows = list(
        products.order_by()
        .values(
            "instrument__code",
            "instrument__name",
            "kind__code",
            "kind__name",
            "kind__category",
            "e_min_kev",
            "e_max_kev",
        )
        .annotate(
            n=Count("pk"),
            t_first=Min("time_start"),
            t_last=Max("time_end"),
            rev_first=Min("rev_first"),
            rev_last=Max("rev_last"),
        )
    )
    counts: dict[tuple, dict] = {}
    bands: dict[tuple, dict] = {}
    listed_count = 0
    for row in rows:
        key = (row["instrument__name"], row["kind__name"])
        entry = counts.setdefault(
            key,
            {
                "instrument": row["instrument__code"],
                "instrument_name": row["instrument__name"],
                "kind": row["kind__code"],
                "kind_name": row["kind__name"],
                "n": 0,
            },
        )
        entry["n"] += row["n"]
        if (not instrument or row["instrument__code"] == instrument) and (
            not kind or row["kind__code"] == kind
        ):
            listed_count += row["n"]
        if row["kind__category"] in ("lightcurve", "image") and row["e_min_kev"] is not None:
            band = (row["instrument__code"], row["e_min_kev"], row["e_max_kev"])
            bands.setdefault(
                band,
                {
                    "instrument": row["instrument__code"],
                    "e_min_kev": row["e_min_kev"],
                    "e_max_kev": row["e_max_kev"],
                    "n": 0,
                },
            )["n"] += row["n"]
    listed = products.select_related("kind", "instrument").defer(*LISTING_DEFERRED)
    if instrument:
        listed = listed.filter(instrument__code=instrument)
    if kind:
        listed = listed.filter(kind__code=kind)
    page = KnownCountPaginator(listed.order_by("-time_start", "-pk"), 50, listed_count).get_page(
        page_number
    )
    # Highlights and long-baseline products: their ids first, driven by the source's links
    # (an OR that no single index serves, so the planner never walks the global highlight
    # index of a million products), then the few rows shown.
    candidates = list(
        products.filter(Q(is_highlight=True) | Q(rev_span__gte=LONG_BASELINE_MIN_SPAN))
        .order_by()
        .values_list("pk", "is_highlight", "rev_span")
    )
    highlight_ids = sorted((pk for pk, featured, _ in candidates if featured), reverse=True)[:6]
    long_ids = [
        pk
        for pk, _, span in sorted(
            (c for c in candidates if (c[2] or 0) >= LONG_BASELINE_MIN_SPAN),
            key=lambda c: (-c[2], -c[0]),
        )[:12]
    ]
    chosen = Product.objects.select_related("kind", "instrument").defer(*LISTING_DEFERRED)
    by_pk = chosen.in_bulk(set(highlight_ids) | set(long_ids)) if candidates else {}
    highlights = [by_pk[pk] for pk in highlight_ids]
    long_baseline = [by_pk[pk] for pk in long_ids]
    shown = highlights + long_baseline + list(page.object_list)
    return SourcePage(
        source=source,
        span=_span(rows),
        counts=sorted(counts.values(), key=lambda c: (c["instrument_name"], c["kind_name"])),
        bands=sorted(bands.values(), key=lambda b: -b["n"]),
        highlights=highlights,
        long_baseline=long_baseline,
        page=page,
        previews=selectors.preview_map(shown),
        selected={"instrument": instrument, "kind": kind},
    )


def _span(rows: list[dict]) -> dict:
    """Number of products and the time and revolution span, from the grouped rows."""

    def pick(key, fn):
        values = [r[key] for r in rows if r[key] is not None]
        return fn(values) if values else None

    return {
        "n": sum(r["n"] for r in rows),
        "t_first": pick("t_first", min),
        "t_last": pick("t_last", max),
        "rev_first": pick("rev_first", min),
        "rev_last": pick("rev_last", max),
    }


def lightcurve_panel(source: Source, bands: list[dict]) -> dict | None:
    """Settings of the long-term light curve drawn in the browser, or None when there is
    nothing to draw: no light curve or image of the source in any band (the flux points come
    from those), or no light-curve service routed."""
    if not bands:
        return None
    try:
        url = reverse("lightcurves:source-lightcurve", args=[source.slug])
    except NoReverseMatch:
        url = f"/api/v1/sources/{source.slug}/lightcurve"
        try:
            resolve(url)
        except Resolver404:
            return None
    preferred = next((b for b in bands if b["instrument"] == "isgri"), bands[0])
    names = dict(INSTRUMENT_CHOICES)
    codes = sorted({b["instrument"] for b in bands})
    return {
        "instruments": [(code, names.get(code, code)) for code in codes],
        "url": url,
        "instrument": preferred["instrument"],
        "e_min_kev": preferred["e_min_kev"],
        "e_max_kev": preferred["e_max_kev"],
        "bands": bands,
    }


# --- revolutions -----------------------------------------------------------------------------


@dataclass
class ObservationGroup:
    observation: object | None
    images: list[Product]
    others: list[Product]


def revolution_page(
    number: int, user, *, instrument: str = "", kind: str = "", page_number=None
) -> dict:
    """The products of one revolution grouped per observation, images first with their
    previews and detected sources."""
    products = selectors.revolution_products(number, user)
    if instrument:
        products = products.filter(instrument_id__in=selectors.instrument_ids(instrument))
    if kind:
        products = products.filter(kind_id__in=selectors.kind_ids(kind))
    products = (
        products.select_related("kind", "instrument", "observation")
        .prefetch_related("source_links__source")
        .order_by(
            "observation__time_start",
            "observation_id",
            "kind__name",
            "instrument__name",
            "title",
            "pk",
        )  # fmt: skip
    )
    page = Paginator(products, 60).get_page(page_number)
    groups: OrderedDict = OrderedDict()
    for product in page.object_list:
        group = groups.setdefault(
            product.observation_id, ObservationGroup(product.observation, [], [])
        )
        (group.images if product.kind.category == "image" else group.others).append(product)
    return {
        "page": page,
        "groups": list(groups.values()),
        "previews": selectors.preview_map(page.object_list),
    }


def revolution_runs_template() -> str | None:
    """The processing-log include when the installed version has it (it is optional)."""
    try:
        get_template(REVOLUTION_RUNS_TEMPLATE)
    except TemplateDoesNotExist:
        return None
    return REVOLUTION_RUNS_TEMPLATE


def detected_rows(product: Product) -> list[dict]:
    """Detected sources of an image or catalogue: the table the ingest kept in the metadata,
    completed by the linked sources it does not list, strongest first."""
    rows = [dict(r) for r in (product.metadata or {}).get("detected_sources", [])]
    listed = {r.get("source") for r in rows}
    for link in product.source_links.all():
        if link.role == ProductSource.Role.DETECTED and link.source.slug not in listed:
            rows.append(
                {
                    "name": link.source.name,
                    "source": link.source.slug,
                    "ra_deg": link.source.ra_deg,
                    "dec_deg": link.source.dec_deg,
                    "significance": link.significance,
                }
            )
    return sorted(rows, key=lambda r: -(r.get("significance") or 0))


# --- statistics ------------------------------------------------------------------------------


def statistics(user) -> dict:
    """Aggregates of the public archive, cached briefly (each is a scan of the product table).

    Curators see the same public figures: statistics describe what the archive publishes.
    """
    key = "gallery:pages:statistics:v1"
    cached = cache.get(key)
    if cached is not None:
        return cached
    public = selectors.visible_products(None).latest_versions()
    per_year = list(
        public.filter(time_start__isnull=False)
        .annotate(year=TruncYear("time_start"))
        .values("year")
        .annotate(n=Count("pk"))
        .order_by("year")
    )
    sources_per_year = list(
        ProductSource.objects.filter(
            product__in=public.filter(time_start__isnull=False).values("pk")
        )
        .annotate(year=TruncYear("product__time_start"))
        .values("year")
        .annotate(n=Count("source", distinct=True))
        .order_by("year")
    )
    per_kind = list(public.order_by().values("kind__name").annotate(n=Count("pk")).order_by("-n"))
    delays = list(
        public.filter(rev_first__isnull=False, rev_span=0)
        .values("rev_first")
        .annotate(first=Min("created"), last=Max("created"), observed=Max("time_end"))
        .order_by("rev_first")
    )
    rows = []
    for row in delays:
        if row["observed"] is None:
            continue
        rows.append(
            {
                "revolution": row["rev_first"],
                "first_days": _days(row["first"] - row["observed"]),
                "last_days": _days(row["last"] - row["observed"]),
            }
        )
    data = {
        "per_year": [{"year": r["year"].year, "n": r["n"]} for r in per_year if r["year"]],
        "sources_per_year": [
            {"year": r["year"].year, "n": r["n"]} for r in sources_per_year if r["year"]
        ],
        "per_kind": [{"kind": r["kind__name"], "n": r["n"]} for r in per_kind],
        "delays": rows,
        "n_products": sum(r["n"] for r in per_kind),
        "n_sources": Source.objects.active().count(),
        "n_revolutions": len(rows),
    }
    cache.set(key, data, STATISTICS_CACHE_SECONDS)
    return data


def _days(delta: timedelta) -> float:
    return round(delta.total_seconds() / 86400.0, 3)


# --- name resolution -------------------------------------------------------------------------


@dataclass
class Resolution:
    name: str
    ra_deg: float | None = None
    dec_deg: float | None = None
    source: Source | None = None
    resolver: str = ""

    @property
    def resolved(self) -> bool:
        return self.ra_deg is not None

    @property
    def message(self) -> str:
        if self.resolved:
            return f"{self.name} successfully resolved ({self.resolver})"
        return f"{self.name} could not be resolved"


def resolve_name(name: str) -> Resolution:
    """The local catalogue first (names and aliases); CDS Sesame only when
    ``GALLERY_ONLINE_RESOLVER`` is set (with a short timeout)."""
    name = " ".join((name or "").split())[:100]
    if not name:
        return Resolution(name="(empty name)")
    found = Source.objects.named(name).select_related("merged_into").first()
    if found is not None:
        found = found.merged_into or found
        if found.ra_deg is not None:
            return Resolution(
                found.name, found.ra_deg, found.dec_deg, found, "the Gallery's catalogue"
            )
    if getattr(settings, "GALLERY_ONLINE_RESOLVER", False):
        return _resolve_online(name)
    return Resolution(name)


def _resolve_online(name: str) -> Resolution:
    from astropy.coordinates import SkyCoord
    from astropy.utils.data import conf

    try:
        with conf.set_temp("remote_timeout", 5.0):
            coord = SkyCoord.from_name(name, parse=False, cache=False)
    except Exception as exc:  # noqa: BLE001 - network and lookup errors alike mean "unknown"
        log.info("online resolution of %r failed: %s", name, exc)
        return Resolution(name)
    icrs = coord.icrs
    return Resolution(name, float(icrs.ra.deg), float(icrs.dec.deg), None, "CDS Sesame")


# --- explore ---------------------------------------------------------------------------------


def explore_queryset(user, filters: selectors.ProductFilters) -> QuerySet[Product]:
    return (
        selectors.filter_products(selectors.visible_products(user), filters)
        .select_related("kind", "instrument")
        .defer(*LISTING_DEFERRED)
    )


def neighbour_revolutions(number: int) -> tuple[int | None, int]:
    return (number - 1 if number > 1 else None), number + 1


def bounded_count(queryset: QuerySet, limit: int = 1000, timeout_ms: int = 150) -> tuple:
    """(count, more) counted up to ``limit``; (None, True) when counting would take longer than
    ``timeout_ms`` on PostgreSQL (filters that match few of a million rows scan many)."""
    if connection.vendor != "postgresql":
        return selectors.limited_count(queryset, limit)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('statement_timeout'), "
                "set_config('statement_timeout', %s, true)",
                [f"{timeout_ms}ms"],
            )
            previous = cursor.fetchone()[0]
            result = selectors.limited_count(queryset, limit)
            # Inside an outer transaction the setting would outlive this block: put it back.
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
            return result
    except OperationalError:
        # The timeout cancelled the count; the savepoint's rollback undid the setting.
        return None, True
