"""Filter sets of the API (django-filter). Every parameter is validated by a form field, so a
bad value gives a 400 naming the parameter; the queries themselves come from the domain
modules (sources.sky for cones, products.timeline for times, the source name index)."""

from __future__ import annotations

import django_filters as df
from django import forms
from django.db.models import Exists, OuterRef, Q, QuerySet

from products import timeline
from products.models import (
    DataLevel,
    Instrument,
    Observation,
    Product,
    ProductKind,
    ProductSource,
    Revolution,
    covering_revolution_q,
)
from sources.models import Source, SourceClass
from sources.sky import cone_filter, order_by_distance

MAX_REVOLUTION = 99999


class FloatFilter(df.NumberFilter):
    """A float parameter; NaN and infinities are refused by forms.FloatField."""

    field_class = forms.FloatField


class IntFilter(df.NumberFilter):
    field_class = forms.IntegerField


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class ConeForm(forms.Form):
    """Checks that a cone is given whole (ra, dec and radius) and lies on the sky."""

    def clean(self):
        data = super().clean()
        given = [name for name in ("ra", "dec", "radius") if data.get(name) is not None]
        if given and len(given) != 3:
            missing = [n for n in ("ra", "dec", "radius") if n not in given]
            for name in missing:
                self.add_error(name, "a cone search needs ra, dec and radius (degrees) together")
        dec = data.get("dec")
        if dec is not None and not -90 <= dec <= 90:
            self.add_error("dec", "Dec must lie within [-90, 90] degrees")
        radius = data.get("radius")
        if radius is not None and not 0 < radius <= 180:
            self.add_error("radius", "the radius must be greater than 0 and at most 180 degrees")
        return data


def _cone(data: dict) -> tuple[float, float, float] | None:
    if any(data.get(name) is None for name in ("ra", "dec", "radius")):
        return None
    return data["ra"] % 360.0, data["dec"], data["radius"]


#: A cone holding at most this many products is answered from their ids (see below).
SPARSE_CONE_PRODUCTS = 2000


def products_in_cone(
    queryset: QuerySet, ra_deg: float, dec_deg: float, radius_deg: float
) -> QuerySet:
    """``queryset`` restricted to a cone, choosing the access path by the cone's content.

    Product lists are ordered by a column (creation by default) that the sky position does not
    predict. Where a cone holds many products, walking that column's index finds a page of
    them at once; where it holds few (most of the sky away from the Galactic plane), that walk
    would read most of the table, so the few are collected first through the HEALPix index
    and the page is taken among them.
    """
    inside = cone_filter(Product.objects.order_by(), ra_deg, dec_deg, radius_deg)
    ids = list(inside.values_list("pk", flat=True)[: SPARSE_CONE_PRODUCTS + 1])
    if len(ids) <= SPARSE_CONE_PRODUCTS:
        return queryset.filter(pk__in=ids)
    return cone_filter(queryset, ra_deg, dec_deg, radius_deg)


# The condition lives with the model so that pages and API agree.
spanning_revolution = covering_revolution_q


# --- sources --------------------------------------------------------------------------------


