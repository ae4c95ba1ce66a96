"""Serializers of the API: the JSON shapes of sources, revolutions, observations, products,
ingest jobs and time conversions, and the validation of uploads and edits."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ingest.models import IngestJob
from products import timeline
from products.models import (
    DataLevel,
    Observation,
    Product,
    ProductFile,
    ProductSource,
    Revolution,
    SpectralFit,
)
from sources.models import Source
from sources.names import validate_source_name
from sources.sky import angular_distance_deg


def _api_url(request, name: str, *args) -> str:
    path = reverse(f"api:{name}", args=args)
    return request.build_absolute_uri(path) if request is not None else path


def _page_url(request, obj) -> str:
    path = obj.get_absolute_url()
    return request.build_absolute_uri(path) if request is not None else path


class CountSerializer(serializers.Serializer):
    """Visible products of one instrument and kind."""

    instrument = serializers.CharField(help_text="Instrument code, e.g. isgri, jemx1.")
    kind = serializers.CharField(help_text="Product kind code, e.g. spectrum, image.")
    count = serializers.IntegerField()


# --- sources --------------------------------------------------------------------------------


class SourceSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This source in the API.")
    page_url = serializers.SerializerMethodField(help_text="This source's page on the site.")
    object_class = serializers.SlugRelatedField(
        slug_field="code", read_only=True, help_text="Simbad-like class code (e.g. LMXB)."
    )
    class_label = serializers.CharField(source="object_class.label", read_only=True, default=None)
    aliases = serializers.SerializerMethodField(help_text="Alternative names.")
    portal_url = serializers.URLField(read_only=True, help_text="Online catalogue page.")
    distance_deg = serializers.SerializerMethodField(
        help_text="Distance from the centre of a cone search (null without one)."
    )

    class Meta:
        model = Source
        fields = [
            "id",
            "slug",
            "name",
            "url",
            "page_url",
            "object_class",
            "class_label",
            "aliases",
            "ra_deg",
            "dec_deg",
            "error_radius_arcmin",
            "is_provisional",
            "portal_url",
            "distance_deg",
        ]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return _api_url(self.context.get("request"), "source-detail", obj.pk)

    @extend_schema_field(OpenApiTypes.URI)
    def get_page_url(self, obj) -> str:
        return _page_url(self.context.get("request"), obj)

    def get_aliases(self, obj) -> list[str]:
        # Uses the prefetched names (no query per row).
        return [n.name for n in obj.names.all() if not n.is_canonical]

    def get_distance_deg(self, obj) -> float | None:
        cone = self.context.get("cone")
        if not cone or obj.ra_deg is None:
            return None
        return round(float(angular_distance_deg(cone[0], cone[1], obj.ra_deg, obj.dec_deg)), 6)


class SourceDetailSerializer(SourceSerializer):
    product_counts = serializers.SerializerMethodField(
        help_text="Visible products (latest versions) per instrument and kind."
    )
    products_url = serializers.SerializerMethodField(help_text="The products of this source.")
    merged_names = serializers.SerializerMethodField(
        help_text="Names of the sources that were merged into this one."
    )

    class Meta(SourceSerializer.Meta):
        fields = SourceSerializer.Meta.fields + [
            "description",
            "catalogue_url",
            "merged_names",
            "product_counts",
            "products_url",
            "created",
            "updated",
        ]

    @extend_schema_field(CountSerializer(many=True))
    def get_product_counts(self, obj) -> list[dict]:
        return self.context.get("product_counts", [])

    @extend_schema_field(OpenApiTypes.URI)
    def get_products_url(self, obj) -> str:
        return _api_url(self.context.get("request"), "product-list") + f"?source_id={obj.pk}"

    def get_merged_names(self, obj) -> list[str]:
        return [s.name for s in obj.merged_sources.all()]


class MergeSerializer(serializers.Serializer):
    into = serializers.CharField(
        max_length=120,
        help_text="The source that remains: its id, slug, name or alias.",
    )


# --- revolutions and observations -------------------------------------------------------------


class RevolutionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()
    start_ijd = serializers.SerializerMethodField(help_text="Start in IJD (TT).")
    is_predicted = serializers.SerializerMethodField(
        help_text="True where the start is predicted rather than reconstructed."
    )

    class Meta:
        model = Revolution
        fields = [
            "number",
            "url",
            "page_url",
            "start",
            "end",
            "start_ijd",
            "data_level",
            "is_predicted",
        ]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return _api_url(self.context.get("request"), "revolution-detail", obj.number)

    @extend_schema_field(OpenApiTypes.URI)
    def get_page_url(self, obj) -> str:
        return _page_url(self.context.get("request"), obj)

    def get_start_ijd(self, obj) -> float:
        return round(timeline.time_to_ijd(timeline.from_datetime(obj.start)), 8)

    def get_is_predicted(self, obj) -> bool:
        return timeline.revolution_is_predicted(obj.number)


class ObservationSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    revolution = serializers.PrimaryKeyRelatedField(read_only=True, help_text="Revolution number.")
    scw_count = serializers.SerializerMethodField(help_text="Number of science windows.")
    products_url = serializers.SerializerMethodField()

    class Meta:
        model = Observation
        fields = [
            "id",
            "url",
            "title",
            "obsid",
            "expid",
            "pi_name",
            "revolution",
            "rev_first",
            "rev_last",
            "time_start",
            "time_end",
            "ra_deg",
            "dec_deg",
            "scw_count",
            "products_url",
        ]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return _api_url(self.context.get("request"), "observation-detail", obj.pk)

    def get_scw_count(self, obj) -> int:
        return len(obj.scw_ids or [])

    @extend_schema_field(OpenApiTypes.URI)
    def get_products_url(self, obj) -> str:
        return _api_url(self.context.get("request"), "product-list") + f"?observation={obj.pk}"


class ObservationDetailSerializer(ObservationSerializer):
    product_counts = serializers.SerializerMethodField(
        help_text="Visible products (latest versions) per instrument and kind."
    )

    class Meta(ObservationSerializer.Meta):
        fields = ObservationSerializer.Meta.fields + ["scw_ids", "product_counts"]

    @extend_schema_field(CountSerializer(many=True))
    def get_product_counts(self, obj) -> list[dict]:
        return self.context.get("product_counts", [])


class ObservationBriefSerializer(ObservationSerializer):
    class Meta(ObservationSerializer.Meta):
        fields = ["id", "url", "title", "obsid", "pi_name", "time_start", "time_end"]


class RevolutionDetailSerializer(RevolutionSerializer):
    observations = ObservationBriefSerializer(many=True, read_only=True)
    product_counts = serializers.SerializerMethodField(
        help_text="Visible products (latest versions) per instrument and kind."
    )
    products_url = serializers.SerializerMethodField(
        help_text="The products whose revolution span includes this revolution."
    )

    class Meta(RevolutionSerializer.Meta):
        fields = RevolutionSerializer.Meta.fields + [
            "observations",
            "product_counts",
            "products_url",
        ]

    @extend_schema_field(CountSerializer(many=True))
    def get_product_counts(self, obj) -> list[dict]:
        return self.context.get("product_counts", [])

    @extend_schema_field(OpenApiTypes.URI)
    def get_products_url(self, obj) -> str:
        return _api_url(self.context.get("request"), "product-list") + f"?revolution={obj.number}"


# --- products -----------------------------------------------------------------------------


class ProductSourceSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="source.id", read_only=True)
    name = serializers.CharField(source="source.name", read_only=True)
    slug = serializers.CharField(source="source.slug", read_only=True)

    class Meta:
        model = ProductSource
        fields = ["id", "name", "slug", "role", "significance"]


class ProductSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="This product in the API.")
    page_url = serializers.SerializerMethodField(help_text="This product's page on the site.")
    kind = serializers.SlugRelatedField(slug_field="code", read_only=True)
    category = serializers.CharField(source="kind.category", read_only=True)
    instrument = serializers.SlugRelatedField(slug_field="code", read_only=True)
    instrument_family = serializers.CharField(source="instrument.family", read_only=True)
    sources = ProductSourceSerializer(source="source_links", many=True, read_only=True)
    tags = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    is_latest = serializers.BooleanField(read_only=True)

    class Meta:
        model = Product
        fields = [
            "uuid",
            "url",
            "page_url",
            "title",
            "kind",
            "category",
            "instrument",
            "instrument_family",
            "e_min_kev",
            "e_max_kev",
            "time_start",
            "time_end",
            "rev_first",
            "rev_last",
            "rev_span",
            "ra_deg",
            "dec_deg",
            "exposure_s",
            "osa_version",
            "data_level",
            "observation",
            "sources",
            "tags",
            "version",
            "is_latest",
            "status",
            "access",
            "embargo_until",
            "is_highlight",
            "created",
        ]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return _api_url(self.context.get("request"), "product-detail", obj.uuid)

    @extend_schema_field(OpenApiTypes.URI)
    def get_page_url(self, obj) -> str:
        return _page_url(self.context.get("request"), obj)

    def to_representation(self, obj) -> dict:
        # The fields above define the schema; this builds the same JSON directly, because
        # DRF's per-field machinery costs more than the query on a page of products
        # (the API tests check that both agree field by field).
        urls = self.context.get("_product_urls")
        if urls is None:
            urls = self.context["_product_urls"] = _ProductUrls(self.context.get("request"))
        kind, instrument = obj.kind, obj.instrument
        return {
            "uuid": str(obj.uuid),
            "url": urls.api(obj.uuid),
            "page_url": urls.page(obj.uuid),
            "title": obj.title,
            "kind": kind.code,
            "category": kind.category,
            "instrument": instrument.code,
            "instrument_family": instrument.family,
            "e_min_kev": obj.e_min_kev,
            "e_max_kev": obj.e_max_kev,
            "time_start": _datetime(obj.time_start),
            "time_end": _datetime(obj.time_end),
            "rev_first": obj.rev_first,
            "rev_last": obj.rev_last,
            "rev_span": obj.rev_span,
            "ra_deg": obj.ra_deg,
            "dec_deg": obj.dec_deg,
            "exposure_s": obj.exposure_s,
            "osa_version": obj.osa_version,
            "data_level": obj.data_level,
            "observation": obj.observation_id,
            "sources": _source_rows(obj),
            "tags": _tag_names(obj),
            "version": obj.version,
            "is_latest": obj.superseded_by_id is None,
            "status": obj.status,
            "access": obj.access,
            "embargo_until": _datetime(obj.embargo_until),
            "is_highlight": obj.is_highlight,
            "created": _datetime(obj.created),
        }


_ROLE_ORDER = {"target": 0, "detected": 1, "in_field": 2}


def link_order(row: dict) -> tuple:
    """Targets first, then detections by decreasing significance, then the field; by name."""
    significance = row["significance"]
    return (
        _ROLE_ORDER.get(row["role"], 3),
        -significance if significance is not None else float("inf"),
        row["name"],
    )


def _source_rows(obj) -> list[dict]:
    rows = getattr(obj, "api_source_rows", None)  # attached by the list view (see views)
    if rows is not None:
        return rows
    rows = [
        {
            "id": link.source.id,
            "name": link.source.name,
            "slug": link.source.slug,
            "role": link.role,
            "significance": link.significance,
        }
        for link in obj.source_links.all()
    ]
    return sorted(rows, key=link_order)


def _tag_names(obj) -> list[str]:
    names = getattr(obj, "api_tag_names", None)
    return names if names is not None else [tag.name for tag in obj.tags.all()]


class _ProductUrls:
    """Product URLs by substitution into one reversed URL (reverse() per row is slow)."""

    _MARK = "00000000-0000-0000-0000-000000000000"

    def __init__(self, request) -> None:
        self._api = _api_url(request, "product-detail", self._MARK)
        page = reverse("pages:product", args=[self._MARK])
        self._page = request.build_absolute_uri(page) if request is not None else page

    def api(self, uuid) -> str:
        return self._api.replace(self._MARK, str(uuid))

    def page(self, uuid) -> str:
        return self._page.replace(self._MARK, str(uuid))


_DATETIME = serializers.DateTimeField()


def _datetime(value) -> str | None:
    """A datetime as DRF writes it (ISO 8601, UTC as 'Z')."""
    return None if value is None else _DATETIME.to_representation(value)


class ProductFileSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="download_name", read_only=True)
    download_url = serializers.SerializerMethodField(
        help_text="Download link (checks visibility on every request)."
    )

    class Meta:
        model = ProductFile
        fields = ["id", "role", "name", "size_bytes", "sha256", "content_type", "download_url"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_download_url(self, obj) -> str:
        path = reverse(
            "pages:download-named",
            args=[obj.product.uuid, obj.pk, obj.download_name],
        )
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class SpectralFitSerializer(serializers.ModelSerializer):
    reduced_statistic = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = SpectralFit
        fields = [
            "model",
            "parameters",
            "statistic",
            "statistic_value",
            "dof",
            "reduced_statistic",
            "e_min_kev",
            "e_max_kev",
            "flux_erg_cm2_s",
            "flux_error",
            "is_preferred",
        ]


class VersionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    is_latest = serializers.BooleanField(read_only=True)

    class Meta:
        model = Product
        fields = ["uuid", "url", "version", "is_latest", "osa_version", "data_level", "created"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return _api_url(self.context.get("request"), "product-detail", obj.uuid)


class ProductDetailSerializer(ProductSerializer):
    files = ProductFileSerializer(many=True, read_only=True)
    fits = SpectralFitSerializer(many=True, read_only=True)
    versions = serializers.SerializerMethodField(
        help_text="Every visible version of this product, newest first."
    )
    granted_groups = serializers.SerializerMethodField(
        help_text="Groups granted access (shown to curators only)."
    )

    class Meta(ProductSerializer.Meta):
        fields = ProductSerializer.Meta.fields + [
            "external_id",
            "produced_by",
            "provenance",
            "metadata",
            "files",
            "fits",
            "versions",
            "granted_groups",
            "updated",
        ]

    def to_representation(self, obj) -> dict:
        data = super().to_representation(obj)
        data.update(
            {
                "external_id": obj.external_id,
                "produced_by": obj.produced_by,
                "provenance": obj.provenance,
                "metadata": obj.metadata,
                "files": ProductFileSerializer(
                    obj.files.all(), many=True, context=self.context
                ).data,
                "fits": SpectralFitSerializer(obj.fits.all(), many=True).data,
                "versions": self.get_versions(obj),
                "granted_groups": self.get_granted_groups(obj),
                "updated": _datetime(obj.updated),
            }
        )
        return data

    @extend_schema_field(VersionSerializer(many=True))
    def get_versions(self, obj) -> list[dict]:
        versions = self.context.get("versions", [])
        return VersionSerializer(versions, many=True, context=self.context).data

    def get_granted_groups(self, obj) -> list[str] | None:
        if not self.context.get("is_curator"):
            return None
        return sorted(g.name for g in obj.granted_groups.all())


# --- writes ---------------------------------------------------------------------------------


def _name_list(values: list[str]) -> list[str]:
    """Items of a list that may come as repeated fields or one comma-separated field."""
    out: list[str] = []
    for value in values:
        out += [part.strip() for part in str(value).split(",") if part.strip()]
    return out


def _check_groups(names: list[str]) -> list[str]:
    known = set(Group.objects.filter(name__in=names).values_list("name", flat=True))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise serializers.ValidationError(
            f"no such group: {', '.join(repr(n[:50]) for n in unknown[:5])}"
        )
    return names


def _check_tags(names: list[str]) -> list[str]:
    for tag in names:
        if len(tag) > 50 or not all(c.isalnum() or c in "-_" for c in tag):
            raise serializers.ValidationError(
                f"invalid tag {tag[:50]!r}: letters, digits, - and _ only, at most 50 characters"
            )
    return list(dict.fromkeys(names))


def _check_source_name(value: str) -> str:
    try:
        return validate_source_name(value)
    except ValueError as exc:
        raise serializers.ValidationError(str(exc)) from None


class FileListField(serializers.ListField):
    """A list of uploaded files whose errors name the file ("file 2 (x.fits): …")."""

    def __init__(self, **kwargs):
        kwargs.setdefault("child", serializers.FileField(allow_empty_file=False, use_url=False))
        super().__init__(**kwargs)

    def run_child_validation(self, data):
        result, errors = [], []
        for index, item in enumerate(data):
            try:
                result.append(self.child.run_validation(item))
            except serializers.ValidationError as exc:
                name = getattr(item, "name", "") or ""
                label = f"file {index + 1}" + (f" ({name[:80]!r})" if name else "")
                errors += [f"{label}: {message}" for message in _messages(exc.detail)]
        if errors:
            raise serializers.ValidationError(errors)
        return result


def _messages(detail) -> list[str]:
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _messages(value)]
    if isinstance(detail, list):
        return [m for value in detail for m in _messages(value)]
    return [str(detail)]


class ProductUploadSerializer(serializers.Serializer):
    """A multipart upload: the data files and what the pipeline knows about them."""

    files = FileListField(
        allow_empty=False,
        max_length=50,
        help_text=(
            "Data files, one or more: FITS or gzip-FITS (sky image, spectrum with its RMF and "
            "ARF, light curve, source catalogue) or an MMODA JSON source catalogue. RMF and ARF "
            "are recognised from their content."
        ),
    )
    attachments = FileListField(
        required=False,
        max_length=20,
        help_text="Extra files kept with the product: PNG (its preview), HTML or YAML.",
    )
    title = serializers.CharField(max_length=200, required=False)
    source = serializers.CharField(
        max_length=100,
        required=False,
        help_text="The target source's name or alias (else read from the files).",
    )
    observation = serializers.CharField(
        max_length=200, required=False, help_text="Observation id (obsid) or title."
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=400), required=False, max_length=50
    )
    access = serializers.ChoiceField(choices=Product.Access.choices, default="public")
    embargo_until = serializers.DateTimeField(
        required=False, help_text="When a proprietary product becomes public."
    )
    granted_groups = serializers.ListField(
        child=serializers.CharField(max_length=150),
        required=False,
        max_length=50,
        help_text="Groups that may see the product while it is proprietary.",
    )
    provenance = serializers.JSONField(
        required=False, binary=True, help_text="JSON object: how the product was made."
    )
    produced_by = serializers.CharField(max_length=300, required=False)
    external_id = serializers.CharField(
        max_length=128, required=False, help_text="The producer's own id of the product."
    )
    data_level = serializers.ChoiceField(choices=DataLevel.choices, required=False)
    status = serializers.ChoiceField(
        choices=[("published", "published"), ("draft", "draft")], default="published"
    )

    def validate_tags(self, value):
        return _check_tags(_name_list(value))

    def validate_granted_groups(self, value):
        return _check_groups(_name_list(value))

    def validate_source(self, value):
        return _check_source_name(value)

    def validate_provenance(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("give a JSON object")
        return value

    def validate(self, attrs):
        # A proprietary product without an embargo date stays private until a curator sets one.
        if attrs.get("embargo_until") and attrs.get("access") != "proprietary":
            raise serializers.ValidationError(
                {"embargo_until": ["an embargo applies to proprietary products only"]}
            )
        return attrs


class SourceLinkInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="Source name or alias.")
    role = serializers.ChoiceField(choices=ProductSource.Role.choices, default="target")


class ProductPatchSerializer(serializers.Serializer):
    """The metadata curators may change (contributors: title and tags of their own)."""

    title = serializers.CharField(max_length=200)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), max_length=50)
    status = serializers.ChoiceField(choices=Product.Status.choices)
    is_highlight = serializers.BooleanField()
    access = serializers.ChoiceField(choices=Product.Access.choices)
    embargo_until = serializers.DateTimeField(allow_null=True)
    granted_groups = serializers.ListField(
        child=serializers.CharField(max_length=150), max_length=50
    )
    sources = SourceLinkInputSerializer(
        many=True, help_text="Replaces the product's source links (significances are kept)."
    )

    def to_representation(self, instance) -> dict:
        # The current values (the browsable API fills its edit form with them).
        if not isinstance(instance, Product):
            return super().to_representation(instance)
        return {
            "title": instance.title,
            "tags": [t.name for t in instance.tags.all()],
            "status": instance.status,
            "is_highlight": instance.is_highlight,
            "access": instance.access,
            "embargo_until": _datetime(instance.embargo_until),
            "granted_groups": sorted(g.name for g in instance.granted_groups.all()),
            "sources": [
                {"name": link.source.name, "role": link.role}
                for link in instance.source_links.all()
            ],
        }

    def validate_title(self, value):
        if not value.strip():
            raise serializers.ValidationError("the title cannot be empty")
        return value.strip()

    def validate_tags(self, value):
        return _check_tags(_name_list(value))

    def validate_granted_groups(self, value):
        return _check_groups(_name_list(value))

    def validate_sources(self, value):
        resolved, errors = [], []
        for item in value:
            name = item["name"]
            try:
                name = validate_source_name(name)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            source = Source.objects.named(name).select_related("merged_into").first()
            if source is None:
                errors.append(f"no source is named {name!r}")
                continue
            # ``partial`` (PATCH) skips nested defaults: a link without a role is a target.
            resolved.append((source.merged_into or source, item.get("role", "target")))
        if errors:
            raise serializers.ValidationError(errors)
        return resolved


# --- jobs and time --------------------------------------------------------------------------


class JobProductSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = ["uuid", "url", "title"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return _api_url(self.context.get("request"), "product-detail", obj.uuid)


class JobSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="Poll this URL for the job's state.")
    products = JobProductSerializer(many=True, read_only=True)
    files = serializers.SerializerMethodField(help_text="The uploaded files' names.")

    class Meta:
        model = IngestJob
        fields = ["uuid", "url", "state", "message", "files", "products", "created", "updated"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj) -> str:
        return _api_url(self.context.get("request"), "job-detail", obj.uuid)

    def get_files(self, obj) -> list[str]:
        return [f.get("original_name", "") for f in obj.staged_files]


class TimeConversionSerializer(serializers.Serializer):
    value = serializers.CharField(max_length=40, help_text="The time to convert.")
    from_format = serializers.ChoiceField(
        choices=[(f, f) for f in timeline.TIME_FORMATS], help_text="Format of `value`."
    )
    results = serializers.DictField(
        child=serializers.JSONField(),
        help_text="The time in each asked format (isot: UTC; mjd: UTC; ijd: TT; revnum).",
    )
