"""HTML pages. Thin: queries come from products.selectors; visibility from visible_to."""

from __future__ import annotations

import mimetypes

from django.core.paginator import Paginator
from django.db.models import Count
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from products import selectors
from products.models import Product, ProductSource, Revolution
from sources.models import Source


@require_GET
def home(request):
    visible = selectors.visible_products(request.user).latest_versions()
    highlights = list(visible.filter(is_highlight=True).with_related()[:8])
    context = {
        "revolutions": selectors.latest_revolutions(request.user),
        "highlights": highlights,
        "previews": selectors.preview_map(highlights),
        "recent": visible.with_related()[:10],
    }
    return render(request, "pages/home.html", context)


@require_GET
def search(request):
    text = (request.GET.get("q") or "").strip()[:100]
    sources = []
    if text:
        exact = Source.objects.active().named(text).first()
        if exact is not None:
            return redirect(exact)
        sources = list(
            Source.objects.active().name_contains(text).select_related("object_class")[:50]
        )
    return render(request, "pages/search.html", {"q": text, "sources": sources})


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
    context = {
        "product": product,
        "links": links,
        "files": files,
        "preview": next((f for f in files if f.role == "preview"), None),
        "fits": list(product.fits.all()),
        "versions": selectors.visible_products(request.user)
        .filter(series_key=product.series_key)
        .order_by("-version"),
        "detected": product.metadata.get("detected_sources", []),
    }
    return render(request, "pages/product.html", context)


@require_GET
def source_detail(request, slug):
    source = get_object_or_404(
        Source.objects.select_related("object_class", "merged_into"), slug=slug
    )
    if source.merged_into_id:
        return redirect(source.merged_into, permanent=True)
    products = selectors.products_of_source(source, request.user).with_related()
    by_group = (
        products.values("instrument__name", "kind__name")
        .annotate(n=Count("pk"))
        .order_by("instrument__name", "kind__name")
    )
    page = Paginator(products.order_by("-time_start", "-pk"), 50).get_page(request.GET.get("page"))
    context = {
        "source": source,
        "aliases": source.aliases,
        "counts": by_group,
        "page": page,
        "previews": selectors.preview_map(page.object_list),
    }
    return render(request, "pages/source.html", context)


@require_GET
def revolution_detail(request, number):
    revolution = Revolution.objects.filter(number=number).first()
    if revolution is None:
        if not 1 <= number <= 99999:
            raise Http404("No such revolution.")
        revolution = Revolution.for_number(number)
    products = selectors.products_of_revolution(number, request.user).with_related()
    page = Paginator(products.order_by("kind__name", "instrument__name", "title"), 100).get_page(
        request.GET.get("page")
    )
    context = {
        "revolution": revolution,
        "page": page,
        "previews": selectors.preview_map(page.object_list),
        "previous": number - 1 if number > 1 else None,
        "next": number + 1,
    }
    return render(request, "pages/revolution.html", context)


@require_GET
def download(request, uuid, file_id, name=None):
    stored = selectors.file_for(request.user, uuid, file_id)
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
