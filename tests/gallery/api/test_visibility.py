"""No leak of proprietary or hidden products: roles × endpoints × access states.

Each case makes one product in the given state (with a file, a source, a revolution, an
observation and a position) beside a public product of the same source, and checks that the
role sees it, or not, in every place a product shows: list, detail, filters, cone search,
the source's counts, the revolution's and observation's counts, version lists and downloads.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import (
    ObservationFactory,
    ProductFactory,
    ProductFileFactory,
    RevolutionFactory,
    SourceFactory,
)
from tests.gallery.api.conftest import client_for, make_user

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "reader", "granted_reader", "contributor", "curator", "admin"]
STATES = ["public", "embargoed_granted", "embargo_over", "hidden"]

VISIBLE = {
    "public": set(ROLES),
    "embargoed_granted": {"granted_reader", "curator", "admin"},
    "embargo_over": set(ROLES),
    "hidden": {"curator", "admin"},
}


def make_user_for(role: str):
    if role == "anonymous":
        return None
    if role == "granted_reader":
        return make_user("reader", groups=("pi-team",))
    return make_user(role)


def make_product(state: str, **kwargs):
    now = timezone.now()
    attrs = {
        "public": {},
        "embargoed_granted": {"access": "proprietary", "embargo_until": now + timedelta(days=300)},
        "embargo_over": {"access": "proprietary", "embargo_until": now - timedelta(days=1)},
        "hidden": {"status": "hidden"},
    }[state]
    product = ProductFactory(**attrs, **kwargs)
    if state == "embargoed_granted":
        from django.contrib.auth.models import Group

        product.granted_groups.add(Group.objects.get_or_create(name="pi-team")[0])
    return product


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ROLES)
def test_visibility_matrix(role, state):
    user = make_user_for(role)
    api = client_for(user)
    source = SourceFactory(name="GRS 1915+105", ra_deg=288.798, dec_deg=10.946)
    observation = ObservationFactory(revolution=RevolutionFactory(number=1234))
    common = dict(
        sources=[source],
        rev_first=1234,
        rev_last=1234,
        observation=observation,
        ra_deg=288.8,
        dec_deg=10.9,
        kind__code="spectrum",
        series_key="grs-series",
    )
    public = ProductFactory(title="public one", version=1, **common)
    product = make_product(state, title="the product", version=2, **common)
    stored = ProductFileFactory(product=product)
    expected = role in VISIBLE[state]

    def listed(params, with_public: bool = True) -> bool:
        response = api.get("/api/v1/products/", {"all_versions": "true", **params})
        assert response.status_code == 200, response.content
        uuids = {row["uuid"] for row in response.json()["results"]}
        assert (str(public.uuid) in uuids) is with_public
        return str(product.uuid) in uuids

    # list, filters and cone
    assert listed({}) is expected
    assert listed({"source": "grs1915+105", "kind": "spectrum", "instrument": "isgri"}) is expected
    assert listed({"rev_min": 1234, "rev_max": 1234, "e_min": 10, "e_max": 50}) is expected
    assert listed({"ra": 288.8, "dec": 10.9, "radius": 0.5}) is expected
    assert listed({"observation": observation.pk, "tag": ""}) is expected
    # asking for hidden products shows them to curators only
    hidden_expected = state == "hidden" and role in ("curator", "admin")
    assert listed({"status": "hidden"}, with_public=False) is hidden_expected

    # detail
    detail = api.get(f"/api/v1/products/{product.uuid}/")
    assert detail.status_code == (200 if expected else 404)
    if not expected:
        assert "detail" in detail.json()
    # the public product's version list does not reveal the other
    versions = api.get(f"/api/v1/products/{public.uuid}/").json()["versions"]
    assert (str(product.uuid) in {v["uuid"] for v in versions}) is expected

    # counts on the source, the revolution and the observation
    count = 2 if expected else 1
    for url in (
        f"/api/v1/sources/{source.pk}/",
        "/api/v1/revolutions/1234/",
        f"/api/v1/observations/{observation.pk}/",
    ):
        counts = api.get(url).json()["product_counts"]
        assert sum(c["count"] for c in counts) == count, url

    # downloads through the page route (session) and the URL the API gives
    browser = Client()
    if user is not None:
        browser.force_login(user)
    url = f"/products/{product.uuid}/files/{stored.pk}/{stored.download_name}"
    assert browser.get(url).status_code == (200 if expected else 404)
    if expected:
        files = detail.json()["files"]
        assert files[0]["download_url"].endswith(url)
