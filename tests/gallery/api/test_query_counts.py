"""List endpoints make a fixed number of queries, however many rows they return (no N+1)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    ObservationFactory,
    ProductFactory,
    ProductFileFactory,
    SourceFactory,
)
from tests.gallery.api.conftest import client_for, make_user

pytestmark = pytest.mark.django_db


def queries(client, url, params=None) -> int:
    client.get(url, params or {})  # warm: a token's first use records its last_used_at
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200, response.content
    return len(captured)


def add_products(n: int, source) -> None:
    for i in range(n):
        product = ProductFactory(sources=[source, SourceFactory()], rev_first=1000 + i)
        product.tags.create(name=f"tag-{product.pk}")
        ProductFileFactory(product=product)


@pytest.mark.parametrize("role", [None, "reader", "curator"])
def test_product_list_is_constant(role, django_assert_max_num_queries):
    client = client_for(make_user(role) if role else None)
    source = SourceFactory(name="Crab")
    add_products(2, source)
    params = {"source": "crab", "kind": "image", "rev_min": 900, "page_size": 100}
    few = queries(client, "/api/v1/products/", params)
    add_products(20, source)
    many = queries(client, "/api/v1/products/", params)
    assert many == few
    with django_assert_max_num_queries(9):
        client.get("/api/v1/products/", params)


def test_source_list_is_constant(anon, django_assert_max_num_queries):
    for i in range(3):
        SourceFactory(aliases=[f"alias {i}"], class_code="LMXB")
    few = queries(anon, "/api/v1/sources/", {"class": "XRB"})
    for i in range(30):
        SourceFactory(aliases=[f"more {i}", f"again {i}"], class_code="HMXB")
    assert queries(anon, "/api/v1/sources/", {"class": "XRB"}) == few
    with django_assert_max_num_queries(6):
        anon.get("/api/v1/sources/", {"ra": 10, "dec": 10, "radius": 30})


def test_observation_and_revolution_lists_are_constant(anon):
    for _ in range(2):
        ObservationFactory()
    few_obs = queries(anon, "/api/v1/observations/")
    few_rev = queries(anon, "/api/v1/revolutions/")
    for _ in range(20):
        ObservationFactory()
    assert queries(anon, "/api/v1/observations/") == few_obs
    assert queries(anon, "/api/v1/revolutions/") == few_rev


def test_product_detail_is_constant(anon):
    source = SourceFactory()
    product = ProductFactory(sources=[source])
    ProductFileFactory(product=product)
    few = queries(anon, f"/api/v1/products/{product.uuid}/")
    for _ in range(10):
        ProductFileFactory(product=product)
        product.source_links.create(source=SourceFactory(), role="in_field")
    assert queries(anon, f"/api/v1/products/{product.uuid}/") == few
