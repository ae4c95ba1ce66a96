"""Curation of the sky: sources with their aliases inline, classes, and merging duplicates.

Merging moves names, product links and flux points to the chosen source (``merge.py``, one
transaction); the merged source's page then redirects to it. Every change is kept by
django-simple-history (who, when, what).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import Q
from django.template.response import TemplateResponse
from simple_history.admin import SimpleHistoryAdmin

from .merge import MergeError, merge_sources
from .models import Source, SourceClass, SourceName
from .names import normalize_name
from .stats import duplicate_candidate_ids, duplicates_of


class AliasForm(forms.ModelForm):
    class Meta:
        model = SourceName
        fields = ("name",)

    def clean_name(self):
        name = self.cleaned_data["name"]
        key = normalize_name(name)
        if not key:
            raise forms.ValidationError("A name needs letters or digits.")
        taken = SourceName.objects.filter(normalized=key)
        if self.instance.pk:
            taken = taken.exclude(pk=self.instance.pk)
        other = taken.select_related("source").first()
        if other is not None:
            raise forms.ValidationError(f"{name!r} already names {other.source.name!r}.")
        return name


class AliasInline(admin.TabularInline):
    """The alternative names (the canonical name is the source's own ``name`` field)."""

    model = SourceName
    form = AliasForm
    extra = 1
    verbose_name = "alternative name"
    verbose_name_plural = "alternative names"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(is_canonical=False)


class MergedFilter(admin.SimpleListFilter):
    title = "merged"
    parameter_name = "merged"

    def lookups(self, request, model_admin):
        return [("no", "active"), ("yes", "merged into another")]

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(merged_into__isnull=True)
        if self.value() == "yes":
            return queryset.filter(merged_into__isnull=False)
        return queryset


class DuplicateFilter(admin.SimpleListFilter):
    """Sources with a likely duplicate (error circles overlapping), proposed for merging."""

    title = "likely duplicate"
    parameter_name = "duplicate"

    def lookups(self, request, model_admin):
        return [("yes", "has a likely duplicate")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(pk__in=duplicate_candidate_ids())
        return queryset


class MergeForm(forms.Form):
    into = forms.ModelChoiceField(
        queryset=Source.objects.none(),
        required=False,
        label="Keep this source",
        help_text="The selected sources are merged into it.",
    )
    into_name = forms.CharField(
        required=False,
        max_length=100,
        label="or another source, by name or alias",
    )

    def __init__(self, *args, candidates=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["into"].queryset = candidates if candidates is not None else Source.objects

    def clean(self):
        data = super().clean()
        if data.get("into_name"):
            target = Source.objects.active().named(data["into_name"]).first()
            if target is None:
                raise forms.ValidationError(f"No active source is named {data['into_name']!r}.")
            data["into"] = target
        if data.get("into") is None:
            raise forms.ValidationError("Choose the source to keep.")
        return data


class SourceAdminForm(forms.ModelForm):
    catalogue_url = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text="Online catalogue page; empty means the CDS portal by name.",
    )

    class Meta:
        model = Source
        fields = (
            "name",
            "ra_deg",
            "dec_deg",
            "error_radius_arcmin",
            "object_class",
            "catalogue_url",
            "is_provisional",
            "description",
            "merged_into",
        )

    def clean_name(self):
        name = self.cleaned_data["name"]
        taken = SourceName.objects.filter(normalized=normalize_name(name))
        if self.instance.pk:
            taken = taken.exclude(source_id=self.instance.pk)
        other = taken.select_related("source").first()
        if other is not None:
            raise forms.ValidationError(f"{name!r} already names {other.source.name!r}.")
        return name


@admin.register(Source)
class SourceAdmin(SimpleHistoryAdmin):
    form = SourceAdminForm
    list_display = (
        "name",
        "ra_deg",
        "dec_deg",
        "object_class",
        "is_provisional",
        "merged_into",
        "updated",
    )
    list_filter = (MergedFilter, DuplicateFilter, "is_provisional", "object_class")
    list_select_related = ("object_class", "merged_into")
    search_fields = ("name", "names__name", "=slug")
    search_help_text = "Name or alternative name (spaces, case, + and - are ignored)."
    raw_id_fields = ("merged_into",)
    readonly_fields = ("slug", "healpix", "created", "updated")
    fields = (
        "name",
        "slug",
        ("ra_deg", "dec_deg", "error_radius_arcmin"),
        "object_class",
        "catalogue_url",
        "is_provisional",
        "description",
        "merged_into",
        ("healpix", "created", "updated"),
    )
    inlines = (AliasInline,)
    actions = ["merge", "merge_likely_duplicates"]
    history_list_display = ("name", "object_class", "merged_into")

    def get_search_results(self, request, queryset, search_term):
        """Names match as the site's search does: normalised, aliases included."""
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        key = normalize_name(search_term)
        if key:
            queryset |= self.model.objects.filter(
                Q(names__normalized__contains=key) | Q(slug=search_term)
            )
            may_have_duplicates = True
        return queryset, may_have_duplicates

    @admin.action(description="Merge the selected sources into one…", permissions=["change"])
    def merge(self, request, queryset):
        selected = list(queryset.order_by("name"))
        candidates = Source.objects.filter(pk__in=[s.pk for s in selected], merged_into=None)
        form = MergeForm(request.POST if "apply" in request.POST else None, candidates=candidates)
        if form.is_bound and form.is_valid():
            into = form.cleaned_data["into"]
            merged = []
            for source in selected:
                if source.pk == into.pk:
                    continue
                try:
                    merge_sources(source, into)
                    merged.append(source.name)
                except MergeError as exc:
                    self.message_user(request, f"{source.name}: {exc}", level=messages.ERROR)
            if merged:
                self.message_user(
                    request, f"Merged {', '.join(merged)} into {into.name}.", messages.SUCCESS
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Merge sources",
            "opts": self.model._meta,
            "sources": selected,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/sources/source/merge.html", context)

    @admin.action(
        description="Merge the likely duplicates of the selected sources into them",
        permissions=["change"],
    )
    def merge_likely_duplicates(self, request, queryset):
        merged = []
        for source in queryset:
            for candidate in duplicates_of(source):
                if candidate.merge.merged_into_id:
                    continue
                try:
                    merge_sources(candidate.merge, candidate.keep)
                except MergeError as exc:
                    self.message_user(request, f"{candidate.merge.name}: {exc}", messages.ERROR)
                    continue
                merged.append(
                    f"{candidate.merge.name} into {candidate.keep.name} "
                    f"({candidate.separation_arcmin:.1f}′ apart, {candidate.reason})"
                )
        if merged:
            self.message_user(request, "Merged " + "; ".join(merged) + ".", messages.SUCCESS)
        else:
            self.message_user(request, "No likely duplicate of the selected sources.")


@admin.register(SourceName)
class SourceNameAdmin(admin.ModelAdmin):
    list_display = ("name", "source", "is_canonical", "normalized")
    list_filter = ("is_canonical",)
    list_select_related = ("source",)
    search_fields = ("name", "normalized", "source__name")
    raw_id_fields = ("source",)
    readonly_fields = ("normalized",)


@admin.register(SourceClass)
class SourceClassAdmin(admin.ModelAdmin):
    list_display = ("code", "label", "parent")
    list_filter = ("parent",)
    search_fields = ("code", "label")
