"""The filter forms of the pages (plain GET forms: every page works without JavaScript)."""

from __future__ import annotations

from datetime import timedelta

from django import forms

from products import timeline
from products.selectors import ProductFilters
from sources.models import Source, SourceClass

INSTRUMENT_CHOICES = [
    ("", "all"),
    ("isgri", "IBIS/ISGRI"),
    ("jemx", "JEM-X (both units)"),
    ("jemx1", "JEM-X1"),
    ("jemx2", "JEM-X2"),
    ("spi_acs", "SPI-ACS"),
]
KIND_CHOICES = [
    ("", "all"),
    ("image", "image"),
    ("spectrum", "spectrum"),
    ("lightcurve", "light curve"),
    ("catalog", "source catalogue"),
]
TIME_UNIT_CHOICES = [
    ("isot", "ISOT (UTC)"),
    ("mjd", "MJD (UTC)"),
    ("ijd", "IJD (TT)"),
    ("revnum", "revolution"),
]
SOURCE_SORTS = {
    "name": ("name",),
    "-name": ("-name",),
    "ra": ("ra_deg", "name"),
    "-ra": ("-ra_deg", "name"),
    "dec": ("dec_deg", "name"),
    "-dec": ("-dec_deg", "name"),
    "class": ("object_class__label", "name"),
    "-class": ("-object_class__label", "name"),
}


