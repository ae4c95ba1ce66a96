"""Spectral fitting by forward folding through the response (placeholder: interface only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FitParameter:
    name: str
    value: float
    error: float  # 1 sigma
    unit: str = ""


@dataclass
class FitResult:
    model: str  # "powerlaw" | "cutoffpl"
    parameters: list[FitParameter]
    statistic: str  # "chi2"
    statistic_value: float
    dof: int
    e_min_kev: float  # band actually fitted (after clipping to the data)
    e_max_kev: float
    flux_erg_cm2_s: float | None  # model energy flux in the fitted band
    flux_error: float | None
    used: np.ndarray = field(repr=False, default=None)  # bool per channel: in the fit
    model_rate: np.ndarray = field(repr=False, default=None)  # folded model, counts/s/channel
    residuals: np.ndarray = field(repr=False, default=None)  # (data - model) / error
    is_preferred: bool = False
