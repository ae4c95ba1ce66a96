"""Who may do what through the API (roles from gallery.roles).

* anyone reads (what they see is decided by ``Product.objects.visible_to``);
* contributors upload, and may edit the title and tags of the products they submitted;
* curators edit every field, hide (DELETE), feature and merge sources;
* admins (superusers) can do everything curators can.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from gallery.roles import has_role

#: Fields a contributor may change on a product of their own.
CONTRIBUTOR_FIELDS = frozenset({"title", "tags"})


def is_curator(user) -> bool:
    return has_role(user, "curator")


class ReadOnlyOrRole(BasePermission):
    """Safe methods for all; writes for users with the view's ``write_role`` or above."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        if not (request.user and request.user.is_authenticated):
            return False  # DRF turns this into 401 with the authentication header
        role = getattr(view, "write_roles", {}).get(getattr(view, "action", None), "curator")
        if has_role(request.user, role):
            return True
        self.message = f"This needs the {role} role (or above); yours does not allow it."
        return False


class CuratorOrOwnContributor(BasePermission):
    """Object level: curators edit any product, contributors only those they submitted."""

    message = "You may edit only the products you submitted."

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS or is_curator(request.user):
            return True
        if request.method == "DELETE":
            self.message = "Hiding a product needs the curator role."
            return False
        return obj.submitted_by_id is not None and obj.submitted_by_id == request.user.pk
