"""The scale-data generator (bench/generate.py) at a tiny scale, on the test database.

On PostgreSQL the rows go through binary COPY, with the big-table index and constraint
detaching exercised on every table; on SQLite through plain INSERTs. Either way the rows must
read back through the ORM, obey the visibility rules and give the same cone-search answers
as brute force.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter

import numpy as np
import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone

from products.models import (
    FluxPoint,
    FluxPointQuerySet,
    Observation,
    Product,
    ProductFile,
    Revolution,
    SpectralFit,
)
from products.timeline import ScwId
from sources.models import Source, SourceName
from sources.sky import angular_distance_deg, cone_filter, position_fields
from tests.conftest import PROJECT_DIR

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _bench():
    """The bench script as a module (bench/ is a folder of scripts, not a package)."""
    path = PROJECT_DIR / "bench" / "generate.py"
    spec = importlib.util.spec_from_file_location("bench_generate", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _bench()


TINY = dict(sources=260, revolutions=12, scws=400, products=1500, flux_points=8000)


def _index_names(table: str) -> set[str]:
    """Names of the table's indexes and constraints."""
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, table))


def test_generator_at_tiny_scale(bench):
    """One generation (a few seconds), then every check on its rows."""
    tables = [m._meta.db_table for m in (Product, FluxPoint, Source)]
    before = {t: _index_names(t) for t in tables}
    lines: list[str] = []
    # detach_min_rows=0: every table goes through the drop-and-rebuild of its indexes.
    report = bench.generate(bench.Scale(**TINY), seed=3, log=lines.append, detach_min_rows=0)
    assert {t: _index_names(t) for t in tables} == before  # all rebuilt
    assert report["counts"]["products"] == TINY["products"]

    check_counts_and_structure()
    check_rows_read_back_through_the_orm()
    check_visibility_rules()
    check_cone_search_agrees_with_brute_force()
    check_monitored_sources_get_their_share(bench)


def check_counts_and_structure():
    assert Source.objects.count() == TINY["sources"]
    assert Revolution.objects.count() == TINY["revolutions"]
    assert Product.objects.count() == TINY["products"]
    assert FluxPoint.objects.count() == TINY["flux_points"]
    scw_ids = [s for ids in Observation.objects.values_list("scw_ids", flat=True) for s in ids]
    assert len(scw_ids) == TINY["scws"] == len(set(scw_ids))

    # Every source has its canonical name; some have aliases.
    assert SourceName.objects.filter(is_canonical=True).count() == TINY["sources"]
    assert Source.objects.named("Crab").get().name == "Crab"
    # Every product has a preview and a data file, sharing one stored file each.
    files = ProductFile.objects.values_list("product_id", "role", "file")
    per_product = Counter(p for p, _, _ in files)
    assert set(per_product.values()) == {2}
    assert len({(role, name) for _, role, name in files}) == 2
    # One fit per spectrum.
    spectra = Product.objects.filter(kind__code="spectrum")
    assert SpectralFit.objects.count() == spectra.count()
    assert set(SpectralFit.objects.values_list("product_id", flat=True)) == set(
        spectra.values_list("pk", flat=True)
    )
    kinds = Counter(Product.objects.values_list("kind__code", flat=True))
    assert set(kinds) == {"image", "spectrum", "lightcurve", "catalog"}
    # Sequences were moved past the explicit ids: new rows insert without clashing.
    fresh = Source.objects.create(name="Fresh Source", ra_deg=10.0, dec_deg=20.0)
    assert fresh.pk > max(Source.objects.exclude(pk=fresh.pk).values_list("pk", flat=True))


