"""Shared data of the page tests: a small sky and archive made with the factories."""

from __future__ import annotations

import pytest

from tests.factories import ProductFactory, SourceFactory


@pytest.fixture
def crab(db):
    return SourceFactory(
        name="Crab", aliases=["Tau A", "M 1"], ra_deg=83.633, dec_deg=22.0145, class_code="Pulsar"
    )


@pytest.fixture
def sky(db, crab):
    """A few sources of nested classes and products of two revolutions and instruments."""
    sources = {
        "crab": crab,
        "cygx1": SourceFactory(name="Cyg X-1", class_code="HMXB", ra_deg=299.59, dec_deg=35.2),
        "gx51": SourceFactory(name="GX 5-1", class_code="LMXB", ra_deg=270.28, dec_deg=-25.08),
        "mrk421": SourceFactory(name="Mrk 421", class_code="BLLac", ra_deg=166.11, dec_deg=38.21),
        "3c279": SourceFactory(name="3C 279", class_code="FSRQ", ra_deg=194.05, dec_deg=-5.79),
    }
    products = {
        "crab_image": ProductFactory(
            title="Crab field ISGRI image", rev_first=1516, sources=[crab], ra_deg=83.6,
            dec_deg=22.0,
        ),
        "crab_jemx1": ProductFactory(
            title="Crab field JEM-X1 image", rev_first=1516, instrument__code="jemx1",
            e_min_kev=3.0, e_max_kev=20.0, sources=[crab], ra_deg=83.6, dec_deg=22.0,
        ),
        "crab_jemx2_spec": ProductFactory(
            title="Crab JEM-X2 spectrum", rev_first=1516, instrument__code="jemx2",
            kind__code="spectrum", e_min_kev=3.0, e_max_kev=30.0, sources=[crab],
        ),
        "cyg_lc": ProductFactory(
            title="Cyg X-1 ISGRI light curve", rev_first=1555, kind__code="lightcurve",
            sources=[sources["cygx1"]], ra_deg=299.59, dec_deg=35.2,
        ),
        "crab_long": ProductFactory(
            title="Crab long-term mosaic", rev_first=1500, rev_last=1560, sources=[crab],
            is_highlight=True,
        ),
        "mrk_spec": ProductFactory(
            title="Mrk 421 ISGRI spectrum", rev_first=1600, kind__code="spectrum",
            sources=[sources["mrk421"]],
        ),
    }  # fmt: skip
    return sources, products
