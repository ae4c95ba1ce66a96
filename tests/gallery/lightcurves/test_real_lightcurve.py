"""A real OSA light curve, ingested, served back: every finite bin of the file is a ScW-level
point of the API, and one bin over all of it is the exposure-weighted mean of its rows."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from ingest.lightcurve_tasks import request_refresh
from ingest.readers.base import InputFile
from ingest.service import IngestOptions, ingest_files
from tests.conftest import shared_fixture

pytestmark = pytest.mark.django_db


def test_ingested_light_curve_round_trip(client, django_capture_on_commit_callbacks) -> None:
    path = shared_fixture("jemx/lc_GRB221009A_jmx1.fits")
    report = ingest_files(
        [InputFile(path, "data", path.name)], IngestOptions(source_name="GRB 221009A")
    )
    assert report.ok, report.rejected
    product = report.outcomes[0].product
    with django_capture_on_commit_callbacks(execute=False):
        request_refresh(product)  # what the ingest service calls once the product is stored

    with fits.open(path) as hdul:
        data = Table(hdul[1].data)
    # One row of this file has a negative TIMEDEL (and repeats a TIME): no exposure, left out.
    finite = np.isfinite(data["RATE"]) & np.isfinite(data["ERROR"]) & (data["TIMEDEL"] > 0)
    assert finite.sum() == len(data) - 1
    slug = product.sources.get().slug
    scw = client.get(f"/api/v1/sources/{slug}/lightcurve", {"bin": "scw"}).json()
    assert scw["instrument"] == "jemx1" and len(scw["points"]) == int(finite.sum())
    rates = np.array(data["RATE"][finite], dtype=float)
    errors = np.array(data["ERROR"][finite], dtype=float)
    order = np.argsort(np.array(data["TIME"][finite], dtype=float), kind="stable")
    np.testing.assert_allclose(
        [p["flux"] for p in scw["points"] if not p["upper_limit"]],
        rates[order][rates[order] / errors[order] >= 3],
    )
    np.testing.assert_allclose([p["error"] for p in scw["points"]], errors[order])

    # One 30-day bin (IJD 8310-8340) holds the whole light curve: the exposure-weighted mean.
    (day,) = client.get(f"/api/v1/sources/{slug}/lightcurve", {"bin": "30d"}).json()["points"]
    exposures = np.array([p["exposure_s"] for p in scw["points"]])
    assert day["n_points"] == len(scw["points"])
    assert day["flux"] == pytest.approx(np.sum(exposures * rates[order]) / exposures.sum())
    assert day["error"] == pytest.approx(
        math.sqrt(np.sum(exposures**2 * errors[order] ** 2)) / exposures.sum()
    )

    # The FITS download is an OGIP light curve astropy reads back with the same numbers.
    download = client.get(f"/api/v1/sources/{slug}/lightcurve", {"bin": "scw", "format": "fits"})
    with fits.open(io.BytesIO(download.content)) as hdul:
        rate = hdul["RATE"]
        assert rate.header["HDUCLAS1"] == "LIGHTCURVE" and rate.header["INSTRUME"] == "JEMX1"
        np.testing.assert_allclose(rate.data["ERROR"], errors[order])
