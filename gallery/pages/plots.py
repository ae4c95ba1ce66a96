"""The data of a product's interactive plot, as JSON for the browser (static/gallery/js/).

* image: the significance map read from the stored data file (``ingest.readers.image``),
  averaged down to at most ``MAX_IMAGE_PIXELS`` a side, with the WCS the browser needs to
  turn a pixel into RA/Dec (TAN: CRVAL, CRPIX, CD, LONPOLE and the rotation from the image's
  celestial frame to ICRS) and the detected sources as pixel positions;
* spectrum: the count spectrum per keV with the fitted model and the residuals of each fit
  (``SpectralFit.details``);
* light curve: the product's flux points, times in IJD and UTC.

Image data are cached by the SHA-256 of the file (content-addressed, so never stale).
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from astropy.time import Time
from django.conf import settings
from django.core.cache import cache

from ingest.readers.base import IngestError
from ingest.readers.image import image_wcs, read_image
from products import timeline
from products.models import FluxPoint, Product, ProductFile, visibility_q

MAX_IMAGE_PIXELS = 512
IMAGE_CACHE_SECONDS = 24 * 3600
IMAGE_CACHE_VERSION = 2


def plot_data(product: Product, user) -> dict | None:
    """The plot of ``product`` (already checked visible to ``user``), or None."""
    category = product.kind.category
    if category == "image":
        return image_plot(product)
    if category == "spectrum":
        return spectrum_plot(product)
    if category == "lightcurve":
        return lightcurve_plot(product, user)
    return None


# --- images ----------------------------------------------------------------------------------


@contextlib.contextmanager
def local_path(stored: ProductFile) -> Iterator[Path]:
    """A local path of a stored file (a temporary copy where the storage is remote)."""
    try:
        yield Path(stored.file.path)
        return
    except NotImplementedError:
        pass
    suffix = stored.extension or ".bin"
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        with stored.file.open("rb") as handle:
            shutil.copyfileobj(handle, tmp)
        tmp.flush()
        yield Path(tmp.name)


def image_plot(product: Product) -> dict | None:
    stored = product.file(ProductFile.Role.DATA)
    if stored is None:
        return None
    key = f"gallery:plot:image:v{IMAGE_CACHE_VERSION}:{stored.sha256}"
    data = cache.get(key)
    if data is None:
        # Imported here: ingest.fitsio imported before ingest.readers is a circular import.
        from ingest.fitsio import open_fits

        try:
            with local_path(stored) as path, open_fits(path) as hdul:
                facts = read_image(hdul, settings.GALLERY_DETECTION_THRESHOLD)
        except (IngestError, OSError) as exc:
            return {"kind": "none", "message": f"The image cannot be drawn: {exc}"}
        data = image_payload(facts["image"])
        cache.set(key, data, IMAGE_CACHE_SECONDS)
    data = dict(data)
    data["sources"] = _source_marks(product, data)
    data.pop("wcs_header", None)
    data["title"] = product.title
    return data


def downsample(values: np.ndarray, factor: int) -> np.ndarray:
    """Mean of ``factor`` x ``factor`` blocks, ignoring NaN (NaN where a block has no data)."""
    if factor <= 1:
        return values
    ny, nx = values.shape
    py, px = -ny % factor, -nx % factor
    padded = np.pad(values, ((0, py), (0, px)), constant_values=np.nan)
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(blocks, axis=(1, 3))


def image_payload(image) -> dict:
    """The JSON of a significance map: values, size, factor and the WCS for the browser."""
    significance = np.asarray(image.significance, dtype=float)
    ny, nx = significance.shape
    factor = max(1, math.ceil(max(ny, nx) / MAX_IMAGE_PIXELS))
    small = downsample(significance, factor)
    finite = small[np.isfinite(small)]
    z = [[None if not math.isfinite(v) else round(float(v), 2) for v in row] for row in small]
    lo, hi = (float(np.percentile(finite, 1)), float(np.percentile(finite, 99.9)))
    return {
        "kind": "image",
        "z": z,
        "shape": [int(ny), int(nx)],
        "factor": factor,
        "zmin": round(max(lo, -5.0), 2),
        # Bright enough to show faint sources, not saturating on the brightest ones.
        "zmax": round(max(hi, min(float(finite.max()), 10.0), 5.0), 2),
        "zlimits": [round(float(finite.min()), 2), round(float(finite.max()), 2)],
        "unit": "σ",
        "wcs": wcs_payload(image),
        # Kept for placing the detected sources; not sent to the browser.
        "wcs_header": image_wcs(image).to_header_string(),
    }


def wcs_payload(image) -> dict | None:
    """CRVAL/CRPIX/CD/LONPOLE of a TAN projection and the rotation of its frame to ICRS."""
    wcs = image_wcs(image)
    ctype = [str(c) for c in wcs.wcs.ctype]
    if not all(c.endswith("-TAN") for c in ctype):
        return None
    matrix = to_icrs_matrix(wcs)
    if matrix is None:
        return None
    return {
        "projection": "TAN",
        "ctype": ctype,
        "crval": [float(v) for v in wcs.wcs.crval],
        "crpix": [float(v) for v in wcs.wcs.crpix],
        "cd": [[float(v) for v in row] for row in wcs.pixel_scale_matrix],
        "lonpole": float(wcs.wcs.lonpole),
        "to_icrs": matrix,
    }


def to_icrs_matrix(wcs) -> list[list[float]] | None:
    """3x3 matrix turning unit vectors of the image's celestial frame into ICRS ones."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.wcs.utils import wcs_to_celestial_frame

    try:
        frame = wcs_to_celestial_frame(wcs)
    except ValueError:
        return None
    axes = SkyCoord([0.0, 90.0, 0.0] * u.deg, [0.0, 0.0, 90.0] * u.deg, frame=frame).icrs.cartesian
    # Columns are the frame's x, y, z axes seen in ICRS.
    columns = np.array([axes.x.value, axes.y.value, axes.z.value])
    return [[round(float(v), 12) for v in row] for row in columns]


