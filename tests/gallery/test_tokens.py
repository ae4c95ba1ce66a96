"""API tokens: issued once in plain, stored hashed, revocable, expiring; the command and the
admin that issue them."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from gallery import oda_tokens
from gallery.models import ApiToken
from gallery.roles import role_of
from tests.gallery.api.conftest import make_user

pytestmark = pytest.mark.django_db

ME = "/api/v1/products/"


def call(token: str, keyword: str = "Token"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {token}")
    return client.get(ME)


def test_issue_stores_the_hash_not_the_token():
    user = make_user("reader")
    token, plain = ApiToken.issue(user, "laptop")
    assert plain.startswith("glt_") and len(plain) > 40
    row = ApiToken.objects.get(pk=token.pk)
    assert row.digest == hashlib.sha256(plain.encode()).hexdigest()
    stored = [str(getattr(row, f.attname)) for f in ApiToken._meta.fields]
    assert plain not in stored
    assert row.prefix == plain[:10]
    assert ApiToken.authenticate(plain) == row


@pytest.mark.parametrize("keyword", ["Token", "Bearer", "token", "bearer"])
def test_token_and_bearer_headers(keyword):
    _, plain = ApiToken.issue(make_user("reader"))
    assert call(plain, keyword).status_code == 200


def test_revoked_expired_and_unknown_tokens_are_401():
    user = make_user("reader")
    token, plain = ApiToken.issue(user)
    token.revoke()
    assert call(plain).status_code == 401
    _, expired = ApiToken.issue(user, expires_at=timezone.now() - timedelta(seconds=1))
    assert call(expired).status_code == 401
    _, later = ApiToken.issue(user, expires_at=timezone.now() + timedelta(days=1))
    assert call(later).status_code == 200
    assert call("glt_unknown").status_code == 401
    body = call("glt_unknown").json()
    assert "token" in body["detail"].lower()


def test_inactive_user_and_malformed_header_are_401():
    user = make_user("reader")
    _, plain = ApiToken.issue(user)
    user.is_active = False
    user.save()
    assert call(plain).status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token two parts")
    assert client.get(ME).status_code == 401


def test_last_use_is_recorded():
    token, plain = ApiToken.issue(make_user("reader"))
    assert token.last_used_at is None
    call(plain)
    token.refresh_from_db()
    assert token.last_used_at is not None


# --- manage.py issue_token ------------------------------------------------------------------


def issue(*args) -> list[str]:
    out = io.StringIO()
    call_command("issue_token", *args, stdout=out)
    return out.getvalue().strip().splitlines()


def test_command_prints_the_token_alone_on_the_last_line():
    lines = issue("pipeline", "--role", "contributor", "--name", "revolution pipeline")
    token = lines[-1]
    assert token.startswith("glt_") and " " not in token
    user = get_user_model().objects.get(username="pipeline")
    assert role_of(user) == "contributor"
    row = ApiToken.authenticate(token)
    assert row is not None and row.user == user and row.name == "revolution pipeline"
    assert row.expires_at is None
    assert call(token).status_code == 200


def test_command_expiry_and_existing_user():
    make_user("curator", username="alice")
    token = issue("alice", "--days", "7")[-1]
    row = ApiToken.authenticate(token)
    assert timedelta(days=6) < row.expires_at - timezone.now() <= timedelta(days=7)
    assert role_of(row.user) == "curator"  # the role is kept unless given


def test_command_oda_token_is_a_jwt_with_the_contributor_role():
    token = issue("poster", "--role", "contributor", "--oda")[-1]
    claims = oda_tokens.decode(token)
    assert oda_tokens.CONTRIBUTOR_ROLE in oda_tokens.roles_of(claims)


@pytest.mark.parametrize("args", [["  "], ["bob", "--days", "0"], ["bob", "--role", "king"]])
def test_command_refuses_bad_input(args):
    with pytest.raises((CommandError, SystemExit)):
        issue(*args)
    assert not ApiToken.objects.exists()


# --- the admin ------------------------------------------------------------------------------


@pytest.fixture
def admin_client_(client):
    client.force_login(make_user("admin"))
    return client


def test_admin_issues_a_token_and_shows_it_once(admin_client_):
    owner = make_user("contributor", username="carol")
    response = admin_client_.post(
        "/admin/gallery/apitoken/add/",
        {"user": owner.pk, "name": "from the admin", "expires_at_0": "", "expires_at_1": ""},
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    shown = [m for m in messages if "copy it now" in m]
    assert len(shown) == 1
    plain = next(word for word in shown[0].split() if word.startswith("glt_"))
    assert sum(plain in m for m in messages) == 1
    row = ApiToken.objects.get(user=owner)
    assert row.digest == hashlib.sha256(plain.encode()).hexdigest()
    assert row.name == "from the admin"
    # the change page never shows it again
    page = admin_client_.get(f"/admin/gallery/apitoken/{row.pk}/change/")
    assert plain not in page.content.decode()
    assert row.prefix in page.content.decode()


def test_admin_lists_searches_and_revokes(admin_client_):
    alice, bob = make_user("reader", username="alice"), make_user("reader", username="bob")
    a, _ = ApiToken.issue(alice, "alice laptop")
    b, b_plain = ApiToken.issue(bob, "bob script")
    listing = admin_client_.get("/admin/gallery/apitoken/", {"q": "bob"})
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "bob script" in html and "alice laptop" not in html
    response = admin_client_.post(
        "/admin/gallery/apitoken/",
        {"action": "revoke_tokens", "_selected_action": [b.pk]},
        follow=True,
    )
    assert response.status_code == 200
    b.refresh_from_db()
    a.refresh_from_db()
    assert b.revoked_at is not None and a.revoked_at is None
    assert call(b_plain).status_code == 401
