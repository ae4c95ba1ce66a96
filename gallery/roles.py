"""Roles are Django groups with permissions; a user's role is the highest group it is in."""

from __future__ import annotations

ROLES = ("reader", "contributor", "curator", "admin")

# Permissions (app_label.codename) given to each role, cumulative up the list.
ROLE_PERMISSIONS: dict[str, list[str]] = {
    "reader": [],
    "contributor": ["products.add_product", "sources.add_source"],
    "curator": [
        "products.change_product",
        "products.view_all_products",
        "products.delete_product",
        "products.change_productfile",
        "products.view_product",
        "products.view_productfile",
        "products.change_spectralfit",
        "products.view_spectralfit",
        "products.add_observation",
        "products.change_observation",
        "products.view_observation",
        "products.view_revolution",
        "products.change_revolution",
        "sources.change_source",
        "sources.view_source",
        "sources.delete_source",
        "sources.add_sourcename",
        "sources.change_sourcename",
        "sources.delete_sourcename",
        "sources.view_sourcename",
        "sources.add_sourceclass",
        "sources.change_sourceclass",
        "sources.view_sourceclass",
    ],
    "admin": [],  # admins are superusers
}


def permissions_for(role: str) -> list[str]:
    perms: list[str] = []
    for name in ROLES:
        perms += ROLE_PERMISSIONS[name]
        if name == role:
            return perms
    raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")


def role_of(user) -> str | None:
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return "admin"
    names = set(user.groups.values_list("name", flat=True))
    for role in reversed(ROLES):
        if role in names:
            return role
    return "reader"


def has_role(user, role: str) -> bool:
    actual = role_of(user)
    return actual is not None and ROLES.index(actual) >= ROLES.index(role)


def assign_role(user, role: str) -> None:
    """Put ``user`` in the group of ``role`` (and only that one); admins become superusers."""
    from django.contrib.auth.models import Group

    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    user.groups.remove(*Group.objects.filter(name__in=ROLES))
    user.groups.add(Group.objects.get(name=role))
    user.is_staff = role in ("curator", "admin")
    user.is_superuser = role == "admin"
    user.save(update_fields=["is_staff", "is_superuser"])
