"""The product, source and revolution pages, and file downloads behind visibility."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from products.models import Product
from tests.factories import ProductFactory, ProductFileFactory, SourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def crab():
    return SourceFactory(name="Crab", aliases=["M 1"], ra_deg=83.633, dec_deg=22.0145)


def test_product_page_shows_metadata_and_downloads(client, crab):
    product = ProductFactory(
        title="Crab field, IBIS/ISGRI 20–40 keV image", sources=[crab], rev_first=727
    )
    data = ProductFileFactory(product=product, original_name="mosaic.fits")
    page = client.get(product.get_absolute_url())
    assert page.status_code == 200
    html = page.content.decode()
    assert "20–40 keV" in html and "Crab" in html and "mosaic.fits" in html
    assert "IJD" in html and ">727<" in html
    download = client.get(f"/products/{product.uuid}/files/{data.pk}/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"SIMPLE")
    assert "attachment" in download["Content-Disposition"]


def test_source_page_lists_products_and_search_finds_aliases(client, crab):
    ProductFactory(title="Crab spectrum", kind__code="spectrum", sources=[crab])
    page = client.get(crab.get_absolute_url())
    assert page.status_code == 200 and "Crab spectrum" in page.content.decode()
    assert "M 1" in page.content.decode()
    found = client.get("/search/", {"q": "m1"})
    assert found.status_code == 302 and found["Location"] == crab.get_absolute_url()


def test_revolution_page_and_neighbours(client, crab):
    ProductFactory(title="Rev 1500 image", rev_first=1500, sources=[crab])
    page = client.get("/revolutions/1500/")
    html = page.content.decode()
    assert page.status_code == 200 and "Rev 1500 image" in html
    assert "/revolutions/1499/" in html and "/revolutions/1501/" in html
    assert client.get("/revolutions/0/").status_code == 404


def test_proprietary_products_and_their_files_stay_hidden(client, crab):
    secret = ProductFactory(
        title="Secret",
        access=Product.Access.PROPRIETARY,
        embargo_until=timezone.now() + timedelta(days=30),
        sources=[crab],
    )
    file = ProductFileFactory(product=secret)
    team = Group.objects.create(name="team")
    secret.granted_groups.add(team)
    for url in (secret.get_absolute_url(), f"/products/{secret.uuid}/files/{file.pk}/"):
        assert client.get(url).status_code == 404
    assert "Secret" not in client.get(crab.get_absolute_url()).content.decode()
    member = User.objects.create_user("member")
    member.groups.add(team)
    client.force_login(member)
    assert client.get(secret.get_absolute_url()).status_code == 200
    assert client.get(f"/products/{secret.uuid}/files/{file.pk}/").status_code == 200


def test_embargo_ends_without_any_job(client, crab):
    past = ProductFactory(
        title="Was secret",
        access=Product.Access.PROPRIETARY,
        embargo_until=timezone.now() - timedelta(seconds=1),
        sources=[crab],
    )
    assert client.get(past.get_absolute_url()).status_code == 200


def test_hidden_source_names_are_escaped(client):
    source = SourceFactory(name="X'1")
    ProductFactory(title="<script>alert(1)</script>", sources=[source])
    html = client.get(source.get_absolute_url()).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_api_token_opens_the_download_links_it_was_given(client, crab):
    from gallery.models import ApiToken

    secret = ProductFactory(title="Secret", access=Product.Access.PROPRIETARY, sources=[crab])
    file = ProductFileFactory(product=secret)
    team = Group.objects.create(name="team-token")
    secret.granted_groups.add(team)
    member = User.objects.create_user("token-member")
    member.groups.add(team)
    _, token = ApiToken.issue(member, "script")
    url = f"/products/{secret.uuid}/files/{file.pk}/"
    assert client.get(url).status_code == 404
    assert client.get(url, HTTP_AUTHORIZATION="Token wrong").status_code == 404
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
