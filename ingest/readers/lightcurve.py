"""Light curves: ISGRI ``ISGR-SRC.-LCR`` and JEM-X ``JMX?-SRC.-LCR`` tables (and OGIP RATE
tables). Bin widths come from XAX_E (half widths), a TIMEDEL column, or the TIMEDEL keyword."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from . import headers as h
from .base import IngestError, LightCurveData


def find_lightcurve_hdu(hdul: fits.HDUList) -> fits.BinTableHDU | None:
    for hdu in hdul:
        if not isinstance(hdu, fits.BinTableHDU):
            continue
        extname = (h.text(hdu.header, "EXTNAME") or "").upper()
        hduclas1 = (h.text(hdu.header, "HDUCLAS1") or "").upper()
        names = {n.upper() for n in hdu.columns.names}
        if (
            extname.endswith("-LCR")
            or hduclas1 == "LIGHTCURVE"
            or ({"TIME", "RATE", "ERROR"} <= names and "CHANNEL" not in names)
        ):
            return hdu
    return None


def _time_scale_days(hdu: fits.BinTableHDU, column: str) -> float:
    """Days per unit of a time column (TUNITn, else TIMEUNIT, else days)."""
    unit = None
    for i, name in enumerate(hdu.columns.names, start=1):
        if name.upper() == column:
            unit = h.text(hdu.header, f"TUNIT{i}")
    unit = (unit or h.text(hdu.header, "TIMEUNIT") or "d").lower()
    return 1.0 / 86400.0 if unit in ("s", "sec", "second", "seconds") else 1.0


def read_lightcurve(hdul: fits.HDUList) -> dict:
    hdu = find_lightcurve_hdu(hdul)
    if hdu is None:
        raise IngestError("no light-curve table (TIME, RATE, ERROR) in the file")
    names = {n.upper(): n for n in hdu.columns.names}
    for needed in ("TIME", "RATE"):
        if needed not in names:
            raise IngestError(f"the light-curve table has no {needed} column")
    error_col = names.get("ERROR") or names.get("STAT_ERR")
    if error_col is None:
        raise IngestError("the light-curve table has no ERROR column")
    data = hdu.data
    if len(data) == 0:
        raise IngestError("the light curve has no bins")
    if h.number(hdu.header, "MJDREF") not in (None, 51544.0):
        raise IngestError("unsupported MJDREF in the light curve (INTEGRAL uses 51544.0)")
    time = np.asarray(data[names["TIME"]], dtype=float) * _time_scale_days(hdu, "TIME")
    rate = np.asarray(data[names["RATE"]], dtype=float)
    error = np.asarray(data[error_col], dtype=float)

    if "XAX_E" in names:
        half = np.asarray(data[names["XAX_E"]], dtype=float) * _time_scale_days(hdu, "XAX_E")
        width_from = "XAX_E"
    elif "TIMEDEL" in names:
        half = (
            np.asarray(data[names["TIMEDEL"]], dtype=float) * _time_scale_days(hdu, "TIMEDEL") / 2
        )
        width_from = "TIMEDEL column"
    elif h.number(hdu.header, "TIMEDEL") is not None:
        unit = (h.text(hdu.header, "TIMEUNIT") or "d").lower()
        timedel = h.number(hdu.header, "TIMEDEL") / (86400.0 if unit == "s" else 1.0)
        half = np.full(time.shape, timedel / 2)
        width_from = "TIMEDEL keyword"
    else:
        raise IngestError("the light curve gives no bin width (no XAX_E, TIMEDEL column or key)")
    pixr = h.number(hdu.header, "TIMEPIXR")
    if pixr is not None and abs(pixr - 0.5) > 1e-6:
        # TIME marks a fraction TIMEPIXR of the bin: move it to the bin centre.
        time = time + (0.5 - pixr) * 2 * half

    good = np.isfinite(time) & np.isfinite(rate) & np.isfinite(error) & (half >= 0)
    if not good.any():
        raise IngestError("every bin of the light curve is NaN")
    if not (np.nanmin(time[good]) > -1000 and np.nanmax(time[good]) < 40000):
        raise IngestError("light-curve times are not IJD (days since 2000-01-01 TT)")
    fracexp = np.asarray(data[names["FRACEXP"]], dtype=float) if "FRACEXP" in names else None
    background = np.asarray(data[names["BRATE"]], dtype=float) if "BRATE" in names else None
    lc = LightCurveData(
        time_ijd=time,
        half_width_d=half,
        rate=rate,
        error=error,
        fracexp=fracexp,
        background=background,
    )
    t_start = float(np.min(time[good] - half[good]))
    t_stop = float(np.max(time[good] + half[good]))
    return {
        "lightcurve": lc,
        "headers": [hdu.header] + [x.header for x in hdul if x is not hdu],
        "t_start_ijd": t_start,
        "t_stop_ijd": t_stop,
        "notes": [f"bin widths from {width_from}"],
        "n_bins": int(len(time)),
        "n_good_bins": int(good.sum()),
    }