class SourceFilter(df.FilterSet):
    q = df.CharFilter(
        method="filter_q",
        max_length=100,
        help_text=(
            "Part of a name or alias, normalised (case, spaces, _ - + and J prefixes do not "
            "matter): `v404`, `cygx1`, `1A 0535`."
        ),
    )
    name = df.CharFilter(
        method="filter_name",
        max_length=100,
        help_text="A whole name or alias (normalised): the source it names.",
    )
    klass = df.CharFilter(
        method="filter_class",
        max_length=32,
        help_text="Class code, sub-classes included: `AGN` gives Seyferts and blazars too.",
    )
    ra = FloatFilter(method="noop", help_text="Cone centre RA (deg, ICRS).")
    dec = FloatFilter(method="noop", help_text="Cone centre Dec (deg, ICRS).")
    radius = FloatFilter(method="noop", help_text="Cone radius (deg, at most 180).")
    provisional = df.BooleanFilter(
        field_name="is_provisional", help_text="Only (or no) provisional new detections."
    )
    ordering = df.ChoiceFilter(
        method="noop",
        choices=[(v, v) for v in ("name", "-name", "created", "-created", "distance")],
        help_text="Order of the results (default: name; `distance` with a cone, the default "
        "there).",
    )

    class Meta:
        model = Source
        fields: list[str] = []
        form = ConeForm

    def noop(self, queryset, name, value):
        return queryset

    def filter_q(self, queryset, name, value):
        return queryset.filter(pk__in=Source.objects.name_contains(value).values("pk"))

    def filter_name(self, queryset, name, value):
        return queryset.filter(pk__in=Source.objects.named(value).values("pk"))

    def filter_class(self, queryset, name, value):
        if not SourceClass.objects.filter(code__iexact=value).exists():
            known = ", ".join(SourceClass.objects.order_by("code").values_list("code", flat=True))
            raise forms.ValidationError({"class": [f"unknown class {value!r}; known: {known}"]})
        return queryset.filter(pk__in=Source.objects.of_class(value).values("pk"))

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        cone = _cone(data)
        ordering = data.get("ordering") or ("distance" if cone else "name")
        if cone:
            queryset = cone_filter(queryset, *cone)
        if ordering == "distance":
            if not cone:
                raise forms.ValidationError(
                    {"ordering": ["ordering by distance needs a cone (ra, dec, radius)"]}
                )
            return order_by_distance(queryset).order_by("-_cone_dot", "pk")
        return queryset.order_by(ordering, "pk")


# ``class`` is a keyword in Python: the filter is declared as ``klass`` and published as
# ``class``, the word astronomers use.
SourceFilter.base_filters["class"] = SourceFilter.base_filters.pop("klass")


# --- revolutions and observations -------------------------------------------------------------


class RevolutionFilter(df.FilterSet):
    number_min = IntFilter(
        field_name="number",
        lookup_expr="gte",
        min_value=1,
        max_value=MAX_REVOLUTION,
        help_text="First revolution number.",
    )
    number_max = IntFilter(
        field_name="number",
        lookup_expr="lte",
        min_value=1,
        max_value=MAX_REVOLUTION,
        help_text="Last revolution number.",
    )
    data_level = df.ChoiceFilter(choices=DataLevel.choices)

    class Meta:
        model = Revolution
        fields: list[str] = []


class ObservationFilter(df.FilterSet):
    revolution = IntFilter(
        method="filter_revolution",
        min_value=1,
        max_value=MAX_REVOLUTION,
        help_text="Observations during this revolution.",
    )
    obsid = df.CharFilter(max_length=20, help_text="Observation id, e.g. 19600010008.")
    pi = df.CharFilter(
        field_name="pi_name",
        lookup_expr="icontains",
        max_length=100,
        help_text="Part of the PI's name.",
    )
    ra = FloatFilter(method="noop", help_text="Cone centre RA (deg, ICRS).")
    dec = FloatFilter(method="noop", help_text="Cone centre Dec (deg, ICRS).")
    radius = FloatFilter(method="noop", help_text="Cone radius (deg) around the pointing.")

    class Meta:
        model = Observation
        fields: list[str] = []
        form = ConeForm

    def noop(self, queryset, name, value):
        return queryset

    def filter_revolution(self, queryset, name, value):
        return queryset.filter(rev_first__lte=value, rev_last__gte=value)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        cone = _cone(self.form.cleaned_data)
        return cone_filter(queryset, *cone) if cone else queryset


# --- products -------------------------------------------------------------------------------


