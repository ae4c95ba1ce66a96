"""The ingest paths on OSA-like files written by the project itself (no ../shared needed)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from astropy.io import fits
from django.core.management import call_command

from ingest.synthetic import (
    CatalogEntry,
    SkySource,
    write_catalog,
    write_lightcurve,
    write_mosaic,
    write_spectrum,
)
from products import timeline
from products.models import FluxPoint, Product, ProductFile, SpectralFit
from sources.catalog import load_reference_catalog
from sources.models import Source

pytestmark = pytest.mark.django_db

CRAB = SkySource("Crab", 83.63308, 22.01450, 1000.0, 2.1)
PULSAR = SkySource("1A 0535+262", 84.72738, 26.31582, 200.0, 2.5)
T0 = timeline.time_to_ijd(timeline.revolution_start(1516)) + 0.3


@pytest.fixture
def catalogue(db):
    load_reference_catalog()


def ingest(*paths, **options):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("ingest", *map(str, paths), "--no-progress", stdout=out, stderr=err, **options)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def products(tmp_path):
    mosaic = write_mosaic(
        tmp_path / "m.fits",
        center_ra=84.0,
        center_dec=23.0,
        sources=[CRAB, PULSAR],
        e_min_kev=20,
        e_max_kev=40,
        t_start_ijd=T0,
        t_stop_ijd=T0 + 0.5,
        exposure_s=30000,
        use_cd_matrix=True,
        rotation_deg=30,
        seed=1,
    )
    spectrum = write_spectrum(
        tmp_path / "s.fits",
        tmp_path / "s_rmf.fits",
        tmp_path / "s_arf.fits",
        source=PULSAR,
        t_start_ijd=T0,
        t_stop_ijd=T0 + 0.5,
        exposure_s=30000,
        osa="10",
        seed=2,
    )
    lc = write_lightcurve(
        tmp_path / "lc.fits",
        source=CRAB,
        t_start_ijd=T0,
        n_bins=20,
        bin_s=1000,
        width_style="xax_e",
        seed=3,
    )
    catalog = write_catalog(
        tmp_path / "cat.fits",
        sources=[
            CatalogEntry("Crab", CRAB.ra_deg, CRAB.dec_deg, 250.0),
            CatalogEntry("NEW_1", 80.0, 20.0, 9.0, is_new=True),
        ],
        flavour="mmoda",
    )
    return {"mosaic": [mosaic], "spectrum": list(spectrum), "lc": [lc], "catalog": [catalog]}


def test_every_kind_ingests_with_its_facts(catalogue, products):
    code, out, err = ingest(*[p for group in products.values() for p in group])
    assert code == 0, err
    image = Product.objects.get(kind__code="image")
    assert (image.instrument.code, image.e_min_kev, image.e_max_kev) == ("isgri", 20, 40)
    assert image.rev_first == 1516
    assert image.source_links.get(source__name="Crab").role == "detected"
    assert image.source_links.get(source__name="1A 0535+262").role == "detected"
    spectrum = Product.objects.get(kind__code="spectrum")
    assert spectrum.sources.get().name == "1A 0535+262"
    fit = SpectralFit.objects.get(product=spectrum, is_preferred=True)
    index = next(p for p in fit.parameters if p["name"] == "PhoIndex")
    assert index["value"] == pytest.approx(2.5, abs=4 * index["error"] + 0.05)
    lc = Product.objects.get(kind__code="lightcurve")
    assert FluxPoint.objects.filter(product=lc).count() == 20
    catalog = Product.objects.get(kind__code="catalog")
    assert catalog.sources.count() == 2
    assert Source.objects.get(is_provisional=True).name.startswith("NEW J0520")
    for product in Product.objects.exclude(kind__code="catalog"):
        assert product.files.filter(role="preview").exists()


def test_same_files_twice_is_one_product(catalogue, products, settings):
    files = [p for group in products.values() for p in group]
    assert ingest(*files)[0] == 0
    counts = [m.objects.count() for m in (Product, ProductFile, FluxPoint, Source)]
    stored = sorted(settings.MEDIA_ROOT.rglob("*"))
    code, out, _ = ingest(*files)
    assert code == 0 and out.count("already present") == 4
    assert [m.objects.count() for m in (Product, ProductFile, FluxPoint, Source)] == counts
    assert sorted(settings.MEDIA_ROOT.rglob("*")) == stored


def _corrupt(products, tmp_path, case):
    if case == "truncated":
        data = products["mosaic"][0].read_bytes()
        path = tmp_path / "cut.fits"
        path.write_bytes(data[: len(data) // 3])
        return [path]
    if case == "no response":
        return products["spectrum"][:1]
    if case == "nan light curve":
        with fits.open(products["lc"][0]) as hdul:
            hdul[1].data["RATE"][:] = np.nan
            hdul.writeto(tmp_path / "nan.fits")
        return [tmp_path / "nan.fits"]
    if case == "html name":
        with fits.open(products["lc"][0]) as hdul:
            hdul[1].header["NAME"] = 'Crab"><img src=x onerror=alert(1)>'
            hdul.writeto(tmp_path / "html.fits")
        return [tmp_path / "html.fits"]
    if case == "wrong channel count":
        with fits.open(products["spectrum"][0]) as hdul:
            hdul[1] = fits.BinTableHDU(hdul[1].data[:10], header=hdul[1].header)
            hdul.writeto(tmp_path / "short.fits")
        return [tmp_path / "short.fits", *products["spectrum"][1:]]
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case", ["truncated", "no response", "nan light curve", "html name", "wrong channel count"]
)
def test_bad_files_leave_nothing(catalogue, products, tmp_path, settings, case):
    paths = _corrupt(products, tmp_path, case)
    before = [m.objects.count() for m in (Product, ProductFile, FluxPoint, Source)]
    code, _, err = ingest(*paths)
    assert code == 1
    assert err.startswith("rejected ") and "Traceback" not in err
    assert [m.objects.count() for m in (Product, ProductFile, FluxPoint, Source)] == before
    assert not any(p.is_file() for p in settings.MEDIA_ROOT.rglob("*"))


def test_make_demo_data_is_idempotent(catalogue, tmp_path):
    out = io.StringIO()
    call_command("make_demo_data", out=str(tmp_path / "demo"), no_pipeline=True, stdout=out)
    created = Product.objects.count()
    assert created >= 25
    assert Product.objects.filter(is_highlight=True).exists()
    call_command("make_demo_data", out=str(tmp_path / "demo"), no_pipeline=True, stdout=out)
    assert Product.objects.count() == created
    assert "0 products created" in out.getvalue()
