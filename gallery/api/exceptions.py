"""Errors of the API as JSON: ``{"detail": …}`` or ``{"<field>": ["<reason>", …]}``.

DRF answers its own exceptions in JSON already; this handler does the same for what Django
raises under it (a body too large, too many fields, a suspicious request) and, as a last
resort, for a bug: the client gets a JSON 500 with a reference, the log gets the traceback,
never an HTML page.
"""

from __future__ import annotations

import logging
import uuid

from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
)
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

log = logging.getLogger("gallery.api")


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is too large."
    default_code = "too_large"


class UnsupportedContent(APIException):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_detail = "Unsupported file content."
    default_code = "unsupported_content"


def json_exception_handler(exc, context):
    """DRF's handler, extended to every exception a view can meet."""
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(
            "The request body is larger than the server accepts "
            "(form fields are limited; send files as multipart file parts)."
        )
    elif isinstance(exc, TooManyFieldsSent):
        exc = _bad_request("Too many form fields in the request.")
    elif isinstance(exc, DjangoValidationError):
        exc = _bad_request(exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    elif isinstance(exc, SuspiciousOperation):
        exc = _bad_request("The request was refused as malformed.")
    response = exception_handler(exc, context)
    if response is not None:
        if isinstance(response.data, list):
            # A bare list of messages (a non-field error): always an object with ``detail``.
            response.data = {"detail": " ".join(str(item) for item in response.data)}
        return response
    reference = uuid.uuid4().hex[:12]
    view = context.get("view")
    log.exception(
        "API error %s in %s", reference, type(view).__name__ if view else "?", exc_info=exc
    )
    set_rollback()
    return Response(
        {"detail": f"Internal error (reference {reference}); it has been logged."},
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def _bad_request(detail) -> APIException:
    from rest_framework.exceptions import ValidationError

    return ValidationError(detail)


def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """JSON 404 for a path under /api/ that names no endpoint."""
    return JsonResponse(
        {"detail": f"No API endpoint at {request.path[:200]!r}; see /api/docs/."}, status=404
    )
