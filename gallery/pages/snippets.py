"""Python snippets shown on a product page: fetch it through the REST API, or with oda_api."""

from __future__ import annotations

from django.urls import reverse

#: oda_api's product-type suffix of each kind category.
ODA_TYPE_SUFFIX = {"image": "image", "spectrum": "spectrum", "lightcurve": "lc"}


def _literal(text: str) -> str:
    """A Python string literal (repr escapes quotes and backslashes)."""
    return repr(str(text))


def python_snippets(request, product, files) -> dict[str, str]:
    """{"requests": code, "oda_api": code or ""} for ``product`` and its ``files``."""
    base = request.build_absolute_uri("/").rstrip("/")
    api_url = f"{base}/api/v1/products/{product.uuid}/"
    downloads = [
        (reverse("pages:download-named", args=[product.uuid, f.pk, f.download_name]),
         f.download_name)
        for f in files
        if f.role != "preview"
    ]  # fmt: skip
    lines = [
        "import requests",
        "",
        f"BASE = {_literal(base)}",
        f"product = requests.get({_literal(api_url)}, timeout=60).json()",
        "print(product['title'] if 'title' in product else product)",
        "",
        "# Download every file of the product into the current folder",
        "files = [",
        *[f"    ({_literal(url)}, {_literal(name)})," for url, name in downloads],
        "]",
        "for url, name in files:",
        "    response = requests.get(BASE + url, timeout=300)",
        "    response.raise_for_status()",
        "    with open(name, 'wb') as out:",
        "        out.write(response.content)",
    ]
    snippets = {"requests": "\n".join(lines), "oda_api": ""}
    suffix = ODA_TYPE_SUFFIX.get(product.kind.category)
    if suffix:
        targets = [link.source.name for link in product.source_links.all()][:1]
        conditions = [
            f"    instrument_name={_literal(product.instrument.code)},",
            f"    product_type={_literal(product.instrument.family + '_' + suffix)},",
        ]
        if targets:
            conditions.append(f"    src_name={_literal(targets[0])},")
        if product.rev_first is not None:
            conditions += [
                f"    rev1_value={product.rev_first},",
                f"    rev2_value={product.rev_last},",
            ]
        snippets["oda_api"] = "\n".join(
            [
                "from oda_api.gallery_api import GalleryDispatcherAPI",
                "",
                f"gallery = GalleryDispatcherAPI(url={_literal(base + '/dispatch-data')})",
                "products = gallery.get_list_products_with_conditions(",
                *conditions,
                ")",
            ]
        )
    return snippets
