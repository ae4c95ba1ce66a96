"""No page's number of queries grows with the data: the same bound (15) on two data sizes,
for an anonymous visitor and for a signed-in member of a group with granted products."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache

from products.models import Product
from tests.factories import (
    FluxPointFactory,
    ObservationFactory,
    ProductFactory,
    ProductFileFactory,
    SourceFactory,
)

pytestmark = pytest.mark.django_db

MAX_QUERIES = 15
KINDS = ("image", "spectrum", "lightcurve", "catalog")
INSTRUMENTS = ("isgri", "jemx1", "jemx2")


def build(n: int) -> dict:
    """A source with ``n`` products over instruments, kinds and revolutions, ``n`` products in
    one revolution over ``n // 10 + 1`` observations, previews, fits-less spectra and links."""
    team = Group.objects.create(name="team")
    crab = SourceFactory(name="Crab", aliases=["Tau A"], class_code="Pulsar", ra_deg=83.63,
                         dec_deg=22.01)  # fmt: skip
    others = [SourceFactory(class_code="LMXB") for _ in range(5)]
    observations = [ObservationFactory(revolution__number=1516) for _ in range(n // 10 + 1)]
    products = []
    for k in range(n):
        product = ProductFactory(
            title=f"Crab product {k}",
            kind__code=KINDS[k % 4],
            instrument__code=INSTRUMENTS[k % 3],
            rev_first=1516 if k % 2 else 1400 + k,
            rev_last=(1516 if k % 2 else 1400 + k) + (30 if k % 7 == 0 else 0),
            observation=observations[k % len(observations)] if k % 2 else None,
            is_highlight=k % 9 == 0,
            access=Product.Access.PROPRIETARY if k % 5 == 0 else Product.Access.PUBLIC,
            sources=[crab, others[k % 5]],
            sources__role="detected",
            metadata={"detected_sources": [
                {"name": "Crab", "source": "crab", "ra_deg": 83.63, "dec_deg": 22.01,
                 "significance": 50.0 + k}
            ]},
        )  # fmt: skip
        if k % 5 == 0:
            product.granted_groups.add(team)
        ProductFileFactory(product=product, role="preview", original_name="preview.png")
        ProductFileFactory(product=product)
        products.append(product)
    lightcurve = next(p for p in products if p.kind.code == "lightcurve")
    for t in range(3):
        FluxPointFactory(product=lightcurve, source=crab, t_start_ijd=5500.0 + t)
    member = User.objects.create_user("member")
    member.groups.add(team)
    return {"products": products, "member": member}


@pytest.fixture(params=[8, 60], ids=["small", "large"])
def archive(request):
    cache.clear()
    return build(request.param)


def page_urls(archive) -> list[str]:
    products = archive["products"]
    by_kind = {p.kind.code: p for p in reversed(products) if p.access == Product.Access.PUBLIC}
    return [
        "/",
        "/sources/",
        "/sources/?q=crab&cls=XRB&sort=-dec",
        "/sources/crab/",
        "/sources/crab/?instrument=jemx1&kind=image&page=2",
        "/revolutions/",
        "/revolutions/1516/",
        "/revolutions/1516/?instrument=jemx&kind=image",
        "/products/",
        "/products/?source=tau+a&cls=Pulsar&instrument=isgri&kind=image&e_min=10&e_max=50"
        "&t_start=1000&t_end=2000&t_unit=revnum&rev_min=1&rev_max=3000",
        "/explore/?name=crab&radius=3&kind=image",
        "/statistics/",
        "/sitemap.xml",
        *[p.get_absolute_url() for p in by_kind.values()],
        *[f"/products/{p.uuid}/plot.json" for p in by_kind.values() if p.kind.code != "image"],
    ]


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "member"])
def test_every_page_stays_within_the_query_budget(
    client, archive, signed_in, django_assert_max_num_queries
):
    if signed_in:
        client.force_login(archive["member"])
    for url in page_urls(archive):
        with django_assert_max_num_queries(MAX_QUERIES, info=url):
            response = client.get(url)
        assert response.status_code == 200, url
