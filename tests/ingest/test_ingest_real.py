"""``manage.py ingest`` on the real OSA/MMODA fixture products."""

from __future__ import annotations

import gzip
import io
from datetime import datetime

import numpy as np
import pytest
from astropy.io import fits
from django.core.management import CommandError, call_command

from ingest.readers.image import measure_at, read_image
from products.models import FluxPoint, Product, ProductFile, ProductSource, SpectralFit
from sources.models import Source
from tests.conftest import shared_fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(db):
    from sources.catalog import load_reference_catalog

    load_reference_catalog()


def ingest(*paths, **options) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command(
            "ingest", *[str(p) for p in paths], "--no-progress", stdout=out, stderr=err, **options
        )
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def only_product() -> Product:
    assert Product.objects.count() == 1
    return Product.objects.get()


def test_crab_mosaic(catalogue):
    path = shared_fixture("isgri/mosaic_crab_20-40keV.fits")
    code, out, err = ingest(path)
    assert code == 0, err
    product = only_product()
    assert (product.kind.code, product.instrument.code) == ("image", "isgri")
    assert (product.e_min_kev, product.e_max_kev) == (20.0, 40.0)
    assert product.time_start.strftime("%Y-%m-%dT%H:%M") == "2008-09-26T03:57"
    assert (product.rev_first, product.rev_last) == (727, 727)
    links = {link.source.name: link for link in product.source_links.select_related("source")}
    assert links["Crab"].role == ProductSource.Role.DETECTED
    assert links["Crab"].significance > 100
    # every source of the field's catalogue that lies on the map is linked
    with fits.open(path) as hdul:
        image = read_image(hdul, 7.0)["image"]
    with fits.open(shared_fixture("isgri/catalog_crab_field.fits")) as cat:
        rows = cat[1].data
    on_map = [
        str(r["src_names"]).strip()
        for r in rows
        if measure_at(image, float(r["ra"]), float(r["dec"]), 0.05) is not None
    ]
    assert len(on_map) >= 10
    linked_names = {s.name for s in product.sources.all()} | {
        a.name for s in product.sources.all() for a in s.names.all()
    }
    missing = [n for n in on_map if n not in linked_names]
    assert not missing
    preview = product.files.get(role="preview")
    assert preview.file.open("rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert (
        FluxPoint.objects.filter(product=product, source__name="Crab", is_upper_limit=False).count()
        == 1
    )
    assert product.uuid.hex[:8] in out.replace("-", "")


SPECTRA = [
    ("isgri/spectrum_1A_0535+262_osa11.fits.gz", "1A 0535+262", "isgri", 256),
    ("isgri/spectrum_3C_279_osa10.fits", "3C 279", "isgri", 62),
    ("isgri/spectrum_4U_1700-377_osa10.fits", "4U 1700-377", "isgri", 62),
    ("jemx/spectrum_crab_jmx1.fits.gz", "Crab", "jemx1", 16),
]


@pytest.mark.parametrize(("pha", "source", "instrument", "channels"), SPECTRA)
def test_spectrum_with_responses_makes_one_product_with_a_fit(
    catalogue, pha, source, instrument, channels
):
    pha = shared_fixture(pha)
    stem = pha.name.replace(".fits.gz", "").replace(".fits", "")
    rmf = next(pha.parent.glob(stem + "_rmf.fits*"))
    arf = next(pha.parent.glob(stem + "_arf.fits*"))
    code, out, err = ingest(pha, rmf, arf)
    assert code == 0, err
    product = only_product()
    assert (product.kind.code, product.instrument.code) == ("spectrum", instrument)
    assert product.metadata["facts"].get("n_channels", channels) == channels
    assert [s.name for s in product.sources.all()] == [source]
    assert sorted(product.files.values_list("role", flat=True)) == ["arf", "data", "preview", "rmf"]
    fit = SpectralFit.objects.get(product=product, is_preferred=True)
    index = next(p for p in fit.parameters if "index" in p["name"].lower())
    assert 0.5 < index["value"] < 4 and index["error"] > 0
    assert fit.dof > 0 and fit.flux_erg_cm2_s > 0


def test_rebinned_spectrum_without_a_name_takes_the_source_given(catalogue):
    pha = shared_fixture("isgri/spectrum_NGC_2110_osa10_rebinned.fits")
    rmf = pha.with_name("spectrum_NGC_2110_osa10_rebinned_rmf.fits")
    arf = pha.with_name("spectrum_NGC_2110_osa10_rebinned_arf.fits")
    code, _, err = ingest(pha, rmf, arf)
    assert code == 1 and "--source" in err and Product.objects.count() == 0
    code, _, err = ingest(pha, rmf, arf, source="NGC 2110")
    assert code == 0, err
    assert [s.name for s in only_product().sources.all()] == ["NGC 2110"]


