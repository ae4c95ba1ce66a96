"""Pagination of the API.

Small tables (sources, revolutions) page by number with an exact count. The product and
observation lists, a million rows at mission scale, page by keyset: the cursor holds the
ordering value and the id of the last row of the page, and the next page is the rows after
that pair, so page 10,000 costs what page 1 does (an index range scan; no COUNT, no OFFSET).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import OrderedDict
from datetime import datetime
from typing import NoReturn

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


class NumberedPagination(PageNumberPagination):
    """Page-number pagination with a ``page_size`` parameter, for tables of a few thousand."""

    page_size_query_param = "page_size"

    @property
    def max_page_size(self) -> int:  # read at request time so that tests may change it
        return settings.GALLERY_API_MAX_PAGE_SIZE


class KeysetPagination(BasePagination):
    """Cursor pagination on (ordering field, id), in either direction, over nullable fields.

    The view names the allowed orderings in ``keyset_orderings`` (``{"-created": "created"}``,
    query value to model field) and the default in ``keyset_default``; the client chooses with
    ``?ordering=``. NULL sorts as the largest value: last ascending, first descending.
    """

    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    ordering_query_param = "ordering"

    def __init__(self) -> None:
        self.page_size = settings.REST_FRAMEWORK.get("PAGE_SIZE", 50)

    # --- request parsing --------------------------------------------------------------

    def _ordering(self, request, view) -> tuple[str, str, bool]:
        """(query value, field, descending) of the requested ordering."""
        allowed: dict[str, str] = view.keyset_orderings
        default = (
            view.keyset_default_for(request)
            if hasattr(view, "keyset_default_for")
            else view.keyset_default
        )
        value = request.query_params.get(self.ordering_query_param) or default
        if value not in allowed:
            raise_bad_request(
                self.ordering_query_param,
                f"unknown ordering {value[:40]!r}; use one of {', '.join(allowed)}",
            )
        return value, allowed[value], value.startswith("-")

    def _page_size(self, request) -> int:
        text = request.query_params.get(self.page_size_query_param)
        if not text:
            return self.page_size
        if not text.isdigit() or not 1 <= int(text) <= settings.GALLERY_API_MAX_PAGE_SIZE:
            raise_bad_request(
                self.page_size_query_param,
                f"give a whole number from 1 to {settings.GALLERY_API_MAX_PAGE_SIZE}",
            )
        return int(text)

    def _decode(self, text: str, ordering: str) -> dict:
        try:
            padded = text + "=" * (-len(text) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode())
            if not isinstance(data, dict) or data.get("o") != ordering:
                raise ValueError
            pk = data.get("i")
            if not isinstance(pk, int) or isinstance(pk, bool) or not 0 <= pk < 2**63:
                raise ValueError
            if data.get("d") not in ("n", "p"):
                raise ValueError
            if data.get("v") is not None and not isinstance(data["v"], int | float | str):
                raise ValueError
        except (ValueError, UnicodeError, binascii.Error):
            raise_bad_request(
                self.cursor_query_param,
                "invalid cursor: use the next/previous links as given (a cursor is bound to "
                "its ordering)",
            )
        return data

    @staticmethod
    def _encode(ordering: str, value, pk: int, direction: str) -> str:
        if isinstance(value, datetime):
            value = value.isoformat()
        payload = json.dumps({"o": ordering, "v": value, "i": pk, "d": direction})
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")

    # --- query --------------------------------------------------------------------------

    # NULL sorts as the largest value, as PostgreSQL's B-tree indexes have it: ascending puts
    # rows without a value last, descending first, and either order is one index scan.

    @staticmethod
    def _order(queryset: QuerySet, field: str, descending: bool) -> QuerySet:
        if descending:
            return queryset.order_by(F(field).desc(nulls_first=True), "-pk")
        return queryset.order_by(F(field).asc(nulls_last=True), "pk")

    @staticmethod
    def _greater(field: str, value, nullable: bool) -> Q:
        """Rows whose value is greater than ``value`` (NULL being the greatest)."""
        if value is None:
            return Q(pk__in=[])
        greater = Q(**{f"{field}__gt": value})
        return greater | Q(**{f"{field}__isnull": True}) if nullable else greater

    @staticmethod
    def _less(field: str, value, nullable: bool) -> Q:
        if value is None:
            return Q(**{f"{field}__isnull": False})
        return Q(**{f"{field}__lt": value})

    @staticmethod
    def _equal(field: str, value) -> Q:
        return Q(**{f"{field}__isnull": True}) if value is None else Q(**{field: value})

    def _beyond(self, field: str, value, pk: int, upwards: bool, nullable: bool) -> Q:
        """Rows after (value, pk) walking up the order (``upwards``) or down it."""
        if upwards:
            strictly = self._greater(field, value, nullable)
            tie = self._equal(field, value) & Q(pk__gt=pk)
            bound = Q(**{f"{field}__gte": value})
        else:
            strictly = self._less(field, value, nullable)
            tie = self._equal(field, value) & Q(pk__lt=pk)
            bound = Q(**{f"{field}__lte": value})
        condition = strictly | tie
        if value is not None and not nullable:
            # The redundant bound lets the database scan a range of the field's index.
            condition = bound & condition
        return condition

    #: Ordering fields holding datetimes (cursor values are ISO strings); the others numbers.
    datetime_fields = frozenset({"created", "time_start", "time_end", "updated"})

    def _cursor_value(self, field: str, value):
        """The ordering value of a cursor, checked against the field's type."""
        if value is None:
            return None
        if field in self.datetime_fields:
            try:
                parsed = parse_datetime(value) if isinstance(value, str) else None
            except ValueError:
                parsed = None
            if parsed is not None:
                return parsed
        elif isinstance(value, int | float) and not isinstance(value, bool):
            return value
        raise_bad_request(self.cursor_query_param, "invalid cursor")

    def paginate_queryset(self, queryset: QuerySet, request, view=None):
        self.request = request
        self.ordering, field, descending = self._ordering(request, view)
        self.field, self.descending = field, descending
        size = self._page_size(request)
        cursor_text = request.query_params.get(self.cursor_query_param)
        direction = "n"
        if cursor_text:
            cursor = self._decode(cursor_text, self.ordering)
            direction = cursor["d"]
            value = self._cursor_value(field, cursor["v"])
            nullable = queryset.model._meta.get_field(field).null
            # 'next' walks on in the page order; 'previous' walks back against it.
            upwards = (direction == "n") != descending
            queryset = queryset.filter(self._beyond(field, value, cursor["i"], upwards, nullable))
        if direction == "n":
            rows = list(self._order(queryset, field, descending)[: size + 1])
            more_after, more_before = len(rows) > size, bool(cursor_text)
            rows = rows[:size]
        else:
            # Walk backwards (the exact reverse order, NULLs first), then turn the page round.
            rows = list(self._order(queryset, field, not descending)[: size + 1])
            more_before, more_after = len(rows) > size, True
            rows = rows[:size][::-1]
        self.rows = rows
        self.next_cursor = (
            self._encode(self.ordering, getattr(rows[-1], field), rows[-1].pk, "n")
            if rows and more_after
            else None
        )
        self.previous_cursor = (
            self._encode(self.ordering, getattr(rows[0], field), rows[0].pk, "p")
            if rows and more_before
            else None
        )
        return rows

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, cursor)

    def get_paginated_response(self, data) -> Response:
        return Response(
            OrderedDict(
                [
                    ("next", self._link(self.next_cursor)),
                    ("previous", self._link(self.previous_cursor)),
                    ("results", data),
                ]
            )
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The next page (a keyset cursor), null on the last page.",
                    "example": "https://gallery.example.org/api/v1/products/?cursor=eyJvIjoiLWNyZWF0ZWQifQ",
                },
                "previous": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The previous page, null on the first page.",
                    "example": None,
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        orderings = list(getattr(view, "keyset_orderings", {}))
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Page cursor, from the `next` or `previous` link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": (
                    f"Rows per page (default {self.page_size}, at most "
                    f"{settings.GALLERY_API_MAX_PAGE_SIZE})."
                ),
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": settings.GALLERY_API_MAX_PAGE_SIZE,
                },
            },
            {
                "name": self.ordering_query_param,
                "required": False,
                "in": "query",
                "description": getattr(
                    view,
                    "keyset_ordering_help",
                    f"Order of the rows (default `{getattr(view, 'keyset_default', '')}`); "
                    "`-` means descending.",
                ),
                "schema": {"type": "string", "enum": orderings},
            },
        ]


def raise_bad_request(field: str, message: str) -> NoReturn:
    raise ValidationError({field: [message]})
