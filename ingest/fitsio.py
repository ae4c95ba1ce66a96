"""Safe opening of submitted files: the kind is sniffed from the content, never the name."""

from __future__ import annotations

import gzip
import io
import json
import threading
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from astropy.io import fits

from .errors import IngestError

FITS_MAGIC = b"SIMPLE  ="
GZIP_MAGIC = b"\x1f\x8b"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: Extension stored for each sniffed content type (stored names never come from users).
EXTENSIONS = {
    "fits": ".fits",
    "fits.gz": ".fits.gz",
    "json": ".json",
    "png": ".png",
    "html": ".html",
    "yaml": ".yaml",
    "text": ".txt",
}
CONTENT_TYPES = {
    "fits": "application/fits",
    "fits.gz": "application/gzip",
    "json": "application/json",
    "png": "image/png",
    "html": "text/html",
    "yaml": "application/yaml",
    "text": "text/plain",
}


def sniff(path: Path) -> str:
    """The content type of a file from its first bytes: fits, fits.gz, json, png, html, yaml,
    text or unknown."""
    with open(path, "rb") as handle:
        head = handle.read(2880)
    if not head:
        return "empty"
    if head.startswith(FITS_MAGIC):
        return "fits"
    if head.startswith(GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as handle:
                inner = handle.read(len(FITS_MAGIC))
        except (OSError, EOFError, zlib.error):
            return "unknown"
        return "fits.gz" if inner == FITS_MAGIC else "unknown"
    if head.startswith(PNG_MAGIC):
        return "png"
    try:
        text = head.decode("utf-8").lstrip()
    except UnicodeDecodeError:
        return "unknown"
    if text[:1] in "{[":
        return "json"
    if text[:15].lower().startswith(("<!doctype html", "<html")):
        return "html"
    if text.startswith("---") or (":" in text.split("\n", 1)[0] and "\x00" not in text):
        return "yaml"
    return "text"


# The files of one product are opened by the classifier and again by the reader: keep the
# few most recent parsed files (keyed by path, size and mtime) so each is parsed once.
_CACHE: OrderedDict[tuple, fits.HDUList] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_ENTRIES = 8
_CACHE_MAX_BYTES = 64 * 1024 * 1024


def _parse(path: Path, kind: str) -> tuple[fits.HDUList, int]:
    try:
        # Decompress once into memory: astropy seeks back and forth, which is slow on gzip.
        raw = path.read_bytes()
        if kind == "fits.gz":
            raw = gzip.decompress(raw)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=False)
            for hdu in hdul:
                _ = hdu.data  # read now: a truncated file fails here, not later
        for warning in caught:
            message = str(warning.message)
            if "truncated" in message.lower() or "unexpected end" in message.lower():
                hdul.close()
                raise IngestError("truncated FITS file: the data end before the header says")
    except IngestError:
        raise
    except (OSError, ValueError, TypeError, EOFError, zlib.error) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise IngestError(f"unreadable FITS file ({first})") from None
    return hdul, len(raw)


@contextmanager
def open_fits(path: Path) -> Iterator[fits.HDUList]:
    """Open a FITS (or gzipped FITS) file fully, refusing truncated or malformed ones.

    The HDUList is shared with later calls on the same unchanged file: callers read it and
    must not modify it.
    """
    path = Path(path)
    kind = sniff(path)
    if kind == "empty":
        raise IngestError("the file is empty")
    if kind not in ("fits", "fits.gz"):
        raise IngestError("not a FITS file (it does not start with a FITS header)")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _CACHE_LOCK:
        hdul = _CACHE.get(key)
        if hdul is not None:
            _CACHE.move_to_end(key)
    if hdul is None:
        hdul, size = _parse(path, kind)
        if size <= _CACHE_MAX_BYTES:
            with _CACHE_LOCK:
                _CACHE[key] = hdul
                while len(_CACHE) > _CACHE_ENTRIES:
                    _CACHE.popitem(last=False)[1].close()
    yield hdul


def load_json(path: Path, max_bytes: int = 50 * 1024 * 1024):
    if path.stat().st_size > max_bytes:
        raise IngestError("JSON file too large")
    try:
        return json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IngestError(f"invalid JSON ({exc.__class__.__name__}: {exc})") from None
