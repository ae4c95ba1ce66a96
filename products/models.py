"""The archive: instruments, revolutions, observations, products and what hangs off them."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from sources.models import PositionedModel, Source

from . import timeline


class Instrument(models.Model):
    """An instrument (ISGRI, JEM-X1, …); ``family`` groups units such as JEM-X1 and JEM-X2."""

    code = models.SlugField(max_length=20, unique=True, help_text="e.g. isgri, jemx1, spi_acs")
    name = models.CharField(max_length=50)
    family = models.SlugField(max_length=20, help_text="e.g. isgri, jemx, spi_acs")
    e_min_kev = models.FloatField(null=True, blank=True)
    e_max_kev = models.FloatField(null=True, blank=True)
    match_radius_arcmin = models.FloatField(
        default=3.0, help_text="Position error radius used to match detections to sources."
    )
    default_fit_band_kev = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProductKind(models.Model):
    """A kind of product; ``category`` is one of the four the site knows how to show."""

    class Category(models.TextChoices):
        IMAGE = "image", "image"
        SPECTRUM = "spectrum", "spectrum"
        LIGHTCURVE = "lightcurve", "light curve"
        CATALOG = "catalog", "source catalogue"
        OTHER = "other", "other"

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=60)
    category = models.CharField(max_length=20, choices=Category.choices)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DataLevel(models.TextChoices):
    NRT = "NRT", "near real time"
    CONS = "CONS", "consolidated"


class Revolution(models.Model):
    number = models.PositiveIntegerField(primary_key=True)
    start = models.DateTimeField()
    end = models.DateTimeField()
    data_level = models.CharField(max_length=4, choices=DataLevel.choices, blank=True)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"Revolution {self.number}"

    def get_absolute_url(self) -> str:
        return reverse("pages:revolution", args=[self.number])

    @classmethod
    def for_number(cls, number: int) -> Revolution:
        """The revolution row, created from the timeline when it does not exist yet."""
        rev, _ = cls.objects.get_or_create(
            number=number,
            defaults={
                "start": timeline.to_datetime(timeline.revolution_start(number)),
                "end": timeline.to_datetime(timeline.revolution_end(number)),
            },
        )
        return rev


class Observation(PositionedModel):
    """ScWs of one proposal/target within a revolution (or a user-defined time range)."""

    title = models.CharField(max_length=200, unique=True)
    obsid = models.CharField(max_length=20, blank=True, db_index=True)
    expid = models.CharField(max_length=20, blank=True)
    pi_name = models.CharField("PI", max_length=100, blank=True)
    revolution = models.ForeignKey(
        Revolution, null=True, blank=True, on_delete=models.SET_NULL, related_name="observations"
    )
    rev_first = models.PositiveIntegerField(null=True, blank=True)
    rev_last = models.PositiveIntegerField(null=True, blank=True)
    time_start = models.DateTimeField(null=True, blank=True, db_index=True)
    time_end = models.DateTimeField(null=True, blank=True)
    scw_ids = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-time_start", "title"]

    def __str__(self) -> str:
        return self.title


class Tag(models.Model):
    name = models.SlugField(max_length=50, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def everything_visible_to(user) -> bool:
    """Curators and admins see every product, hidden and proprietary ones included."""
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and (user.is_superuser or user.has_perm("products.view_all_products"))
    )


def visibility_q(user, prefix: str = "") -> Q:
    """The condition that decides whether ``user`` may see a product (one place, used by all).

    Published products are visible when public, when their embargo has ended (no job needs
    to run: the comparison is made at query time), or to the groups granted access.
    """
    if everything_visible_to(user):
        return Q()
    now = timezone.now()
    open_q = Q(**{f"{prefix}access": Product.Access.PUBLIC}) | Q(
        **{f"{prefix}embargo_until__lte": now}
    )
    visible = open_q
    if user is not None and getattr(user, "is_authenticated", False):
        group_ids = list(user.groups.values_list("pk", flat=True))
        if group_ids:
            granted = Product.granted_groups.through.objects.filter(
                product=OuterRef(f"{prefix}pk" if prefix else "pk"), group_id__in=group_ids
            )
            visible |= Exists(granted)
    return Q(**{f"{prefix}status": Product.Status.PUBLISHED}) & visible


def covering_revolution_q(number: int) -> Q:
    """Products whose [rev_first, rev_last] includes revolution ``number``.

    Most products cover one revolution: they are found by equality on (rev_first, rev_last);
    the few that span several by a range condition, which an index restricted to
    multi-revolution products (rev_span > 0) answers without scanning every product of the
    revolutions before. The outer bound (implied by both) lets a scan of the rev_first index
    start at ``number``.
    """
    single = Q(rev_first=number, rev_last=number)
    multi = Q(rev_span__gt=0, rev_first__lte=number, rev_last__gte=number)
    return Q(rev_first__lte=number) & (single | multi)


class ProductQuerySet(models.QuerySet):
    def visible_to(self, user) -> ProductQuerySet:
        return self.filter(visibility_q(user))

    def covering_revolution(self, number: int) -> ProductQuerySet:
        return self.filter(covering_revolution_q(number))

    def latest_versions(self) -> ProductQuerySet:
        return self.filter(superseded_by__isnull=True)

    def with_related(self) -> ProductQuerySet:
        return self.select_related("kind", "instrument", "observation").prefetch_related(
            "sources", "tags"
        )


class Product(PositionedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        PUBLISHED = "published", "published"
        HIDDEN = "hidden", "hidden"

    class Access(models.TextChoices):
        PUBLIC = "public", "public"
        PROPRIETARY = "proprietary", "proprietary"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    title = models.CharField(max_length=200)
    kind = models.ForeignKey(ProductKind, on_delete=models.PROTECT, related_name="products")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT, related_name="products")
    e_min_kev = models.FloatField(null=True, blank=True)
    e_max_kev = models.FloatField(null=True, blank=True)
    time_start = models.DateTimeField(null=True, blank=True, db_index=True)
    time_end = models.DateTimeField(null=True, blank=True)
    rev_first = models.PositiveIntegerField(null=True, blank=True, db_index=True)
    rev_last = models.PositiveIntegerField(null=True, blank=True)
    rev_span = models.GeneratedField(
        expression=models.F("rev_last") - models.F("rev_first"),
        output_field=models.IntegerField(null=True),
        db_persist=True,
    )
    observation = models.ForeignKey(
        Observation, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    sources = models.ManyToManyField(
        Source, through="ProductSource", related_name="products", blank=True
    )
    exposure_s = models.FloatField("exposure (s)", null=True, blank=True)
    osa_version = models.CharField("OSA version", max_length=40, blank=True)
    data_level = models.CharField(max_length=4, choices=DataLevel.choices, blank=True)
    series_key = models.CharField(
        max_length=64, db_index=True, help_text="Products sharing it are versions of each other."
    )
    external_id = models.CharField(
        max_length=128, blank=True, db_index=True, help_text="A producer's own id (product_id)."
    )
    version = models.PositiveIntegerField(default=1)
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes"
    )
    content_key = models.CharField(
        max_length=64,
        unique=True,
        editable=False,
        help_text="SHA-256 over the kind and the SHA-256 of every data file: the identity.",
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PUBLISHED, db_index=True
    )
    is_highlight = models.BooleanField("highlight", default=False, db_index=True)
    access = models.CharField(max_length=12, choices=Access.choices, default=Access.PUBLIC)
    embargo_until = models.DateTimeField(null=True, blank=True)
    granted_groups = models.ManyToManyField(Group, blank=True, related_name="granted_products")
    provenance = models.JSONField(default=dict, blank=True)
    produced_by = models.CharField(max_length=300, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="products")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="submitted_products",
    )
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["rev_span"])

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        permissions = [("view_all_products", "Can see hidden and proprietary products")]
        indexes = [
            models.Index(fields=["kind", "instrument", "-created"]),
            models.Index(fields=["rev_first", "rev_last"]),
            # The few products that span several revolutions, for "products covering N".
            models.Index(
                fields=["rev_first", "rev_last"],
                condition=models.Q(rev_span__gt=0),
                name="product_multi_rev_span",
            ),
            models.Index(fields=["e_min_kev", "e_max_kev"]),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("pages:product", args=[self.uuid])

    @property
    def is_latest(self) -> bool:
        return self.superseded_by_id is None

    @property
    def is_public_now(self) -> bool:
        return self.access == self.Access.PUBLIC or (
            self.embargo_until is not None and self.embargo_until <= timezone.now()
        )

    def versions(self) -> ProductQuerySet:
        return Product.objects.filter(series_key=self.series_key).order_by("-version")

    def file(self, role: str) -> ProductFile | None:
        return next((f for f in self.files.all() if f.role == role), None)


class ProductSource(models.Model):
    """How a product relates to a source: its target, a detection, or a source in the field."""

    class Role(models.TextChoices):
        TARGET = "target", "target"
        DETECTED = "detected", "detected"
        IN_FIELD = "in_field", "in the field"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="source_links")
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="product_links")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.TARGET)
    significance = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["product", "source"], name="unique_product_source")
        ]
        indexes = [models.Index(fields=["source", "product"])]

    def __str__(self) -> str:
        return f"{self.source} ({self.role}) in {self.product}"


def product_file_path(instance: ProductFile, filename: str) -> str:
    # Content-addressed: the name is the SHA-256 and an extension chosen from the content.
    sha = instance.sha256
    return f"products/{sha[:2]}/{sha[2:4]}/{sha}{instance.extension}"


class ProductFile(models.Model):
    class Role(models.TextChoices):
        DATA = "data", "data"
        RMF = "rmf", "response matrix (RMF)"
        ARF = "arf", "ancillary response (ARF)"
        PREVIEW = "preview", "preview"
        REGION = "region", "region"
        OTHER = "other", "other"

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="files")
    role = models.CharField(max_length=10, choices=Role.choices)
    file = models.FileField(upload_to=product_file_path, max_length=200)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField()
    original_name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, default="application/octet-stream")
    extension = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["product", "role", "original_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "role", "sha256"], name="unique_product_file"
            )
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.original_name or self.sha256[:12]}"

    @property
    def download_name(self) -> str:
        return self.original_name or f"{self.sha256[:16]}{self.extension}"


class SpectralFit(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="fits")
    model = models.CharField(max_length=40)
    parameters = models.JSONField(
        default=list, help_text="[{name, value, error, unit}] with 1-sigma errors"
    )
    statistic = models.CharField(max_length=20, default="chi2")
    statistic_value = models.FloatField()
    dof = models.IntegerField()
    e_min_kev = models.FloatField()
    e_max_kev = models.FloatField()
    flux_erg_cm2_s = models.FloatField(null=True, blank=True)
    flux_error = models.FloatField(null=True, blank=True)
    is_preferred = models.BooleanField(default=False)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["product", "-is_preferred", "model"]

    def __str__(self) -> str:
        return f"{self.model} fit of {self.product}"

    @property
    def reduced_statistic(self) -> float | None:
        return self.statistic_value / self.dof if self.dof > 0 else None


class FluxPointQuerySet(models.QuerySet):
    def visible_to(self, user) -> FluxPointQuerySet:
        """Flux points of the products ``user`` may see (same rule as products)."""
        return self.filter(visibility_q(user, prefix="product__"))


class FluxPoint(models.Model):
    """One flux measurement of a source (a light-curve bin, a detection in an image)."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="flux_points")
    instrument = models.ForeignKey(Instrument, on_delete=models.PROTECT)
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="flux_points")
    observation = models.ForeignKey(Observation, null=True, blank=True, on_delete=models.SET_NULL)
    e_min_kev = models.FloatField(null=True, blank=True)
    e_max_kev = models.FloatField(null=True, blank=True)
    t_start_ijd = models.FloatField()
    t_stop_ijd = models.FloatField()
    flux = models.FloatField()
    flux_error = models.FloatField(null=True, blank=True)
    flux_unit = models.CharField(max_length=20, default="count/s")
    significance = models.FloatField(null=True, blank=True)
    exposure_s = models.FloatField(null=True, blank=True)
    scw_id = models.CharField(max_length=16, blank=True)
    revolution = models.PositiveIntegerField(null=True, blank=True)
    is_upper_limit = models.BooleanField(default=False)

    objects = FluxPointQuerySet.as_manager()

    class Meta:
        ordering = ["source", "t_start_ijd"]
        indexes = [models.Index(fields=["source", "instrument", "t_start_ijd"])]

    def __str__(self) -> str:
        return f"{self.source} {self.t_start_ijd:.4f} {self.flux:.3g}"


