"""Preview images (PNG) stored with every product: sky images, spectra and light curves.

Figures are built with matplotlib's object API (``Figure`` on an Agg canvas, never pyplot), so
workers can render in threads without sharing pyplot's global state; no rcParams are changed.
Every preview is 800x600 px and must cost under 100 ms on a small worker, where an empty
figure alone takes about 30 ms. Hence (``bench/previews.py`` measures it):

- layouts are fixed by hand (``tight_layout``/``constrained_layout`` draw the figure again);
- as few Axes, ticks and texts as possible: the colour bar, the IJD axis of light curves and
  the key of spectra are plain artists, ticks sit at computed positions without minor ones,
  error bars are one polyline;
- sky images use plain pixel axes whose ticks and graticule come from the WCS here: the same
  map with WCSAxes and ``Figure.colorbar`` costs about 30 ms (45 %) more;
- maps larger than the screen are reduced (block maximum) before drawing;
- the PNG is a 256-colour palette image, four times smaller than RGB and quicker to encode.

Text that comes from files or users (titles, source and model names) is drawn with mathtext
parsing off, stripped of control characters and glyphs the font lacks, and shortened, so no
name can break a render.
"""

from __future__ import annotations

import functools
import io
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from astropy.io.fits import Header
from astropy.time import Time
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, num2date
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import (
    MaxNLocator,
    NullLocator,
)
from PIL import Image

from ingest.fitting import FitResult
from ingest.readers.base import DetectedSource, ImageData, LightCurveData, SpectrumData

PREVIEW_WIDTH_PX = 800
PREVIEW_HEIGHT_PX = 600
PREVIEW_DPI = 100
# zlib level 3 encodes about as small as the default 6 on these plots, in less time
PNG_COMPRESS_LEVEL = 3

IJD_MJD_OFFSET = 51544.0  # IJD = MJD - 51544.0, both in TT

TITLE_WIDTH_CHARS = 90
LABEL_MAX_CHARS = 32
MAX_LABELLED_SOURCES = 30
# maps are reduced to at most this many pixels a side: about the size of the image on screen
MAX_DISPLAY_PIXELS = 600

