"""The JSON shapes the oda_api client reads, built from the Gallery's rows.

Posts answer with a *node* as the previous gallery's Drupal REST did: fields as lists of
``{"value": …}``, ``field_*`` names, and ``_links`` whose keys end with the field name (the
client looks for ``field_instrumentused`` and ``field_data_product_type`` there, and opens
``_links.self.href``). ``nid`` names the product whatever its version (its first version's
id), ``created`` is when the product was first posted and ``changed`` when this version was:
equal for a new product, different after an update. Lists of products use the previous
gallery's flat rows (``ra``, ``dec``, ``e1_kev``, ``rev1``, ``instrument_name`` …).
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Min, Prefetch
from django.http import HttpRequest
from django.urls import reverse
from django.utils.http import urlencode

from products.models import Observation, Product, ProductFile, ProductSource
from sources.models import Source

from . import terms

DRUPAL_DATE_FORMAT = "Y-m-d\\TH:i:sP"
#: Posted details shown under their own name rather than as ``field_<name>``.
_NOT_ECHOED = {"product_type", "obsid"}
_FILE_FIELDS = ("field_image_png", "field_fits_file", "field_html_file", "field_attachments")


def _when(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _isot(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _value(value) -> list[dict] | None:
    return None if value is None or value == "" else [{"value": value}]


def _root(request: HttpRequest) -> str:
    return request.build_absolute_uri("/")


def _relation(request: HttpRequest, bundle: str, name: str) -> str:
    return f"{_root(request)}rest/relation/node/{bundle}/{name}"


def product_url(request: HttpRequest, product: Product) -> str:
    return request.build_absolute_uri(product.get_absolute_url())


def file_url(request: HttpRequest, product: Product, stored: ProductFile) -> str:
    return request.build_absolute_uri(reverse("pages:download", args=[product.uuid, stored.pk]))


def observation_url(request: HttpRequest, observation: Observation) -> str:
    """Observations have no page of their own: their revolution's page lists them (the home
    page stands in for an observation without times)."""
    if observation.rev_first:
        return request.build_absolute_uri(reverse("pages:revolution", args=[observation.rev_first]))
    return request.build_absolute_uri(reverse("pages:home"))


def terms_url(request: HttpRequest, group: str, parent: str | None = None) -> str:
    query = {"group": group, **({"parent": parent} if parent else {})}
    return request.build_absolute_uri(reverse("compat:get_list_terms") + "?" + urlencode(query))


def product_type_of(product: Product) -> str:
    return terms.product_type_of(product.instrument.family, product.kind.code)


def _targets(product: Product) -> list[Source]:
    links = [link for link in product.source_links.all() if link.role == ProductSource.Role.TARGET]
    return [link.source for link in sorted(links, key=lambda link: link.source.name)]


def _files(product: Product) -> list[ProductFile]:
    return sorted(product.files.all(), key=lambda f: (f.role, f.original_name, f.pk))


def _details(product: Product) -> dict:
    return (product.metadata or {}).get("posted", {}).get("details", {})


def product_node(request: HttpRequest, product: Product, first: Product) -> dict:
    """The node answered to a post of a data product."""
    bundle = "data_product"
    term = product_type_of(product)
    files = _files(product)
    targets = _targets(product)
    details = _details(product)
    links = {
        "self": {"href": product_url(request, product)},
        "type": {"href": f"{_root(request)}rest/type/node/{bundle}"},
        _relation(request, bundle, "field_instrumentused"): [
            {"href": terms_url(request, "instruments"), "title": product.instrument.code}
        ],
        _relation(request, bundle, "field_data_product_type"): [
            {"href": terms_url(request, "products", product.instrument.family), "title": term}
        ],
    }
    if targets:
        links[_relation(request, bundle, "field_describes_astro_entity")] = [
            {"href": request.build_absolute_uri(s.get_absolute_url()), "title": s.name}
            for s in targets
        ]
    if product.observation is not None:
        links[_relation(request, bundle, "field_derived_from_observation")] = [
            {
                "href": observation_url(request, product.observation),
                "title": product.observation.title,
            }
        ]
    by_field: dict[str, list[dict]] = {name: [] for name in _FILE_FIELDS}
    for stored in files:
        by_field[_file_field(stored)].append({"url": file_url(request, product, stored)})
    for name, items in by_field.items():
        if items:
            links[_relation(request, bundle, name)] = [{"href": item["url"]} for item in items]

    node = {
        "_links": links,
        "nid": [{"value": first.pk}],
        "uuid": [{"value": str(product.uuid)}],
        "vid": [{"value": product.version}],
        "type": [{"target_id": bundle}],
        "status": [{"value": product.status == Product.Status.PUBLISHED}],
        "title": [{"value": product.title}],
        "created": [{"value": _when(first.created), "format": DRUPAL_DATE_FORMAT}],
        "changed": [{"value": _when(product.created), "format": DRUPAL_DATE_FORMAT}],
        "field_product_id": _value(product.external_id),
        "field_instrumentused": [{"target_id": product.instrument.code}],
        "field_data_product_type": [{"target_id": term}],
        "field_e1_kev": _value(product.e_min_kev),
        "field_e2_kev": _value(product.e_max_kev),
        "field_ra": _value(product.ra_deg),
        "field_dec": _value(product.dec_deg),
        "field_rev1": _value(product.rev_first),
        "field_rev2": _value(product.rev_last),
        "field_span_rev": _value(product.rev_span),
        "field_produced_by": _value(product.produced_by),
        "field_in_evidence": [{"value": product.is_highlight}],
        "field_osa_version": _value(product.osa_version),
        "field_describes_astro_entity": [{"target_id": s.pk, "title": s.name} for s in targets]
        or None,
        "field_derived_from_observation": [{"target_id": product.observation.pk}]
        if product.observation is not None
        else None,
        "field_obsid": [{"value": o} for o in str(details.get("obsid", "")).split(",") if o]
        or None,
    }
    if product.time_start is not None:
        node["field_timerange"] = [
            {"value": _isot(product.time_start), "end_value": _isot(product.time_end)}
        ]
    for key, value in details.items():
        if key not in _NOT_ECHOED and f"field_{key}" not in node:
            node[f"field_{key}"] = _value(value)
    for name, items in by_field.items():
        if items:
            node[name] = items
    return node


def _file_field(stored: ProductFile) -> str:
    if stored.role == ProductFile.Role.PREVIEW:
        return "field_image_png"
    if stored.role == ProductFile.Role.OTHER:
        html = stored.content_type == "text/html" or stored.original_name.lower().endswith(
            (".html", ".htm")
        )
        return "field_html_file" if html else "field_attachments"
    return "field_fits_file"


def with_list_relations(queryset):
    """What ``product_item`` reads, fetched in a fixed number of queries."""
    return queryset.select_related("kind", "instrument", "observation").prefetch_related(
        Prefetch("source_links", queryset=ProductSource.objects.select_related("source")),
        "files",
    )


def first_versions(products: list[Product]) -> dict[str, tuple[int, datetime]]:
    """{series key: (id, creation time) of the first version} for ``products`` (one query)."""
    rows = (
        Product.objects.filter(series_key__in={p.series_key for p in products})
        .values("series_key")
        .annotate(first_pk=Min("pk"), first_created=Min("created"))
    )
    return {r["series_key"]: (r["first_pk"], r["first_created"]) for r in rows}


def product_item(request: HttpRequest, product: Product, first: tuple[int, datetime]) -> dict:
    """A product as a row of the previous gallery's product lists."""
    term = product_type_of(product)
    files = _files(product)
    targets = _targets(product)
    details = _details(product)
    linked = sorted({link.source.name for link in product.source_links.all()})
    data = [f for f in files if _file_field(f) == "field_fits_file"]
    preview = next((f for f in files if f.role == ProductFile.Role.PREVIEW), None)
    item = {
        "nid": first[0],
        "uuid": str(product.uuid),
        "version": product.version,
        "title": product.title,
        "product_id": product.external_id or None,
        "instrument": product.instrument.code,
        "instrument_name": product.instrument.code,
        "product_type": term,
        "product_type_name": term,
        "e1_kev": product.e_min_kev,
        "e2_kev": product.e_max_kev,
        "ra": product.ra_deg,
        "dec": product.dec_deg,
        "rev1": product.rev_first,
        "rev2": product.rev_last,
        "span_rev": product.rev_span,
        "timerange": _isot(product.time_start),
        "timerange_end": _isot(product.time_end),
        "observation": product.observation.title if product.observation else None,
        "obsid": details.get("obsid")
        or (product.observation and product.observation.obsid)
        or None,
        "src_name": ",".join(s.name for s in targets) or None,
        "sources": ", ".join(linked) or None,
        "in_evidence": product.is_highlight,
        "produced_by": product.produced_by or None,
        "time_bin": details.get("time_bin"),
        "additional_information": details.get("additional_information"),
        "path": product.get_absolute_url(),
        "url": product_url(request, product),
        "image_png": file_url(request, product, preview) if preview else None,
        "fits_file": [file_url(request, product, f) for f in data] or None,
        "file_name": ", ".join(f.download_name for f in data) or None,
        "created": _when(first[1]),
        "changed": _when(product.created),
    }
    return item