def test_light_curves(catalogue):
    code, _, err = ingest(
        shared_fixture("isgri/lc_OAO_1657-415.fits"),
        shared_fixture("jemx/lc_GRB221009A_jmx1.fits"),
        shared_fixture("jemx/lc_jmx1_96_bins.fits.gz"),
        shared_fixture("jemx/lc_jmx1_single_bin.fits.gz"),
    )
    assert code == 0, err
    by_source = {p.sources.get().name: p for p in Product.objects.all()}
    oao = by_source["OAO 1657-415"]
    assert (oao.kind.code, oao.instrument.code, oao.rev_first) == ("lightcurve", "isgri", 51)
    points = list(FluxPoint.objects.filter(product=oao).order_by("t_start_ijd"))
    assert len(points) == 2
    # XAX_E half widths (0.00579 d and 0.00341 d), not TIMEDEL, set the bins
    assert points[1].t_stop_ijd - points[1].t_start_ijd == pytest.approx(2 * 0.00341336, 1e-4)
    grb = by_source["GRB 221009A"]
    assert grb.instrument.code == "jemx1" and grb.rev_first == 2562
    assert FluxPoint.objects.filter(product=grb).count() == 198
    crab = [p for p in Product.objects.all() if p.sources.get().name == "Crab"]
    assert len(crab) == 2  # NAME 'String' in both: linked by position


def test_catalogues(catalogue):
    code, _, err = ingest(
        shared_fixture("isgri/catalog_crab_field.fits"),
        shared_fixture("jemx/catalog_jmx1.fits"),
        shared_fixture("jemx/sloc_res_jmx1_crab.fits.gz"),
        shared_fixture("catalogs/api_catalog_gx5-1.json"),
        shared_fixture("jemx/catalog_jmx1_empty.fits"),
    )
    assert code == 0, err
    assert Product.objects.filter(kind__code="catalog").count() == 5
    crab_field = Product.objects.get(metadata__facts__n_rows=21)
    assert crab_field.sources.count() == 21
    assert crab_field.source_links.get(source__name="Crab").role == "detected"
    new = Source.objects.filter(is_provisional=True)
    assert new.count() == 1  # the JEM-X "NEW SOURCE", once for both JEM-X tables
    assert new.get().name.startswith("NEW J0528")


def test_images_of_every_flavour(catalogue):
    code, _, err = ingest(
        shared_fixture("jemx/mosaic_jmx1_crab.fits.gz"),
        shared_fixture("isgri/significance_1E_1740.7-2942_25-40keV.fits.gz"),
        shared_fixture("isgri/significance_user_guide.fits"),
        shared_fixture("isgri/scw/isgri_sky_ima_1.fits.gz"),
        shared_fixture("isgri/scw/isgri_mosa_ima_1.fits.gz"),
    )
    assert code == 0, err
    jemx = Product.objects.get(instrument__code="jemx1")
    assert jemx.source_links.get(source__name="Crab").role == "detected"
    gc = Product.objects.get(time_start__year=2017)
    assert gc.instrument.code == "isgri"  # no INSTRUME: the 4.94' pixels say ISGRI
    assert gc.source_links.get(source__name="1E 1740.7-2942").significance > 5
    scw = Product.objects.get(rev_first=665, instrument__code="isgri")
    assert scw.metadata["scw_ids"] == ["066500280010"]
    assert scw.source_links.get(source__name="Crab").role == "detected"


def test_second_run_adds_nothing(catalogue, settings):
    files = [
        shared_fixture("isgri/mosaic_crab_20-40keV.fits"),
        shared_fixture("isgri/spectrum_3C_279_osa10.fits"),
        shared_fixture("isgri/spectrum_3C_279_osa10_rmf.fits.gz"),
        shared_fixture("isgri/spectrum_3C_279_osa10_arf.fits.gz"),
        shared_fixture("isgri/lc_OAO_1657-415.fits"),
        shared_fixture("isgri/catalog_crab_field.fits"),
    ]
    code, out, err = ingest(*files)
    assert code == 0, err
    counts = [
        m.objects.count()
        for m in (Product, ProductFile, FluxPoint, Source, SpectralFit, ProductSource)
    ]
    stored = sorted(p.name for p in settings.MEDIA_ROOT.rglob("*") if p.is_file())
    code, out, err = ingest(*files)
    assert code == 0, err
    assert out.count("already present") == 4
    assert [
        m.objects.count()
        for m in (Product, ProductFile, FluxPoint, Source, SpectralFit, ProductSource)
    ] == counts
    assert sorted(p.name for p in settings.MEDIA_ROOT.rglob("*") if p.is_file()) == stored