def check_rows_read_back_through_the_orm():
    for product in Product.objects.with_related().order_by("?")[:60]:
        assert product.get_absolute_url()
        assert product.kind.category in ("image", "spectrum", "lightcurve", "catalog")
        assert product.rev_first <= product.rev_last
        assert product.time_start < product.time_end
        assert product.rev_span == product.rev_last - product.rev_first
        assert isinstance(product.metadata, dict) and isinstance(product.provenance, dict)
        if product.kind.code in ("spectrum", "lightcurve"):
            roles = [link.role for link in product.source_links.all()]
            assert roles == ["target"]
        preview = product.file("preview")
        assert preview is not None and default_storage.exists(preview.file.name)
        with default_storage.open(preview.file.name, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
        fields = position_fields(product.ra_deg, product.dec_deg)
        assert product.healpix == fields["healpix"]
        for axis in ("cx", "cy", "cz"):
            assert abs(getattr(product, axis) - fields[axis]) <= 1e-15
        if product.observation_id:
            obs = product.observation
            assert obs.revolution.start <= obs.time_start < obs.time_end <= obs.revolution.end
        for fit in product.fits.all():
            assert fit.is_preferred and fit.parameters[0]["name"] == "PhoIndex"

    # Flux points: inside their product's revolutions and observation, ScW ids that parse.
    points = FluxPoint.objects.select_related("product", "observation").order_by("?")[:200]
    for point in points:
        assert point.t_start_ijd < point.t_stop_ijd
        assert point.product.rev_first <= point.revolution <= point.product.rev_last
        assert point.product.kind.code == "lightcurve"
        assert ScwId.parse(point.scw_id).revolution == point.revolution
        assert point.observation.revolution_id == point.revolution
        assert point.exposure_s > 0 and point.flux_error > 0

    # Versions: each NRT product superseded by a CONS version 2 of the same series.
    superseded = Product.objects.filter(superseded_by__isnull=False).select_related("superseded_by")
    assert superseded.exists()
    for old in superseded:
        assert (old.version, old.data_level) == (1, "NRT")
        assert old.superseded_by.version == 2
        assert old.superseded_by.series_key == old.series_key
        assert old.created < old.superseded_by.created


def check_visibility_rules():
    now = timezone.now()
    rows = list(Product.objects.values_list("pk", "status", "access", "embargo_until"))
    expected = {
        pk
        for pk, status, access, embargo in rows
        if status == "published"
        and (access == "public" or (embargo is not None and embargo <= now))
    }
    anonymous = set(Product.objects.visible_to(AnonymousUser()).values_list("pk", flat=True))
    assert anonymous == expected
    statuses = Counter(status for _, status, _, _ in rows)
    assert statuses["hidden"] and statuses["draft"]
    future = [
        pk
        for pk, status, access, embargo in rows
        if status == "published" and access == "proprietary" and (embargo is None or embargo > now)
    ]
    past = [
        pk
        for pk, status, access, embargo in rows
        if status == "published"
        and access == "proprietary"
        and embargo is not None
        and embargo <= now
    ]
    assert future and past
    assert not anonymous & set(future) and set(past) <= anonymous

    # A member of a PI group sees the products granted to it, even under embargo.
    granted = Product.objects.filter(pk__in=future, granted_groups__isnull=False).first()
    assert granted is not None
    member = User.objects.filter(groups__in=granted.granted_groups.all()).first()
    assert granted in Product.objects.visible_to(member)
    assert granted not in Product.objects.visible_to(AnonymousUser())
    admin = User.objects.create_superuser("bench-admin", password="x")
    assert Product.objects.visible_to(admin).count() == len(rows)

    # Through the queryset class: the rule, whichever manager FluxPoint.objects is.
    visible_points = FluxPoint.objects.filter(product__in=expected).count()
    points = FluxPointQuerySet(model=FluxPoint).visible_to(AnonymousUser())
    assert points.count() == visible_points


def check_cone_search_agrees_with_brute_force():
    rows = np.array(list(Product.objects.values_list("pk", "ra_deg", "dec_deg")))
    ids, ra, dec = rows[:, 0].astype(int), rows[:, 1], rows[:, 2]
    rng = np.random.default_rng(5)
    centres = [(float(ra[i]), float(dec[i])) for i in rng.choice(ids.size, 4, replace=False)]
    centres += [(0.2, 1.0), (359.9, -30.0), (83.633, 22.0145), (266.4, -29.0)]
    for ra0, dec0 in centres:
        for radius in (0.5, 4.0, 15.0):
            found = set(
                cone_filter(Product.objects.all(), ra0, dec0, radius).values_list("pk", flat=True)
            )
            distance = angular_distance_deg(ra0, dec0, ra, dec)
            # Points within a hair of the edge may fall either way.
            inside = set(ids[distance < radius - 1e-9].tolist())
            edge = set(ids[np.abs(distance - radius) <= 1e-9].tolist())
            assert inside <= found <= inside | edge, (ra0, dec0, radius)


def check_monitored_sources_get_their_share(bench):
    share = bench.MONITORED_POINTS_FRACTION * TINY["flux_points"]
    for name in bench.MONITORED:
        source = Source.objects.named(name).get()
        assert FluxPoint.objects.filter(source=source).count() >= share
    crab = Source.objects.named("Crab").get()
    assert crab.products.count() >= 5