def observation_node(request: HttpRequest, observation: Observation, extras: dict) -> dict:
    bundle = "observation"
    links = {
        "self": {"href": observation_url(request, observation)},
        "type": {"href": f"{_root(request)}rest/type/node/{bundle}"},
    }
    attachments = [attachment_url(request, observation, a) for a in extras["attachments"]]
    if attachments:
        links[_relation(request, bundle, "field_attachments")] = [{"href": u} for u in attachments]
    obsids = extras["obsids"] or ([observation.obsid] if observation.obsid else [])
    span = (
        observation.rev_last - observation.rev_first
        if observation.rev_first is not None and observation.rev_last is not None
        else None
    )
    node = {
        "_links": links,
        "nid": [{"value": observation.pk}],
        "type": [{"target_id": bundle}],
        "title": [{"value": observation.title}],
        "created": [{"value": _when(observation.created), "format": DRUPAL_DATE_FORMAT}],
        "field_rev1": _value(observation.rev_first),
        "field_rev2": _value(observation.rev_last),
        "field_span_rev": _value(span),
        "field_obsid": [{"value": o} for o in obsids] or None,
        "field_attachments": [{"url": u} for u in attachments] or None,
    }
    if observation.time_start is not None:
        node["field_timerange"] = [
            {"value": _isot(observation.time_start), "end_value": _isot(observation.time_end)}
        ]
    return node