class ClassTree:
    """Every source class (one query): choices indented under their parents, and the codes
    of a class with all its sub-classes."""

    def __init__(self) -> None:
        rows = list(SourceClass.objects.values_list("pk", "code", "label", "parent_id"))
        self.children: dict[int | None, list] = {}
        self.by_code = {code.lower(): pk for pk, code, _, _ in rows}
        for row in rows:
            self.children.setdefault(row[3], []).append(row)

    def choices(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = [("", "all")]

        def walk(parent, depth):
            for pk, code, label, _ in sorted(self.children.get(parent, []), key=lambda r: r[2]):
                out.append((code, "\u2003" * depth + label))
                walk(pk, depth + 1)

        walk(None, 0)
        return out

    def descendant_codes(self, code: str) -> tuple[str, ...]:
        pk = self.by_code.get((code or "").lower())
        if pk is None:
            return ()
        codes, frontier = [], [pk]
        while frontier:
            rows = [r for parent in frontier for r in self.children.get(parent, [])]
            codes += [r[1] for r in rows]
            frontier = [r[0] for r in rows]
        own = next(r[1] for rows in self.children.values() for r in rows if r[0] == pk)
        return (own, *codes)


def class_choices() -> list[tuple[str, str]]:
    """Every source class, sub-classes indented under their parent (one query)."""
    return ClassTree().choices()


class SourceListForm(forms.Form):
    q = forms.CharField(label="Name or alternative name", required=False, max_length=100)
    cls = forms.ChoiceField(label="Class (with its sub-classes)", required=False, choices=())
    sort = forms.ChoiceField(
        required=False, choices=[(k, k) for k in SOURCE_SORTS], widget=forms.HiddenInput
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cls"].choices = class_choices()


class _TimeRangeMixin(forms.Form):
    t_start = forms.CharField(label="Start", required=False, max_length=40)
    t_end = forms.CharField(label="End", required=False, max_length=40)
    t_unit = forms.ChoiceField(
        label="Time unit", required=False, choices=TIME_UNIT_CHOICES, initial="isot"
    )

    def time_value(self, field: str):
        text = (self.cleaned_data.get(field) or "").strip()
        if not text:
            return None
        unit = self.cleaned_data.get("t_unit") or "isot"
        try:
            t = timeline.parse_time(text, unit)
            if unit == "revnum" and field == "t_end":
                # A revolution as an end means the end of that revolution.
                t = timeline.revolution_end(int(text))
            # Typed times carry a few decimals: widen the span by a second so that a bound
            # typed as MJD or IJD still includes a product that starts or ends right on it.
            slack = timedelta(seconds=-1 if field == "t_start" else 1)
            return timeline.to_datetime(t) + slack
        except (timeline.TimeConversionError, ValueError) as exc:
            self.add_error(field, str(exc))
            return None


class ProductListForm(_TimeRangeMixin):
    instrument = forms.ChoiceField(required=False, choices=INSTRUMENT_CHOICES)
    kind = forms.ChoiceField(label="Product type", required=False, choices=KIND_CHOICES)
    e_min = forms.FloatField(label="E min (keV)", required=False, min_value=0, max_value=1e5)
    e_max = forms.FloatField(label="E max (keV)", required=False, min_value=0, max_value=1e5)
    source = forms.CharField(label="Source (name or alias)", required=False, max_length=100)
    rev_min = forms.IntegerField(
        label="From revolution", required=False, min_value=1, max_value=99999
    )
    rev_max = forms.IntegerField(
        label="To revolution", required=False, min_value=1, max_value=99999
    )
    cls = forms.ChoiceField(label="Source class", required=False, choices=())
    field_order = ["source", "cls", "instrument", "kind", "e_min", "e_max", "t_start", "t_end",
                   "t_unit", "rev_min", "rev_max"]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.classes = ClassTree()
        self.fields["cls"].choices = self.classes.choices()
        self.matched_sources: list[Source] = []

    def filters(self) -> ProductFilters | None:
        """The filters, or None when the form has errors (shown beside the fields)."""
        if not self.is_valid():
            return None
        data = self.cleaned_data
        t_start, t_end = self.time_value("t_start"), self.time_value("t_end")
        source_ids = None
        if data.get("source"):
            self.matched_sources = matching_sources(data["source"])
            source_ids = tuple(s.pk for s in self.matched_sources)
        if self.errors:
            return None
        return ProductFilters(
            instrument=data.get("instrument") or "",
            kind=data.get("kind") or "",
            t_start=t_start,
            t_end=t_end,
            e_min_kev=data.get("e_min"),
            e_max_kev=data.get("e_max"),
            source_ids=source_ids,
            object_class=data.get("cls") or "",
            object_class_codes=self.classes.descendant_codes(data["cls"])
            if data.get("cls")
            else None,
            rev_min=data.get("rev_min"),
            rev_max=data.get("rev_max"),
        )


def matching_sources(text: str, limit: int = 50) -> list[Source]:
    """Sources named ``text`` (normalised, aliases included); else those whose names contain it.

    A merged source stands for the one it was merged into.
    """
    exact = list(Source.objects.named(text).select_related("merged_into")[:limit])
    found = exact or list(Source.objects.active().name_contains(text)[:limit])
    return list({(s.merged_into or s).pk: s.merged_into or s for s in found}.values())


class ExploreForm(_TimeRangeMixin):
    name = forms.CharField(label="Object name", required=False, max_length=100)
    ra = forms.FloatField(label="RA (deg)", required=False, min_value=0, max_value=360)
    dec = forms.FloatField(label="Dec (deg)", required=False, min_value=-90, max_value=90)
    radius = forms.FloatField(
        label="Radius (deg)", required=False, min_value=0.001, max_value=180, initial=5.0
    )
    instrument = forms.ChoiceField(required=False, choices=INSTRUMENT_CHOICES)
    kind = forms.ChoiceField(label="Product type", required=False, choices=KIND_CHOICES)

    def clean(self):
        data = super().clean()
        if (data.get("ra") is None) != (data.get("dec") is None):
            raise forms.ValidationError("Give both RA and Dec, or neither.")
        return data


class RevolutionFilterForm(forms.Form):
    instrument = forms.ChoiceField(required=False, choices=INSTRUMENT_CHOICES)
    kind = forms.ChoiceField(label="Product type", required=False, choices=KIND_CHOICES[:4])


class RevolutionJumpForm(forms.Form):
    number = forms.IntegerField(label="Revolution", min_value=1, max_value=99999)