class LightCurveSummary(models.Model):
    """The public revolution-binned light curve of one source, instrument and band, summed up.

    Maintained by ``products.transients`` (incrementally when a revolution arrives, fully by a
    periodic task) for the transient monitor: the latest revolution bin beside the long-term
    statistics of the bins before it. Sums are kept rather than means so that a bin can be
    folded into the history without reading its flux points again.
    """

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="lc_summaries")
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="+")
    e_min_kev = models.FloatField(null=True, blank=True)
    e_max_kev = models.FloatField(null=True, blank=True)
    band_key = models.CharField(
        max_length=64, editable=False, help_text="The exact band of the flux points ('' if none)."
    )
    # History: the revolution bins before the latest one.
    n_revolutions = models.PositiveIntegerField(default=0)
    sum_w = models.FloatField(default=0.0, help_text="Σ exposure (s) of the history points.")
    sum_wf = models.FloatField(default=0.0)
    sum_w2s2 = models.FloatField(default=0.0)
    sum_bin_flux = models.FloatField(default=0.0, help_text="Σ of the history bins' fluxes.")
    sum_bin_flux2 = models.FloatField(default=0.0)
    first_revolution = models.PositiveIntegerField(null=True, blank=True)
    # The latest revolution bin.
    latest_revolution = models.PositiveIntegerField(db_index=True)
    latest_t_start_ijd = models.FloatField()
    latest_t_stop_ijd = models.FloatField()
    latest_n_points = models.PositiveIntegerField()
    latest_sum_w = models.FloatField()
    latest_sum_wf = models.FloatField()
    latest_sum_w2s2 = models.FloatField()
    # Derived from the above, stored so that the monitor is one indexed query.
    latest_flux = models.FloatField()
    latest_error = models.FloatField()
    mean_flux = models.FloatField(null=True, blank=True)
    mean_error = models.FloatField(null=True, blank=True)
    std_flux = models.FloatField(null=True, blank=True)
    excess_sigma = models.FloatField(null=True, blank=True, db_index=True)
    flux_unit = models.CharField(max_length=20, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-latest_revolution", "-excess_sigma"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "instrument", "band_key"], name="unique_lc_summary"
            )
        ]
        indexes = [models.Index(fields=["-latest_revolution", "-excess_sigma"])]

    def __str__(self) -> str:
        return f"{self.source} {self.instrument} rev {self.latest_revolution}"


