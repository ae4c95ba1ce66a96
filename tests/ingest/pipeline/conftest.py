"""Fixtures of the pipeline tests: synthetic archives (written once per session), the real
ScWs of revolution 665 laid out as an archive, and settings that keep runs in tmp folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.pipeline.config import RunParameters
from ingest.pipeline.generator import make_archive
from tests.conftest import shared_fixture

#: Revolution 99 observes the Crab field (1A 0535+262 in outburst), 100 the Galactic Centre
#: (a dozen sources and one the catalogue does not know).
CRAB_REVOLUTION = 99
GC_REVOLUTION = 100
SMALL = 1300  # a small revolution: ISGRI only, three broad bands, three ScWs, NRT data


@pytest.fixture(scope="session")
def synthetic_archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("archive")
    make_archive(root, [CRAB_REVOLUTION], scws_per_revolution=7, seed=11)
    make_archive(root, [GC_REVOLUTION], scws_per_revolution=5, seed=12)
    return root


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("small")
    make_archive(
        root, [SMALL], scws_per_revolution=3, seed=5, instruments=["isgri"], bands="image",
        data_level="NRT", grbs=False,
    )  # fmt: skip
    return root


@pytest.fixture(scope="session")
def real_archive(tmp_path_factory) -> Path:
    """The two real single-ScW ISGRI images of revolution 665 in the ISDC layout."""
    first = shared_fixture("isgri/scw/isgri_sky_ima_1.fits.gz")
    second = shared_fixture("isgri/scw/isgri_sky_ima_2.fits.gz")
    root = tmp_path_factory.mktemp("archive665")
    for source, scw in ((first, "066500280010.001"), (second, "066500330010.001")):
        folder = root / "scw" / "0665" / scw
        folder.mkdir(parents=True)
        shutil.copyfile(source, folder / "isgri_sky_ima.fits.gz")
    return root


@pytest.fixture
def pipeline_settings(settings, tmp_path):
    settings.GALLERY_PIPELINE_WORK_DIR = tmp_path / "work"
    # In a test transaction a second connection cannot write the run: no heartbeat thread.
    settings.GALLERY_PIPELINE_HEARTBEAT_SECONDS = 0
    settings.GALLERY_PIPELINE_STALE_SECONDS = 60
    settings.GALLERY_PIPELINE_KEEP_WORK = False
    return settings


@pytest.fixture
def reference_catalog(db):
    from sources.catalog import load_reference_catalog

    load_reference_catalog()


def parameters(archive: Path, **overrides) -> RunParameters:
    values = {"backend": "local", "archive": str(archive), "threshold": 7.0}
    values.update(overrides)
    return RunParameters(**values)


def process(revolution: int, params: RunParameters):
    """Create a run and process it in this process; returns the finished run."""
    from ingest.pipeline import runs, service

    run, created = runs.create_run(revolution, params)
    assert created, "the revolution already had an active run"
    service.run_inline(run.pk)
    run.refresh_from_db()
    return run
