"""The sky: astrophysical sources, their alternative names and classes."""

from __future__ import annotations

from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.text import slugify
from simple_history.models import HistoricalRecords

from .names import clean_display_name, normalize_name
from .sky import position_fields


class PositionedModel(models.Model):
    """ICRS position with the HEALPix index and unit vector that cone searches use."""

    ra_deg = models.FloatField("RA (deg)", null=True, blank=True)
    dec_deg = models.FloatField("Dec (deg)", null=True, blank=True)
    healpix = models.BigIntegerField(null=True, blank=True, db_index=True, editable=False)
    cx = models.FloatField(null=True, blank=True, editable=False)
    cy = models.FloatField(null=True, blank=True, editable=False)
    cz = models.FloatField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        # Keep the derived columns in step with RA/Dec, whoever edited them (the admin too).
        self.set_position(self.ra_deg, self.dec_deg)
        super().save(*args, **kwargs)

    def set_position(self, ra_deg: float | None, dec_deg: float | None) -> None:
        for field, value in position_fields(ra_deg, dec_deg).items():
            setattr(self, field, value)


class SourceClass(models.Model):
    """An object type (Simbad's vocabulary: LMXB, HMXB, AGN, Blazar, GRB, …).

    Classes nest: filtering by "AGN" includes Seyferts and blazars, "Blazar" includes BL Lacs
    and FSRQs.
    """

    code = models.CharField(max_length=32, unique=True)
    label = models.CharField(max_length=100)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )

    class Meta:
        ordering = ["label"]
        verbose_name_plural = "source classes"

    def __str__(self) -> str:
        return self.label

    def descendant_codes(self) -> list[str]:
        """This class's code and those of all classes below it."""
        codes, frontier = [self.code], [self.pk]
        while frontier:
            children = list(
                SourceClass.objects.filter(parent__in=frontier).values_list("pk", "code")
            )
            frontier = [pk for pk, _ in children]
            codes += [code for _, code in children]
        return codes


class SourceQuerySet(models.QuerySet):
    def active(self) -> SourceQuerySet:
        """Sources that were not merged into another one."""
        return self.filter(merged_into__isnull=True)

    def named(self, name: str) -> SourceQuerySet:
        """Sources whose canonical name or alias normalises like ``name`` (index lookup)."""
        key = normalize_name(name)
        return self.filter(names__normalized=key).distinct() if key else self.none()

    def name_contains(self, text: str) -> SourceQuerySet:
        key = normalize_name(text)
        if not key:
            return self
        return self.filter(names__normalized__contains=key).distinct()

    def of_class(self, code: str) -> SourceQuerySet:
        try:
            cls = SourceClass.objects.get(code__iexact=code)
        except SourceClass.DoesNotExist:
            return self.none()
        return self.filter(object_class__code__in=cls.descendant_codes())


class Source(PositionedModel):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=120, unique=True)
    object_class = models.ForeignKey(
        SourceClass,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sources",
        verbose_name="class",
    )
    error_radius_arcmin = models.FloatField(null=True, blank=True)
    catalogue_url = models.URLField(
        blank=True, help_text="Online catalogue page; empty means the CDS portal by name."
    )
    is_provisional = models.BooleanField(
        default=False, help_text="A new detection without a catalogue counterpart."
    )
    description = models.TextField(blank=True)
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged_sources",
        help_text="Set when this source was merged into another; its URL redirects there.",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    # Statistics of the public flux points, written by sources.stats.store_statistics (kept
    # up to date by the light-curve refresh tasks; never edited by hand).
    first_detection_ijd = models.FloatField(
        "first detection (IJD)", null=True, blank=True, editable=False
    )
    last_detection_ijd = models.FloatField(
        "last detection (IJD)", null=True, blank=True, editable=False
    )
    n_detections = models.PositiveIntegerField(
        "detections", default=0, db_index=True, editable=False
    )
    peak_significance = models.FloatField(null=True, blank=True, editable=False)
    detection_summary = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="Per instrument: points, detections, first/last detection, peak "
        "significance and flux range (in the instrument's flux unit).",
    )
    statistics_updated = models.DateTimeField(null=True, blank=True, editable=False)
    history = HistoricalRecords()

    objects = SourceQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.name = clean_display_name(self.name)
        taken = SourceName.objects.filter(normalized=normalize_name(self.name))
        if self.pk:
            taken = taken.exclude(source_id=self.pk)
        if taken.exists():
            # Never take a name away from another source silently.
            raise ValidationError(
                {"name": f"{self.name!r} already names {taken.first().source.name!r}"}
            )
        if not self.slug:
            self.slug = unique_slug(self.name)
        super().save(*args, **kwargs)
        # A renamed source keeps its old name as an alias.
        SourceName.objects.filter(source=self, is_canonical=True).exclude(
            normalized=normalize_name(self.name)
        ).update(is_canonical=False)
        SourceName.objects.update_or_create(
            normalized=normalize_name(self.name),
            defaults={"source": self, "name": self.name, "is_canonical": True},
        )

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("pages:source", args=[self.slug])

    @property
    def portal_url(self) -> str:
        return self.catalogue_url or (
            "https://cdsportal.u-strasbg.fr/?target=" + quote(self.name, safe="")
        )

    def add_alias(self, name: str) -> SourceName | None:
        """Attach an alternative name (ignored when it already names this source)."""
        name = clean_display_name(name)
        key = normalize_name(name)
        if not key:
            return None
        alias, _ = SourceName.objects.get_or_create(
            normalized=key, defaults={"source": self, "name": name}
        )
        return alias

    @property
    def aliases(self) -> list[str]:
        return [n.name for n in self.names.all() if not n.is_canonical]


def unique_slug(name: str) -> str:
    """Slug of a source name; '+' becomes 'p' so that 1A 0535+262 and 1A 0535-262 differ."""
    base = slugify(name.replace("+", "p")) or "source"
    base = base[:100]
    slug, n = base, 2
    while Source.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


class SourceName(models.Model):
    """A name of a source (the canonical one included), with its normalised search key."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="names")
    name = models.CharField(max_length=100)
    normalized = models.CharField(max_length=100, unique=True, editable=False)
    is_canonical = models.BooleanField(default=False)

    class Meta:
        ordering = ["-is_canonical", "name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self.name = clean_display_name(self.name)
        self.normalized = normalize_name(self.name)
        super().save(*args, **kwargs)
