"""SPI-ACS light curves of gamma-ray bursts from the anticoincidence shield's count rates.

The ACS of SPI counts every 50 ms whatever the direction of the burst, so a GRB shows as a
rise above a background of ~10^5 counts/s that drifts slowly over minutes. The light curve
around a trigger T0 is rebinned (1 s by default), its background modelled by a straight line
fitted to the stretches before and after the burst window, and each bin given its net rate,
Poisson error and significance.

The archive holds the count rates as tables (``spi_acs/RRRR/*.fits``): a TIME column (IJD of
the bin centres, TT), a COUNTS column and the bin width in TIMEDEL (days).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from .archive import SPI_ACS_DIR

#: The light curve spans T0 + [BEFORE_S, AFTER_S]; the background is fitted outside
#: T0 + [BACKGROUND_GAP_S] (the burst window).
BEFORE_S = -150.0
AFTER_S = 350.0
BURST_WINDOW_S = (-20.0, 250.0)


@dataclass
class AcsRates:
    time_ijd: np.ndarray  # bin centres
    counts: np.ndarray
    bin_s: float


def rate_files(root: Path | str, revolution: int) -> list[Path]:
    folder = Path(root) / SPI_ACS_DIR / f"{int(revolution):04d}"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith((".fits", ".fits.gz")))


def read_rates(path: Path) -> AcsRates:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(path) as hdul:
            table = next(
                h for h in hdul if isinstance(h, fits.BinTableHDU) and "COUNTS" in h.columns.names
            )
            timedel = float(table.header["TIMEDEL"])
            unit = str(table.header.get("TIMEUNIT", "d")).strip().lower()
            bin_s = timedel if unit == "s" else timedel * 86400.0
            return AcsRates(
                np.array(table.data["TIME"], dtype=float),
                np.array(table.data["COUNTS"], dtype=float),
                bin_s,
            )


@dataclass
class AcsLightCurve:
    time_ijd: np.ndarray
    bin_s: float
    rate: np.ndarray  # net counts/s
    error: np.ndarray
    background: np.ndarray  # counts/s

    @property
    def peak_significance(self) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.nanmax(np.where(self.error > 0, self.rate / self.error, 0.0)))


def lightcurve(rates: list[AcsRates], t0_ijd: float, bin_s: float = 1.0) -> AcsLightCurve | None:
    """The background-subtracted light curve around ``t0_ijd``, or None without coverage."""
    start, stop = t0_ijd + BEFORE_S / 86400.0, t0_ijd + AFTER_S / 86400.0
    pieces = [
        r for r in rates if r.time_ijd.size and r.time_ijd[0] <= stop and r.time_ijd[-1] >= start
    ]
    if not pieces:
        return None
    time = np.concatenate([p.time_ijd for p in pieces])
    counts = np.concatenate([p.counts for p in pieces])
    order = np.argsort(time)
    time, counts = time[order], counts[order]
    offset_s = (time - t0_ijd) * 86400.0
    n_bins = int(round((AFTER_S - BEFORE_S) / bin_s))
    index = np.floor((offset_s - BEFORE_S) / bin_s).astype(np.int64)
    inside = (index >= 0) & (index < n_bins)
    raw_width = float(np.median([p.bin_s for p in pieces]))
    total = np.bincount(index[inside], weights=counts[inside], minlength=n_bins)
    seen = np.bincount(index[inside], minlength=n_bins) * raw_width  # seconds covered
    covered = seen > 0.5 * bin_s
    if covered.sum() < 10:
        return None
    centre_s = BEFORE_S + (np.arange(n_bins) + 0.5) * bin_s
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(covered, total / seen, np.nan)
        error = np.where(covered, np.sqrt(np.maximum(total, 1.0)) / seen, np.nan)
    quiet = covered & ((centre_s < BURST_WINDOW_S[0]) | (centre_s > BURST_WINDOW_S[1]))
    if quiet.sum() >= 5:
        coeffs = np.polyfit(centre_s[quiet], rate[quiet], 1, w=1.0 / error[quiet])
        background = np.polyval(coeffs, centre_s)
    else:
        background = np.full(n_bins, float(np.nanmedian(rate)))
    keep = covered
    return AcsLightCurve(
        time_ijd=t0_ijd + centre_s[keep] / 86400.0,
        bin_s=bin_s,
        rate=(rate - background)[keep],
        error=error[keep],
        background=background[keep],
    )
