"""Catalogue import (CSV, FITS, VOTable, MMODA JSON) and the Gallery's reference catalogue."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from django.core.management import CommandError, call_command

from sources.catalog import (
    REFERENCE_CATALOG_PATH,
    CatalogImportError,
    import_catalog,
    load_reference_catalog,
    sniff_format,
)
from sources.classes import SOURCE_CLASSES
from sources.models import Source, SourceName
from sources.names import normalize_name
from sources.sky import healpix_index
from tests.conftest import shared_fixture
from tests.factories import SourceFactory

HEADER = "name,ra_deg,dec_deg,class,error_radius_arcmin,aliases\n"


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("# a test catalogue\n" + HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "small.csv",
        [
            "Crab,83.633083,22.014500,Pulsar,0.1,Crab Nebula|M 1|Tau A|PSR B0531+21",
            "V404 Cyg,306.015917,33.867194,LMXB,0.1,1RXS J202405.3+335157|GS 2023+338",
            "Cyg X-1,299.590316,35.201604,HMXB,,",
            "IGR J17091-3624,257.281708,-36.407139,,0.05,",
        ],
    )


def names_of(source: Source) -> set[str]:
    return set(source.names.values_list("name", flat=True))


# --- reading the formats -------------------------------------------------------------------


@pytest.mark.django_db
def test_import_csv(small_csv: Path) -> None:
    report = import_catalog(small_csv)
    assert (report.fmt, report.rows, report.created, report.updated) == ("csv", 4, 4, 0)
    assert (report.aliases_added, report.skipped) == (6, 0)
    crab = Source.objects.named("tau a").get()
    assert crab.name == "Crab"
    assert crab.object_class.code == "Pulsar"
    assert (crab.ra_deg, crab.dec_deg, crab.error_radius_arcmin) == (83.633083, 22.0145, 0.1)
    assert crab.healpix is not None and crab.cz == pytest.approx(math.sin(math.radians(22.0145)))
    assert names_of(crab) == {"Crab", "Crab Nebula", "M 1", "Tau A", "PSR B0531+21"}
    assert Source.objects.named("Cyg X-1").get().error_radius_arcmin is None
    igr = Source.objects.named("IGR 17091-3624").get()
    assert igr.object_class is None and igr.error_radius_arcmin == 0.05
    assert "4 sources created" in report.summary()


@pytest.mark.django_db
def test_import_fits_table_written_with_astropy(tmp_path: Path) -> None:
    # Columns of the ISDC reference catalogue: ERR_RAD in degrees, numeric CLASS codes.
    table = Table(
        {
            "NAME": ["4U 1700-377", "GX 5-1", "Mystery"],
            "RA_OBJ": [255.986458, 270.284167, 10.0],
            "DEC_OBJ": [-37.844111, -25.079167, -10.0],
            "ERR_RAD": np.array([0.0003, 0.0008, 0.05], dtype="f4"),
            "CLASS": np.array([1300, 1200, 9999], dtype="i2"),
            "ISGRI_FLAG": np.array([2, 2, 0], dtype="i2"),
            "JEMX_FLAG": np.array([1, 1, 0], dtype="i2"),
        }
    )
    table["RA_OBJ"].unit = table["DEC_OBJ"].unit = table["ERR_RAD"].unit = u.deg
    path = tmp_path / "gnrl_refr_cat.fits"
    table.write(path, format="fits")
    report = import_catalog(path, class_map={"1300": "HMXB", "1200": "LMXB"})
    assert (report.fmt, report.created) == ("fits", 3)
    hmxb = Source.objects.named("4U 1700-377").get()
    assert hmxb.object_class.code == "HMXB"
    assert hmxb.error_radius_arcmin == pytest.approx(0.018, rel=1e-5)
    assert Source.objects.named("GX 5-1").get().object_class.code == "LMXB"
    # A numeric class the map does not know leaves the class empty.
    assert Source.objects.named("Mystery").get().object_class is None


@pytest.mark.django_db
def test_numeric_classes_without_a_map_stay_empty(tmp_path: Path) -> None:
    table = Table(
        {
            "NAME": ["GX 5-1"],
            "RA_OBJ": [270.284167],
            "DEC_OBJ": [-25.079167],
            "CLASS": np.array([1200], dtype="i2"),
        }
    )
    path = tmp_path / "cat.fits.gz"
    buffer = io.BytesIO()
    table.write(buffer, format="fits")
    path.write_bytes(gzip.compress(buffer.getvalue()))
    report = import_catalog(path)
    assert report.fmt == "fits"
    assert Source.objects.get().object_class is None


@pytest.mark.django_db
def test_import_votable_written_with_astropy(tmp_path: Path) -> None:
    table = Table(
        {
            "main_id": ["Cen X-3", "Vela X-1"],
            "RAJ2000": [170.312875, 135.528583],
            "DEJ2000": [-60.62375, -40.554694],
            "err_rad": [6.0, 0.5],
            "otype": ["HMXB", "hmxb"],
            "aliases": ["V779 Cen", "GP Vel|4U 0900-40"],
        }
    )
    table["RAJ2000"].unit = table["DEJ2000"].unit = u.deg
    table["err_rad"].unit = u.arcsec
    path = tmp_path / "simbad.xml"
    table.write(path, format="votable")
    report = import_catalog(path)
    assert (report.fmt, report.created, report.aliases_added) == ("votable", 2, 3)
    vela = Source.objects.named("4U 0900-40").get()
    assert vela.name == "Vela X-1" and vela.object_class.code == "HMXB"
    assert vela.error_radius_arcmin == pytest.approx(0.5 / 60)
    assert Source.objects.named("Cen X-3").get().error_radius_arcmin == pytest.approx(0.1)


@pytest.mark.django_db
def test_sexagesimal_positions(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "sexa.csv", ['Cyg X-1,"19 58 21.6758","+35 12 05.775",HMXB,,'])
    import_catalog(path)
    source = Source.objects.get()
    assert source.ra_deg == pytest.approx(299.590316, abs=1e-6)
    assert source.dec_deg == pytest.approx(35.201604, abs=1e-6)


@pytest.mark.django_db
def test_mmoda_catalogue_tables() -> None:
    report = import_catalog(shared_fixture("isgri/catalog_crab_field.fits"))
    assert (report.fmt, report.rows, report.created) == ("fits", 21, 21)
    crab = Source.objects.named("Crab").get()
    assert crab.ra_deg == pytest.approx(83.630424, abs=1e-5)
    assert crab.error_radius_arcmin == pytest.approx(0.000280 * 60, rel=1e-3)
    # The JEM-X catalogue: its Crab is the same source, its "NEW SOURCE" is skipped.
    report = import_catalog(shared_fixture("jemx/catalog_jmx1.fits"))
    assert (report.created, report.unchanged, report.skipped) == (0, 1, 1)
    report = import_catalog(shared_fixture("jemx/sloc_res_jmx1_crab.fits.gz"))
    assert (report.fmt, report.created, report.skipped) == ("fits", 0, 1)
    assert import_catalog(shared_fixture("jemx/catalog_jmx1_empty.fits")).rows == 0


@pytest.mark.django_db
def test_mmoda_api_catalogue_json() -> None:
    report = import_catalog(shared_fixture("catalogs/api_catalog_gx5-1.json"))
    assert (report.fmt, report.created) == ("json", 25)
    gx = Source.objects.named("GX 5-1").get()
    assert (gx.ra_deg, gx.dec_deg) == pytest.approx((270.28409, -25.08107), abs=1e-4)


def test_format_is_sniffed_from_content(tmp_path: Path, small_csv: Path) -> None:
    assert sniff_format(small_csv) == "csv"
    assert sniff_format(shared_fixture("isgri/catalog_crab_field.fits")) == "fits"
    assert sniff_format(shared_fixture("jemx/sloc_res_jmx1_crab.fits.gz")) == "fits"
    assert sniff_format(shared_fixture("catalogs/api_catalog_gx5-1.json")) == "json"
    renamed = tmp_path / "catalogue.txt"
    renamed.write_bytes(shared_fixture("isgri/catalog_crab_field.fits").read_bytes())
    assert sniff_format(renamed) == "fits"
    votable = tmp_path / "t.dat"
    Table({"name": ["a"], "ra": [1.0], "dec": [2.0]}).write(votable, format="votable")
    assert sniff_format(votable) == "votable"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02\x03binary", "not a catalogue"),
        (b"<?xml version='1.0'?><html></html>", "not a VOTable"),
        (b"\x1f\x8b\x08\x00broken", "gzip"),
    ],
)
def test_files_that_are_not_catalogues(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.fits"
    path.write_bytes(content)
    with pytest.raises(CatalogImportError, match=message):
        sniff_format(path)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fmt", "content"),
    [
        ("fits", b"SIMPLE  =                    T" + b" " * 100),
        ("json", b'{"not": "a catalogue"}'),
        ("csv", b"a,b\n1,2\n"),
        ("votable", b"<?xml version='1.0'?><VOTABLE><broken"),
    ],
)
def test_unreadable_catalogues_import_nothing(tmp_path: Path, fmt: str, content: bytes) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(CatalogImportError):
        import_catalog(path, fmt=fmt)
    assert not Source.objects.exists()


# --- idempotency, atomicity, validation ----------------------------------------------------


@pytest.mark.django_db
def test_importing_twice_changes_nothing(small_csv: Path) -> None:
    import_catalog(small_csv)
    rows = sorted(Source.objects.values_list("name", "ra_deg", "dec_deg", "object_class"))
    names = sorted(SourceName.objects.values_list("normalized", "source__name"))
    history = Source.history.count()
    report = import_catalog(small_csv)
    assert (report.created, report.updated, report.aliases_added) == (0, 0, 0)
    assert report.unchanged == 4 and not report.warnings
    assert sorted(Source.objects.values_list("name", "ra_deg", "dec_deg", "object_class")) == rows
    assert sorted(SourceName.objects.values_list("normalized", "source__name")) == names
    assert Source.history.count() == history


@pytest.mark.django_db
def test_a_bad_row_leaves_nothing(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        ["Crab,83.633083,22.014500,Pulsar,0.1,M 1", "Broken,10.0,95.0,,,", "Later,1.0,1.0,,,"],
    )
    with pytest.raises(CatalogImportError, match=r"row 2 \('Broken'\).*Dec"):
        import_catalog(path)
    assert not Source.objects.exists() and not SourceName.objects.exists()


@pytest.mark.django_db
def test_a_conflict_found_while_writing_rolls_back_the_rows_before_it(tmp_path: Path) -> None:
    SourceFactory(name="Cyg X-1")
    SourceFactory(name="Cyg X-3")
    before = sorted(SourceName.objects.values_list("normalized", flat=True))
    path = write_csv(
        tmp_path / "conflict.csv",
        ["New One,1.0,1.0,,,", "Cyg X-1,299.590316,35.201604,HMXB,,Cyg X-3"],
    )
    with pytest.raises(CatalogImportError, match=r"row 2 .*different sources: Cyg X-1, Cyg X-3"):
        import_catalog(path)
    assert not Source.objects.named("New One").exists()
    assert sorted(SourceName.objects.values_list("normalized", flat=True)) == before
    assert Source.objects.named("Cyg X-1").get().object_class is None


BAD_ROWS = [
    ("NaN RA", "Bad,nan,10.0,,,", "finite"),
    ("RA above 360", "Bad,400.0,10.0,,,", "RA must lie"),
    ("negative RA", "Bad,-1.0,10.0,,,", "RA must lie"),
    ("Dec below -90", "Bad,10.0,-90.5,,,", "Dec must lie"),
    ("no position", "Bad,,,,,", "required"),
    ("text position", "Bad,abc,1.0,,,", "abc"),
    ("empty name", ",10.0,10.0,,,", "empty"),
    ("blank name", '"   ",10.0,10.0,,,', "empty"),
    ("long name", "X" * 101 + ",10.0,10.0,,,", "longer than 100"),
    ("long alias", "Fine,10.0,10.0,,," + "Y" * 101, "longer than 100"),
    ("control character", "Bad\x01Name,10.0,10.0,,,", "not allowed"),
    ("unknown class", "Bad,10.0,10.0,Quasarish,,", "unknown source class"),
    ("negative error", "Bad,10.0,10.0,,-1,", "error radius"),
    ("separators only", "+-_,10.0,10.0,,,", "no letters or digits"),
    ("long once normalised", "\ufb03" * 40 + ",10.0,10.0,,,", "too long once normalised"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("row", "message"), [r[1:] for r in BAD_ROWS], ids=[r[0] for r in BAD_ROWS]
)
def test_bad_rows_are_refused(tmp_path: Path, row: str, message: str) -> None:
    path = write_csv(tmp_path / "bad.csv", ["Good,1.0,1.0,,,", row])
    with pytest.raises(CatalogImportError, match=f"row 2.*{re.escape(message)}"):
        import_catalog(path)
    assert not Source.objects.exists()


@pytest.mark.django_db
def test_missing_columns_and_bad_class_maps(tmp_path: Path, small_csv: Path) -> None:
    path = tmp_path / "nocols.csv"
    path.write_text("name,ra\nCrab,83.6\n", encoding="utf-8")
    with pytest.raises(CatalogImportError, match="no Dec column"):
        import_catalog(path)
    with pytest.raises(CatalogImportError, match="unknown class 'Planet'"):
        import_catalog(small_csv, class_map={"Pulsar": "Planet"})
    with pytest.raises(CatalogImportError, match="no such file"):
        import_catalog(tmp_path / "absent.csv")
    assert not Source.objects.exists()


@pytest.mark.django_db
def test_existing_sources_are_matched_by_alias_and_completed(tmp_path: Path) -> None:
    crab = SourceFactory(
        name="Crab", ra_deg=83.633083, dec_deg=22.0145, class_code="SNR", error_radius_arcmin=None
    )
    path = write_csv(
        tmp_path / "c.csv", ["Crab Nebula,83.6331,22.0145,Pulsar,0.2,crab|M 1|Taurus A"]
    )
    report = import_catalog(path)
    assert (report.created, report.updated, report.aliases_added) == (0, 1, 3)
    crab.refresh_from_db()
    # The curated class stays; the blank error radius is filled in; new names become aliases.
    assert crab.object_class.code == "SNR" and crab.error_radius_arcmin == 0.2
    assert names_of(crab) == {"Crab", "Crab Nebula", "M 1", "Taurus A"}


@pytest.mark.django_db
def test_positions_move_only_when_asked(tmp_path: Path) -> None:
    source = SourceFactory(name="GX 5-1", ra_deg=270.284167, dec_deg=-25.079167)
    moved = write_csv(tmp_path / "m.csv", ["GX 5-1,270.284167,-25.0500,LMXB,0.1,"])
    report = import_catalog(moved)
    source.refresh_from_db()
    assert source.dec_deg == -25.079167
    assert len(report.warnings) == 1 and "1.75 arcmin" in report.warnings[0]
    report = import_catalog(moved, update_positions=True)
    source.refresh_from_db()
    assert (report.updated, source.dec_deg) == (1, -25.05)
    assert source.healpix == healpix_index(270.284167, -25.05)
    assert not report.warnings


@pytest.mark.django_db
def test_a_merged_source_stands_for_the_source_it_was_merged_into(tmp_path: Path) -> None:
    target = SourceFactory(name="H 1743-322")
    SourceFactory(name="IGR J17464-3213", merged_into=target)
    path = write_csv(tmp_path / "m.csv", ["IGR J17464-3213,266.5679,-32.2328,LMXB,0.2,"])
    report = import_catalog(path)
    assert (report.created, report.aliases_added) == (0, 0)
    target.refresh_from_db()
    assert target.object_class.code == "LMXB"


@pytest.mark.django_db
def test_progress_is_reported(small_csv: Path) -> None:
    calls: list[tuple[int, int]] = []
    import_catalog(small_csv, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


# --- management commands -------------------------------------------------------------------


@pytest.mark.django_db
def test_import_catalog_command(tmp_path: Path, small_csv: Path) -> None:
    out = io.StringIO()
    call_command("import_catalog", str(small_csv), stdout=out)
    assert out.getvalue().strip().endswith("0 rows skipped")
    assert len(out.getvalue().strip().splitlines()) == 1
    class_map = tmp_path / "classes.json"
    class_map.write_text(json.dumps({"1200": "LMXB"}), encoding="utf-8")
    table = Table(
        {"NAME": ["GX 5-1"], "RA_OBJ": [270.284167], "DEC_OBJ": [-25.079167], "CLASS": [1200]}
    )
    fits_path = tmp_path / "isdc.cat"
    table.write(fits_path, format="fits")
    call_command(
        "import_catalog",
        str(fits_path),
        "--format",
        "fits",
        "--class-map",
        str(class_map),
        "--update-positions",
        stdout=io.StringIO(),
    )
    assert Source.objects.named("GX 5-1").get().object_class.code == "LMXB"


@pytest.mark.django_db
def test_import_catalog_command_fails_with_one_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "bad.csv", ["Good,1.0,1.0,,,", "Bad,1.0,-100.0,,,"])
    with pytest.raises(CommandError) as error:
        call_command("import_catalog", str(path), stdout=io.StringIO())
    message = str(error.value)
    assert "\n" not in message and "nothing imported" in message and "row 2" in message
    bad_map = tmp_path / "map.json"
    bad_map.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(CommandError, match="JSON object"):
        call_command("import_catalog", str(path), "--class-map", str(bad_map))
    assert not Source.objects.exists()


@pytest.mark.django_db
def test_import_catalog_command_shows_progress_for_large_files(tmp_path: Path, monkeypatch) -> None:
    from sources.management.commands import import_catalog as command

    monkeypatch.setattr(command, "PROGRESS_ROWS", 20)
    rows = [f"Src {i},{(i * 7.3) % 360:.4f},{(i * 1.1) % 170 - 85:.4f},,," for i in range(30)]
    path = write_csv(tmp_path / "large.csv", rows)
    err = io.StringIO()
    call_command("import_catalog", str(path), stdout=io.StringIO(), stderr=err)
    lines = err.getvalue().splitlines()
    assert lines[0].strip() == "3/30 rows stored" and lines[-1].strip() == "30/30 rows stored"
    assert Source.objects.count() == 30
    # Small files and -v 0 stay quiet.
    err = io.StringIO()
    call_command("import_catalog", str(path), verbosity=0, stdout=io.StringIO(), stderr=err)
    assert err.getvalue() == ""


@pytest.mark.django_db
def test_load_reference_catalog_command() -> None:
    out = io.StringIO()
    call_command("load_reference_catalog", stdout=out)
    call_command("load_reference_catalog", stdout=out)
    first, second = out.getvalue().strip().splitlines()
    assert "0 sources created, 0 updated" in second and "0 aliases added" in second
    assert Source.objects.count() == len(reference_rows())


# --- the reference catalogue ---------------------------------------------------------------


def reference_rows() -> list[dict[str, str]]:
    with REFERENCE_CATALOG_PATH.open(encoding="utf-8") as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def reference_index() -> dict[str, dict[str, str]]:
    """Normalised name or alias -> reference row."""
    index = {}
    for row in reference_rows():
        for name in [row["name"], *filter(None, row["aliases"].split("|"))]:
            index[normalize_name(name)] = row
    return index


def test_reference_catalogue_is_well_formed() -> None:
    rows = reference_rows()
    assert 150 <= len(rows) <= 250
    codes = {code for code, _, _ in SOURCE_CLASSES}
    keys: dict[str, str] = {}
    for row in rows:
        assert row["class"] in codes or row["class"] == "", row
        for value in (row["ra_deg"], row["dec_deg"]):
            assert len(value.split(".")[1]) >= 4, row  # at least 4 decimals
        ra, dec, error = (
            float(row["ra_deg"]),
            float(row["dec_deg"]),
            float(row["error_radius_arcmin"]),
        )
        assert 0 <= ra < 360 and -90 <= dec <= 90 and 0 < error <= 30, row
        for name in [row["name"], *filter(None, row["aliases"].split("|"))]:
            key = normalize_name(name)
            assert key and keys.setdefault(key, row["name"]) == row["name"], (
                f"{name!r} of {row['name']} is also a name of {keys[key]}"
            )


#: Designations that carry a J2000 position: prefix, RA (HHMM[.m] or HHMMSS[.s]), sign, Dec
#: (DD, DDd, DDMM[.m] or DDMMSS[.s]).
_J_NAME = re.compile(
    r"^(?P<prefix>\S+) J(?P<ra>\d{4}(?:\d{2})?(?:\.\d+)?)(?P<sign>[+-])(?P<dec>\d{2,6}(?:\.\d+)?)$"
)
#: Missions whose designations come from positions good to a few arcminutes.
_PRECISE = {"IGR", "1RXS", "PSR", "AX", "SAX", "RX", "SGR"}


def _designation_position(match: re.Match) -> tuple[float, float, float, float]:
    """(RA, Dec, RA unit, Dec unit) in degrees, of a truncated J2000 designation."""
    ra_text, dec_text = match["ra"], match["dec"]
    whole, _, frac = ra_text.partition(".")
    hours = int(whole[:2])
    if len(whole) == 6:
        minutes = int(whole[2:4]) + float(whole[4:] + ("." + frac if frac else "")) / 60
        ra_unit = 15 * 10 ** -len(frac) / 3600
    else:
        minutes = float(whole[2:] + ("." + frac if frac else ""))
        ra_unit = 15 * 10 ** -len(frac) / 60
    whole, _, frac = dec_text.partition(".")
    if len(whole) == 2:
        dec, dec_unit = int(whole), 1.0
    elif len(whole) == 3:
        dec, dec_unit = int(whole[:2]) + int(whole[2]) / 10, 0.1
    elif len(whole) == 4:
        dec = int(whole[:2]) + float(whole[2:] + ("." + frac if frac else "")) / 60
        dec_unit = 10 ** -len(frac) / 60
    else:
        dec = int(whole[:2]) + int(whole[2:4]) / 60 + float(whole[4:] + "." + (frac or "0")) / 3600
        dec_unit = 10 ** -len(frac) / 3600
    sign = -1 if match["sign"] == "-" else 1
    return 15 * (hours + minutes / 60), sign * dec, ra_unit, dec_unit


def test_reference_positions_agree_with_their_j2000_designations() -> None:
    checked = 0
    for row in reference_rows():
        for name in [row["name"], *filter(None, row["aliases"].split("|"))]:
            match = _J_NAME.match(name)
            if not match:
                continue
            ra, dec, ra_unit, dec_unit = _designation_position(match)
            slack = 2 / 60 if match["prefix"].upper() in _PRECISE else 0.5
            d_ra = ((float(row["ra_deg"]) - ra + 180) % 360 - 180) * math.cos(math.radians(dec))
            d_dec = float(row["dec_deg"]) - dec
            assert abs(d_ra) <= ra_unit + slack and abs(d_dec) <= dec_unit + slack, (name, row)
            checked += 1
    assert checked > 40


def _fixture_catalogue_sources() -> list[tuple[str, float, float]]:
    table = Table.read(shared_fixture("isgri/catalog_crab_field.fits"))
    sources = [(str(r["src_names"]).strip(), float(r["ra"]), float(r["dec"])) for r in table]
    data = json.loads(shared_fixture("catalogs/api_catalog_gx5-1.json").read_text())
    columns = dict(zip(data["cat_column_names"], data["cat_column_list"], strict=True))
    sources += list(zip(columns["src_names"], columns["ra"], columns["dec"], strict=True))
    jemx = Table.read(shared_fixture("jemx/catalog_jmx1.fits"))
    sources += [
        (str(r["src_names"]).strip(), float(r["ra"]), float(r["dec"]))
        for r in jemx
        if str(r["src_names"]).strip() != "NEW SOURCE"
    ]
    return sources


def test_every_fixture_catalogue_source_is_in_the_reference_within_an_arcminute() -> None:
    index = reference_index()
    sources = _fixture_catalogue_sources()
    assert len(sources) == 21 + 25 + 1
    for name, ra, dec in sources:
        row = index.get(normalize_name(name))
        assert row is not None, f"{name} is not in the reference catalogue"
        here = SkyCoord(ra * u.deg, dec * u.deg)
        there = SkyCoord(float(row["ra_deg"]) * u.deg, float(row["dec_deg"]) * u.deg)
        assert here.separation(there).to_value(u.arcmin) < 1.0, name


@pytest.mark.parametrize(
    "name",
    [
        "1A 0535+262",
        "A 0535+262",
        "3C 279",
        "NGC 2110",
        "4U 1700-377",
        "OAO 1657-415",
        "1E 1740.7-2942",
        "GRB 221009A",
        "H 1743-322",
        "Crab",
    ],
)
def test_sources_of_the_fixture_products_are_in_the_reference(name: str) -> None:
    assert normalize_name(name) in reference_index()


@pytest.mark.django_db
def test_reference_catalogue_loads_and_resolves_names() -> None:
    report = load_reference_catalog()
    assert report.created == len(reference_rows()) and report.skipped == 0
    crab = Source.objects.named("Crab").get()
    assert Source.objects.named("M 1").get() == crab == Source.objects.named("crab_nebula").get()
    assert crab.object_class.code == "Pulsar"
    assert (
        SkyCoord(crab.ra_deg * u.deg, crab.dec_deg * u.deg).separation(
            SkyCoord("05h34m31.94s +22d00m52.2s")
        )
        < 1 * u.arcmin
    )
    v404 = Source.objects.named("V404 Cyg").get()
    assert Source.objects.named("1RXS J202405.3+335157").get() == v404
    assert Source.objects.named("GS 2023+338").get() == v404
    assert Source.objects.named("A 0535+262").get().name == "1A 0535+262"
    assert Source.objects.named("IGR J17464-3213").get().name == "H 1743-322"
    assert Source.objects.of_class("AGN").filter(name="NGC 4151").exists()
    # Loading again changes nothing.
    again = load_reference_catalog()
    assert (again.created, again.updated, again.aliases_added) == (0, 0, 0)
    assert again.unchanged == report.created


@pytest.mark.django_db
def test_fixture_catalogues_match_the_loaded_reference() -> None:
    load_reference_catalog()
    count = Source.objects.count()
    for fixture in (
        "isgri/catalog_crab_field.fits",
        "catalogs/api_catalog_gx5-1.json",
        "jemx/catalog_jmx1.fits",
    ):
        report = import_catalog(shared_fixture(fixture))
        assert report.created == 0 and not report.warnings, (fixture, report.warnings)
    # The MMODA name of H 1743-322 is already one of its aliases: no source was added.
    assert Source.objects.count() == count
