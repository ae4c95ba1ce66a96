"""Mosaicking: variance-weighted co-addition of ScW sky images on a common tangent-plane grid.

The grid is a TAN projection centred on the mean pointing of the field, north up and east
left, with the instruments' own pixel size, large enough to hold every ScW's footprint. Each
ScW image is resampled onto it by bilinear interpolation (astropy.wcs maps every grid pixel to
the ScW's pixel coordinates, rotated CD matrices included); a grid pixel takes a ScW's value
only where the four ScW pixels around it are all valid. The interpolated variance is the
interpolation of the variances: neighbouring pixels of a coded-mask image are strongly
correlated (the point-spread function spans several pixels), so averaging them hardly lowers
the noise. Then, per band,

    intensity = sum(I_k / V_k) / sum(1 / V_k),   variance = 1 / sum(1 / V_k),
    significance = intensity / sqrt(variance),   exposure = sum(E_k).

Bilinear resampling widens the PSF a little (the interpolation kernel has a variance of
1/6 pixel^2 per axis, averaged over sub-pixel offsets): ``effective_psf_sigma_pix`` gives the
width the mosaic's sources have, and ``measure`` corrects fluxes for it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from .archive import ScwInfo
from .scwimage import ScwImage

#: Largest grid side (pixels): bounds the memory of a mosaic whatever the input.
MAX_GRID_PIXELS = 2400


@dataclass
class Grid:
    wcs: WCS
    shape: tuple[int, int]  # (ny, nx)
    pixel_deg: float

    def cards(self) -> list[tuple[str, object]]:
        """The WCS as OSA writes it in mosaics (CD matrix, FK5 J2000)."""
        crpix = self.wcs.wcs.crpix
        crval = self.wcs.wcs.crval
        return [
            ("CTYPE1", "RA---TAN"),
            ("CRPIX1", float(crpix[0])),
            ("CRVAL1", float(crval[0])),
            ("CUNIT1", "deg"),
            ("CTYPE2", "DEC--TAN"),
            ("CRPIX2", float(crpix[1])),
            ("CRVAL2", float(crval[1])),
            ("CUNIT2", "deg"),
            ("CD1_1", -self.pixel_deg),
            ("CD1_2", 0.0),
            ("CD2_1", 0.0),
            ("CD2_2", self.pixel_deg),
            ("RADESYS", "FK5"),
            ("EQUINOX", 2000.0),
        ]

    def header(self) -> fits.Header:
        ny, nx = self.shape
        header = fits.Header([("NAXIS", 2), ("NAXIS1", nx), ("NAXIS2", ny)])
        for key, value in self.cards():
            header[key] = value
        return header

    @classmethod
    def from_header(cls, header: fits.Header) -> Grid:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = WCS(header, naxis=2).celestial
        pixel = float(abs(header["CD2_2"]))  # grids are always written with a CD matrix
        return cls(wcs, (int(header["NAXIS2"]), int(header["NAXIS1"])), pixel)


def _tan_wcs(ra0: float, dec0: float, pixel_deg: float, crpix: tuple[float, float]) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra0, dec0]
    wcs.wcs.crpix = list(crpix)
    wcs.wcs.cd = np.array([[-pixel_deg, 0.0], [0.0, pixel_deg]])
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "FK5"
    wcs.wcs.equinox = 2000.0
    wcs.wcs.set()
    return wcs


def make_grid(scws: list[ScwInfo], pixel_deg: float | None = None) -> Grid:
    """A grid holding the footprints of ``scws``, centred on their mean pointing."""
    if not scws:
        raise ValueError("a mosaic needs at least one ScW")
    pixel = float(pixel_deg or np.median([s.pixel_deg for s in scws]))
    ra, dec = np.radians([s.ra_deg for s in scws]), np.radians([s.dec_deg for s in scws])
    vec = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)]).mean(axis=1)
    vec /= np.linalg.norm(vec)
    ra0 = float(np.degrees(np.arctan2(vec[1], vec[0])) % 360.0)
    dec0 = float(np.degrees(np.arcsin(np.clip(vec[2], -1, 1))))
    probe = _tan_wcs(ra0, dec0, pixel, (1.0, 1.0))  # 0-based pixel 0 at the centre
    corners = np.array([c for s in scws for c in s.corners])
    x, y = probe.wcs_world2pix(corners[:, 0], corners[:, 1], 0)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("the ScW footprints do not fit on one tangent plane")
    half_x = min(float(np.max(np.abs(x))) + 2, MAX_GRID_PIXELS / 2)
    half_y = min(float(np.max(np.abs(y))) + 2, MAX_GRID_PIXELS / 2)
    nx, ny = 2 * math.ceil(half_x) + 1, 2 * math.ceil(half_y) + 1
    wcs = _tan_wcs(ra0, dec0, pixel, ((nx + 1) / 2.0, (ny + 1) / 2.0))
    return Grid(wcs, (ny, nx), pixel)


@dataclass
class Mapping:
    """Where the grid pixels of a rectangle [y0:y1, x0:x1] fall on one ScW image.

    Only the grid pixels that fall within the ScW image are kept (``cells``: flat indices in
    the grid); for each, the flat ScW indices of its four neighbours and the bilinear weights.
    """

    y0: int
    y1: int
    x0: int
    x1: int
    cells: np.ndarray
    neighbours: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # i00, i01, i10, i11
    weights: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # w00, w01, w10, w11


def _unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def _grid_vectors(grid: Grid) -> np.ndarray:
    """Unit vectors of every grid pixel centre (3, ny, nx), computed once per grid."""
    cached = getattr(grid, "_vectors", None)
    if cached is None:
        ny, nx = grid.shape
        yy, xx = np.mgrid[0:ny, 0:nx]
        ra, dec = grid.wcs.wcs_pix2world(xx.ravel(), yy.ravel(), 0)
        cached = _unit_vectors(ra, dec).reshape(3, ny, nx)
        grid._vectors = cached
    return cached


def _tan_pixels(wcs: WCS, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """ScW pixel coordinates of unit vectors for a plain TAN WCS (gnomonic projection done
    with numpy: ten times faster than going through world coordinates); None when the WCS is
    not a plain TAN, or when the fast projection disagrees with astropy's."""
    ctype = [str(c).upper() for c in wcs.wcs.ctype]
    if (
        ctype != ["RA---TAN", "DEC--TAN"]
        or wcs.sip is not None
        or abs(wcs.wcs.lonpole - 180) > 1e-9
    ):
        return None
    ra0, dec0 = np.radians(wcs.wcs.crval)
    axis = np.array([np.cos(dec0) * np.cos(ra0), np.cos(dec0) * np.sin(ra0), np.sin(dec0)])
    east = np.array([-np.sin(ra0), np.cos(ra0), 0.0])
    north = np.cross(axis, east)
    flat = vectors.reshape(3, -1)

    def dot(axis_: np.ndarray) -> np.ndarray:
        # Three multiply-adds: much faster than a matrix product on this layout.
        return axis_[0] * flat[0] + axis_[1] * flat[1] + axis_[2] * flat[2]

    z = dot(axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(z > 0, np.degrees(1.0) / z, np.nan)
    xi = dot(east) * scale
    eta = dot(north) * scale
    inverse = np.linalg.inv(wcs.pixel_scale_matrix)
    crpix = wcs.wcs.crpix - 1.0
    px = inverse[0, 0] * xi + inverse[0, 1] * eta + crpix[0]
    py = inverse[1, 0] * xi + inverse[1, 1] * eta + crpix[1]
    # Check a few points against astropy: any disagreement means a WCS this path misreads.
    probe = np.linspace(0, flat.shape[1] - 1, 7).astype(int)
    probe = probe[np.isfinite(px[probe])]
    if probe.size:
        norm = np.linalg.norm(flat[:, probe], axis=0)
        ra = np.degrees(np.arctan2(flat[1, probe], flat[0, probe]))
        dec = np.degrees(np.arcsin(np.clip(flat[2, probe] / norm, -1, 1)))
        ax, ay = wcs.wcs_world2pix(ra, dec, 0)
        if np.max(np.hypot(ax - px[probe], ay - py[probe])) > 1e-3:
            return None
    return px.reshape(vectors.shape[1:]), py.reshape(vectors.shape[1:])


def scw_mapping(grid: Grid, image: ScwImage) -> Mapping | None:
    ny_s, nx_s = image.shape
    # Bounding box of the ScW on the grid (the ScW's border, sampled every few pixels).
    edge = np.concatenate(
        [
            np.stack([np.linspace(0, nx_s - 1, 24), np.zeros(24)], 1),
            np.stack([np.linspace(0, nx_s - 1, 24), np.full(24, ny_s - 1)], 1),
            np.stack([np.zeros(24), np.linspace(0, ny_s - 1, 24)], 1),
            np.stack([np.full(24, nx_s - 1), np.linspace(0, ny_s - 1, 24)], 1),
        ]
    )
    ra, dec = image.wcs.wcs_pix2world(edge[:, 0], edge[:, 1], 0)
    gx, gy = grid.wcs.wcs_world2pix(ra, dec, 0)
    ok = np.isfinite(gx) & np.isfinite(gy)
    if not ok.any():
        return None
    ny, nx = grid.shape
    x0 = max(int(np.floor(gx[ok].min())) - 1, 0)
    x1 = min(int(np.ceil(gx[ok].max())) + 2, nx)
    y0 = max(int(np.floor(gy[ok].min())) - 1, 0)
    y1 = min(int(np.ceil(gy[ok].max())) + 2, ny)
    if x0 >= x1 or y0 >= y1:
        return None
    vectors = _grid_vectors(grid)[:, y0:y1, x0:x1]
    fast = _tan_pixels(image.wcs, vectors)
    if fast is not None:
        sx, sy = fast
    else:
        flat = vectors.reshape(3, -1)
        ra = np.degrees(np.arctan2(flat[1], flat[0]))
        dec = np.degrees(np.arcsin(np.clip(flat[2], -1, 1)))
        sx, sy = (a.reshape(vectors.shape[1:]) for a in image.wcs.wcs_world2pix(ra, dec, 0))
    with np.errstate(invalid="ignore"):
        inside = (sx >= 0) & (sy >= 0) & (sx < nx_s - 1) & (sy < ny_s - 1)
    local = np.flatnonzero(inside)
    if not local.size:
        return None
    sx, sy = sx.ravel()[local], sy.ravel()[local]
    width = x1 - x0
    cells = (y0 + local // width) * grid.shape[1] + (x0 + local % width)
    ix, iy = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    fx, fy = (sx - ix).astype(np.float32), (sy - iy).astype(np.float32)
    i00 = iy * nx_s + ix
    neighbours = (i00, i00 + 1, i00 + nx_s, i00 + nx_s + 1)
    weights = ((1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy)
    return Mapping(y0, y1, x0, x1, cells, neighbours, weights)


def resample(mapping: Mapping, data: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``data`` at the mapping's cells."""
    flat = data.ravel()
    total = None
    for index, weight in zip(mapping.neighbours, mapping.weights, strict=True):
        term = weight * flat[index]
        total = term if total is None else total + term
    return total


def valid_pixels(mapping: Mapping, variance: np.ndarray) -> np.ndarray:
    """The mapping's cells whose four ScW neighbours all have data."""
    flat = (variance > 0).ravel()
    i00, i01, i10, i11 = mapping.neighbours
    return flat[i00] & flat[i01] & flat[i10] & flat[i11]


class Mosaic:
    """Running sums of a mosaic in several bands; ``add`` one ScW at a time."""

    def __init__(self, grid: Grid, bands: list[tuple[float, float]]):
        self.grid = grid
        self.bands = list(bands)
        ny, nx = grid.shape
        self.sum_w = np.zeros((len(bands), ny, nx))
        self.sum_wi = np.zeros((len(bands), ny, nx))
        self.exposure = np.zeros((ny, nx))
        self.n_scw = 0

    def add(self, image: ScwImage) -> bool:
        """Co-add one ScW (its bands must be ``self.bands``); False if it misses the grid."""
        mapping = scw_mapping(self.grid, image)
        if mapping is None:
            return False
        first_mask = image.variance[0] > 0
        valid = valid_pixels(mapping, image.variance[0])
        covered = valid.copy()
        for index in range(len(self.bands)):
            if index and not np.array_equal(image.variance[index] > 0, first_mask):
                valid = valid_pixels(mapping, image.variance[index])
                covered |= valid
            cells = mapping.cells[valid]
            variance = resample(mapping, image.variance[index])[valid]
            intensity = resample(mapping, image.intensity[index])[valid]
            weight = 1.0 / variance  # valid cells have four neighbours with variance > 0
            # Cells are distinct: a fancy-indexed += adds each once.
            self.sum_w[index].reshape(-1)[cells] += weight
            self.sum_wi[index].reshape(-1)[cells] += weight * intensity
        if not covered.any():
            return False
        cells = mapping.cells[covered]
        if image.exposure is not None:
            exposure = resample(mapping, np.maximum(image.exposure, 0))[covered]
        else:
            exposure = image.exposure_s
        self.exposure.reshape(-1)[cells] += exposure
        self.n_scw += 1
        return True

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(intensity, variance) per band as (n_bands, ny, nx) float32, and the exposure map.

        Pixels no ScW covers have zero intensity and variance, as in OSA mosaics.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            variance = np.where(self.sum_w > 0, 1.0 / self.sum_w, 0.0)
            intensity = np.where(self.sum_w > 0, self.sum_wi * variance, 0.0)
        return (
            intensity.astype(np.float32),
            variance.astype(np.float32),
            self.exposure.astype(np.float32),
        )


def combine_bands(
    intensity: np.ndarray, variance: np.ndarray, members: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """A broad band from narrow ones: rates add and so do variances; a pixel is valid only
    where every member band is."""
    valid = np.all(variance[members] > 0, axis=0)
    total_i = np.where(valid, intensity[members].sum(axis=0, dtype=np.float64), 0.0)
    total_v = np.where(valid, variance[members].sum(axis=0, dtype=np.float64), 0.0)
    return total_i.astype(np.float32), total_v.astype(np.float32)


def significance(intensity: np.ndarray, variance: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(variance > 0, intensity / np.sqrt(variance), 0.0).astype(np.float32)


def effective_psf_sigma_pix(psf_sigma_pix: float) -> float:
    """Width of a point source in a bilinearly resampled mosaic (pixels)."""
    return math.sqrt(psf_sigma_pix**2 + 1.0 / 6.0)
