"""HTML pages. Thin: queries come from products.selectors and gallery.pages.selectors;
visibility from ``visible_to``."""

from __future__ import annotations

import mimetypes
from urllib.parse import urlencode

from django.contrib.auth.models import AnonymousUser
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import cache_control, cache_page
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET
from rest_framework.exceptions import AuthenticationFailed

from products import selectors, timeline
from products.models import Product, ProductSource, Revolution
from products.selectors import ProductFilters
from sources.models import Source

from ..auth import ApiTokenAuthentication
from . import plots
from . import selectors as page_selectors
from .forms import (
    ExploreForm,
    ProductListForm,
    RevolutionFilterForm,
    RevolutionJumpForm,
    SourceListForm,
)
from .snippets import python_snippets

PRODUCTS_PER_PAGE = 50


def _query_without(request, *names: str) -> str:
    """The current query string without ``names`` (to build page and sort links)."""
    pairs = [(k, v) for k, v in request.GET.items() if k not in names and v != ""]
    return urlencode(pairs)


@require_GET
def home(request):
    visible = selectors.visible_products(request.user).latest_versions()
    listed = visible.select_related("kind", "instrument").defer(*page_selectors.LISTING_DEFERRED)
    highlights = list(listed.filter(is_highlight=True).order_by("-created", "-pk")[:8])
    context = {
        "revolutions": selectors.latest_revolutions(request.user),
        "highlights": highlights,
        "previews": selectors.preview_map(highlights),
        "recent": listed.order_by("-created", "-pk")[:10],
    }
    return render(request, "pages/home.html", context)


@require_GET
def search(request):
    """The header's search box: straight to the source when the name is known, else the list."""
    text = (request.GET.get("q") or "").strip()[:100]
    if text:
        exact = Source.objects.named(text).select_related("merged_into").first()
        if exact is not None:
            return redirect(exact.merged_into or exact)
    return redirect(reverse("pages:sources") + ("?" + urlencode({"q": text}) if text else ""))


@require_GET
def source_list(request):
    form = SourceListForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    sort = data.get("sort") or "name"
    sources = page_selectors.source_list(data.get("q") or "", data.get("cls") or "", sort)
    page = Paginator(sources, PRODUCTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "sort": sort,
        "extra": _query_without(request, "page"),
        "sort_extra": _query_without(request, "page", "sort"),
    }
    return render(request, "pages/source_list.html", context)


@require_GET
def source_detail(request, slug):
    source = get_object_or_404(
        Source.objects.select_related("object_class", "merged_into").prefetch_related("names"),
        slug=slug,
    )
    if source.merged_into_id:
        return redirect(source.merged_into, permanent=True)
    filters = RevolutionFilterForm(request.GET or None)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    data = page_selectors.source_page(
        source,
        request.user,
        instrument=chosen.get("instrument") or "",
        kind=chosen.get("kind") or "",
        page_number=request.GET.get("page"),
    )
    context = {
        "source": source,
        "aliases": source.aliases,
        "data": data,
        "page": data.page,
        "lightcurve": page_selectors.lightcurve_panel(source, data.bands),
        "extra": _query_without(request, "page"),
    }
    return render(request, "pages/source.html", context)


@require_GET
def revolution_index(request):
    """The revolution form: a number goes to its page; without one, the latest revolutions."""
    form = RevolutionJumpForm(request.GET or None)
    if form.is_valid():
        return redirect("pages:revolution", form.cleaned_data["number"])
    context = {"form": form, "revolutions": selectors.latest_revolutions(request.user, 30)}
    return render(request, "pages/revolution_list.html", context)


@require_GET
def revolution_detail(request, number):
    if not 1 <= number <= 99999:
        raise Http404("No such revolution.")
    revolution = Revolution.objects.filter(number=number).first()
    if revolution is None:
        # Not stored yet (no product): shown from the timeline, never written by a GET.
        revolution = Revolution(
            number=number,
            start=timeline.to_datetime(timeline.revolution_start(number)),
            end=timeline.to_datetime(timeline.revolution_end(number)),
        )
    filters = RevolutionFilterForm(request.GET or None)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    data = page_selectors.revolution_page(
        number,
        request.user,
        instrument=chosen.get("instrument") or "",
        kind=chosen.get("kind") or "",
        page_number=request.GET.get("page"),
    )
    previous, following = page_selectors.neighbour_revolutions(number)
    context = {
        "revolution": revolution,
        "filters": filters if filters.is_bound else RevolutionFilterForm(),
        "jump": RevolutionJumpForm(initial={"number": number}),
        "page": data["page"],
        "groups": data["groups"],
        "previews": data["previews"],
        "previous": previous,
        "next": following,
        "runs_template": page_selectors.revolution_runs_template(),
        "extra": _query_without(request, "page"),
    }
    return render(request, "pages/revolution.html", context)


@require_GET
def product_list(request):
    form = ProductListForm(request.GET or None)
    filters = form.filters() if form.is_bound else ProductFilters()
    page = count = None
    if filters is not None:
        products = (
            selectors.filter_products(selectors.visible_products(request.user), filters)
            .select_related("kind", "instrument")
            .defer(*page_selectors.LISTING_DEFERRED)
        )
        page = selectors.keyset_page(products, request.GET.get("cursor"), PRODUCTS_PER_PAGE)
        count = page_selectors.bounded_count(products)
    context = {
        "form": form,
        "page": page,
        "count": count,
        "previews": selectors.preview_map(page.items) if page else {},
        "extra": _query_without(request, "cursor"),
        "matched_sources": form.matched_sources,
    }
    return render(request, "pages/product_list.html", context)


