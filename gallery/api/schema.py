"""OpenAPI extensions: how the schema describes the Gallery's token authentication."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "gallery.auth.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "`Token <token>` or `Bearer <token>`; tokens are issued by the Gallery's "
                "admins (`manage.py issue_token`)."
            ),
        }
