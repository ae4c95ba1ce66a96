"""Reading the values the oda_api client sends.

Everything arrives as text: numbers as ``"28.0"``, booleans as ``"True"``/``"False"`` (or
``0``/``1``), lists as repeated keys or joined with commas (``src_name``, ``obsid``), JSON for a
few lists the client builds itself. Field names are compared case-insensitively, as the
previous gallery did (``E1_keV`` and ``e1_kev`` are one field). Every reader raises
``CompatError`` (400) naming the field and the problem.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime

from django.http import QueryDict

from .http import CompatError

_ISOT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}
MAX_VALUE_CHARS = 100_000


def _shown(value: str) -> str:
    return repr(value[:40] + ("…" if len(value) > 40 else ""))


class Params:
    """The fields of a query string or form, by lower-cased name."""

    def __init__(self, *sources: QueryDict):
        self._values: dict[str, list[str]] = {}
        self._spelling: dict[str, str] = {}  # as the client wrote the name, for messages
        for source in sources:
            for key in source:
                name = key.strip().lower()
                self._values.setdefault(name, []).extend(source.getlist(key))
                self._spelling.setdefault(name, key.strip())

    def label(self, name: str) -> str:
        return self._spelling.get(name, name)

    def keys(self) -> set[str]:
        return set(self._values)

    def has(self, name: str) -> bool:
        return any(v.strip() for v in self._values.get(name, []))

    def raw(self, name: str) -> str | None:
        """The first non-empty value of ``name`` (None when absent or empty)."""
        for value in self._values.get(name, []):
            if len(value) > MAX_VALUE_CHARS:
                raise CompatError(f"{self.label(name)} is longer than {MAX_VALUE_CHARS} characters")
            if value.strip():
                return value
        return None

    def text(self, name: str, max_chars: int | None = None) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        value = value.strip()
        if max_chars is not None and len(value) > max_chars:
            raise CompatError(f"{self.label(name)} cannot be longer than {max_chars} characters")
        if "\x00" in value:
            raise CompatError(f"{self.label(name)} holds a NUL character")
        return value

    def number(self, name: str) -> float | None:
        value = self.raw(name)
        if value is None:
            return None
        try:
            number = float(value.strip())
        except ValueError:
            raise CompatError(f"{self.label(name)} must be a number, got {_shown(value)}") from None
        if not math.isfinite(number):
            raise CompatError(f"{self.label(name)} must be a finite number, got {_shown(value)}")
        return number

    def integer(self, name: str) -> int | None:
        value = self.raw(name)
        if value is None:
            return None
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number != int(number) or abs(number) > 1e9:
            raise CompatError(f"{self.label(name)} must be a whole number, got {_shown(value)}")
        return int(number)

    def boolean(self, name: str) -> bool | None:
        value = self.raw(name)
        if value is None:
            return None
        key = value.strip().lower()
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
        raise CompatError(f"{self.label(name)} must be True or False, got {_shown(value)}")

    def isot(self, name: str) -> datetime | None:
        """A UTC time written exactly ``YYYY-MM-DDTHH:MM:SS``."""
        value = self.raw(name)
        if value is None:
            return None
        text = value.strip()
        try:
            if not _ISOT.match(text):
                raise ValueError
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            raise CompatError(
                f"{self.label(name)} must be a UTC time written YYYY-MM-DDTHH:MM:SS, "
                f"got {_shown(value)}"
            ) from None

    def items(self, name: str) -> list[str]:
        """A list given as repeated keys and/or joined with commas."""
        out = []
        for value in self._values.get(name, []):
            if len(value) > MAX_VALUE_CHARS:
                raise CompatError(f"{self.label(name)} is longer than {MAX_VALUE_CHARS} characters")
            out += [part.strip() for part in value.split(",") if part.strip()]
        return out

    def json_list(self, name: str) -> list | None:
        """A JSON list (as the client sends ``source_coord_list`` and the like)."""
        value = self.raw(name)
        if value is None:
            return None
        try:
            parsed = json.loads(value)
        except ValueError:
            raise CompatError(f"{self.label(name)} must be a JSON list") from None
        if not isinstance(parsed, list):
            raise CompatError(f"{self.label(name)} must be a JSON list")
        return parsed

    def names(self, name: str) -> list[str]:
        """A list of names: a JSON list, repeated keys, or names joined with commas."""
        value = self.raw(name)
        if value is not None and value.strip().startswith("["):
            parsed = self.json_list(name)
            if not all(isinstance(x, str) for x in parsed):
                raise CompatError(f"{self.label(name)} must list names")
            return [x.strip() for x in parsed if x.strip()]
        return self.items(name)
