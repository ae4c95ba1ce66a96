"""Keyset pagination: every row once, in order, both ways, whatever the ordering; bad cursors
are clean errors."""

from __future__ import annotations

import pytest

from tests.factories import ObservationFactory, ProductFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/products/"


def walk(client, url, params) -> list[dict]:
    """Follow ``next`` links to the end; returns the rows in the order seen."""
    rows, pages = [], 0
    response = client.get(url, params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        rows += body["results"]
        pages += 1
        assert pages < 100
        if not body["next"]:
            return rows
        response = client.get(body["next"])


@pytest.mark.parametrize(
    "ordering", ["-created", "created", "-rev_first", "rev_first", "time_start", "-time_start"]
)
def test_walks_every_row_once_in_order(anon, ordering):
    products = [ProductFactory(rev_first=1000 + i % 4) for i in range(11)]
    # some rows without the ordering value: NULL sorts as the largest value
    for product in products[:3]:
        product.rev_first = product.rev_last = None
        product.time_start = product.time_end = None
        product.save()
    rows = walk(anon, URL, {"ordering": ordering, "page_size": 3})
    assert sorted(r["uuid"] for r in rows) == sorted(str(p.uuid) for p in products)
    assert len(rows) == len({r["uuid"] for r in rows})
    field = ordering.lstrip("-")
    values = [r[field] for r in rows]
    present = [v for v in values if v is not None]
    descending = ordering.startswith("-")
    nulls = [None] * (len(values) - len(present))
    assert values == (nulls + present if descending else present + nulls)
    assert present == sorted(present, reverse=descending)


def test_previous_links_walk_back(anon):
    for i in range(7):
        ProductFactory(rev_first=2000 + i % 2)
    forward = []
    body = anon.get(URL, {"page_size": 2, "ordering": "rev_first"}).json()
    pages = [body]
    while body["next"]:
        body = anon.get(body["next"]).json()
        pages.append(body)
    forward = [[r["uuid"] for r in page["results"]] for page in pages]
    assert pages[0]["previous"] is None
    back = []
    body = pages[-1]
    while body["previous"]:
        body = anon.get(body["previous"]).json()
        back.append([r["uuid"] for r in body["results"]])
    assert back == forward[-2::-1]


def test_bad_cursor_is_a_400_naming_it(anon):
    ProductFactory()
    for cursor in (
        "garbage",
        "eyJ4IjoxfQ",
        "%00",
        "eyJvIjoiLWNyZWF0ZWQiLCJ2IjoieCIsImkiOjEsImQiOiJuIn0",
    ):
        response = anon.get(URL, {"cursor": cursor})
        assert response.status_code == 400
        assert "invalid cursor" in response.json()["cursor"][0]
    # a cursor made for another ordering is refused
    next_url = None
    for _ in range(3):
        ProductFactory()
    next_url = anon.get(URL, {"page_size": 1}).json()["next"]
    response = anon.get(next_url + "&ordering=rev_first")
    assert response.status_code == 400


def test_page_size_bounds(anon, settings):
    for _ in range(4):
        ProductFactory()
    assert len(anon.get(URL, {"page_size": 2}).json()["results"]) == 2
    settings.GALLERY_API_MAX_PAGE_SIZE = 3
    assert anon.get(URL, {"page_size": 4}).status_code == 400


def test_observations_page_by_cursor_too(anon):
    for _ in range(5):
        ObservationFactory()
    rows = walk(anon, "/api/v1/observations/", {"page_size": 2})
    assert len({r["id"] for r in rows}) == 5
    starts = [r["time_start"] for r in rows]
    assert starts == sorted(starts, reverse=True)
