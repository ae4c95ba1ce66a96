"""Request and response plumbing of the oda_api-compatible endpoints.

The client is strict in ways a browser is not: success is HTTP 200 exactly; it parses JSON after
turning every ``null`` into ``None`` textually, so a response never holds JSON ``null`` (keys
without a value are left out) nor a non-finite number; errors are ``{"error_message": …}`` with
a 4xx status. The token travels as a ``token`` query or form field (an HS256 JWT), never as a
header or a session: these endpoints ignore cookies, so they are exempt from CSRF.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from gallery import oda_tokens
from gallery.roles import has_role
from ingest.posting import PostingError

log = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 4096


class CompatError(Exception):
    """A request the endpoint refuses; the message is shown to the client as it is."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def clean(value: Any) -> Any:
    """``value`` without None (dropped from dicts and lists) and without NaN or infinities."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items() if _kept(v)}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value if _kept(v)]
    return value


def _kept(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


def json_response(data: Any, status: int = 200) -> HttpResponse:
    body = json.dumps(clean(data), allow_nan=False, ensure_ascii=False)
    response = HttpResponse(body, status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def error_response(message: str, status: int) -> HttpResponse:
    return json_response({"error_message": message}, status)


@dataclass
class Caller:
    """Who is calling: the user the token names (anonymous without a token)."""

    user: Any
    claims: dict | None = None


#: What an endpoint asks of the token: nothing, a valid one if given, or a contributor's.
NONE, OPTIONAL, CONTRIBUTOR = "none", "optional", "contributor"


def authenticate(request: HttpRequest, mode: str) -> Caller:
    """The caller of ``request``; raises CompatError (401/403) when the token does not do."""
    if mode == NONE:
        return Caller(AnonymousUser())
    token = _token(request)
    if not token:
        if mode == CONTRIBUTOR:
            raise CompatError(
                "a token is required: give the token of a Gallery contributor as 'token'", 401
            )
        return Caller(AnonymousUser())
    if len(token) > MAX_TOKEN_CHARS:
        raise CompatError("invalid token (too long)", 401)
    try:
        claims = oda_tokens.decode(token)
    except oda_tokens.OdaTokenError as exc:
        raise CompatError(str(exc), 401) from None
    user = oda_tokens.user_for(claims)
    if user is None:
        raise CompatError("the token names no active user of the Gallery", 401)
    if mode == CONTRIBUTOR and not (
        oda_tokens.CONTRIBUTOR_ROLE in oda_tokens.roles_of(claims) and has_role(user, "contributor")
    ):
        raise CompatError(f"the token does not grant the role '{oda_tokens.CONTRIBUTOR_ROLE}'", 403)
    return Caller(user, claims)


def _token(request: HttpRequest) -> str:
    value = request.GET.get("token") or ""
    if request.method == "POST":
        value = request.POST.get("token") or value
    return value.strip()


def endpoint(methods: tuple[str, ...], auth: str) -> Callable:
    """Wrap a view ``view(request, caller)``: method check, size limit, token, error bodies."""

    def decorate(view: Callable) -> Callable:
        @csrf_exempt
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                response = error_response(f"use {' or '.join(methods)} for this endpoint", 405)
                response["Allow"] = ", ".join(methods)
                return response
            try:
                _check_size(request)
                caller = authenticate(request, auth)
                if getattr(caller.user, "is_authenticated", False):
                    # The history of what this request changes names the token's user.
                    request.user = caller.user
                return view(request, caller, *args, **kwargs)
            except CompatError as exc:
                return error_response(exc.message, exc.status)
            except PostingError as exc:
                return error_response(str(exc), exc.status)
            except RequestDataTooBig:
                return error_response("the request is too large", 413)
            except (MultiPartParserError, TooManyFieldsSent, TooManyFilesSent) as exc:
                return error_response(f"malformed request body ({exc})", 400)
            except Exception:
                # The client cannot read an HTML error page: answer JSON, keep the trace here.
                log.exception("%s failed", request.path)
                return error_response("internal error; the Gallery's log has the details", 500)

        return wrapped

    return decorate


def _check_size(request: HttpRequest) -> None:
    """Refuse an oversized body from its declared length, before reading it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise CompatError("invalid Content-Length", 400) from None
    limit = settings.GALLERY_UPLOAD_MAX_BYTES
    if length > limit:
        raise CompatError(
            f"the request is {length} bytes: uploads are limited to {limit} bytes", 413
        )
