"""The analysis backends: ``local`` computes products from the archive's ScW images,
``mmoda`` requests them from the MMODA service. Both write the same manifests, which the
common ingest step reads."""

from __future__ import annotations

from ..config import RunParameters
from .base import Backend, StepContext

__all__ = ["Backend", "StepContext", "get_backend"]


def get_backend(params: RunParameters) -> Backend:
    if params.backend == "local":
        from .local import LocalBackend

        return LocalBackend(params)
    if params.backend == "mmoda":
        from .mmoda import MmodaBackend

        return MmodaBackend(params)
    raise ValueError(f"unknown backend {params.backend!r}")
