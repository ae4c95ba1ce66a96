"""Users of every role with API tokens, and clients that send them."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIClient

from gallery.models import ApiToken
from gallery.roles import assign_role, permissions_for

_names = itertools.count()


def ensure_role_groups() -> None:
    """The role groups with their permissions (gone after a transactional_db flush)."""
    for role in ("reader", "contributor", "curator", "admin"):
        group, created = Group.objects.get_or_create(name=role)
        if created:
            perms = []
            for dotted in permissions_for(role):
                app_label, codename = dotted.split(".")
                perms += Permission.objects.filter(
                    content_type__app_label=app_label, codename=codename
                )
            group.permissions.set(perms)


def make_user(role: str, groups: tuple[str, ...] = (), username: str | None = None):
    ensure_role_groups()
    user = get_user_model().objects.create_user(username or f"{role}-{next(_names)}")
    assign_role(user, role)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


def client_for(user=None) -> APIClient:
    """An API client sending ``user``'s token (anonymous without a user)."""
    client = APIClient()
    if user is not None:
        _, plain = ApiToken.issue(user, "tests")
        client.credentials(HTTP_AUTHORIZATION=f"Token {plain}")
    return client


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def reader(db):
    return make_user("reader")


@pytest.fixture
def contributor(db):
    return make_user("contributor")


@pytest.fixture
def curator(db):
    return make_user("curator")


@pytest.fixture
def admin_user(db):
    return make_user("admin")


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Counts are cached by source id; ids come back between tests, so start empty."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