@require_GET
def product_detail(request, uuid):
    product = selectors.product_for(request.user, uuid)
    if product is None:
        raise Http404("No such product, or it is not visible to you.")
    links = sorted(
        product.source_links.all(),
        key=lambda link: (
            link.role != ProductSource.Role.TARGET,
            link.role != ProductSource.Role.DETECTED,
            -(link.significance or 0),
        ),
    )
    files = list(product.files.all())
    fits = list(product.fits.all())
    versions = list(
        selectors.visible_products(request.user)
        .filter(series_key=product.series_key)
        .order_by("-version")
        .only("uuid", "version", "created", "data_level", "osa_version", "superseded_by_id")
    )
    newer = next((v for v in versions if v.pk == product.superseded_by_id), None)
    permalink = request.build_absolute_uri(product.get_absolute_url())
    context = {
        "product": product,
        "links": links,
        "files": files,
        "preview": next((f for f in files if f.role == "preview"), None),
        "fits": fits,
        "versions": versions,
        "newer": newer,
        "detected": page_selectors.detected_rows(product),
        "plot_url": reverse("pages:product-plot", args=[product.uuid])
        if product.kind.category in ("image", "spectrum", "lightcurve")
        else None,
        "permalink": permalink,
        "snippets": python_snippets(request, product, files),
    }
    return render(request, "pages/product.html", context)


@require_GET
@gzip_page
@cache_control(private=True, max_age=300)
def product_plot(request, uuid):
    """The JSON the product page's interactive plot is drawn from."""
    product = selectors.product_for(request.user, uuid)
    if product is None:
        raise Http404("No such product, or it is not visible to you.")
    data = plots.plot_data(product, request.user)
    if data is None:
        return JsonResponse({"kind": "none", "message": "This product has no plot."})
    return JsonResponse(data)


@require_GET
def explore(request):
    form = ExploreForm(request.GET or None)
    page = resolution = None
    searched = False
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        t_start, t_end = form.time_value("t_start"), form.time_value("t_end")
        cone = None
        ra, dec = data.get("ra"), data.get("dec")
        if ra is None and data.get("name"):
            resolution = page_selectors.resolve_name(data["name"])
            if resolution.resolved:
                ra, dec = resolution.ra_deg, resolution.dec_deg
                # Show the position found in the form, as the Resolve button would.
                shown = request.GET.dict() | {"ra": f"{ra:.6f}", "dec": f"{dec:.6f}"}
                form = ExploreForm(shown)
                form.is_valid()
            else:
                form.add_error("name", resolution.message)
        if ra is not None and dec is not None:
            cone = (ra, dec, data.get("radius") or 5.0)
        if not form.errors:
            filters = ProductFilters(
                instrument=data.get("instrument") or "",
                kind=data.get("kind") or "",
                t_start=t_start,
                t_end=t_end,
                cone=cone,
            )
            products = page_selectors.explore_queryset(request.user, filters)
            page = selectors.keyset_page(products, request.GET.get("cursor"), PRODUCTS_PER_PAGE)
            searched = True
    context = {
        "form": form,
        "page": page,
        "searched": searched,
        "resolution": resolution,
        "previews": selectors.preview_map(page.items) if page else {},
        "extra": _query_without(request, "cursor"),
    }
    return render(request, "pages/explore.html", context)


@require_GET
def resolve_name(request):
    """``/resolve?name=``: a name to RA/Dec (JSON), for the Explore page's Resolve button."""
    name = request.GET.get("name") or ""
    result = page_selectors.resolve_name(name)
    if not result.resolved:
        # An answer, not a missing page: the message says the name is unknown.
        return JsonResponse({"name": result.name, "resolved": False, "message": result.message})
    body = {
        "name": result.name,
        "resolved": True,
        "ra_deg": round(result.ra_deg, 6),
        "dec_deg": round(result.dec_deg, 6),
        "resolver": result.resolver,
        "message": result.message,
    }
    if result.source is not None:
        body["url"] = result.source.get_absolute_url()
        body["object_class"] = str(result.source.object_class or "")
    return JsonResponse(body)


@require_GET
@cache_page(page_selectors.STATISTICS_CACHE_SECONDS)
def statistics(request):
    """Public figures, the same for every visitor: the whole page is cached briefly."""
    return render(
        request, "pages/statistics.html", {"stats": page_selectors.statistics(request.user)}
    )


@require_GET
def _file_user(request):
    """The session user, or the API token's user: the API hands out these download links."""
    if not request.META.get("HTTP_AUTHORIZATION"):
        return request.user
    try:
        found = ApiTokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        found = None
    return found[0] if found else AnonymousUser()


def download(request, uuid, file_id, name=None):
    stored = selectors.file_for(_file_user(request), uuid, file_id)
    if stored is None:
        raise Http404("No such file, or it is not visible to you.")
    handle = stored.file.open("rb")
    inline = stored.role == "preview"
    response = FileResponse(
        handle,
        as_attachment=not inline,
        filename=stored.download_name,
        content_type=stored.content_type or mimetypes.guess_type(stored.download_name)[0],
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def product_redirect(request, pk: int):
    """Short permanent link by number."""
    product = get_object_or_404(Product.objects.visible_to(request.user), pk=pk)
    return redirect(product, permanent=True)


def favicon(request):
    """Browsers ask for /favicon.ico on every page, the admin's included."""
    from django.templatetags.static import static

    return redirect(static("gallery/favicon.svg"), permanent=True)