TEXT_COLOUR = "0.15"
FOOTER_COLOUR = "0.4"
MARKER_COLOUR = "#00e5ff"
DATA_COLOUR = "#1f4e9c"
MODEL_COLOUR = "#d62728"

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")
_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def figure_to_png(fig: Figure) -> bytes:
    """Draw ``fig`` on an Agg canvas and encode it as a 256-colour PNG.

    Plots hold few colours: the palette image looks the same as RGB, is about four times
    smaller (a noisy sky map: ~70 KB instead of ~270 KB) and encodes in half the time.
    """
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[..., :3])
    image = Image.fromarray(rgb, mode="RGB").quantize(
        256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
    )
    buf = io.BytesIO()
    image.save(buf, format="png", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def clean_text(text: object, max_chars: int) -> str:
    """One line of plain text fit to draw: no control characters, at most ``max_chars``."""
    if text is None:
        return ""
    line = " ".join(_CONTROL_CHARS.sub(" ", str(text)).split())
    drawable = _font_characters()
    # a glyph the font lacks would be drawn as a box, with a warning in the worker's log
    line = "".join(c if ord(c) in drawable else "?" for c in line)
    if len(line) > max_chars:
        line = line[: max_chars - 1].rstrip() + "…"
    return line


@functools.cache
def _font_characters() -> frozenset[int]:
    """Code points the default font can draw."""
    return frozenset(get_font(findfont(FontProperties())).get_charmap())


def _wrapped_title(title: object) -> str:
    """The title on at most two lines; longer ones end with an ellipsis."""
    line = clean_text(title, 4 * TITLE_WIDTH_CHARS)
    lines = textwrap.wrap(line, TITLE_WIDTH_CHARS, break_long_words=True) or [""]
    if len(lines) > 2:
        lines = [lines[0], clean_text(lines[1] + " " + lines[2], TITLE_WIDTH_CHARS)]
        if not lines[1].endswith("…"):
            lines[1] = lines[1][: TITLE_WIDTH_CHARS - 1] + "…"
    return "\n".join(lines)


def _new_figure() -> Figure:
    fig = Figure(figsize=(PREVIEW_WIDTH_PX / PREVIEW_DPI, PREVIEW_HEIGHT_PX / PREVIEW_DPI))
    fig.set_dpi(PREVIEW_DPI)
    fig.set_facecolor("white")
    FigureCanvasAgg(fig)
    return fig


def _add_title_and_footer(fig: Figure, title: object, footer: object) -> None:
    fig.text(
        0.5,
        0.985,
        _wrapped_title(title),
        ha="center",
        va="top",
        fontsize=12,
        color=TEXT_COLOUR,
        parse_math=False,
    )
    footer_line = clean_text(footer, 120)
    if footer_line:
        fig.text(
            0.012,
            0.012,
            footer_line,
            ha="left",
            va="bottom",
            fontsize=8,
            color=FOOTER_COLOUR,
            parse_math=False,
        )


def _px_rect(left: float, bottom: float, width: float, height: float) -> list[float]:
    """Axes rectangle in figure fractions from pixel measures (origin bottom left)."""
    return [
        left / PREVIEW_WIDTH_PX,
        bottom / PREVIEW_HEIGHT_PX,
        width / PREVIEW_WIDTH_PX,
        height / PREVIEW_HEIGHT_PX,
    ]


def _superscript(exponent: int) -> str:
    return str(exponent).translate(_SUPERSCRIPTS)


def format_value_error(value: float, error: float | None = None, unit: str = "") -> str:
    """``value ± error`` rounded on the error (one significant digit, two when it starts by 1).

    Very large or small values use a power of ten: ``(1.23 ± 0.04)×10⁻³``.
    """
    if value is None or not math.isfinite(value):
        return "n/a"
    has_error = error is not None and math.isfinite(error) and error > 0
    magnitude = abs(value) if value != 0 else (abs(error) if has_error else 0.0)
    exponent = 0
    if magnitude and not 1e-3 <= magnitude < 1e5:
        exponent = math.floor(math.log10(magnitude))
    scale = 10.0**exponent
    v = value / scale
    if has_error:
        e = error / scale
        first = math.floor(math.log10(e))
        digits = 2 if f"{e:e}"[0] == "1" else 1
        decimals = min(max(0, digits - 1 - first), 8)
        text = f"{v:.{decimals}f} ± {e:.{decimals}f}"
    else:
        text = f"{v:.3g}"
    if exponent:
        text = (
            f"({text})×10{_superscript(exponent)}"
            if has_error
            else f"{text}×10{_superscript(exponent)}"
        )
    return f"{text} {unit}".rstrip() if unit else text


# --------------------------------------------------------------------------------------------
# Sky images
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacedSource:
    """A source that falls inside an image, at its (0-based) pixel position."""

    source: DetectedSource
    x_pix: float
    y_pix: float
    label: str


_WCS_KEYWORD = re.compile(
    r"^(WCSAXES|WCSNAME|CTYPE|CRPIX|CRVAL|CDELT|CUNIT|CROTA|CD\d+_\d|PC\d+_\d|PV\d+_\d|"
    r"PS\d+_\d|LONPOLE|LATPOLE|RADESYS|EQUINOX|EPOCH|NAXIS|A_|B_|AP_|BP_)"
)


def celestial_wcs(header: object) -> WCS | None:
    """The 2-D celestial WCS of an image header (CD, PC+CDELT or CDELT), or None."""
    if header is None:
        return None
    if not isinstance(header, Header | Mapping):
        return None
    # Only the WCS keywords: OSA headers also carry dates and RADECSYS, which astropy would
    # "fix" with a warning on every preview (and silencing warnings is not thread-safe).
    cards = Header()
    for key, value in header.items():
        key = str(key).upper()
        if key == "RADECSYS":
            key = "RADESYS"
        if _WCS_KEYWORD.match(key) and key not in cards:
            cards[key] = value
    try:
        wcs = WCS(cards, naxis=2)
    except Exception:  # any malformed WCS: the preview falls back to pixel axes
        return None
    if not wcs.has_celestial:
        return None
    return wcs.celestial


def _significance_array(image: ImageData) -> np.ndarray:
    data = np.asarray(image.significance, dtype=float)
    while data.ndim > 2 and data.shape[0] == 1:  # degenerate leading axes (e.g. a 1-plane cube)
        data = data[0]
    if data.ndim != 2 or 0 in data.shape:
        raise ValueError(f"significance map is not a 2-D image (shape {np.shape(data)})")
    return data


def sources_in_image(
    image: ImageData, sources: Sequence[DetectedSource], wcs: WCS | None = None
) -> list[PlacedSource]:
    """The sources that fall inside the image, with their pixel positions.

    A position only counts when the WCS maps it back to the same sky position, so points on
    the far side of the projection (which some projections fold onto the map) are left out.
    """
    if not sources:
        return []
    data = _significance_array(image)
    wcs = wcs if wcs is not None else celestial_wcs(image.header)
    if wcs is None:
        return []
    ny, nx = data.shape
    ra = np.array([_as_float(s.ra_deg) for s in sources])
    dec = np.array([_as_float(s.dec_deg) for s in sources])
    with np.errstate(invalid="ignore"):
        try:
            x, y = wcs.wcs_world2pix(ra, dec, 0)
            ra_back, dec_back = wcs.wcs_pix2world(x, y, 0)
        except Exception:  # wcslib refuses the whole batch when a point is invalid
            return []
    step_deg = _pixel_scale_deg(wcs)
    dra = (ra_back - ra + 180.0) % 360.0 - 180.0
    mismatch = np.hypot(dra * np.cos(np.radians(dec)), dec_back - dec)
    inside = (
        np.isfinite(x)
        & np.isfinite(y)
        & (x >= -0.5)
        & (x <= nx - 0.5)
        & (y >= -0.5)
        & (y <= ny - 0.5)
        & (mismatch < step_deg)
    )
    placed = []
    for i in np.flatnonzero(inside):
        source = sources[i]
        label = clean_text(source.name, LABEL_MAX_CHARS) or ("new source" if source.is_new else "")
        placed.append(PlacedSource(source, float(x[i]), float(y[i]), label))
    return placed


def _as_float(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _pixel_scale_deg(wcs: WCS) -> float:
    # celestial axes are in degrees once wcslib has normalised CUNIT
    return float(np.max(np.abs(proj_plane_pixel_scales(wcs))))


def _reduce_for_display(data: np.ndarray) -> tuple[np.ndarray, int]:
    """Block maximum of a map larger than the screen, and the block size.

    The maximum (not the mean) keeps a point source at its significance in the preview.
    """
    factor = math.ceil(max(data.shape) / MAX_DISPLAY_PIXELS)
    if factor <= 1:
        return data, 1
    ny, nx = (data.shape[0] // factor) * factor, (data.shape[1] // factor) * factor
    blocks = data[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor)
    filled = np.where(np.isnan(blocks), -np.inf, blocks).max(axis=(1, 3))
    filled[np.isneginf(filled)] = np.nan
    return filled, factor


def _nice_step(span: float, target_lines: int = 6) -> float:
    for step in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 45, 90):
        if span / step <= target_lines:
            return float(step)
    return 90.0


def _decimals_for_step(step: float) -> int:
    """Decimals that print every multiple of ``step`` exactly (0.0025 needs 4, not 3)."""
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    while decimals < 10 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-6:
        decimals += 1
    return decimals


def _edge_crossings(
    positions: np.ndarray, values: np.ndarray, levels: np.ndarray
) -> list[tuple[float, float]]:
    """Where ``values`` sampled along an edge cross each level: (position, level) pairs."""
    found = []
    for level in levels:
        d = values - level
        sign_change = np.flatnonzero(np.isfinite(d[:-1] + d[1:]) & (d[:-1] * d[1:] <= 0))
        for i in sign_change:
            if d[i] == d[i + 1]:
                continue
            t = d[i] / (d[i] - d[i + 1])
            found.append((positions[i] + t * (positions[i + 1] - positions[i]), float(level)))
    # ticks that would print on top of each other are dropped
    found.sort()
    spaced: list[tuple[float, float]] = []
    span = positions[-1] - positions[0]
    for pos, level in found:
        if not spaced or pos - spaced[-1][0] > 0.08 * span:
            spaced.append((pos, level))
    return spaced


def _draw_sky_coordinates(ax, wcs: WCS, nx: int, ny: int) -> None:
    """Graticule, ticks and axis labels of a celestial WCS on pixel axes."""
    lng = (wcs.wcs.lngtyp or "").strip().upper()
    if lng == "GLON":
        names = ("Galactic longitude l (°)", "Galactic latitude b (°)")
    elif lng == "ELON":
        names = ("ecliptic longitude (°)", "ecliptic latitude (°)")
    else:
        frame = (wcs.wcs.radesys or "").strip() or "ICRS"
        names = (f"RA ({frame}, °)", f"Dec ({frame}, °)")

    n = 40
    gx, gy = np.meshgrid(np.linspace(-0.5, nx - 0.5, n), np.linspace(-0.5, ny - 0.5, n))
    edge_x = np.linspace(-0.5, nx - 0.5, 200)
    edge_y = np.linspace(-0.5, ny - 0.5, 200)
    try:
        with np.errstate(invalid="ignore"):
            lon, lat = wcs.wcs_pix2world(gx, gy, 0)
            b_lon, b_lat = wcs.wcs_pix2world(edge_x, np.full_like(edge_x, -0.5), 0)
            l_lon, l_lat = wcs.wcs_pix2world(np.full_like(edge_y, -0.5), edge_y, 0)
            lon_c, _ = wcs.wcs_pix2world([(nx - 1) / 2], [(ny - 1) / 2], 0)
    except Exception:  # wcslib refuses the transform: pixel axes instead
        lon_c = [np.nan]
    if not np.isfinite(lon_c[0]) or not np.isfinite(lon).any():
        _pixel_labels(ax)
        return

    def unwrap(v: np.ndarray) -> np.ndarray:
        # longitudes continuous across 0/360 around the image centre
        return lon_c[0] + (v - lon_c[0] + 180.0) % 360.0 - 180.0

    lon, b_lon, l_lon = unwrap(lon), unwrap(b_lon), unwrap(l_lon)
    # A pole inside the map makes longitude lines meet: then only latitude is drawn.
    pole_inside = np.nanmax(np.abs(lat)) > 89.0 and np.nanmax(lon) - np.nanmin(lon) > 180.0
    lat_step = _nice_step(np.nanmax(lat) - np.nanmin(lat))
    lat_levels = np.arange(
        math.floor(np.nanmin(lat) / lat_step) * lat_step, np.nanmax(lat) + lat_step, lat_step
    )
    lon_step = _nice_step(np.nanmax(lon) - np.nanmin(lon))
    lon_levels = (
        np.array([])
        if pole_inside
        else np.arange(
            math.floor(np.nanmin(lon) / lon_step) * lon_step, np.nanmax(lon) + lon_step, lon_step
        )
    )
    _draw_graticule(ax, wcs, lon_levels, lat_levels, lon, lat)

    # Longitude goes on the axis along which it changes most (it is x unless rotated by >45°).
    cos_dec = math.cos(math.radians(float(np.nanmedian(lat))))
    lon_is_x = np.nanmax(np.abs(np.diff(b_lon))) * cos_dec >= np.nanmax(np.abs(np.diff(b_lat)))
    if lon_is_x:
        x_ticks = _edge_crossings(edge_x, b_lon, lon_levels)
        y_ticks = _edge_crossings(edge_y, l_lat, lat_levels)
        x_fmt, y_fmt = (lon_step, True), (lat_step, False)
        x_name, y_name = names
    else:
        x_ticks = _edge_crossings(edge_x, b_lat, lat_levels)
        y_ticks = _edge_crossings(edge_y, l_lon, lon_levels)
        x_fmt, y_fmt = (lat_step, False), (lon_step, True)
        x_name, y_name = names[1], names[0]

    def label(level: float, step: float, is_lon: bool) -> str:
        value = level % 360.0 if is_lon else level
        text = f"{value:.{_decimals_for_step(step)}f}"
        return ("0" if text.strip("-0.") == "" else text.replace("-", "−")) + "°"

    ax.set_xticks([p for p, _ in x_ticks], [label(v, *x_fmt) for _, v in x_ticks])
    ax.set_yticks([p for p, _ in y_ticks], [label(v, *y_fmt) for _, v in y_ticks])
    ax.set_xlabel(x_name, fontsize=10, color=TEXT_COLOUR)
    ax.set_ylabel(y_name, fontsize=10, color=TEXT_COLOUR)


def _draw_graticule(
    ax, wcs: WCS, lon_levels: np.ndarray, lat_levels: np.ndarray, lon: np.ndarray, lat: np.ndarray
) -> None:
    """Lines of constant longitude and latitude, as one collection (cheaper than contours)."""
    n = 64
    lat_range = np.linspace(np.nanmin(lat), np.nanmax(lat), n)
    lon_range = np.linspace(np.nanmin(lon), np.nanmax(lon), n)
    world_lon = [np.full(n, level) for level in lon_levels] + [lon_range for _ in lat_levels]
    world_lat = [lat_range for _ in lon_levels] + [np.full(n, level) for level in lat_levels]
    if not world_lon:
        return
    with np.errstate(invalid="ignore"):
        try:
            x, y = wcs.wcs_world2pix(np.concatenate(world_lon), np.concatenate(world_lat), 0)
        except Exception:  # a line outside the projection's domain: no graticule
            return
    segments = []
    for line in np.stack([x, y], axis=-1).reshape(len(world_lon), n, 2):
        line = line[np.isfinite(line).all(axis=1)]
        if len(line) > 1:
            segments.append(line)
    ax.add_collection(
        LineCollection(segments, colors="white", linewidths=0.5, alpha=0.35), autolim=False
    )


def _pixel_labels(ax) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(6, integer=True))
    ax.set_xlabel("x (pixel)", fontsize=10, color=TEXT_COLOUR)
    ax.set_ylabel("y (pixel)", fontsize=10, color=TEXT_COLOUR)


@dataclass(frozen=True)
class _AsinhScale:
    """Display scale of a significance map: asinh from 0 to the map maximum, linear to ~3σ.

    Mosaics run from noise (a few σ) to bright sources (hundreds of σ): a linear scale shows
    only the brightest source, a clipped one saturates it. Negative values are shown as 0.
    """

    vmax: float

    @classmethod
    def for_map(cls, data: np.ndarray) -> _AsinhScale:
        finite_max = np.nanmax(data) if np.isfinite(data).any() else 0.0
        return cls(max(float(finite_max), 5.0))

    @property
    def softening(self) -> float:
        return min(1.0, 3.0 / self.vmax)

    def __call__(self, values: np.ndarray | float) -> np.ndarray:
        """Significance to [0, 1] (NaN stays NaN)."""
        x = np.clip(np.asarray(values, dtype=float) / self.vmax, 0.0, 1.0)
        a = self.softening
        return np.arcsinh(x / a) / np.arcsinh(1.0 / a)

    def ticks(self) -> list[float]:
        candidates = [0, 3, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
        ticks = [float(t) for t in candidates if t <= self.vmax]
        # the maximum gets a tick too, unless it would touch the last one
        if float(self(self.vmax) - self(ticks[-1])) > 0.08:
            ticks.append(float(round(self.vmax)))
        return ticks


def _draw_colour_bar(fig: Figure, rect_px: tuple[float, float, float, float], cmap, scale) -> None:
    """A colour bar made of figure-level artists, ticked in σ at the stretched positions.

    ``Figure.colorbar`` (an extra Axes with its own ticks) costs about 20 ms more.
    """
    left, bottom, width, height = rect_px
    gradient = np.linspace(0.0, 1.0, round(height))[:, None].repeat(round(width), axis=1)
    fig.figimage(cmap(gradient, bytes=True), xo=round(left), yo=round(bottom), origin="lower")
    to_fig = fig.transFigure
    w, h = PREVIEW_WIDTH_PX, PREVIEW_HEIGHT_PX
    fig.add_artist(
        Rectangle(
            (round(left) / w, round(bottom) / h),
            round(width) / w,
            round(height) / h,
            fill=False,
            edgecolor=TEXT_COLOUR,
            linewidth=0.8,
            transform=to_fig,
        )
    )
    ticks = scale.ticks()
    ys = bottom + np.asarray(scale(ticks)) * height
    right = left + width
    gap = np.full(ys.size, np.nan)
    fig.add_artist(
        Line2D(
            np.column_stack([np.full(ys.size, right), np.full(ys.size, right + 4), gap]).ravel()
            / w,
            np.column_stack([ys, ys, gap]).ravel() / h,
            color=TEXT_COLOUR,
            linewidth=0.8,
            transform=to_fig,
        )
    )
    for value, y in zip(ticks, ys, strict=True):
        fig.text(
            (right + 7) / w, y / h, f"{value:g}", va="center", ha="left", fontsize=8,
            color=TEXT_COLOUR,
        )  # fmt: skip
    fig.text(
        (right + 45) / w, (bottom + height / 2) / h, "significance (σ)", rotation=90,
        va="center", ha="center", fontsize=10, color=TEXT_COLOUR,
    )  # fmt: skip


def _place_labels(
    ax, placed: list[PlacedSource], px_per_data: float, box_w: float, box_h: float
) -> None:
    """Label sources, brightest first, each where it overlaps no earlier label.

    Label boxes are estimated from the text length (no renderer is needed); a label that fits
    nowhere inside the image is left out, its circle stays.
    """
    fontsize = 8
    char_w = 0.68 * fontsize * PREVIEW_DPI / 72  # a capital's width: errs on the wide side
    text_h = 1.4 * fontsize * PREVIEW_DPI / 72
    gap = 7.0  # px between the marker centre and the label
    order = sorted(
        (p for p in placed if p.label),
        key=lambda p: -float(p.source.significance) if _finite(p.source.significance) else 1e300,
    )
    taken: list[tuple[float, float, float, float]] = []
    for p in order[:MAX_LABELLED_SOURCES]:
        w = len(p.label) * char_w + 4
        sx, sy = (p.x_pix + 0.5) * px_per_data, (p.y_pix + 0.5) * px_per_data
        candidates = (
            ("left", "bottom", sx + gap, sy + gap * 0.6, sx + gap + w, sy + gap * 0.6 + text_h),
            ("right", "bottom", sx - gap - w, sy + gap * 0.6, sx - gap, sy + gap * 0.6 + text_h),
            ("left", "top", sx + gap, sy - gap * 0.6 - text_h, sx + gap + w, sy - gap * 0.6),
            ("right", "top", sx - gap - w, sy - gap * 0.6 - text_h, sx - gap, sy - gap * 0.6),
        )
        for ha, va, x0, y0, x1, y1 in candidates:
            if x0 < 0 or y0 < 0 or x1 > box_w or y1 > box_h:
                continue
            if any(x0 < r[2] and r[0] < x1 and y0 < r[3] and r[1] < y1 for r in taken):
                continue
            taken.append((x0, y0, x1, y1))
            dx = (gap if ha == "left" else -gap) * 72 / PREVIEW_DPI
            dy = (gap * 0.6 if va == "bottom" else -gap * 0.6) * 72 / PREVIEW_DPI
            ax.annotate(
                p.label,
                (p.x_pix, p.y_pix),
                xytext=(dx, dy),
                textcoords="offset points",
                ha=ha,
                va=va,
                fontsize=fontsize,
                color="white",
                parse_math=False,
                clip_on=True,
                bbox={"boxstyle": "square,pad=0.1", "fc": "black", "alpha": 0.45, "lw": 0},
            )
            break


def _finite(value: object) -> bool:
    """A real, finite number (numpy scalars included; None, NaN and text are not)."""
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def image_figure(
    image: ImageData,
    sources: Sequence[DetectedSource],
    title: str,
    *,
    footer: str | None = None,
) -> Figure:
    """The significance map with sky coordinates, a colour bar and the sources inside it."""
    data = _significance_array(image)
    ny, nx = data.shape
    wcs = celestial_wcs(image.header)
    shown, factor = _reduce_for_display(data)
    scale = _AsinhScale.for_map(shown)

    fig = _new_figure()
    _add_title_and_footer(fig, title, footer)
    # Fixed layout (px): room for y labels on the left, for the colour bar on the right.
    avail_left, avail_bottom, avail_w, avail_h = 85.0, 62.0, 590.0, 480.0
    aspect = ny / nx
    box_h = min(avail_h, avail_w * aspect)
    box_w = box_h / aspect
    left = avail_left + (avail_w - box_w) / 2
    bottom = avail_bottom + (avail_h - box_h) / 2
    ax = fig.add_axes(_px_rect(left, bottom, box_w, box_h))

    cmap = colormaps["inferno"].with_extremes(bad="#c8c8c8")
    extent = (-0.5, shown.shape[1] * factor - 0.5, -0.5, shown.shape[0] * factor - 0.5)
    ax.imshow(
        scale(shown),
        origin="lower",
        cmap=cmap,
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        extent=extent,
        aspect="auto",
    )
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    ax.tick_params(labelsize=8, colors=TEXT_COLOUR, direction="out")
    # fixed label positions: matplotlib would otherwise measure every tick label to place them
    ax.xaxis.set_label_coords(0.5, -32 / box_h)
    ax.yaxis.set_label_coords(-52 / box_w, 0.5)

    if wcs is not None:
        _draw_sky_coordinates(ax, wcs, nx, ny)
    else:
        _pixel_labels(ax)
    _draw_colour_bar(fig, (left + box_w + 14, bottom, 16, box_h), cmap, scale)

    placed = sources_in_image(image, sources, wcs) if wcs is not None else []
    if placed:
        ax.scatter(
            [p.x_pix for p in placed],
            [p.y_pix for p in placed],
            s=110,
            facecolors="none",
            edgecolors=MARKER_COLOUR,
            linewidths=1.2,
        )
        _place_labels(ax, placed, box_w / nx, box_w, box_h)
    return fig


def render_image_preview(
    image: ImageData,
    sources: list[DetectedSource],
    title: str,
    *,
    footer: str | None = None,
) -> bytes:
    """PNG of a sky image's significance map with the given sources circled and named."""
    return figure_to_png(image_figure(image, sources, title, footer=footer))


# --------------------------------------------------------------------------------------------
# Spectra
# --------------------------------------------------------------------------------------------

_MODEL_NAMES = {"powerlaw": "power law", "cutoffpl": "cut-off power law"}
_PARAMETER_SYMBOLS = {
    "index": "Γ",
    "gamma": "Γ",
    "phoindex": "Γ",
    "photon_index": "Γ",
    "photonindex": "Γ",
    "alpha": "Γ",
    "ecut": "E_cut",
    "e_cut": "E_cut",
    "highecut": "E_cut",
    "cutoff": "E_cut",
    "cutoff_energy": "E_cut",
    "beta": "E_cut",
    "efold": "E_fold",
    "e_fold": "E_fold",
    "foldecut": "E_fold",
}
_NORMALISATIONS = {"norm", "k", "normalization", "normalisation", "amplitude", "ampl"}


def preferred_fit(fits: Sequence[FitResult]) -> FitResult | None:
    """The fit marked preferred; else the only or first one; None without fits."""
    for fit in fits:
        if fit.is_preferred:
            return fit
    return fits[0] if fits else None


def fit_legend_label(fit: FitResult) -> str:
    """Model name, key parameters and χ²/dof, on up to three short lines."""
    name = _MODEL_NAMES.get(fit.model, clean_text(fit.model, 30) or "model")
    params = []
    for p in fit.parameters:
        key = (p.name or "").strip().lower()
        if key in _NORMALISATIONS:
            continue
        symbol = _PARAMETER_SYMBOLS.get(key, clean_text(p.name, 16))
        value = format_value_error(
            float(p.value) if _finite(p.value) else math.nan,
            _float_or_none(p.error),
            clean_text(p.unit, 8),
        )
        params.append(f"{symbol} = {value}")
    lines = [name]
    if _finite(fit.statistic_value) and fit.dof:
        stat = "χ²" if (fit.statistic or "chi2").lower().startswith("chi") else fit.statistic
        lines[0] += f",  {clean_text(stat, 10)}/dof = {float(fit.statistic_value):.1f}/{fit.dof}"
    if params:
        lines.append(", ".join(params[:3]))
    if _finite(fit.flux_erg_cm2_s) and float(fit.flux_erg_cm2_s) > 0:
        band = ""
        if _finite(fit.e_min_kev) and _finite(fit.e_max_kev):
            band = f"({float(fit.e_min_kev):g}–{float(fit.e_max_kev):g} keV)"
        flux = format_value_error(float(fit.flux_erg_cm2_s), _float_or_none(fit.flux_error))
        lines.append(f"F{band} = {flux} erg cm⁻² s⁻¹")
    return "\n".join(lines)


def _float_or_none(value: object) -> float | None:
    return float(value) if _finite(value) else None  # type: ignore[arg-type]


def _error_bars(
    ax,
    x: np.ndarray,
    y: np.ndarray,
    x_err: tuple[np.ndarray, np.ndarray],
    y_err: tuple[np.ndarray, np.ndarray] | None,
    *,
    marker: str,
    ms: float,
    lw: float = 0.9,
    label: str | None = None,
) -> None:
    """Points with error bars as two artists: one polyline broken by NaNs, and the markers.

    ``Axes.errorbar`` makes collections whose every segment goes through the (log) transform
    one at a time: about 20 ms more on a 256-channel spectrum.
    """
    gap = np.full(x.size, np.nan)
    xs = [np.column_stack([x - x_err[0], x + x_err[1], gap]).ravel()]
    ys = [np.column_stack([y, y, gap]).ravel()]
    if y_err is not None:
        xs.append(np.column_stack([x, x, gap]).ravel())
        ys.append(np.column_stack([y - y_err[0], y + y_err[1], gap]).ravel())
    ax.plot(np.concatenate(xs), np.concatenate(ys), color=DATA_COLOUR, lw=lw)
    ax.plot(x, y, ls="none", marker=marker, ms=ms, color=DATA_COLOUR, label=label)


def _draw_key(ax, model_label: str | None, has_limits: bool) -> None:
    """The model's description in its colour (top right) and the upper-limit symbol.

    Plain boxed text instead of ``Axes.legend``, which costs about 15 ms more; the top
    right is free because spectra fall with energy.
    """
    if model_label:
        ax.text(
            0.985, 0.975, "— " + model_label, transform=ax.transAxes, ha="right", va="top",
            multialignment="left", linespacing=1.4, fontsize=8, color=MODEL_COLOUR,
            parse_math=False,
            bbox={"boxstyle": "round,pad=0.4", "fc": "white", "ec": "0.75", "alpha": 0.9},
        )  # fmt: skip
    if has_limits:
        ax.text(
            0.015, 0.025, "▼ 2σ upper limit", transform=ax.transAxes, ha="left", va="bottom",
            fontsize=8, color=DATA_COLOUR, parse_math=False,
        )  # fmt: skip


def _channel_array(values: object, n: int) -> np.ndarray | None:
    """A per-channel float array of length ``n``, or None when absent or mis-sized."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=float).ravel()
    return arr if arr.size == n else None


def _fit_channels(
    fit: FitResult, n: int, good: np.ndarray, rate: np.ndarray, err: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The channels used by the fit, its folded model and residuals, all of length ``n``."""
    model = _channel_array(fit.model_rate, n)
    used = good.copy()
    if fit.used is not None and np.size(fit.used) == n:
        used &= np.asarray(fit.used, dtype=bool).ravel()
    if model is None:
        return used & False, None, None
    used &= np.isfinite(model)
    residuals = None
    if fit.residuals is not None:
        raw = np.asarray(fit.residuals, dtype=float).ravel()
        if raw.size == n:
            residuals = raw
        elif raw.size == int(used.sum()):
            # residuals given only for the channels in the fit
            residuals = np.full(n, np.nan)
            residuals[used] = raw
    if residuals is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            residuals = (rate - model) / err
    return used, model, residuals


def _log_ticks(lo: float, hi: float, subs: Sequence[float]) -> list[float]:
    """Tick values ``sub × 10^k`` within [lo, hi]."""
    ticks = []
    for exponent in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for sub in subs:
            value = sub * 10.0**exponent
            if lo <= value <= hi:
                ticks.append(value)
    return ticks


def _log_label(value: float) -> str:
    """Log-axis labels in plain text (0.5, 20, 10⁻³, 2×10⁻⁵): mathtext would be parsed anew
    for each label on every draw."""
    exponent = math.floor(math.log10(value) + 1e-9)
    if -2 <= exponent <= 3:
        return f"{value:g}"
    mantissa = round(value / 10.0**exponent, 6)
    power = f"10{_superscript(exponent)}"
    return power if mantissa == 1 else f"{mantissa:g}×{power}"


def _set_fixed_ticks(axis, values: Sequence[float], labels: Sequence[str] | None = None) -> None:
    """Ticks only at ``values``, no minor ones.

    Matplotlib makes and lays out an object per tick, visible or not; the automatic locators
    (a log axis with its minor ticks above all) make dozens of them, a large part of the
    budget.
    """
    axis.set_ticks(list(values), labels=list(labels) if labels is not None else None)
    axis.set_minor_locator(NullLocator())


def _energy_ticks(axis, lo: float, hi: float) -> None:
    ticks = _log_ticks(lo, hi, (1.0, 2.0, 5.0))
    if len(ticks) > 9:
        ticks = _log_ticks(lo, hi, (1.0,))
    elif len(ticks) < 4:  # a narrow band, e.g. JEM-X's 3-35 keV
        subs = (1.0, 2.0, 3.0, 5.0) if len(ticks) == 3 else (1.0, 1.5, 2.0, 3.0, 5.0, 7.0)
        ticks = _log_ticks(lo, hi, subs)
    _set_fixed_ticks(axis, ticks, [f"{t:g}" for t in ticks])


def _density_ticks(axis, lo: float, hi: float) -> None:
    ticks = _log_ticks(lo, hi, (1.0,))
    if len(ticks) < 2:
        ticks = _log_ticks(lo, hi, (1.0, 2.0, 5.0))
    while len(ticks) > 8:
        ticks = ticks[::2]
    _set_fixed_ticks(axis, ticks, [_log_label(t) for t in ticks])


def _linear_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    values = MaxNLocator(n).tick_values(lo, hi)
    span = hi - lo
    return [float(v) for v in values if lo - 1e-9 * span <= v <= hi + 1e-9 * span]


def spectrum_figure(
    spectrum: SpectrumData,
    fits: Sequence[FitResult],
    title: str,
    *,
    footer: str | None = None,
) -> Figure:
    """Count-rate density against energy (log-log), the preferred fit and its residuals."""
    n = int(np.size(spectrum.rate))
    e_min = np.asarray(spectrum.e_min, dtype=float).ravel()
    e_max = np.asarray(spectrum.e_max, dtype=float).ravel()
    rate = np.asarray(spectrum.rate, dtype=float).ravel()
    stat = np.asarray(spectrum.stat_err, dtype=float).ravel()
    if e_min.size != n or e_max.size != n or stat.size != n:
        raise ValueError("spectrum arrays differ in length")
    sys_frac = _channel_array(spectrum.sys_err, n)
    sys_frac = np.nan_to_num(sys_frac, nan=0.0) if sys_frac is not None else np.zeros(n)
    quality = _channel_array(spectrum.quality, n)
    quality = quality if quality is not None else np.zeros(n)
    err = np.hypot(stat, sys_frac * np.abs(rate))
    width = e_max - e_min
    good = (
        (quality == 0)
        & np.isfinite(rate)
        & np.isfinite(err)
        & np.isfinite(e_min)
        & np.isfinite(e_max)
        & (e_min > 0)
        & (width > 0)
    )

    fit = preferred_fit(fits)
    used = model = residuals = None
    if fit is not None:
        used, model, residuals = _fit_channels(fit, n, good, rate, err)
        if not used.any():
            fit = None

    fig = _new_figure()
    _add_title_and_footer(fig, title, footer)
    if fit is not None:
        ax = fig.add_axes(_px_rect(85, 222, 690, 318))
        rax = fig.add_axes(_px_rect(85, 62, 690, 150))
    else:
        ax = fig.add_axes(_px_rect(85, 62, 690, 478))
        rax = None
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel("counts s⁻¹ keV⁻¹", fontsize=10, color=TEXT_COLOUR)
    ax.tick_params(labelsize=8, colors=TEXT_COLOUR)
    # fixed label positions: matplotlib would otherwise measure every tick label to place them
    ax.yaxis.set_label_coords(-62 / 690, 0.5)
    bottom_axes = rax if rax is not None else ax
    bottom_axes.set_xlabel("energy (keV)", fontsize=10, color=TEXT_COLOUR)
    bottom_axes.xaxis.set_label_coords(0.5, -32 / bottom_axes.bbox.height)

    if not good.any():
        ax.text(
            0.5, 0.5, "no valid channel", transform=ax.transAxes, ha="center", color=FOOTER_COLOUR
        )
        ax.set_xlim(10, 1000)
        ax.set_ylim(1e-4, 1)
        _energy_ticks(ax.xaxis, 10, 1000)
        _density_ticks(ax.yaxis, 1e-4, 1)
        return fig

    centre = np.sqrt(e_min * np.where(e_max > 0, e_max, np.nan))
    with np.errstate(divide="ignore", invalid="ignore"):
        density = rate / width
        density_err = err / width
    positive = good & (density > 0)
    # Channels with a rate at or below 0 cannot sit on a log axis: 2σ upper limits instead.
    limits = good & ~positive & (density + 2 * density_err > 0)
    x_lo, x_hi = centre - e_min, e_max - centre
    # a lower bar reaching 0 is drawn down to the bottom of the log axis
    low_bar = np.minimum(density_err, density * 0.999)
    _error_bars(
        ax, centre[positive], density[positive], (x_lo[positive], x_hi[positive]),
        (low_bar[positive], density_err[positive]), marker="o", ms=3, label="data",
    )  # fmt: skip
    if limits.any():
        upper = (density + 2 * density_err)[limits]
        _error_bars(
            ax, centre[limits], upper, (x_lo[limits], x_hi[limits]), None,
            marker="v", ms=4, label="2σ upper limit",
        )  # fmt: skip

    y_lows = [density[positive] * 0.7, (density + 2 * density_err)[limits] * 0.5]
    y_tops = [(density + density_err)[positive], (density + 2 * density_err)[limits]]
    if fit is not None:
        step_x = np.column_stack([e_min[used], e_max[used]]).ravel()
        step_y = np.repeat(model[used] / width[used], 2)
        step_y = np.where(step_y > 0, step_y, np.nan)
        ax.plot(step_x, step_y, color=MODEL_COLOUR, lw=1.3, label="model")
        y_lows.append(step_y[np.isfinite(step_y)] * 0.7)
        y_tops.append(step_y[np.isfinite(step_y)])
    lows, highs = np.concatenate(y_lows), np.concatenate(y_tops)
    lows, highs = lows[np.isfinite(lows) & (lows > 0)], highs[np.isfinite(highs) & (highs > 0)]
    y_lo, y_hi = (lows.min(), highs.max() * 1.6) if lows.size and highs.size else (1e-4, 1.0)
    if fit is not None:  # room at the top right for the model's key
        y_hi *= (y_hi / y_lo) ** 0.12
    ax.set_ylim(y_lo, y_hi)
    _density_ticks(ax.yaxis, y_lo, y_hi)
    shown = good & np.isfinite(centre)
    x_min, x_max = e_min[shown].min() * 0.92, e_max[shown].max() * 1.08
    ax.set_xlim(x_min, x_max)
    _energy_ticks(ax.xaxis, x_min, x_max)
    _draw_key(ax, fit_legend_label(fit) if fit is not None else None, bool(limits.any()))
    ax.grid(True, which="major", color="0.9", lw=0.6)
    if rax is None:
        return fig

    ax.tick_params(labelbottom=False)
    res_ok = used & np.isfinite(residuals)
    rax.axhline(0.0, color=MODEL_COLOUR, lw=1.0)
    ones = np.ones(int(res_ok.sum()))
    _error_bars(
        rax, centre[res_ok], residuals[res_ok], (x_lo[res_ok], x_hi[res_ok]), (ones, ones),
        marker="o", ms=2.5,
    )  # fmt: skip
    rax.set_xscale("log")
    rax.set_xlim(x_min, x_max)
    _energy_ticks(rax.xaxis, x_min, x_max)
    reach = float(np.max(np.abs(residuals[res_ok]))) + 1.2 if res_ok.any() else 3.0
    reach = min(max(3.0, reach), 1e6)
    rax.set_ylim(-reach, reach)
    _set_fixed_ticks(rax.yaxis, _linear_ticks(-reach, reach, 5))
    rax.set_ylabel("(data − model)/σ", fontsize=9, color=TEXT_COLOUR)
    rax.yaxis.set_label_coords(-62 / 690, 0.5)
    rax.tick_params(labelsize=8, colors=TEXT_COLOUR)
    rax.grid(True, which="major", color="0.9", lw=0.6)
    return fig


def render_spectrum_preview(
    spectrum: SpectrumData,
    fits: list[FitResult],
    title: str,
    *,
    footer: str | None = None,
) -> bytes:
    """PNG of a spectrum (counts s⁻¹ keV⁻¹) with the preferred fit and its residuals."""
    return figure_to_png(spectrum_figure(spectrum, fits, title, footer=footer))


# --------------------------------------------------------------------------------------------
# Light curves
# --------------------------------------------------------------------------------------------


def ijd_to_plot_date(ijd: np.ndarray) -> np.ndarray:
    """IJD (TT) to matplotlib date numbers in UTC, through astropy's time scales."""
    mjd_tt = np.asarray(ijd, dtype=float) + IJD_MJD_OFFSET
    return Time(mjd_tt, format="mjd", scale="tt").utc.plot_date


def lightcurve_figure(lc: LightCurveData, title: str, *, footer: str | None = None) -> Figure:
    """Rate against UTC date (bottom) and IJD (top), with bin widths as horizontal bars."""
    t = np.asarray(lc.time_ijd, dtype=float).ravel()
    n = t.size
    rate = _channel_array(lc.rate, n)
    error = _channel_array(lc.error, n)
    half = _channel_array(lc.half_width_d, n)
    if rate is None:
        raise ValueError("light-curve arrays differ in length")
    error = np.where(np.isfinite(error), np.abs(error), 0.0) if error is not None else np.zeros(n)
    half = np.where(np.isfinite(half), np.abs(half), 0.0) if half is not None else np.zeros(n)
    ok = np.isfinite(t) & np.isfinite(rate)

    fig = _new_figure()
    _add_title_and_footer(fig, title, footer)
    box_w, box_h = 690.0, 440.0
    ax = fig.add_axes(_px_rect(85, 70, box_w, box_h))
    ax.set_ylabel("rate (counts s⁻¹)", fontsize=10, color=TEXT_COLOUR)
    ax.set_xlabel("time (UTC)", fontsize=10, color=TEXT_COLOUR)
    # fixed label positions: matplotlib would otherwise measure every tick label to place them
    ax.xaxis.set_label_coords(0.5, -34 / box_h)
    ax.yaxis.set_label_coords(-62 / box_w, 0.5)
    ax.tick_params(labelsize=8, colors=TEXT_COLOUR)
    if not ok.any():
        ax.text(0.5, 0.5, "no valid bin", transform=ax.transAxes, ha="center", color=FOOTER_COLOUR)
        return fig

    t, rate, error, half = t[ok], rate[ok], error[ok], half[ok]
    # One conversion for centres and edges: the UTC bin edges are exact, leap seconds included.
    dates = ijd_to_plot_date(np.concatenate([t, t - half, t + half]))
    centre, start, stop = dates[: t.size], dates[t.size : 2 * t.size], dates[2 * t.size :]
    many = t.size > 100
    _error_bars(
        ax, centre, rate, (centre - start, stop - centre), (error, error),
        marker="." if many else "o", ms=3 if many else 4, lw=0.6 if many else 0.9,
    )  # fmt: skip

    lo, hi = float(start.min()), float(stop.max())
    pad = 0.04 * (hi - lo) if hi > lo else 1.0 / 24.0
    x_lo, x_hi = lo - pad, hi + pad
    ax.set_xlim(x_lo, x_hi)
    y_lo, y_hi = float(np.min(rate - error)), float(np.max(rate + error))
    y_pad = 0.06 * (y_hi - y_lo) if y_hi > y_lo else max(abs(y_hi) * 0.1, 1.0)
    y_lo, y_hi = y_lo - y_pad, y_hi + y_pad
    ax.set_ylim(y_lo, y_hi)
    _set_fixed_ticks(ax.yaxis, _linear_ticks(y_lo, y_hi))
    if y_lo < 0 < y_hi:
        ax.axhline(0.0, color="0.6", lw=0.7, ls=":")

    locator = AutoDateLocator(minticks=3, maxticks=7)
    date_ticks = [
        d for d in locator.get_locator(num2date(x_lo), num2date(x_hi)).tick_values(
            num2date(x_lo), num2date(x_hi)
        ) if x_lo <= d <= x_hi
    ]  # fmt: skip
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    _set_fixed_ticks(ax.xaxis, date_ticks)
    ax.grid(True, color="0.92", lw=0.6)
    _draw_ijd_axis(ax, x_lo, x_hi, float(np.median(centre - t)), box_h)
    return fig


def _draw_ijd_axis(ax, x_lo: float, x_hi: float, offset: float, box_h: float) -> None:
    """IJD ticks and labels along the top of the axes, drawn as plain artists.

    A secondary axis is a whole extra Axes (about 15 ms more). ``offset`` is the UTC
    date number minus IJD (TT): a constant to far better than a pixel over one light curve.
    """
    i_lo, i_hi = x_lo - offset, x_hi - offset
    ticks = _linear_ticks(i_lo, i_hi)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else i_hi - i_lo
    decimals = _decimals_for_step(step) if step > 0 else 3
    to_axes = ax.get_xaxis_transform()  # x in data, y in axes fraction
    tick_len = 4 / box_h
    xs = np.repeat(np.asarray(ticks) + offset, 3)
    ys = np.tile([1.0, 1.0 + tick_len, np.nan], len(ticks))
    ax.plot(xs, ys, color=TEXT_COLOUR, lw=0.8, transform=to_axes, clip_on=False)
    for value in ticks:
        ax.text(
            value + offset, 1.0 + 7 / box_h, f"{value:.{decimals}f}", transform=to_axes,
            ha="center", va="bottom", fontsize=8, color=TEXT_COLOUR,
        )  # fmt: skip
    ax.text(
        0.5, 1.0 + 24 / box_h, "IJD (TT, days)", transform=ax.transAxes, ha="center",
        va="bottom", fontsize=9, color=TEXT_COLOUR,
    )  # fmt: skip


def render_lightcurve_preview(
    lc: LightCurveData, title: str, *, footer: str | None = None
) -> bytes:
    """PNG of a light curve: rate with error bars against UTC time, IJD on the top axis."""
    return figure_to_png(lightcurve_figure(lc, title, footer=footer))
