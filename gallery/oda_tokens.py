"""Tokens for the oda_api client: HS256 JWTs as the MMODA dispatcher issues and checks them.

The client sends the token as a ``token`` query or form field. The Gallery signs with its own
secret (``GALLERY_JWT_SECRET``, default ``SECRET_KEY``), identifies the user by ``sub`` (or
``email``) and requires the role ``gallery contributor`` to write.
"""

from __future__ import annotations

import time

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model

CONTRIBUTOR_ROLE = "gallery contributor"


def _secret() -> str:
    return getattr(settings, "GALLERY_JWT_SECRET", "") or settings.SECRET_KEY


def issue(user, roles: list[str], lifetime_s: int = 30 * 24 * 3600) -> str:
    now = int(time.time())
    claims = {
        "sub": user.get_username(),
        "email": user.email or "",
        "name": user.get_username(),
        "roles": ", ".join(roles),
        "iat": now,
        "exp": now + lifetime_s,
    }
    return jwt.encode(claims, _secret(), algorithm="HS256")


class OdaTokenError(ValueError):
    pass


def decode(token: str) -> dict:
    try:
        return jwt.decode(token, _secret(), algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError:
        raise OdaTokenError("the token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise OdaTokenError(f"invalid token ({exc})") from None


def roles_of(claims: dict) -> set[str]:
    roles = claims.get("roles", [])
    if isinstance(roles, str):
        roles = roles.split(",")
    return {str(r).strip().lower() for r in roles if str(r).strip()}


def user_for(claims: dict):
    """The active user the token names, or None."""
    User = get_user_model()
    sub, email = claims.get("sub"), claims.get("email")
    user = None
    if sub:
        user = User.objects.filter(username=sub).first()
    if user is None and email:
        user = User.objects.filter(email=email).first()
    return user if user is not None and user.is_active else None
