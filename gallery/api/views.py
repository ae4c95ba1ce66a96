"""Views of the REST API. Thin: visibility comes from ``Product.objects.visible_to``, queries
from the filter sets and the domain modules, writes from ``uploads`` and ``editing``."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Prefetch, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest.models import IngestJob
from products import timeline
from products.models import (
    Observation,
    Product,
    ProductSource,
    Revolution,
    everything_visible_to,
)
from sources.merge import MergeError, merge_sources
from sources.models import Source

from . import (
    examples,
    schema,  # noqa: F401  (registers the token scheme with drf-spectacular)
)
from . import serializers as api_serializers
from .editing import hide_product, update_product
from .filters import (
    MAX_REVOLUTION,
    ObservationFilter,
    ProductFilter,
    RevolutionFilter,
    SourceFilter,
    spanning_revolution,
)
from .pagination import KeysetPagination, NumberedPagination
from .permissions import CONTRIBUTOR_FIELDS, CuratorOrOwnContributor, ReadOnlyOrRole, is_curator
from .uploads import check_declared_size, submit, watch_upload_size

TIME_FORMATS = timeline.TIME_FORMATS
ERROR = inline_serializer(
    "Error", fields={"detail": serializers.CharField(help_text="What went wrong.")}
)
FIELD_ERRORS = OpenApiResponse(
    response=OpenApiTypes.OBJECT,
    description="Invalid parameters: each faulty field with its reasons, or `detail`.",
    examples=[examples.ERROR_FIELD],
)
NOT_FOUND = OpenApiResponse(
    ERROR,
    description="No such object, or not visible to you.",
    examples=[examples.NOT_FOUND],
)
NO_PAGE = OpenApiResponse(ERROR, description="No such page.")
UUID_REGEX = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"


def product_counts(queryset: QuerySet[Product]) -> list[dict]:
    """Products per instrument and kind, from a queryset already restricted by visibility."""
    return _count_rows(queryset)


def cached_product_counts(key: str, user, queryset: QuerySet[Product]) -> list[dict]:
    """``product_counts`` kept for a short while (settings.GALLERY_API_COUNTS_CACHE_SECONDS).

    A source observed for twenty years has tens of thousands of products: counting them on
    every request costs a few hundred milliseconds. The cache key holds what decides
    visibility (everything for curators; otherwise the user's groups, none for anonymous
    users), so a count is only ever served to those who may see the same products.
    """
    seconds = settings.GALLERY_API_COUNTS_CACHE_SECONDS
    if seconds <= 0:
        return _count_rows(queryset)
    if everything_visible_to(user):
        audience = "all"
    elif user is not None and user.is_authenticated:
        groups = sorted(user.groups.values_list("pk", flat=True))
        audience = "g" + ".".join(map(str, groups)) if groups else "public"
    else:
        audience = "public"
    cache_key = f"api:counts:{key}:{audience}"
    counts = cache.get(cache_key)
    if counts is None:
        counts = _count_rows(queryset)
        cache.set(cache_key, counts, seconds)
    return counts


def _count_rows(queryset: QuerySet[Product]) -> list[dict]:
    rows = (
        queryset.order_by()
        .values("instrument__code", "kind__code")
        .annotate(n=Count("pk"))
        .order_by("instrument__code", "kind__code")
    )
    return [
        {"instrument": r["instrument__code"], "kind": r["kind__code"], "count": r["n"]}
        for r in rows
    ]


def attach_links_and_tags(products: list[Product]) -> None:
    """Give each product its source links and tag names, two queries for a whole page.

    Plain rows rather than model instances: on a page of products with a few hundred links,
    building the instances costs more than the queries.
    """
    by_id = {p.pk: p for p in products}
    for product in products:
        product.api_source_rows, product.api_tag_names = [], []
    if not by_id:
        return
    links = (
        ProductSource.objects.filter(product_id__in=list(by_id))
        .order_by()
        .values_list(
            "product_id", "source_id", "source__name", "source__slug", "role", "significance"
        )
    )
    for product_id, source_id, name, slug, role, significance in links:
        by_id[product_id].api_source_rows.append(
            {
                "id": source_id,
                "name": name,
                "slug": slug,
                "role": role,
                "significance": significance,
            }
        )
    for product in products:
        product.api_source_rows.sort(key=api_serializers.link_order)
    tags = (
        Product.tags.through.objects.filter(product_id__in=list(by_id))
        .order_by("product_id", "tag__name")
        .values_list("product_id", "tag__name")
    )
    for product_id, name in tags:
        by_id[product_id].api_tag_names.append(name)


# --- sources --------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Search sources",
        description=(
            "Sources by name or alias (normalised), class (with its sub-classes) and cone. "
            "With a cone (`ra`, `dec`, `radius` in degrees) the nearest come first and each "
            "row gives its `distance_deg`. Merged sources are not listed (their names find "
            "the source they were merged into)."
        ),
        examples=[examples.SOURCE_LIST],
        responses={
            200: api_serializers.SourceSerializer(many=True),
            400: FIELD_ERRORS,
            404: NO_PAGE,
        },
    ),
    retrieve=extend_schema(
        summary="A source",
        description=(
            "A source by id or slug, with its aliases, class, catalogue link and the number "
            "of products you may see per instrument and kind. A merged source answers 301 "
            "with the URL of the source it was merged into."
        ),
        parameters=[
            OpenApiParameter(
                "id", OpenApiTypes.STR, OpenApiParameter.PATH, description="Source id or slug."
            )
        ],
        examples=[examples.SOURCE_DETAIL],
        responses={
            200: api_serializers.SourceDetailSerializer,
            301: OpenApiResponse(ERROR, description="Merged: see the Location header."),
            404: NOT_FOUND,
        },
    ),
)
class SourceViewSet(viewsets.ReadOnlyModelViewSet):
    filterset_class = SourceFilter
    pagination_class = NumberedPagination
    permission_classes = [ReadOnlyOrRole]
    write_roles = {"merge": "curator"}
    lookup_field = "id"
    lookup_value_regex = r"[-\w]{1,120}"

    def get_queryset(self) -> QuerySet[Source]:
        queryset = Source.objects.select_related("object_class").prefetch_related("names")
        return queryset.active() if self.action == "list" else queryset

    def get_serializer_class(self):
        if self.action == "retrieve":
            return api_serializers.SourceDetailSerializer
        if self.action == "merge":
            return api_serializers.MergeSerializer
        return api_serializers.SourceSerializer

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        params = self.request.query_params if self.request else {}
        try:
            context["cone"] = (float(params["ra"]) % 360.0, float(params["dec"]))
        except (KeyError, ValueError, TypeError):
            context["cone"] = None
        return context

    def get_object(self) -> Source:
        value = self.kwargs["id"]
        queryset = Source.objects.select_related("object_class", "merged_into")
        if value.isdigit() and len(value) <= 18:
            source = queryset.filter(pk=int(value)).first()
        else:
            source = queryset.filter(slug=value).first()
        if source is None:
            raise NotFound(f"No source with id or slug {value[:60]!r}.")
        self.check_object_permissions(self.request, source)
        return source

    def retrieve(self, request, *args, **kwargs) -> Response:
        source = self.get_object()
        if source.merged_into_id:
            target = source.merged_into
            while target.merged_into_id:  # merges keep no chains; old data might
                target = target.merged_into
            location = request.build_absolute_uri(
                self.reverse_action("detail", kwargs={"id": target.pk})
            )
            return Response(
                {"detail": f"{source.name} was merged into {target.name}.", "url": location},
                status=status.HTTP_301_MOVED_PERMANENTLY,
                headers={"Location": location},
            )
        visible = Product.objects.visible_to(request.user).latest_versions()
        counts = cached_product_counts(
            f"source:{source.pk}", request.user, visible.filter(source_links__source=source)
        )
        serializer = api_serializers.SourceDetailSerializer(
            source, context={**self.get_serializer_context(), "product_counts": counts}
        )
        return Response(serializer.data)

    @extend_schema(
        summary="Merge a source into another (curators)",
        description=(
            "The source of the URL is merged into `into` (id, slug, name or alias): its names "
            "become aliases of `into`, its product links and flux points move there, and its "
            "URL redirects there. Answers the remaining source."
        ),
        request=api_serializers.MergeSerializer,
        examples=[examples.MERGE_REQUEST, examples.SOURCE_DETAIL],
        responses={
            200: api_serializers.SourceDetailSerializer,
            400: FIELD_ERRORS,
            401: ERROR,
            403: ERROR,
            404: NOT_FOUND,
        },
    )
    @action(detail=True, methods=["post"])
    def merge(self, request, *args, **kwargs) -> Response:
        source = self.get_object()
        body = api_serializers.MergeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        into = _find_source(body.validated_data["into"])
        if into is None:
            raise ValidationError({"into": [f"no source {body.validated_data['into']!r}"]})
        try:
            into = merge_sources(source, into)
        except MergeError as exc:
            raise ValidationError({"into": [str(exc)]}) from None
        visible = Product.objects.visible_to(request.user).latest_versions()
        counts = product_counts(visible.filter(source_links__source=into))
        data = api_serializers.SourceDetailSerializer(
            into, context={**self.get_serializer_context(), "product_counts": counts}
        ).data
        return Response(data)


def _find_source(text: str) -> Source | None:
    text = text.strip()
    if text.isdigit() and len(text) <= 18:
        found = Source.objects.filter(pk=int(text)).first()
        if found is not None:
            return found
    return Source.objects.filter(slug=text).first() or Source.objects.named(text).first()


# --- revolutions and observations -------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List revolutions",
        description="Revolutions known to the archive, newest first, with their start and end.",
        examples=[examples.REVOLUTION_LIST],
        responses={
            200: api_serializers.RevolutionSerializer(many=True),
            400: FIELD_ERRORS,
            404: NO_PAGE,
        },
    ),
    retrieve=extend_schema(
        summary="A revolution",
        description=(
            "A revolution by number (from the perigee table; later ones from the orbital "
            "period), its observations and the number of visible products per instrument and "
            "kind whose revolution span includes it; `products_url` lists them."
        ),
        examples=[examples.REVOLUTION_DETAIL],
        responses={200: api_serializers.RevolutionDetailSerializer, 404: NOT_FOUND},
    ),
)
class RevolutionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Revolution.objects.order_by("-number")
    filterset_class = RevolutionFilter
    pagination_class = NumberedPagination
    lookup_field = "number"
    lookup_value_regex = r"\d{1,5}"

    def get_serializer_class(self):
        if self.action == "retrieve":
            return api_serializers.RevolutionDetailSerializer
        return api_serializers.RevolutionSerializer

    def get_object(self) -> Revolution:
        number = int(self.kwargs["number"])
        if not 1 <= number <= MAX_REVOLUTION:
            raise NotFound(f"Revolutions are numbered from 1 to {MAX_REVOLUTION}.")
        revolution = Revolution.objects.filter(number=number).first()
        if revolution is None:
            # Known from the timeline even when no product was made in it: built, not saved.
            revolution = Revolution(
                number=number,
                start=timeline.to_datetime(timeline.revolution_start(number)),
                end=timeline.to_datetime(timeline.revolution_end(number)),
            )
        return revolution

    def retrieve(self, request, *args, **kwargs) -> Response:
        revolution = self.get_object()
        visible = Product.objects.visible_to(request.user).latest_versions()
        counts = product_counts(visible.filter(spanning_revolution(revolution.number)))
        serializer = self.get_serializer(revolution)
        serializer.context["product_counts"] = counts
        return Response(serializer.data)


@extend_schema_view(
    list=extend_schema(
        summary="List observations",
        description=(
            "Observations (science windows of one proposal within a revolution), newest "
            "first, by revolution, obsid, PI or pointing cone. Pages by cursor."
        ),
        examples=[examples.OBSERVATION_LIST],
        responses={200: api_serializers.ObservationSerializer(many=True), 400: FIELD_ERRORS},
    ),
    retrieve=extend_schema(
        summary="An observation",
        description=(
            "An observation with its science windows and the number of visible products per "
            "instrument and kind; `products_url` lists them."
        ),
        examples=[examples.OBSERVATION_DETAIL],
        responses={200: api_serializers.ObservationDetailSerializer, 404: NOT_FOUND},
    ),
)
class ObservationViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Observation.objects.all()
    filterset_class = ObservationFilter
    pagination_class = KeysetPagination
    keyset_orderings = {
        "-time_start": "time_start",
        "time_start": "time_start",
        "-rev_first": "rev_first",
        "rev_first": "rev_first",
        "-id": "id",
        "id": "id",
    }
    keyset_default = "-time_start"
    lookup_value_regex = r"\d{1,18}"

    def get_serializer_class(self):
        if self.action == "retrieve":
            return api_serializers.ObservationDetailSerializer
        return api_serializers.ObservationSerializer

    def retrieve(self, request, *args, **kwargs) -> Response:
        observation = self.get_object()
        visible = Product.objects.visible_to(request.user).latest_versions()
        serializer = self.get_serializer(observation)
        serializer.context["product_counts"] = product_counts(
            visible.filter(observation=observation)
        )
        return Response(serializer.data)


# --- products -------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Search products",
        description=(
            "Products you may see, latest versions only unless `all_versions=true`. Filters "
            "combine (AND). Spans and bands match when the product's lies *inside* the asked "
            "one; times match on overlap. Pages by cursor: follow `next`, which stays fast "
            "however deep you go."
        ),
        examples=[examples.PRODUCT_LIST],
        responses={200: api_serializers.ProductSerializer(many=True), 400: FIELD_ERRORS},
    ),
    retrieve=extend_schema(
        summary="A product",
        description=(
            "A product by UUID with its files (download links check visibility on every "
            "request), spectral fits, provenance, metadata, versions and sources."
        ),
        examples=[examples.PRODUCT_DETAIL],
        responses={200: api_serializers.ProductDetailSerializer, 404: NOT_FOUND},
    ),
    create=extend_schema(
        summary="Upload a product (contributors)",
        description=(
            "multipart/form-data with one or more `files` (FITS, gzip-FITS or an MMODA JSON "
            "catalogue; a spectrum with its RMF and ARF, recognised from their content) and "
            "optional `attachments` (PNG preview, HTML, YAML). The files are checked "
            "(size, content), staged and ingested by a worker: the answer is 202 with the "
            "job to poll. Files larger than the limit answer 413; content of the wrong type "
            "415; other bad input 400, naming the field."
        ),
        request={"multipart/form-data": api_serializers.ProductUploadSerializer},
        examples=[examples.UPLOAD_REQUEST, examples.UPLOAD_ACCEPTED],
        responses={
            202: api_serializers.JobSerializer,
            400: FIELD_ERRORS,
            401: ERROR,
            403: ERROR,
            413: FIELD_ERRORS,
            415: FIELD_ERRORS,
        },
    ),
    partial_update=extend_schema(
        summary="Edit a product's metadata",
        description=(
            "Curators change title, tags, status, highlight, access, embargo, granted groups "
            "and source links. Contributors may change only the title and tags of the "
            "products they submitted."
        ),
        request=api_serializers.ProductPatchSerializer,
        examples=[examples.PATCH_REQUEST, examples.PRODUCT_DETAIL],
        responses={
            200: api_serializers.ProductDetailSerializer,
            400: FIELD_ERRORS,
            401: ERROR,
            403: ERROR,
            404: NOT_FOUND,
        },
    ),
    destroy=extend_schema(
        summary="Hide a product (curators)",
        description=(
            "A soft delete: the product's status becomes `hidden`, so it disappears from every "
            "list, page and download for all but curators; its files and history are kept and "
            "a PATCH of `status` shows it again."
        ),
        responses={204: None, 401: ERROR, 403: ERROR, 404: NOT_FOUND},
    ),
)
class ProductViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    filterset_class = ProductFilter
    pagination_class = KeysetPagination
    keyset_orderings = {
        "-created": "created",
        "created": "created",
        "-time_start": "time_start",
        "time_start": "time_start",
        "-rev_first": "rev_first",
        "rev_first": "rev_first",
    }
    keyset_default = "-created"
    keyset_ordering_help = (
        "Order of the rows; `-` means descending. Default: `-rev_first` when a revolution "
        "filter is given, `-time_start` when a time filter is, else `-created` (newest "
        "additions first). Rows without the value come first when descending, last when "
        "ascending."
    )
    permission_classes = [ReadOnlyOrRole, CuratorOrOwnContributor]
    write_roles = {
        "create": "contributor",
        "partial_update": "contributor",
        "destroy": "curator",
    }
    lookup_field = "uuid"
    lookup_value_regex = UUID_REGEX
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Product]:
        queryset = Product.objects.visible_to(self.request.user).select_related(
            "kind", "instrument"
        )
        links = Prefetch(
            "source_links",
            queryset=ProductSource.objects.select_related("source").only(
                "id", "product_id", "role", "significance", "source__name", "source__slug"
            ),
        )
        if self.action == "list":
            # Links and tags come as plain rows (attach_links_and_tags); the JSON columns
            # can be large (a catalogue's detected sources) and lists do not show them.
            return queryset.defer("metadata", "provenance")
        queryset = queryset.prefetch_related(links, "tags")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("files", "fits", "granted_groups")
        return queryset

    def get_serializer_class(self):
        if self.action == "list":
            return api_serializers.ProductSerializer
        if self.action == "create":
            return api_serializers.ProductUploadSerializer
        if self.action == "partial_update":
            return api_serializers.ProductPatchSerializer
        return api_serializers.ProductDetailSerializer

    def initialize_request(self, request, *args, **kwargs):
        if request.method == "POST":
            # Before anything reads the body (the CSRF check of a session may): the size is
            # then watched while the upload streams in.
            watch_upload_size(request)
        return super().initialize_request(request, *args, **kwargs)

    def keyset_default_for(self, request) -> str:
        """The default order follows the filters: a revolution or time range is answered in
        that order, which the indexes serve directly (the order of addition correlates with
        time, so 'newest additions first' within an old range would scan most of the table)."""
        params = request.query_params
        if any(params.get(name) for name in ("revolution", "rev_min", "rev_max")):
            return "-rev_first"
        if any(params.get(name) for name in ("time_min", "time_max")):
            return "-time_start"
        return self.keyset_default

    def list(self, request, *args, **kwargs) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        attach_links_and_tags(page)
        serializer = api_serializers.ProductSerializer(
            page, many=True, context=self.get_serializer_context()
        )
        return self.get_paginated_response(serializer.data)

    def _detail(self, product: Product) -> dict:
        versions = (
            Product.objects.visible_to(self.request.user)
            .filter(series_key=product.series_key)
            .order_by("-version")
        )
        context = {
            **self.get_serializer_context(),
            "versions": list(versions),
            "is_curator": is_curator(self.request.user),
        }
        return api_serializers.ProductDetailSerializer(product, context=context).data

    def retrieve(self, request, *args, **kwargs) -> Response:
        return Response(self._detail(self.get_object()))

    def create(self, request, *args, **kwargs) -> Response:
        check_declared_size(request.META)
        upload = api_serializers.ProductUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        job = submit(upload.validated_data, request.user)
        data = api_serializers.JobSerializer(job, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})

    def partial_update(self, request, *args, **kwargs) -> Response:
        product = self.get_object()
        patch = api_serializers.ProductPatchSerializer(data=request.data, partial=True)
        patch.is_valid(raise_exception=True)
        changes = patch.validated_data
        if not changes:
            raise ValidationError({"detail": "Give at least one field to change."})
        if not is_curator(request.user):
            forbidden = sorted(set(changes) - CONTRIBUTOR_FIELDS)
            if forbidden:
                raise PermissionDenied(
                    f"Contributors may change only {', '.join(sorted(CONTRIBUTOR_FIELDS))}; "
                    f"not {', '.join(forbidden)}."
                )
        update_product(product, changes, request.user)
        return Response(self._detail(self.get_queryset().get(pk=product.pk)))

    def destroy(self, request, *args, **kwargs) -> Response:
        hide_product(self.get_object(), request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- jobs -----------------------------------------------------------------------------------


@extend_schema_view(
    retrieve=extend_schema(
        summary="An ingest job",
        description=(
            "The state of an upload's ingest: `pending`, `running`, `done` (with its products) "
            "or `failed` (the message says why, per file). Visible to its submitter and to "
            "curators."
        ),
        examples=[examples.JOB_DONE],
        responses={200: api_serializers.JobSerializer, 401: ERROR, 404: NOT_FOUND},
    )
)
class JobViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = api_serializers.JobSerializer
    permission_classes = [IsAuthenticated]
    lookup_field = "uuid"
    lookup_value_regex = UUID_REGEX

    def get_queryset(self) -> QuerySet[IngestJob]:
        queryset = IngestJob.objects.prefetch_related("products")
        if is_curator(self.request.user):
            return queryset
        return queryset.filter(submitted_by=self.request.user)


# --- time -----------------------------------------------------------------------------------


class TimeQuerySerializer(serializers.Serializer):
    """``value``, ``from`` and ``to`` (``from`` is a Python keyword, hence get_fields)."""

    def get_fields(self):
        formats = [(f, f) for f in timeline.TIME_FORMATS]
        return {
            "value": serializers.CharField(max_length=40),
            "from": serializers.ChoiceField(choices=formats),
            "to": serializers.CharField(max_length=40, required=False),
        }


class TimeConvertView(APIView):
    @extend_schema(
        tags=["time"],
        summary="Convert a time",
        description=(
            "Converts `value` from one of isot (UTC), mjd (UTC), ijd (TT, MJD − 51544) or "
            "revnum (the start of that revolution) to the formats in `to` (comma-separated; "
            "all four by default), with astropy.time and the revolution table."
        ),
        parameters=[
            OpenApiParameter(
                "value",
                str,
                required=True,
                description="The time, e.g. 2015-06-17T08:21:18, 57190.3, 1555.",
            ),
            OpenApiParameter(
                "from",
                str,
                required=True,
                enum=list(timeline.TIME_FORMATS),
                description="Format of `value`.",
            ),
            OpenApiParameter(
                "to",
                str,
                required=False,
                description="Formats to give, comma-separated (default: all).",
            ),
        ],
        examples=[examples.TIME_CONVERSION],
        responses={200: api_serializers.TimeConversionSerializer, 400: FIELD_ERRORS},
    )
    def get(self, request) -> Response:
        query = TimeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        wanted = [f.strip().lower() for f in params.get("to", "").split(",") if f.strip()]
        unknown = [f for f in wanted if f not in timeline.TIME_FORMATS]
        if unknown:
            raise ValidationError(
                {"to": [f"unknown format {unknown[0][:20]!r}; use {', '.join(TIME_FORMATS)}"]}
            )
        try:
            parsed = timeline.parse_time(params["value"], params["from"])
            results = {
                fmt: timeline.format_time(parsed, fmt) for fmt in (wanted or timeline.TIME_FORMATS)
            }
        except (ValueError, OverflowError) as exc:
            raise ValidationError({"value": [str(exc)]}) from None
        return Response(
            {"value": params["value"], "from_format": params["from"], "results": results}
        )


# --- benchmark floor --------------------------------------------------------------------------


class BenchConstantView(APIView):
    """A DRF view returning a constant: the floor bench/api.py measures the API against."""

    @extend_schema(exclude=True)
    def get(self, request) -> Response:
        return Response({"ok": True})


__all__ = [
    "BenchConstantView",
    "JobViewSet",
    "ObservationViewSet",
    "ProductViewSet",
    "RevolutionViewSet",
    "SourceViewSet",
    "TimeConvertView",
]