class SummaryRefreshRequest(models.Model):
    """A revolution whose light-curve summaries wait for a refresh.

    Ingesting a revolution stores hundreds of products; each asks for a refresh, and this row
    makes them one task: the first request enqueues it, later ones only move ``requested``.
    """

    revolution = models.PositiveIntegerField(unique=True)
    requested = models.DateTimeField()

    def __str__(self) -> str:
        return f"refresh revolution {self.revolution}"


class FluxBin(models.Model):
    """The flux points of one product, summed per source, band, revolution and day.

    Maintained by ``products.lightcurves.summarise_products`` (at ingest, by the revolution
    refresh and by the periodic full refresh). Light curves binned per revolution or per whole
    days add these sums up instead of reading every point; visibility is still decided per
    request, per product, because a bin never mixes products.
    """

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="+", db_index=False)
    instrument = models.ForeignKey(
        Instrument, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+")
    e_min_kev = models.FloatField(null=True, blank=True)
    e_max_kev = models.FloatField(null=True, blank=True)
    revolution = models.PositiveIntegerField(
        help_text="The points' revolution, or that of their mid time for a product spanning "
        "several revolutions."
    )
    from_revolution = models.BooleanField(
        default=True, help_text="False when the revolution was taken from the mid time."
    )
    day = models.IntegerField(help_text="floor(mid time in IJD): the whole day of the points.")
    n_points = models.PositiveIntegerField()
    sum_w = models.FloatField(help_text="Σ w (exposure in s, or duration when none).")
    sum_wf = models.FloatField(help_text="Σ w·f (f: the measured flux).")
    sum_w2s2 = models.FloatField(help_text="Σ w²·σ².")
    t_start_ijd = models.FloatField()
    t_stop_ijd = models.FloatField()
    # n_points and the sums count the points with a positive error and weight (those light
    # curves combine). Detection statistics count every point (with or without an error), for the
    # per-source statistics; a detection is a point at or above GALLERY_DETECTION_THRESHOLD
    # that is not an upper limit (the threshold of the last rebuild).
    n_all = models.PositiveIntegerField(default=0, help_text="All the points, errors or not.")
    n_detections = models.PositiveIntegerField(default=0)
    first_detection_ijd = models.FloatField(null=True, blank=True)
    last_detection_ijd = models.FloatField(null=True, blank=True)
    peak_significance = models.FloatField(null=True, blank=True)
    flux_min = models.FloatField(null=True, blank=True, help_text="Of the detections.")
    flux_max = models.FloatField(null=True, blank=True, help_text="Of the detections.")
    flux_unit = models.CharField(max_length=20, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(
                fields=["source", "instrument", "e_min_kev", "e_max_kev", "revolution"],
                include=[
                    "product",
                    "from_revolution",
                    "day",
                    "n_points",
                    "sum_w",
                    "sum_wf",
                    "sum_w2s2",
                    "t_start_ijd",
                    "t_stop_ijd",
                ],
                name="fluxbin_lightcurve",
            ),
            models.Index(fields=["revolution", "source"], name="fluxbin_revolution"),
        ]

    def __str__(self) -> str:
        return f"{self.source_id} rev {self.revolution} day {self.day} ({self.n_points} points)"
