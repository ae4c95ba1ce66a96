"""Fixtures of the oda_api-compatible endpoints: users, their tokens, files to post."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from gallery import oda_tokens
from gallery.roles import assign_role

from .helpers import png_bytes

BASE = "/dispatch-data"
#: HS256 wants a key of at least 32 bytes; the development SECRET_KEY is shorter.
JWT_SECRET = "compat-tests-secret-0123456789abcdef0123456789"


@pytest.fixture(autouse=True)
def _jwt_secret(settings):
    settings.GALLERY_JWT_SECRET = JWT_SECRET


def make_user(username: str, role: str | None = "contributor"):
    user = get_user_model().objects.create(username=username, email=f"{username}@example.org")
    if role:
        assign_role(user, role)
    return user


def token_for(user, roles=(oda_tokens.CONTRIBUTOR_ROLE,), lifetime_s: int = 3600) -> str:
    return oda_tokens.issue(user, list(roles), lifetime_s)


def signed(claims: dict, secret: str = JWT_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def expired_token(user) -> str:
    now = int(time.time())
    return signed(
        {"sub": user.username, "roles": oda_tokens.CONTRIBUTOR_ROLE, "iat": now - 100,
         "exp": now - 10}
    )  # fmt: skip


@pytest.fixture
def contributor(db):
    return make_user("pipeline")


@pytest.fixture
def token(contributor) -> str:
    return token_for(contributor)


@pytest.fixture
def curator_token(db) -> str:
    return token_for(make_user("curator", "curator"))


def body(response):
    """The JSON of a response, checked the way the client reads it: never a JSON null."""
    data = json.loads(response.content.decode())
    assert not _has_null(data), response.content[:500]
    return data


def _has_null(value) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.content[:500]
    data = json.loads(response.content)
    assert set(data) == {"error_message"} and data["error_message"], data
    return data["error_message"]


def png_upload(seed: int = 0, name: str = "preview.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, png_bytes(seed), content_type="image/png")


def upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, Path(path).read_bytes())


def stored_files(media_root: Path) -> list[Path]:
    """Files under MEDIA_ROOT (what a failed post must not leave behind)."""
    return sorted(p for p in Path(media_root).rglob("*") if p.is_file())
