"""Source-name normalisation, shared by storage (SourceName.normalized) and search.

Astronomers write the same name in many ways: "V404 Cyg", "v404cyg", "V404_Cyg", "V404+Cyg"
(a URL-encoded space), "IGR J17091-3624" or "IGR 17091-3624". The normalised form folds
case, white space, underscores, and '+'/'-' used as separators, and drops the 'J' (epoch)
prefix before coordinates. A '+' or '-' before a digit is a declination sign and is kept when it
follows a digit, a space or a signed catalogue prefix (BD, CD, CPD, MCG), so "4U 1700-377" and
"4U 1700+377", or "MCG+08-11-011" and "MCG-08-11-011", stay different, while "Cyg X-1" and
"CygX1" are the same.
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s_]+")
_SIGN_BEFORE_DIGIT = re.compile(r"[+-](?=\d)")
# Catalogues whose names carry a declination sign right after the letters (BD+23 1234).
_SIGNED_PREFIX = re.compile(r"(?:^|\s)(?:bd|cd|cpd|mcg)$")
_EPOCH_PREFIX = re.compile(r"(?<=[a-z])j(?=\d)|^j(?=\d)")

#: Values that OSA writes into name keywords when it has nothing to say.
PLACEHOLDER_NAMES = frozenset({"", "string", "none", "null", "unknown", "n/a", "-"})


def _is_sign(text: str, index: int) -> bool:
    """A '+'/'-' before a digit that follows a digit, a space, the start or a signed prefix."""
    before = text[:index]
    return bool(_SIGN_BEFORE_DIGIT.match(text, index)) and (
        not before
        or before[-1].isdigit()
        or before[-1] == " "
        or bool(_SIGNED_PREFIX.search(before))
    )


def normalize_name(name: str) -> str:
    """Return the search key of a source name ("" for an empty name)."""
    text = unicodedata.normalize("NFKC", name or "").replace("\u2212", "-").lower()
    # Control characters (NUL included) never belong to a name; databases refuse some.
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    text = " ".join(text.replace("_", " ").split())
    text = "".join(c for i, c in enumerate(text) if c not in "+-" or _is_sign(text, i))
    text = _SEPARATORS.sub("", text)
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
    key = normalize_name(cleaned)
    if not key:
        raise ValueError(f"the source name {cleaned!r} holds no letters or digits")
    if len(key) > 100:
        raise ValueError("the source name is too long once normalised (over 100 characters)")
    return cleaned


def provisional_name(ra_deg: float, dec_deg: float) -> str:
    """A provisional name for a new detection, from its position (``NEW Jhhmmss.s+ddmmss``)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    coord = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame="icrs")
    ra = coord.ra.to_string(unit=u.hourangle, sep="", precision=1, pad=True)
    dec = coord.dec.to_string(sep="", precision=0, alwayssign=True, pad=True)
    return f"NEW J{ra}{dec}"