class ProductForm(ConeForm):
    """Cross-field checks of the product filters; times are parsed here, once."""

    def clean(self):
        data = super().clean()
        fmt = data.get("time_format") or "isot"
        for name in ("time_min", "time_max"):
            text = data.get(name)
            if not text:
                continue
            try:
                data[name] = timeline.to_datetime(timeline.parse_time(text, fmt))
            except (ValueError, OverflowError) as exc:
                # TimeConversionError is a ValueError; astropy and datetime raise ValueError
                # or OverflowError for times outside the calendar they can represent.
                self.add_error(name, f"{exc} (time_format={fmt})")
        for low, high in (
            ("rev_min", "rev_max"),
            ("e_min", "e_max"),
            ("min_span", "max_span"),
            ("time_min", "time_max"),
        ):
            lo, hi = data.get(low), data.get(high)
            if lo is None or hi is None or isinstance(lo, str) or isinstance(hi, str):
                continue  # absent, or a time that could not be read (reported above)
            if lo > hi:
                self.add_error(high, f"{high} must not be less than {low}")
        return data


class ProductFilter(df.FilterSet):
    source = df.CharFilter(
        method="noop",
        max_length=100,
        help_text="Source name or alias (normalised: `V404 Cyg`, `v404cyg`). A merged source's "
        "name gives the products of the source it was merged into.",
    )
    source_id = IntFilter(method="noop", min_value=1, help_text="Source id.")
    role = df.ChoiceFilter(
        method="noop",
        choices=ProductSource.Role.choices,
        help_text="With `source`/`source_id`: only products where the source has this role.",
    )
    instrument = df.CharFilter(
        method="filter_instrument",
        max_length=100,
        help_text="Instrument codes or families, comma-separated: `isgri`, `jemx1`, `jemx` "
        "(= jemx1 + jemx2).",
    )
    kind = df.CharFilter(
        method="filter_kind",
        max_length=100,
        help_text="Product kinds, comma-separated: image, spectrum, lightcurve, catalog.",
    )
    revolution = IntFilter(
        method="filter_revolution",
        min_value=1,
        max_value=MAX_REVOLUTION,
        help_text="Products whose revolution span includes this revolution.",
    )
    rev_min = IntFilter(
        field_name="rev_first",
        lookup_expr="gte",
        min_value=0,
        max_value=MAX_REVOLUTION,
        help_text="Products whose span [rev_first, rev_last] lies inside [rev_min, rev_max].",
    )
    rev_max = IntFilter(
        field_name="rev_last",
        lookup_expr="lte",
        min_value=0,
        max_value=MAX_REVOLUTION,
        help_text="See rev_min.",
    )
    min_span = IntFilter(
        field_name="rev_span",
        lookup_expr="gte",
        min_value=0,
        max_value=MAX_REVOLUTION,
        help_text="Least rev_last - rev_first (0: a single revolution).",
    )
    max_span = IntFilter(
        field_name="rev_span",
        lookup_expr="lte",
        min_value=0,
        max_value=MAX_REVOLUTION,
        help_text="Largest rev_last - rev_first.",
    )
    time_min = df.CharFilter(
        method="noop",
        max_length=40,
        help_text="Products that overlap [time_min, time_max]; in `time_format`.",
    )
    time_max = df.CharFilter(method="noop", max_length=40, help_text="See time_min.")
    time_format = df.ChoiceFilter(
        method="noop",
        choices=[(f, f) for f in timeline.TIME_FORMATS],
        help_text="Format of time_min/time_max: isot (UTC, default), mjd (UTC), ijd (TT) or "
        "revnum (a revolution's start).",
    )
    e_min = FloatFilter(
        method="noop",
        help_text="Products whose band [e_min_kev, e_max_kev] lies inside [e_min, e_max] (keV).",
    )
    e_max = FloatFilter(method="noop", help_text="See e_min.")
    ra = FloatFilter(method="noop", help_text="Cone centre RA (deg, ICRS).")
    dec = FloatFilter(method="noop", help_text="Cone centre Dec (deg, ICRS).")
    radius = FloatFilter(method="noop", help_text="Cone radius (deg, at most 180).")
    observation = IntFilter(field_name="observation_id", min_value=1, help_text="Observation id.")
    data_level = df.ChoiceFilter(choices=DataLevel.choices, help_text="NRT or CONS.")
    status = df.ChoiceFilter(
        choices=Product.Status.choices,
        help_text="Only curators see draft and hidden products.",
    )
    highlight = df.BooleanFilter(field_name="is_highlight", help_text="Featured products.")
    tag = df.CharFilter(
        method="filter_tag",
        max_length=200,
        help_text="Tags, comma-separated: products with any of them.",
    )
    external_id = df.CharFilter(max_length=128, help_text="The producer's own id.")
    all_versions = df.BooleanFilter(
        method="noop",
        help_text="Include superseded versions (default: the latest version of each product).",
    )

    class Meta:
        model = Product
        fields: list[str] = []
        form = ProductForm

    def noop(self, queryset, name, value):
        return queryset

    def filter_instrument(self, queryset, name, value):
        wanted = _split(value)
        rows = Instrument.objects.filter(Q(code__in=wanted) | Q(family__in=wanted))
        found = {c for row in rows.values_list("code", "family") for c in row}
        unknown = [w for w in wanted if w not in found]
        if unknown:
            known = sorted(
                {c for row in Instrument.objects.values_list("code", "family") for c in row}
            )
            raise forms.ValidationError(
                {"instrument": [f"unknown instrument {unknown[0]!r}; use {', '.join(known)}"]}
            )
        return queryset.filter(instrument_id__in=[i.pk for i in rows])

    def filter_kind(self, queryset, name, value):
        wanted = _split(value)
        kinds = dict(ProductKind.objects.filter(code__in=wanted).values_list("code", "pk"))
        unknown = [w for w in wanted if w not in kinds]
        if unknown:
            known = ", ".join(ProductKind.objects.values_list("code", flat=True))
            raise forms.ValidationError({"kind": [f"unknown kind {unknown[0]!r}; use {known}"]})
        return queryset.filter(kind_id__in=list(kinds.values()))

    def filter_revolution(self, queryset, name, value):
        return queryset.filter(spanning_revolution(value))

    def filter_tag(self, queryset, name, value):
        tagged = Product.tags.through.objects.filter(
            product_id=OuterRef("pk"), tag__name__in=_split(value)
        )
        return queryset.filter(Exists(tagged))

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        if not data.get("all_versions"):
            queryset = queryset.latest_versions()
        queryset = self._by_source(queryset, data)
        if data.get("time_min"):
            queryset = queryset.filter(time_end__gte=data["time_min"])
        if data.get("time_max"):
            queryset = queryset.filter(time_start__lte=data["time_max"])
        if data.get("rev_max") is not None:
            # Implied by rev_first <= rev_last <= rev_max; lets an index on rev_first bound
            # the scan from above.
            queryset = queryset.filter(rev_first__lte=data["rev_max"])
        if data.get("e_min") is not None:
            queryset = queryset.filter(e_min_kev__gte=data["e_min"])
        if data.get("e_max") is not None:
            queryset = queryset.filter(e_max_kev__lte=data["e_max"])
        cone = _cone(data)
        if cone:
            queryset = products_in_cone(queryset, *cone)
        return queryset

    def _by_source(self, queryset: QuerySet, data: dict) -> QuerySet:
        ids: list[int] = []
        if data.get("source"):
            found = Source.objects.named(data["source"]).values_list("pk", "merged_into_id")
            ids = [merged or pk for pk, merged in found]
            if not ids:
                return queryset.none()
        if data.get("source_id"):
            merged = (
                Source.objects.filter(pk=data["source_id"])
                .values_list("merged_into_id", flat=True)
                .first()
            )
            target = merged or data["source_id"]
            ids = [i for i in ids if i == target] if data.get("source") else [target]
            if not ids:
                return queryset.none()
        if not ids:
            if data.get("role"):
                raise forms.ValidationError({"role": ["role needs source or source_id"]})
            return queryset
        # A normalised name names one source, so this join yields each product once.
        links = {"source_links__source_id": ids[0]}
        if data.get("role"):
            links["source_links__role"] = data["role"]
        return queryset.filter(**links)