# --- malformed input: one clear line, exit 1, nothing left behind ---------------------------


def _truncated(tmp_path):
    data = shared_fixture("isgri/mosaic_crab_20-40keV.fits").read_bytes()
    path = tmp_path / "truncated.fits"
    path.write_bytes(data[: len(data) // 2])
    return [path]


def _unknown_fits(tmp_path):
    path = tmp_path / "table.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.BinTableHDU.from_columns(
                [fits.Column(name="X", format="E", array=np.arange(3.0))]
            ),
        ]
    ).writeto(path)
    return [path]


def _all_nan_image(tmp_path):
    with fits.open(shared_fixture("isgri/significance_user_guide.fits")) as hdul:
        hdul[0].data = np.full_like(hdul[0].data, np.nan)
        path = tmp_path / "nan.fits"
        hdul.writeto(path)
    return [path]


def _all_nan_lightcurve(tmp_path):
    with fits.open(shared_fixture("isgri/lc_OAO_1657-415.fits")) as hdul:
        hdul[1].data["RATE"][:] = np.nan
        path = tmp_path / "nan_lc.fits"
        hdul.writeto(path)
    return [path]


def _html_name(tmp_path):
    with fits.open(shared_fixture("isgri/lc_OAO_1657-415.fits")) as hdul:
        hdul[1].header["NAME"] = "<script>alert(1)</script>"
        hdul[1].header["RA_OBJ"] = 10.0
        hdul[1].header["DEC_OBJ"] = 10.0
        path = tmp_path / "html.fits"
        hdul.writeto(path)
    return [path]


def _gzip_of_garbage(tmp_path):
    path = tmp_path / "garbage.fits.gz"
    path.write_bytes(gzip.compress(b"not fits at all" * 100))
    return [path]


def _corrupt_gzip(tmp_path):
    data = shared_fixture("isgri/spectrum_1A_0535+262_osa11.fits.gz").read_bytes()
    path = tmp_path / "corrupt.fits.gz"
    path.write_bytes(data[:200] + bytes(200) + data[400:])
    return [path]


def _empty(tmp_path):
    path = tmp_path / "empty.fits"
    path.write_bytes(b"")
    return [path]


def _text(tmp_path):
    path = tmp_path / "x.fits"
    path.write_text("hello, this is not FITS")
    return [path]


BAD_INPUTS = {
    "empty": _empty,
    "not FITS": _text,
    "truncated": _truncated,
    "gzip of garbage": _gzip_of_garbage,
    "corrupt gzip": _corrupt_gzip,
    "FITS of no known kind": _unknown_fits,
    "spectrum without response": lambda tmp: [shared_fixture("isgri/spectrum_3C_279_osa10.fits")],
    "response without spectrum": lambda tmp: [
        shared_fixture("isgri/spectrum_3C_279_osa10_rmf.fits.gz")
    ],
    "all-NaN image": _all_nan_image,
    "all-NaN light curve": _all_nan_lightcurve,
    "name with HTML": _html_name,
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_malformed_input_is_refused_and_leaves_nothing(catalogue, settings, tmp_path, case):
    paths = BAD_INPUTS[case](tmp_path)
    before = [m.objects.count() for m in (Product, ProductFile, FluxPoint, Source)]
    code, out, err = ingest(*paths)
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == len(paths) and all(line.startswith("rejected ") for line in lines)
    assert "Traceback" not in err and "internal error" not in err
    assert [m.objects.count() for m in (Product, ProductFile, FluxPoint, Source)] == before
    media = settings.MEDIA_ROOT
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_bad_source_option_is_refused(catalogue):
    with pytest.raises(CommandError, match="not allowed in names"):
        ingest(shared_fixture("isgri/lc_OAO_1657-415.fits"), source="<b>bold</b>")
    assert Product.objects.count() == 0


def test_proprietary_with_embargo(catalogue):
    code, _, err = ingest(
        shared_fixture("isgri/lc_OAO_1657-415.fits"),
        access="proprietary",
        embargo="2031-01-01",
        group=["team-a"],
    )
    assert code == 0, err
    product = only_product()
    assert product.access == "proprietary"
    assert product.embargo_until.date() == datetime(2031, 1, 1).date()
    assert list(product.granted_groups.values_list("name", flat=True)) == ["team-a"]
    assert not Product.objects.visible_to(None).exists()
