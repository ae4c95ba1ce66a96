"""Files to post, written by the project's own code (no ../shared needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ingest.synthetic import SkySource, write_spectrum
from products import timeline

PULSAR = SkySource("1A 0535+262", 84.72738, 26.31582, 200.0, 2.5)
#: A synthetic spectrum's start: revolution 1516 (2015), plus a few hours.
T0_IJD = timeline.time_to_ijd(timeline.revolution_start(1516)) + 0.3


def png_bytes(seed: int = 0, size: int = 16) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size, size, 3)) * 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def write_png(path: Path, seed: int = 0) -> Path:
    path.write_bytes(png_bytes(seed))
    return path


def synthetic_spectrum(folder: Path, seed: int = 2, name: str = "s") -> list[Path]:
    """An OSA 10-like ISGRI spectrum of 1A 0535+262 with its RMF and ARF."""
    folder.mkdir(parents=True, exist_ok=True)
    return list(
        write_spectrum(
            folder / f"{name}.fits",
            folder / f"{name}_rmf.fits",
            folder / f"{name}_arf.fits",
            source=PULSAR,
            t_start_ijd=T0_IJD,
            t_stop_ijd=T0_IJD + 0.5,
            exposure_s=30000,
            osa="10",
            seed=seed,
        )
    )