def _source_marks(product: Product, data: dict) -> list[dict]:
    """Detected sources as positions in the plotted (down-sampled) pixels."""
    rows = (product.metadata or {}).get("detected_sources", [])
    header = data.get("wcs_header")
    if not rows or not header:
        return []
    from astropy import units as u
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS
    from astropy.wcs.utils import wcs_to_celestial_frame

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(fits.Header.fromstring(header))
        frame = wcs_to_celestial_frame(wcs)
    ra = np.array([float(r["ra_deg"]) for r in rows])
    dec = np.array([float(r["dec_deg"]) for r in rows])
    x, y = wcs.world_to_pixel(SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").transform_to(frame))
    f = data["factor"]
    out = []
    for row, px, py in zip(rows, np.atleast_1d(x), np.atleast_1d(y), strict=True):
        if not (np.isfinite(px) and np.isfinite(py)):
            continue
        out.append(
            {
                "name": row.get("name") or "new source",
                # Centre of down-sampled pixel i is original pixel f*i + (f-1)/2.
                "x": round((float(px) - (f - 1) / 2) / f, 2),
                "y": round((float(py) - (f - 1) / 2) / f, 2),
                "significance": row.get("significance"),
                "slug": row.get("source"),
            }
        )
    return out


# --- spectra ---------------------------------------------------------------------------------


def spectrum_plot(product: Product) -> dict | None:
    fits = list(product.fits.all())
    if not fits:
        return {"kind": "none", "message": "This spectrum has no fit to draw."}
    base = fits[0].details or {}
    e_min, e_max = base.get("e_min") or [], base.get("e_max") or []
    if not e_min:
        return {"kind": "none", "message": "This spectrum has no channel data to draw."}
    energy = [
        None if lo is None or hi is None else round((lo + hi) / 2, 4)
        for lo, hi in zip(e_min, e_max, strict=True)
    ]
    half = [
        None if lo is None or hi is None else round((hi - lo) / 2, 4)
        for lo, hi in zip(e_min, e_max, strict=True)
    ]
    return {
        "kind": "spectrum",
        "title": product.title,
        "energy_kev": energy,
        "half_width_kev": half,
        "rate_per_kev": base.get("rate_per_kev") or [],
        "error_per_kev": base.get("error_per_kev") or [],
        "fits": [
            {
                "model": fit.model,
                "preferred": fit.is_preferred,
                "model_per_kev": (fit.details or {}).get("model_per_kev") or [],
                "residuals": (fit.details or {}).get("residuals") or [],
                "used": (fit.details or {}).get("used") or [],
                "reduced_chi2": fit.reduced_statistic,
            }
            for fit in fits
        ],
    }


# --- light curves ----------------------------------------------------------------------------


def lightcurve_plot(product: Product, user) -> dict | None:
    rows = list(
        FluxPoint.objects.filter(visibility_q(user, prefix="product__"))
        .filter(product=product)
        .order_by("t_start_ijd")
        .values_list(
            "t_start_ijd", "t_stop_ijd", "flux", "flux_error", "flux_unit", "is_upper_limit"
        )  # fmt: skip
    )
    if not rows:
        return {"kind": "none", "message": "This light curve has no points to draw."}
    start = np.array([r[0] for r in rows])
    stop = np.array([r[1] for r in rows])
    mid = (start + stop) / 2
    # IJD is in TT: astropy converts to UTC (leap seconds included) for the date axis.
    utc = Time(mid + timeline.MJDREF_IJD, format="mjd", scale="tt").utc.isot
    return {
        "kind": "lightcurve",
        "title": product.title,
        "t_mid_ijd": [round(float(t), 7) for t in mid],
        "half_width_s": [round(float(w) * 43200.0, 3) for w in stop - start],
        "t_mid_utc": [str(t) for t in np.atleast_1d(utc)],
        "flux": [r[2] for r in rows],
        "error": [r[3] for r in rows],
        "upper_limit": [r[5] for r in rows],
        "unit": rows[0][4],
    }
