"""The vocabularies of the previous gallery, mapped onto the Gallery's own.

The oda_api client speaks in taxonomy terms: instruments (``isgri``, ``jemx1``, ``jemx2``,
``spi_acs``, and ``jemx`` for either JEM-X unit) and product types (``isgri_image``,
``jemx_spectrum``, ``spi_acs_lc`` …) whose parent terms say what kind of product they are
(``image``, ``spectrum``, ``lightcurve``). The client asks for the parents before posting and
insists on a source name when they contain "spectrum" or "lightcurve". Here each product type
maps to an instrument family and a ``ProductKind`` code, and Simbad object types map to the
Gallery's source classes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from products.models import Instrument, ProductKind

#: Product type -> (instrument family, ProductKind code).
PRODUCT_TYPES: dict[str, tuple[str, str]] = {
    "isgri_image": ("isgri", "image"),
    "isgri_spectrum": ("isgri", "spectrum"),
    "isgri_lc": ("isgri", "lightcurve"),
    "isgri_catalog": ("isgri", "catalog"),
    "jemx_image": ("jemx", "image"),
    "jemx_spectrum": ("jemx", "spectrum"),
    "jemx_lc": ("jemx", "lightcurve"),
    "jemx_catalog": ("jemx", "catalog"),
    "spi_acs_lc": ("spi_acs", "lightcurve"),
}

#: Suffix of a product type for each kind (light curves are ``_lc`` in the old vocabulary).
KIND_SUFFIX = {"image": "image", "spectrum": "spectrum", "lightcurve": "lc", "catalog": "catalog"}

#: The parent terms: the product categories the client knows (plot_tools class names).
CATEGORIES = ("image", "spectrum", "lightcurve", "catalog")


class TermError(ValueError):
    """A term the Gallery does not know; the message lists the ones it does."""


@dataclass(frozen=True)
class ProductType:
    """What a product type term selects: a kind, and an instrument family unless the term is a
    bare category such as ``spectrum``."""

    term: str
    kind: str
    family: str | None


def parse_product_type(term: str) -> ProductType:
    """The kind (and family) a product type or category term names, case-insensitively."""
    key = (term or "").strip().lower()
    if key in PRODUCT_TYPES:
        family, kind = PRODUCT_TYPES[key]
        return ProductType(key, kind, family)
    if key in CATEGORIES:
        return ProductType(key, key, None)
    raise TermError(
        f"unknown product_type {term[:60]!r}; use one of {', '.join(product_type_terms())}"
    )


def product_type_terms(family: str | None = None) -> list[str]:
    """Product type terms, all or those of one instrument family."""
    return [t for t, (fam, _) in PRODUCT_TYPES.items() if family is None or fam == family]


def product_type_of(family: str, kind: str) -> str:
    """The product type term of a product of ``kind`` made by an instrument of ``family``."""
    term = f"{family}_{KIND_SUFFIX.get(kind, kind)}"
    return term if term in PRODUCT_TYPES else kind


def parents_of(term: str) -> list[str]:
    """Parent terms of a product type (``["spectrum"]`` for ``isgri_spectrum``)."""
    try:
        parsed = parse_product_type(term)
    except TermError:
        return []
    if parsed.term in CATEGORIES:
        return []
    category = ProductKind.objects.filter(code=parsed.kind).values_list("category", flat=True)
    return [category.first() or parsed.kind]


def instrument_terms() -> list[str]:
    """Instrument terms: the code of every instrument, then each family with several units."""
    rows = list(Instrument.objects.order_by("code").values_list("code", "family"))
    codes = [code for code, _ in rows]
    units = Counter(family for _, family in rows)
    return codes + sorted(f for f, n in units.items() if n > 1 and f not in codes)


def instrument_codes(term: str) -> list[str]:
    """Codes of the instruments an instrument term selects (a code, or a family of units)."""
    key = (term or "").strip().lower()
    rows = list(Instrument.objects.order_by("code").values_list("code", "family"))
    exact = [code for code, _ in rows if code == key]
    found = exact or [code for code, family in rows if family == key]
    if not found:
        raise TermError(
            f"unknown instrument {term[:60]!r}; use one of {', '.join(instrument_terms())}"
        )
    return found


def family_of(term: str) -> str:
    """The instrument family an instrument term belongs to."""
    codes = instrument_codes(term)
    return Instrument.objects.filter(code=codes[0]).values_list("family", flat=True).first()


# --- Simbad object types ------------------------------------------------------------------

#: Simbad object types (short and long forms, lower case) -> SourceClass code.
_OTYPES = {
    "HMXB": ("hxb", "hmxb", "highmassxbin", "hmxb*", "high mass x-ray binary"),
    "LMXB": ("lxb", "lmxb", "lowmassxbin", "lmxb*", "low mass x-ray binary"),
    "XRB": ("xb", "xb*", "xrb", "xraybin", "x-ray binary"),
    "CV": ("cv", "cv*", "catacly*", "cataclyv*", "cataclysmic variable"),
    "Pulsar": ("psr", "pulsar", "xpsr", "x-ray pulsar"),
    "Magnetar": ("magnetar", "sgr", "axp"),
    "AGN": ("agn", "agn_candidate", "ag?", "syg", "seyfert", "liner", "lin"),
    "Seyfert1": ("sy1", "seyfert1", "seyfert 1"),
    "Seyfert2": ("sy2", "seyfert2", "seyfert 2"),
    "Blazar": ("bla", "blazar", "bz?"),
    "BLLac": ("bll", "bllac", "bl lac", "bllac_candidate"),
    "FSRQ": ("fsrq",),
    "QSO": ("qso", "quasar"),
    "RadioGalaxy": ("rg", "radiog", "radiogalaxy", "radio galaxy"),
    "GRB": ("grb", "gammaburst", "gamma-ray burst"),
    "SNR": ("snr", "snremnant", "supernova remnant"),
    "Star": ("*", "star"),
    "ClG": ("clg", "cluster of galaxies", "galaxy cluster"),
    "X": ("x", "x-ray", "x-ray source"),
}
OTYPE_CLASSES = {alias: code for code, aliases in _OTYPES.items() for alias in aliases}


def class_for_otype(otype: str | None) -> str | None:
    """The SourceClass code of a Simbad object type (or a class code), None when unknown."""
    key = " ".join((otype or "").split()).lower()
    if not key:
        return None
    if key in OTYPE_CLASSES:
        return OTYPE_CLASSES[key]
    return next((code for code in _OTYPES if code.lower() == key), None)