def attachment_url(request: HttpRequest, observation: Observation, record: dict) -> str:
    return request.build_absolute_uri(
        reverse("compat:observation_attachment", args=[observation.pk, record["sha256"]])
    )


def source_node(request: HttpRequest, source: Source, object_type: str | None = None) -> dict:
    bundle = "astro_entity"
    aliases = source.aliases
    return {
        "_links": {
            "self": {"href": request.build_absolute_uri(source.get_absolute_url())},
            "type": {"href": f"{_root(request)}rest/type/node/{bundle}"},
        },
        "nid": [{"value": source.pk}],
        "type": [{"target_id": bundle}],
        "title": [{"value": source.name}],
        "field_source_name": [{"value": source.name}],
        "field_source_ra": _value(source.ra_deg),
        "field_source_dec": _value(source.dec_deg),
        "field_link": [{"value": source.portal_url}],
        "field_object_type": _value(
            source.object_class.code if source.object_class else object_type
        ),
        "field_alternative_names_long_str": _value(",".join(aliases)),
    }


def resolved(source: Source, name: str) -> dict:
    """The answer to ``resolve_name`` for a name the catalogue knows."""
    return {
        "name": name,
        "RA": source.ra_deg,
        "DEC": source.dec_deg,
        "entity_portal_link": source.portal_url,
        "object_type": source.object_class.code if source.object_class else None,
        "object_ids": [n.name for n in source.names.all()],
        "message": f"{name} successfully resolved",
    }
