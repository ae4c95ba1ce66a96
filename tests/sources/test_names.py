"""Name normalisation and search by canonical name or alias."""

from __future__ import annotations

import pytest

from sources.models import Source, SourceName
from sources.names import clean_display_name, is_placeholder, normalize_name
from tests.factories import SourceFactory

SAME = [
    # The cases of the module docstring.
    ("V404 Cyg", "v404_cyg"),
    ("V404 Cyg", "V404+Cyg"),
    ("V404 Cyg", "v404cyg"),
    ("V404 Cyg", "V404_Cyg"),
    ("IGR J17091-3624", "IGR 17091-3624"),
    ("IGR J17091-3624", "igrj17091-3624"),
    # Separators and case in other names.
    ("Cyg X-1", "cyg x 1"),
    ("Cyg X-1", "CYG_X-1"),
    ("GX 339-4", "gx339-4"),
    ("1RXS J202405.3+335157", "1RXS 202405.3+335157"),
    ("Swift J1727.8-1613", "SWIFT J1727.8-1613"),
    ("Crab", "  crab\t"),
    ("M 1", "M1"),
    # A URL-encoded space, a Unicode minus and full-width letters (NFKC).
    ("V404+Cyg", "V404 Cyg"),
    ("1E 1740.7\u22122942", "1E 1740.7-2942"),
    ("\uff27\uff38 5-1", "GX 5-1"),
]

DIFFERENT = [
    # A sign between digits is a declination sign.
    ("4U 1700-377", "4U 1700+377"),
    ("1A 0535+262", "1A 0535-262"),
    ("GX 3+1", "GX 3-1"),
    ("GX 5-1", "GX 51"),
    ("IGR J17091-3624", "IGR J17091+3624"),
    # The epoch letter is dropped only before coordinates.
    ("PSR J0534+2200", "PSR B0534+2200"),
    ("Cyg X-1", "Cyg X-3"),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_spellings_of_one_name_normalise_alike(a: str, b: str) -> None:
    assert normalize_name(a) == normalize_name(b) != ""


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_different_names_stay_different(a: str, b: str) -> None:
    assert normalize_name(a) != normalize_name(b)


def test_known_keys() -> None:
    assert normalize_name("V404 Cyg") == "v404cyg"
    assert normalize_name("IGR J17091-3624") == "igr17091-3624"
    assert normalize_name("4U 1700-377") == "4u1700-377"
    assert normalize_name("GRB 221009A") == "grb221009a"


@pytest.mark.parametrize(
    ("a", "b"), [("MCG+08-11-011", "MCG-08-11-011"), ("BD+23 1234", "BD-23 1234")]
)
def test_declination_sign_after_a_catalogue_prefix_is_kept(a: str, b: str) -> None:
    assert normalize_name(a) != normalize_name(b)


HOSTILE = [
    "",
    "   ",
    "_+-_",
    "'; DROP TABLE sources_source; --",
    "<script>alert(1)</script>",
    "%00%27",
    "\u202eCyg X-1",  # right-to-left override
    "Cyg X-1 \U0001f4a5",
    "x" * 10_000,
    "V404 Cyg" * 500,
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_normalises_without_error(text: str) -> None:
    key = normalize_name(text)
    assert isinstance(key, str)
    assert not any(c.isspace() or c == "_" for c in key)


def test_empty_names_have_no_key() -> None:
    assert normalize_name("") == normalize_name(None) == normalize_name(" _+ ") == ""


def test_placeholders_and_display_names() -> None:
    assert is_placeholder(None) and is_placeholder(" String ") and is_placeholder("NONE")
    assert not is_placeholder("Crab")
    assert clean_display_name("  V404 \t Cyg \n") == "V404 Cyg"


@pytest.fixture
def v404() -> Source:
    return SourceFactory(
        name="V404 Cyg",
        ra_deg=306.015917,
        dec_deg=33.867194,
        class_code="LMXB",
        aliases=["1RXS J202405.3+335157", "GS 2023+338"],
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "V404 Cyg",
        "v404_cyg",
        "V404+Cyg",
        "1RXS J202405.3+335157",
        "1rxs 202405.3+335157",
        "GS 2023+338",
    ],
)
def test_canonical_name_and_aliases_find_the_same_source(v404: Source, query: str) -> None:
    assert list(Source.objects.named(query)) == [v404]


@pytest.mark.django_db
def test_alias_search_uses_the_stored_key(v404: Source) -> None:
    SourceFactory(name="4U 1700-377", aliases=["V884 Sco"])
    keys = dict(SourceName.objects.values_list("name", "normalized"))
    assert keys["1RXS J202405.3+335157"] == normalize_name("1RXS J202405.3+335157")
    assert Source.objects.named("4U 1700+377").count() == 0
    assert Source.objects.named("4u1700-377").get().name == "4U 1700-377"
    assert sorted(v404.aliases) == ["1RXS J202405.3+335157", "GS 2023+338"]


@pytest.mark.django_db
def test_name_search_does_not_loop_over_sources(
    v404: Source, django_assert_max_num_queries
) -> None:
    SourceFactory.create_batch(30)
    with django_assert_max_num_queries(1):
        assert list(Source.objects.named("1RXS J202405.3+335157")) == [v404]


@pytest.mark.django_db
def test_name_contains(v404: Source) -> None:
    SourceFactory(name="V4641 Sgr")
    assert list(Source.objects.name_contains("v404")) == [v404]
    assert Source.objects.name_contains("202405").get() == v404


@pytest.mark.django_db
@pytest.mark.parametrize("text", [t for t in HOSTILE if len(t) < 200])
def test_hostile_queries_find_nothing(v404: Source, text: str) -> None:
    assert list(Source.objects.named(text)) == []


@pytest.mark.django_db
def test_an_alias_cannot_take_another_sources_name(v404: Source) -> None:
    other = SourceFactory(name="Cyg X-1")
    # The name already belongs to V404 Cyg: adding it to Cyg X-1 leaves it where it was.
    alias = other.add_alias("gs_2023+338")
    assert alias.source == v404
    assert list(Source.objects.named("GS 2023+338")) == [v404]
    assert other.add_alias("  ") is None


@pytest.mark.django_db
def test_a_nul_in_a_query_finds_nothing_rather_than_failing(v404: Source) -> None:
    assert list(Source.objects.named("V404\x00Cyg")) in ([], [v404])
