"""Tokens, roles, methods, CSRF and error bodies of the oda_api-compatible endpoints."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from gallery import oda_tokens
from products.models import Product
from tests.factories import ProductFactory

from .conftest import BASE, body, error_of, expired_token, make_user, png_upload, signed, token_for

pytestmark = pytest.mark.django_db

#: Endpoints that need a contributor's token, with a request that would otherwise succeed or
#: fail on its content only.
WRITES = [
    ("post", "post_product_to_gallery", {"product_type": "isgri_image", "instrument": "isgri"}),
    ("post", "post_observation_to_gallery", {"title": "obs"}),
    ("post", "post_astro_entity_to_gallery", {"src_name": "New Source 1"}),
    ("post", "delete_product_to_gallery", {"product_id": "nothing"}),
    ("get", "get_list_terms", {"group": "instruments"}),
    ("get", "get_parents_term", {"term": "isgri_image"}),
    ("get", "get_observation_attachments", {"title": "obs"}),
]
READS = [
    ("get_data_product_list_by_source_name", {"src_name": "Crab"}),
    ("get_data_product_list_with_conditions", {"instrument_name": "isgri"}),
    ("get_revnum", {"time_to_convert": "2022-03-29T15:51:01"}),
    ("resolve_name", {"name": "Crab"}),
]


def call(client, method: str, name: str, data: dict):
    return getattr(client, method)(f"{BASE}/{name}", data)


@pytest.mark.parametrize(("method", "name", "data"), WRITES)
def test_writes_refuse_a_missing_token(client, method, name, data):
    assert "token" in error_of(call(client, method, name, data), 401)


@pytest.mark.parametrize(("method", "name", "data"), WRITES)
def test_writes_refuse_bad_tokens(client, contributor, method, name, data):
    now = int(time.time())
    bad = {
        "garbage": "not-a-jwt",
        "expired": expired_token(contributor),
        "other secret": signed(
            {"sub": contributor.username, "roles": oda_tokens.CONTRIBUTOR_ROLE, "exp": now + 60},
            secret="another-secret-of-more-than-32-bytes-0000",
        ),
        "no exp": signed({"sub": contributor.username, "roles": oda_tokens.CONTRIBUTOR_ROLE}),
        "unknown user": signed(
            {"sub": "nobody", "roles": oda_tokens.CONTRIBUTOR_ROLE, "exp": now + 60}
        ),
    }
    for what, value in bad.items():
        message = error_of(call(client, method, name, {**data, "token": value}), 401)
        if what == "expired":
            assert "expired" in message


@pytest.mark.parametrize(("method", "name", "data"), WRITES)
def test_writes_need_the_contributor_role(client, method, name, data):
    reader = make_user("reader", "reader")
    # A valid token without the role, and one claiming it for a user who is only a reader.
    for value in (token_for(reader, roles=()), token_for(reader)):
        assert "gallery contributor" in error_of(
            call(client, method, name, {**data, "token": value}), 403
        )


def test_roles_may_be_a_list_or_a_comma_separated_string(client, contributor):
    now = int(time.time())
    for roles in (["general", "gallery contributor"], "general, Gallery Contributor"):
        value = signed({"email": contributor.email, "roles": roles, "exp": now + 60})
        response = client.get(f"{BASE}/get_list_terms", {"group": "instruments", "token": value})
        assert response.status_code == 200, response.content


@pytest.mark.parametrize(("name", "data"), READS)
def test_reads_need_no_token_nor_role(client, name, data):
    assert client.get(f"{BASE}/{name}", data).status_code == 200
    reader = make_user("reader", "reader")
    token = token_for(reader, roles=())
    assert client.get(f"{BASE}/{name}", {**data, "token": token}).status_code == 200


@pytest.mark.parametrize(("name", "data"), READS[:2])
def test_reads_refuse_an_invalid_token(client, name, data):
    error_of(client.get(f"{BASE}/{name}", {**data, "token": "not-a-jwt"}), 401)


def test_a_session_is_never_taken_for_a_token(client, contributor):
    client.force_login(contributor)
    response = client.post(
        f"{BASE}/post_product_to_gallery",
        {"product_type": "isgri_image", "instrument": "isgri", "img": png_upload()},
    )
    error_of(response, 401)
    assert not Product.objects.exists()


def test_posts_are_exempt_from_csrf(contributor):
    client = Client(enforce_csrf_checks=True)
    client.force_login(contributor)  # a session cookie does not bring CSRF checks back
    response = client.post(
        f"{BASE}/post_product_to_gallery",
        {
            "token": token_for(contributor),
            "product_type": "isgri_image",
            "instrument": "isgri",
            "img": png_upload(),
        },
    )
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("method", "name"),
    [("get", "post_product_to_gallery"), ("post", "get_revnum"), ("put", "resolve_name")],
)
def test_wrong_method_is_a_json_error(client, method, name):
    response = getattr(client, method)(f"{BASE}/{name}")
    error_of(response, 405)
    assert response["Allow"]


def test_token_may_travel_in_the_query_of_a_post(client, token):
    response = client.post(
        f"{BASE}/post_astro_entity_to_gallery?token={token}", {"src_name": "New Source 2"}
    )
    assert body(response)["title"][0]["value"] == "New Source 2"


def test_listing_uses_the_tokens_user_for_visibility(client, contributor):
    hidden = ProductFactory(access=Product.Access.PROPRIETARY, external_id="secret")
    curator = make_user("curator", "curator")
    query = {"product_id": "secret"}
    assert body(client.get(f"{BASE}/get_data_product_list_with_conditions", query)) == []
    seen = body(
        client.get(
            f"{BASE}/get_data_product_list_with_conditions",
            {**query, "token": token_for(curator, roles=())},
        )
    )
    assert [p["uuid"] for p in seen] == [str(hidden.uuid)]
