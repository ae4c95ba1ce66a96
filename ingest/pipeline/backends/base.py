"""What every backend implements, and the context a step runs in.

A unit's steps (``mosaic``, ``detect``, ``extract``) each write their products into the
unit's work folder and list them in a manifest (``manifest-<step>.json``: product kind, files,
band, source). Manifests are written last, through a temporary file, so a step killed half-way
leaves no manifest and is simply run again; the common ingest step reads them all.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..archive import GrbTrigger, RevolutionPlan, Unit
from ..config import InstrumentSpec, RunParameters, instrument
from ..osafits import FileMeta


@dataclass
class StepContext:
    run_id: int
    params: RunParameters
    plan: RevolutionPlan
    unit: Unit | None
    workdir: Path
    meta: FileMeta
    log: Callable[[str], None] = print
    skip_scw: Callable[[str, str], None] = lambda scw, reason: None
    # [{ra_deg, dec_deg, significance, err_rad_deg}] -> the same with name, is_new
    name_sources: Callable[[list[dict], str], list[dict]] = lambda rows, code: rows
    notes: list[str] = field(default_factory=list)

    @property
    def spec(self) -> InstrumentSpec:
        assert self.unit is not None
        return instrument(self.unit.instrument)

    def write_manifest(self, step: str, entries: list[dict]) -> None:
        write_json(self.workdir / f"manifest-{step}.json", entries)

    def read_manifest(self, step: str) -> list[dict]:
        path = self.workdir / f"manifest-{step}.json"
        return json.loads(path.read_text()) if path.is_file() else []


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True, default=float))
    os.replace(temporary, path)


def read_json(path: Path):
    return json.loads(Path(path).read_text())


class Backend(ABC):
    name = ""

    def __init__(self, params: RunParameters):
        self.params = params

    @abstractmethod
    def mosaic(self, ctx: StepContext) -> str:
        """Mosaics of the unit in every image band; returns a one-line summary."""

    @abstractmethod
    def detect(self, ctx: StepContext) -> str:
        """Sources above the threshold, named, and their catalogue; a one-line summary."""

    @abstractmethod
    def extract(self, ctx: StepContext) -> str:
        """A spectrum and a light curve per detected source; a one-line summary."""

    @abstractmethod
    def grb_lightcurve(self, ctx: StepContext, trigger: GrbTrigger, path: Path) -> Path | None:
        """The SPI-ACS light curve of a trigger written at ``path`` (None without data)."""
