"""The MMODA backend, through the real ``oda_api`` client, against a stand-in dispatcher on
127.0.0.1 that serves real fixture files (never the network)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from astropy.io import fits

from ingest.models import RevolutionRun
from ingest.pipeline import runs, service
from products import timeline
from products.models import Product
from sources.models import Source

from .conftest import parameters, process
from .mmoda_standin import Standin

pytest.importorskip("oda_api")

REVOLUTION = 665
GRB_NAME = "GRB 080926A"


@pytest.fixture
def standin(fixtures_dir, tmp_path):
    # An SPI-ACS light curve as a bare OGIP rate table: no INSTRUME, no NAME.
    t0 = timeline.time_to_ijd(timeline.revolution_start(REVOLUTION)) + 1.0
    time = t0 + (np.arange(-150, 350) + 0.5) / 86400.0
    rate = 9.0e4 + np.where(np.arange(500) > 150, 2.0e4 * np.exp(-np.arange(500) / 80.0), 0.0)
    table = fits.BinTableHDU.from_columns(
        [
            fits.Column("TIME", "D", unit="d", array=time),
            fits.Column("RATE", "E", unit="count/s", array=rate),
            fits.Column("ERROR", "E", unit="count/s", array=np.sqrt(rate)),
        ],
        header=fits.Header([("MJDREF", 51544.0), ("TIMEUNIT", "d"), ("TIMEDEL", 1 / 86400.0)]),
    )
    acs = tmp_path / "acs.fits"
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(acs)
    server = Standin(fixtures_dir, acs).start()
    yield server
    server.stop()


@pytest.fixture
def mmoda_settings(pipeline_settings):
    pipeline_settings.GALLERY_MMODA_TRIES = 1
    pipeline_settings.GALLERY_MMODA_RETRY_SECONDS = 0.0
    pipeline_settings.GALLERY_MMODA_TIMEOUT_SECONDS = 30
    return pipeline_settings


def _triggers(tmp_path) -> str:
    t0 = timeline.time_to_ijd(timeline.revolution_start(REVOLUTION)) + 1.0
    path = tmp_path / "triggers.json"
    path.write_text(
        json.dumps(
            [{"name": GRB_NAME, "time_utc": timeline.format_time(timeline.ijd_to_time(t0), "isot")}]
        )
    )
    return str(path)


def test_products_are_requested_from_mmoda_and_ingested(
    reference_catalog, mmoda_settings, real_archive, standin, tmp_path
):
    params = parameters(
        real_archive, backend="mmoda", mmoda_url=standin.url, instruments=["isgri"],
        grb_triggers=_triggers(tmp_path),
    )  # fmt: skip
    run = process(REVOLUTION, params)
    assert run.status == RevolutionRun.Status.DONE, run.errors
    assert run.errors == []

    # What was asked: the mosaic of each band for the revolution's ScWs, then the spectra and
    # light curves of the sources MMODA detected above 7 sigma, then the GRB's SPI-ACS curve.
    images = standin.analyses("isgri_image")
    assert [(float(r["E1_keV"]), float(r["E2_keV"])) for r in images] == [
        (20.0, 40.0),
        (40.0, 100.0),
        (100.0, 300.0),
    ]
    for request in images:
        assert request["scw_list"] == ["066500280010.001", "066500330010.001"]
        assert request["osa_version"] == "OSA11.2" and float(request["detection_threshold"]) == 7
    (spectra,) = standin.analyses("isgri_spectrum")
    selected = json.loads(spectra["selected_catalog"])
    names = selected["cat_column_list"][1]
    significance = selected["cat_column_list"][2]
    assert "Crab" in names and min(significance) >= 7.0
    (lc,) = standin.analyses("isgri_lc")
    assert lc["selected_catalog"] == spectra["selected_catalog"] and int(lc["time_bin"]) > 1000
    (acs,) = standin.analyses("spi_acs_lc")
    assert acs["T1"] < acs["T2"]
    # Every job was submitted, then polled until done.
    polls = Counter(r.get("job_id") for r in standin.requests if r.get("job_id"))
    assert len(polls) == 6 and all(n >= 1 for n in polls.values())

    products = Product.objects.filter(pipeline_runs=run).select_related("kind", "instrument")
    by_kind = Counter(p.kind.code for p in products)
    assert by_kind["image"] == 3 and by_kind["catalog"] >= 1
    assert by_kind["spectrum"] == 1 and by_kind["lightcurve"] == 2
    assert all(p.status == Product.Status.PUBLISHED for p in products)
    assert all(p.provenance["backend"] == "mmoda" for p in products)
    spectrum = products.get(kind__code="spectrum")
    assert spectrum.fits.filter(is_preferred=True).exists()
    assert spectrum.sources.get().name == names[0]
    grb = Source.objects.get(name=GRB_NAME)
    assert grb.object_class.code == "GRB"
    assert grb.products.get().instrument.code == "spi_acs"


def test_a_failed_analysis_fails_its_unit_with_mmodas_message(
    reference_catalog, mmoda_settings, real_archive, standin
):
    standin.fail_next = True
    run = process(
        REVOLUTION,
        parameters(real_archive, backend="mmoda", mmoda_url=standin.url, instruments=["isgri"]),
    )
    assert run.status == RevolutionRun.Status.FAILED
    assert len(run.errors) == 1 and "failed: analysis" in run.errors[0]["message"]
    assert run.steps["obs1/isgri"]["state"] == "failed"
    assert len(standin.analyses()) == 1  # nothing more was asked after the failure


def test_an_unreachable_service_is_a_transient_error(
    reference_catalog, mmoda_settings, real_archive, standin
):
    url = standin.url
    standin.stop()  # the port now refuses connections
    params = parameters(real_archive, backend="mmoda", mmoda_url=url, instruments=["isgri"])
    run, _ = runs.create_run(REVOLUTION, params)
    run, todo, _ = service.begin(run.pk)
    with pytest.raises(ConnectionError):
        service.unit_step(run.pk, todo[0], "mosaic")
    run.refresh_from_db()
    assert run.status == RevolutionRun.Status.RUNNING and run.errors == []
    assert "mosaic" not in run.steps[todo[0]]["done"]  # to be retried by the task
