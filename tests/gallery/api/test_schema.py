"""The OpenAPI schema: valid, documented with examples, served with an offline Swagger UI, and
honoured by the API under property-based testing (schemathesis)."""

from __future__ import annotations

import re
import time

import pytest
import schemathesis
from django.core.management import call_command
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from gallery.models import ApiToken
from tests.factories import ObservationFactory, ProductFactory, SourceFactory
from tests.gallery.api.conftest import make_user


@pytest.fixture
def schema_json(client) -> dict:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_validates_without_warnings(tmp_path):
    # --fail-on-warn: any unresolved type, missing description or bad example fails
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
    assert (tmp_path / "s.yml").read_text().startswith("openapi: 3")


def test_every_operation_has_a_description_and_an_example(schema_json):
    operations = [
        (path, method, op)
        for path, item in schema_json["paths"].items()
        if path.startswith("/api/v1/") and not re.search(r"lightcurve|transients", path)
        for method, op in item.items()
    ]
    assert len(operations) >= 12
    for path, method, op in operations:
        assert op.get("description"), (path, method)
        examples = [
            example
            for response in op.get("responses", {}).values()
            for media in response.get("content", {}).values()
            for example in media.get("examples", {}).values()
        ] + [
            example
            for media in op.get("requestBody", {}).get("content", {}).values()
            for example in media.get("examples", {}).values()
        ]
        assert examples, (path, method)


def test_swagger_ui_is_served_offline(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for asset in assets:
        assert not asset.startswith(("http://", "https://", "//")), asset
        assert client.get(asset).status_code == 200, asset
    assert "<script>" not in html  # no inline script: the CSP holds


def test_unknown_api_paths_are_json_404s(client):
    for path in ("/api/v1/nothing-here/", "/api/v2/", "/api/v1/sources/a/b/c/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("application/json")
        assert "detail" in response.json()


# --- schemathesis --------------------------------------------------------------------------

#: The API's budget in the fuzzing below: past it, remaining examples are not sent.
BUDGET_S = 120.0
_started: list[float] = []


def _fuzzed(ctx) -> bool:
    method, path = ctx.operation.method.upper(), ctx.operation.path
    return method == "GET" or (method == "POST" and path == "/api/v1/products/")


def _load_schema():
    """The schema as the running app serves it (loading needs no database)."""
    from django.core.wsgi import get_wsgi_application

    loaded = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=12,
        deterministic=True,
    )
    # GET everywhere, and the upload (with a contributor's token, below)
    return loaded.include(func=_fuzzed)


schema = _load_schema()

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def keep_test_connection():
    """Schemathesis calls the raw WSGI handler, whose request signals would close the test's
    database connection (and its transaction) on PostgreSQL; Django's test client unhooks
    them the same way."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def sample_data(db, keep_test_connection):
    SourceFactory(name="Crab", aliases=["M 1"], class_code="Pulsar")
    ProductFactory(observation=ObservationFactory())
    return make_user("contributor")


@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    max_examples=12,
    derandomize=True,
)
def test_api_honours_its_schema(case, sample_data):
    if not _started:
        _started.append(time.monotonic())
    if time.monotonic() - _started[0] > BUDGET_S:
        return
    headers = {}
    if case.method == "POST":
        _, token = ApiToken.issue(sample_data, "fuzz")
        headers["Authorization"] = f"Token {token}"
    case.call_and_validate(headers=headers, checks=CHECKS)


def test_browsable_api_pages_render(client, db):
    from tests.factories import ProductFactory, SourceFactory
    from tests.gallery.api.conftest import make_user

    source = SourceFactory()
    product = ProductFactory(sources=[source])
    client.force_login(make_user("curator"))
    for path in (
        "/api/v1/",
        "/api/v1/products/",
        f"/api/v1/products/{product.uuid}/",
        f"/api/v1/sources/{source.pk}/",
        "/api/v1/revolutions/",
        "/api/v1/time/convert?value=1&from=revnum",
    ):
        response = client.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code == 200, path
        assert response["Content-Type"].startswith("text/html")
