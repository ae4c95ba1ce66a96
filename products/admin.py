"""Curation of the archive: search and filters on every model, publish / hide / feature
actions, grants and embargo, files and fits inline, and the history of every change
(django-simple-history records who changed what and when).

Reprocessing needs the ingest layer and is added to ``ProductAdmin`` by
``gallery.pages.curation``.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from simple_history.admin import SimpleHistoryAdmin
from simple_history.utils import bulk_update_with_history

from .models import (
    FluxPoint,
    Instrument,
    Observation,
    Product,
    ProductFile,
    ProductKind,
    ProductSource,
    Revolution,
    SpectralFit,
    Tag,
)


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP`` rows: a full COUNT over a million products takes seconds, and
    a curator narrows such a list with search and filters anyway."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list.order_by()[: self.CAP].count()


class LargeTableAdmin(admin.ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "family", "e_min_kev", "e_max_kev", "match_radius_arcmin")
    list_filter = ("family",)
    search_fields = ("code", "name", "family")


@admin.register(ProductKind)
class ProductKindAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "category")
    list_filter = ("category",)
    search_fields = ("code", "name")


@admin.register(Revolution)
class RevolutionAdmin(admin.ModelAdmin):
    list_display = ("number", "start", "end", "data_level")
    list_filter = ("data_level",)
    search_fields = ("=number",)
    ordering = ("-number",)


@admin.register(Observation)
class ObservationAdmin(LargeTableAdmin):
    list_display = ("title", "obsid", "expid", "pi_name", "revolution", "time_start", "time_end")
    list_filter = ("revolution__data_level",)
    search_fields = ("title", "=obsid", "=expid", "pi_name")
    raw_id_fields = ("revolution",)
    readonly_fields = ("healpix", "cx", "cy", "cz", "created")


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ("name",)


class ProductFileInline(admin.TabularInline):
    model = ProductFile
    extra = 0
    fields = ("role", "original_name", "file", "sha256", "size_bytes", "content_type")
    readonly_fields = ("file", "sha256", "size_bytes", "content_type")
    show_change_link = True


class SpectralFitInline(admin.StackedInline):
    model = SpectralFit
    extra = 0
    fields = (
        "model",
        "is_preferred",
        "parameters",
        ("statistic", "statistic_value", "dof"),
        ("e_min_kev", "e_max_kev"),
        ("flux_erg_cm2_s", "flux_error"),
    )
    readonly_fields = (
        "model",
        "parameters",
        "statistic",
        "statistic_value",
        "dof",
        "e_min_kev",
        "e_max_kev",
        "flux_erg_cm2_s",
        "flux_error",
    )


class ProductSourceInline(admin.TabularInline):
    model = ProductSource
    extra = 0
    raw_id_fields = ("source",)
    fields = ("source", "role", "significance")


class ProductStatusFilter(admin.SimpleListFilter):
    title = "version"
    parameter_name = "latest"

    def lookups(self, request, model_admin):
        return [("yes", "newest version"), ("no", "superseded")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(superseded_by__isnull=True)
        if self.value() == "no":
            return queryset.filter(superseded_by__isnull=False)
        return queryset


@admin.register(Product)
class ProductAdmin(SimpleHistoryAdmin, LargeTableAdmin):
    list_display = (
        "title",
        "kind",
        "instrument",
        "rev_first",
        "status",
        "access",
        "embargo_until",
        "is_highlight",
        "version",
        "created",
    )
    list_filter = (
        "status",
        "access",
        "is_highlight",
        ProductStatusFilter,
        "kind",
        "instrument",
        "data_level",
        "osa_version",
        "tags",
    )
    list_select_related = ("kind", "instrument")
    search_fields = ("title", "=uuid", "=external_id", "=content_key", "series_key")
    search_help_text = "Title words; or an exact UUID, producer's id or content key."
    raw_id_fields = ("observation", "superseded_by", "submitted_by")
    filter_horizontal = ("granted_groups", "tags")
    readonly_fields = (
        "uuid",
        "content_key",
        "series_key",
        "version",
        "rev_span",
        "healpix",
        "created",
        "updated",
    )
    fieldsets = (
        (None, {"fields": ("title", "uuid", "kind", "instrument", "status", "is_highlight")}),
        ("Access", {"fields": ("access", "embargo_until", "granted_groups")}),
        (
            "Coverage",
            {
                "fields": (
                    ("e_min_kev", "e_max_kev"),
                    ("time_start", "time_end"),
                    ("rev_first", "rev_last", "rev_span"),
                    ("ra_deg", "dec_deg", "healpix"),
                    "exposure_s",
                    "observation",
                )
            },
        ),
        (
            "Provenance",
            {
                "fields": (
                    "osa_version",
                    "data_level",
                    "produced_by",
                    "external_id",
                    "provenance",
                    "submitted_by",
                    "tags",
                )
            },
        ),
        (
            "Versions",
            {"fields": ("series_key", "version", "superseded_by", "content_key")},
        ),
        ("Metadata", {"classes": ("collapse",), "fields": ("metadata", "created", "updated")}),
    )
    inlines = (ProductSourceInline, ProductFileInline, SpectralFitInline)
    actions = ["publish", "hide", "feature", "unfeature"]
    history_list_display = ("status", "access", "is_highlight")

    def _set(self, request, queryset, field: str, value, what: str) -> None:
        products = list(queryset)
        for product in products:
            setattr(product, field, value)
        # Through simple_history so that the change is recorded with who made it.
        bulk_update_with_history(
            products,
            Product,
            [field],
            default_user=request.user,
            default_change_reason=f"admin action: {what}",
        )
        self.message_user(request, f"{len(products)} product(s) {what}.")

    @admin.action(description="Publish the selected products", permissions=["change"])
    def publish(self, request, queryset):
        self._set(request, queryset, "status", Product.Status.PUBLISHED, "published")

    @admin.action(description="Hide the selected products", permissions=["change"])
    def hide(self, request, queryset):
        self._set(request, queryset, "status", Product.Status.HIDDEN, "hidden")

    @admin.action(description="Feature the selected products (highlights)", permissions=["change"])
    def feature(self, request, queryset):
        self._set(request, queryset, "is_highlight", True, "featured")

    @admin.action(description="Stop featuring the selected products", permissions=["change"])
    def unfeature(self, request, queryset):
        self._set(request, queryset, "is_highlight", False, "no longer featured")


@admin.register(ProductFile)
class ProductFileAdmin(LargeTableAdmin):
    list_display = ("__str__", "product", "role", "size_bytes", "content_type")
    list_filter = ("role", "content_type")
    list_select_related = ("product",)
    search_fields = ("original_name", "=sha256", "product__title")
    raw_id_fields = ("product",)
    readonly_fields = ("sha256", "size_bytes", "extension")


@admin.register(ProductSource)
class ProductSourceAdmin(LargeTableAdmin):
    list_display = ("source", "product", "role", "significance")
    list_filter = ("role",)
    list_select_related = ("source", "product")
    search_fields = ("source__name", "product__title")
    raw_id_fields = ("product", "source")


@admin.register(SpectralFit)
class SpectralFitAdmin(LargeTableAdmin):
    list_display = ("product", "model", "statistic_value", "dof", "is_preferred")
    list_filter = ("model", "is_preferred")
    list_select_related = ("product",)
    search_fields = ("product__title", "model")
    raw_id_fields = ("product",)


@admin.register(FluxPoint)
class FluxPointAdmin(LargeTableAdmin):
    list_display = ("source", "instrument", "t_start_ijd", "flux", "flux_error", "revolution")
    list_filter = ("instrument", "is_upper_limit")
    list_select_related = ("source", "instrument")
    search_fields = ("source__name", "=scw_id", "=revolution")
    raw_id_fields = ("source", "product", "observation")

    def get_queryset(self, request):
        # Ten million rows: never sort them by a column without an index.
        return super().get_queryset(request).order_by("-pk")
