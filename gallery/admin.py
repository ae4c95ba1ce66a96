"""Admin of API tokens: list, search, revoke, and issue (the plain token is shown once)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone

from gallery.pages import curation

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "prefix",
        "user",
        "name",
        "created",
        "expires_at",
        "last_used_at",
        "revoked_at",
        "usable",
    )
    list_filter = ("revoked_at", "expires_at", "created")
    search_fields = ("prefix", "name", "user__username", "user__email")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    readonly_fields = ("prefix", "created", "last_used_at", "revoked_at")
    actions = ("revoke_tokens",)
    date_hierarchy = "created"

    @admin.display(boolean=True, description="usable")
    def usable(self, token: ApiToken) -> bool:
        return token.is_usable

    def get_fields(self, request, obj=None):
        if obj is None:  # issuing: the secret parts are made by ApiToken.issue
            return ("user", "name", "expires_at")
        return ("user", "name", "prefix", "created", "expires_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        # A token stays bound to its user; only its name and expiry may change.
        return (*self.readonly_fields, "user") if obj is not None else ()

    def save_model(self, request, obj: ApiToken, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        token, plain = ApiToken.issue(obj.user, obj.name, obj.expires_at)
        obj.pk, obj.prefix, obj.digest, obj.created = (
            token.pk,
            token.prefix,
            token.digest,
            token.created,
        )
        obj._state.adding = False
        self.message_user(
            request,
            f"Token issued for {obj.user}: {plain} — copy it now: it is stored hashed and "
            "will not be shown again.",
            messages.WARNING,
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke_tokens(self, request, queryset) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)


# The product admin (products layer) cannot enqueue ingest work itself: the front adds its
# "reprocess" action once every app's admin is registered.
curation.install_admin_actions()
