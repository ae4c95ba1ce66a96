"""A minimal FITS scanner for the pipeline's hot path: ScW image files with tens of HDUs.

astropy parses every card of every header it passes, which costs more than reading a ScW's
pixels (a ScW file of ten bands holds some forty image HDUs). This scanner walks the file's
2880-byte blocks, reads only the cards it is asked for and maps the data arrays straight out
of the bytes. It handles what OSA writes (primary and IMAGE/BINTABLE extensions, big-endian
data, BSCALE/BZERO); anything it does not recognise raises ``FitsScanError``, and a file
whose data stop short of what its headers announce is reported as truncated. Headers needed
in full (the WCS) are handed to astropy.
"""

from __future__ import annotations

import gzip
import math
import mmap
import re
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

BLOCK = 2880
CARD = 80
_DTYPES = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([EeDd][+-]?\d+)?$")


class FitsScanError(ValueError):
    """Not a FITS file this scanner understands (the message says why)."""


@dataclass
class RawHdu:
    index: int
    header_bytes: bytes
    data_offset: int
    data_size: int
    _values: dict | None = None

    def _parse(self) -> dict:
        """The raw value text of every keyword card (values are converted on demand)."""
        if self._values is None:
            raw: dict[str, object] = {}
            text = self.header_bytes.decode("ascii", errors="replace")
            for start in range(0, len(text), CARD):
                key = text[start : start + 8].rstrip()
                if key == "END":
                    break
                if key and key not in raw and text[start + 8 : start + 10] == "= ":
                    raw[key] = _Raw(text[start + 10 : start + CARD])
            self._values = raw
        return self._values

    def get(self, key: str, default=None):
        value = self._parse().get(key)
        if value is None:
            return default
        if isinstance(value, _Raw):
            value = _value(value.text)
            self._values[key] = value
        return value

    def header(self) -> fits.Header:
        return fits.Header.fromstring(self.header_bytes.decode("ascii", errors="replace"))

    @property
    def is_image(self) -> bool:
        return self.get("NAXIS") == 2 and self.get("XTENSION", "IMAGE") in ("IMAGE", None)


@dataclass
class _Raw:
    text: str


def _value(text: str):
    text = text.strip()
    if text.startswith("'"):
        # A string: up to the closing quote not doubled ('' is a quote).
        out, i = [], 1
        while i < len(text):
            if text[i] == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(text[i])
            i += 1
        return "".join(out).rstrip()
    value = text.split("/", 1)[0].strip()
    if value == "T":
        return True
    if value == "F":
        return False
    if _NUMBER.match(value):
        if re.match(r"^[+-]?\d+$", value):
            return int(value)
        return float(value.replace("D", "E").replace("d", "e"))
    return value


def _data_size(hdu: RawHdu) -> int:
    bitpix = hdu.get("BITPIX")
    naxis = hdu.get("NAXIS")
    if bitpix not in _DTYPES or not isinstance(naxis, int) or naxis < 0:
        raise FitsScanError(f"HDU {hdu.index}: missing or invalid BITPIX/NAXIS")
    if naxis == 0:
        return 0
    axes = [hdu.get(f"NAXIS{i}") for i in range(1, naxis + 1)]
    if not all(isinstance(a, int) and a >= 0 for a in axes):
        raise FitsScanError(f"HDU {hdu.index}: invalid NAXISn")
    pcount, gcount = int(hdu.get("PCOUNT", 0) or 0), int(hdu.get("GCOUNT", 1) or 1)
    return abs(bitpix) // 8 * gcount * (pcount + math.prod(axes))


def scan(buffer) -> list[RawHdu]:
    """The HDUs of a FITS file held in memory (bytes, or an mmap of the file)."""
    if buffer[:9] != b"SIMPLE  =":
        raise FitsScanError("not a FITS file (it does not start with SIMPLE)")
    hdus, position = [], 0
    while position < len(buffer):
        if not buffer[position : position + BLOCK].strip(b"\x00 "):
            break  # trailing padding
        end = None
        cursor = position
        while end is None:
            block = buffer[cursor : cursor + BLOCK]
            if len(block) < BLOCK:
                raise FitsScanError("truncated FITS file: a header ends before its END card")
            for offset in range(0, BLOCK, CARD):
                if block[offset : offset + 8] == b"END     ":
                    end = cursor + BLOCK
                    break
            cursor += BLOCK
        hdu = RawHdu(len(hdus), buffer[position:end], end, 0)
        hdu.data_size = _data_size(hdu)
        if hdu.data_offset + hdu.data_size > len(buffer):
            raise FitsScanError(
                f"truncated FITS file: the data of HDU {hdu.index} end before the file says"
            )
        hdus.append(hdu)
        position = hdu.data_offset + -(-hdu.data_size // BLOCK) * BLOCK
    return hdus


@contextmanager
def opened(path: Path | str, *, mapped: bool = False):
    """The file's bytes, decompressed in memory for a gzipped file. ``mapped`` maps a plain
    file instead of reading it (only the pages touched are loaded: headers alone, say); no
    array may then outlive the block."""
    path = Path(path)
    with open(path, "rb") as handle:
        magic = handle.read(2)
        handle.seek(0)
        if magic == b"\x1f\x8b":
            try:
                data = gzip.decompress(handle.read())
            except (OSError, EOFError, zlib.error) as exc:
                raise FitsScanError(f"damaged gzip data ({exc})") from None
            yield data
            return
        if not mapped or path.stat().st_size == 0:
            yield handle.read()
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
            yield view


def image_data(buffer: bytes, hdu: RawHdu) -> np.ndarray:
    """The 2-D data of an image HDU (a read-only view of ``buffer``, scaled if needed)."""
    ny, nx = hdu.get("NAXIS2"), hdu.get("NAXIS1")
    dtype = np.dtype(_DTYPES[hdu.get("BITPIX")])
    data = np.frombuffer(buffer, dtype=dtype, count=nx * ny, offset=hdu.data_offset)
    data = data.reshape(ny, nx)
    scale, zero = hdu.get("BSCALE", 1), hdu.get("BZERO", 0)
    if scale not in (1, 1.0) or zero not in (0, 0.0):
        data = data * float(scale) + float(zero)
    return data
