"""sources.merge.merge_sources: names, product links and flux points move, in one transaction."""

from __future__ import annotations

import pytest

from products.models import FluxPoint, ProductSource
from sources.merge import MergeError, merge_sources
from sources.models import Source, SourceName
from tests.factories import FluxPointFactory, ProductFactory, SourceFactory

pytestmark = pytest.mark.django_db


def test_merge_moves_names_links_and_flux_points():
    target = SourceFactory(name="IGR J17091-3624", aliases=["XTE J1710-362"])
    new = SourceFactory(name="NEW J170906.0-362420", aliases=["J1709 candidate"])
    only_new = ProductFactory(sources=[new])
    points = [FluxPointFactory(source=new, product=only_new) for _ in range(3)]
    result = merge_sources(new, target)
    assert result == target
    new.refresh_from_db()
    assert new.merged_into == target
    assert set(SourceName.objects.filter(source=target).values_list("name", flat=True)) == {
        "IGR J17091-3624",
        "XTE J1710-362",
        "NEW J170906.0-362420",
        "J1709 candidate",
    }
    assert SourceName.objects.get(name="IGR J17091-3624").is_canonical
    assert not SourceName.objects.get(name="NEW J170906.0-362420").is_canonical
    assert not SourceName.objects.filter(source=new).exists()
    assert list(only_new.sources.all()) == [target]
    assert FluxPoint.objects.filter(source=target).count() == len(points)
    assert not FluxPoint.objects.filter(source=new).exists()
    # both names now resolve to the target
    assert list(Source.objects.named("new j170906.0-362420")) == [target]
    assert target.history.count() >= 1 and new.history.first().merged_into_id == target.pk


def test_links_to_the_same_product_are_merged_keeping_the_stronger():
    target, new = SourceFactory(), SourceFactory()
    image = ProductFactory(kind__code="image")
    ProductSource.objects.create(product=image, source=target, role="in_field", significance=3.0)
    ProductSource.objects.create(product=image, source=new, role="detected", significance=12.5)
    spectrum = ProductFactory(kind__code="spectrum")
    ProductSource.objects.create(product=spectrum, source=target, role="target")
    ProductSource.objects.create(product=spectrum, source=new, role="in_field", significance=2.0)
    merge_sources(new, target)
    image_link = ProductSource.objects.get(product=image)
    assert (image_link.source, image_link.role, image_link.significance) == (
        target,
        "detected",
        12.5,
    )
    spectrum_link = ProductSource.objects.get(product=spectrum)
    assert (spectrum_link.role, spectrum_link.significance) == ("target", 2.0)


def test_earlier_merges_point_at_the_final_target():
    a, b, c = SourceFactory(), SourceFactory(), SourceFactory()
    merge_sources(a, b)
    merge_sources(b, c)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.merged_into == c and b.merged_into == c


@pytest.mark.parametrize("case", ["self", "already", "into_merged"])
def test_refused_merges_change_nothing(case):
    a, b, c = SourceFactory(), SourceFactory(), SourceFactory()
    product = ProductFactory(sources=[a])
    if case == "self":
        source, into = a, a
    elif case == "already":
        merge_sources(a, b)
        source, into = a, c
    else:
        merge_sources(c, b)
        source, into = a, c
    before = list(ProductSource.objects.values_list("product", "source", "role"))
    with pytest.raises(MergeError):
        merge_sources(source, into)
    assert list(ProductSource.objects.values_list("product", "source", "role")) == before
    assert product.source_links.count() == 1


def test_a_failure_rolls_everything_back(monkeypatch):
    target, new = SourceFactory(), SourceFactory(aliases=["the alias"])
    ProductFactory(sources=[new])
    FluxPointFactory(source=new)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("sources.merge.bulk_update_with_history", boom)
    with pytest.raises(RuntimeError):
        merge_sources(new, target)
    assert SourceName.objects.filter(source=new).count() == 2
    assert ProductSource.objects.filter(source=new).count() == 1
    assert FluxPoint.objects.filter(source=new).count() == 1
    new.refresh_from_db()
    assert new.merged_into is None
