"""Source-name normalisation, shared by storage (SourceName.normalized) and search.

Astronomers write the same name in many ways: "V404 Cyg", "v404cyg", "V404_Cyg", "V404+Cyg"
(a URL-encoded space), "IGR J17091-3624" or "IGR 17091-3624". The normalised form folds
case, white space, underscores, and '+'/'-' used as separators, and drops the 'J' (epoch)
prefix before coordinates. A '+' or '-' between two digits is a declination sign and is kept,
so "4U 1700-377" and "4U 1700+377" stay different.
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s_]+")
_SIGN_NOT_BETWEEN_DIGITS = re.compile(r"(?<!\d)[+-]|[+-](?!\d)")
_EPOCH_PREFIX = re.compile(r"(?<=[a-z])j(?=\d)|^j(?=\d)")

#: Values that OSA writes into name keywords when it has nothing to say.
PLACEHOLDER_NAMES = frozenset({"", "string", "none", "null", "unknown", "n/a", "-"})


def normalize_name(name: str) -> str:
    """Return the search key of a source name ("" for an empty name)."""
    text = unicodedata.normalize("NFKC", name or "").replace("\u2212", "-").lower().strip()
    text = _SEPARATORS.sub("", text)
    text = _SIGN_NOT_BETWEEN_DIGITS.sub("", text)
    return _EPOCH_PREFIX.sub("", text)


def is_placeholder(name: str | None) -> bool:
    """True for a missing name or OSA's template values ("String", "NONE", …)."""
    return name is None or str(name).strip().lower() in PLACEHOLDER_NAMES


def clean_display_name(name: str) -> str:
    """Collapse runs of white space in a name to single spaces, as it is shown."""
    return " ".join(str(name).split())


#: Characters a source name may hold: letters, digits, space and catalogue punctuation.
_ALLOWED_NAME = re.compile(r"^[\w .+\-:/()\[\]',*#]+$")


def validate_source_name(name: str) -> str:
    """Return the cleaned name, or raise ValueError with a message saying what is wrong."""
    cleaned = clean_display_name(name or "")
    if not cleaned:
        raise ValueError("a source name cannot be empty")
    if len(cleaned) > 100:
        raise ValueError("a source name cannot be longer than 100 characters")
    if not _ALLOWED_NAME.match(cleaned):
        bad = sorted({c for c in cleaned if not _ALLOWED_NAME.match(c)})
        raise ValueError(
            f"the source name {cleaned[:40]!r} holds characters not allowed in names: "
            + " ".join(repr(c) for c in bad[:5])
        )
    if not normalize_name(cleaned):
        raise ValueError(f"the source name {cleaned!r} holds no letters or digits")
    return cleaned


def provisional_name(ra_deg: float, dec_deg: float) -> str:
    """A provisional name for a new detection, from its position (``NEW Jhhmmss.s+ddmmss``)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    coord = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="icrs")
    ra = coord.ra.to_string(unit=u.hourangle, sep="", precision=1, pad=True)
    dec = coord.dec.to_string(sep="", precision=0, alwayssign=True, pad=True)
    return f"NEW J{ra}{dec}"
