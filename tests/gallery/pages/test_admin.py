"""Curation in the admin: lists with search and filters, publish / hide / feature, reprocess,
merging sources, aliases, and the history of every change."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from ingest.models import IngestJob
from products.models import Product
from sources.models import Source, SourceName
from tests.factories import (
    FluxPointFactory,
    ProductFactory,
    ProductFileFactory,
    SourceFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def curator(client):
    user = User.objects.create_superuser("boss", "boss@example.org", "pw")
    client.force_login(user)
    return user


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


@pytest.mark.parametrize(
    "model_path,query",
    [
        ("products.Product", {"q": "crab", "status__exact": "published", "latest": "yes"}),
        ("products.ProductFile", {"q": "mosaic", "role__exact": "data"}),
        ("products.ProductSource", {"q": "crab", "role__exact": "target"}),
        ("products.SpectralFit", {"q": "crab"}),
        ("products.FluxPoint", {"q": "crab"}),
        ("products.Observation", {"q": "crab"}),
        ("products.Revolution", {"q": "1516"}),
        ("products.Instrument", {"q": "jem", "family": "jemx"}),
        ("products.ProductKind", {"q": "image"}),
        ("products.Tag", {"q": "demo"}),
        ("sources.Source", {"q": "tau a", "merged": "no"}),
        ("sources.SourceName", {"q": "tau"}),
        ("sources.SourceClass", {"q": "binary"}),
    ],
)
def test_every_model_has_a_searchable_filtered_list(client, curator, model_path, query):
    from django.apps import apps

    crab = SourceFactory(name="Crab", aliases=["Tau A"])
    FluxPointFactory(source=crab, product=ProductFactory(title="Crab mosaic", sources=[crab]))
    model = apps.get_model(model_path)
    response = client.get(changelist(model), query)
    assert response.status_code == 200, response.content[:500]
    assert "search" in response.content.decode().lower()


def test_source_search_is_normalised_like_the_site(client, curator):
    SourceFactory(name="Crab", aliases=["Tau A"])
    SourceFactory(name="Vela X-1")
    page = client.get(changelist(Source), {"q": "TAU_A"}).content.decode()
    assert ">Crab<" in page and "Vela X-1" not in page


def test_publish_hide_feature_are_recorded_with_who_did_it(client, curator):
    product = ProductFactory(title="Draft", status=Product.Status.DRAFT)
    url = changelist(Product)
    for action, field, value in (
        ("publish", "status", "published"),
        ("feature", "is_highlight", True),
        ("hide", "status", "hidden"),
        ("unfeature", "is_highlight", False),
    ):
        response = client.post(url, {"action": action, "_selected_action": [product.pk]})
        assert response.status_code == 302
        product.refresh_from_db()
        assert getattr(product, field) == value
    history = list(product.history.order_by("history_date"))
    assert [h.status for h in history[-4:]] == ["published", "published", "hidden", "hidden"]
    assert all(h.history_user == curator for h in history[-4:])
    assert history[-1].history_change_reason == "admin action: no longer featured"
    page = client.get(reverse("admin:products_product_history", args=[product.pk]))
    assert page.status_code == 200 and "boss" in page.content.decode()


def test_readers_cannot_run_curation_actions(client):
    from gallery.roles import assign_role

    reader = User.objects.create_user("reader", password="pw")
    assign_role(reader, "reader")
    reader.is_staff = True
    reader.save()
    client.force_login(reader)
    product = ProductFactory(status=Product.Status.DRAFT)
    client.post(changelist(Product), {"action": "publish", "_selected_action": [product.pk]})
    product.refresh_from_db()
    assert product.status == Product.Status.DRAFT


def test_curators_can_curate(client):
    from gallery.roles import assign_role

    user = User.objects.create_user("curator", password="pw")
    assign_role(user, "curator")
    client.force_login(user)
    product = ProductFactory(status=Product.Status.DRAFT)
    client.post(changelist(Product), {"action": "publish", "_selected_action": [product.pk]})
    product.refresh_from_db()
    assert product.status == Product.Status.PUBLISHED


def test_grants_and_embargo_are_edited_on_the_product(client, curator):
    page = client.get(reverse("admin:products_product_change", args=[ProductFactory().pk]))
    html = page.content.decode()
    assert 'name="granted_groups"' in html and 'name="embargo_until_0"' in html
    assert "files-TOTAL_FORMS" in html and "fits-TOTAL_FORMS" in html


def test_reprocess_stages_copies_of_the_stored_files_and_enqueues_a_job(
    client, curator, settings, django_capture_on_commit_callbacks
):
    crab = SourceFactory(name="Crab")
    product = ProductFactory(title="Crab spectrum", kind__code="spectrum", sources=[crab],
                             access=Product.Access.PROPRIETARY)  # fmt: skip
    data = ProductFileFactory(product=product, original_name="spec.fits")
    ProductFileFactory(product=product, role="rmf", original_name="rmf.fits")
    ProductFileFactory(product=product, role="preview", original_name="preview.png")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            changelist(Product), {"action": "reprocess_products", "_selected_action": [product.pk]}
        )
    assert response.status_code == 302
    job = IngestJob.objects.get()
    assert len(callbacks) == 1  # the task is sent once the job is committed
    assert job.submitted_by == curator and job.options["source_name"] == "Crab"
    assert job.options["access"] == "proprietary"
    assert job.options["reprocess_of"] == str(product.uuid)
    staged = job.staged_files
    assert sorted(f["original_name"] for f in staged) == ["rmf.fits", "spec.fits"]
    first = Path(next(f["path"] for f in staged if f["original_name"] == "spec.fits"))
    assert first.read_bytes() == data.file.open("rb").read()
    assert str(first).startswith(str(settings.GALLERY_STAGING_DIR))


def test_merge_action_moves_everything_and_redirects(client, curator):
    keep = SourceFactory(name="IGR J17091-3624")
    dup = SourceFactory(name="NEW J170910.0-362427", aliases=["IGR 17091-3624b"])
    product = ProductFactory(sources=[dup])
    point = FluxPointFactory(source=dup, product=product)
    url = changelist(Source)
    selected = {"action": "merge", "_selected_action": [keep.pk, dup.pk]}
    form = client.post(url, selected)
    assert form.status_code == 200 and "Merge sources" in form.content.decode()
    done = client.post(url, {**selected, "apply": "1", "into": keep.pk})
    assert done.status_code == 302
    dup.refresh_from_db()
    point.refresh_from_db()
    assert dup.merged_into == keep and point.source == keep
    assert set(product.sources.all()) == {keep}
    assert keep.names.filter(name="IGR 17091-3624b").exists()
    assert client.get(dup.get_absolute_url())["Location"] == keep.get_absolute_url()


def test_merge_into_a_source_named_in_the_form(client, curator):
    keep = SourceFactory(name="Crab", aliases=["Tau A"])
    dup = SourceFactory(name="Crab copy")
    selected = {"action": "merge", "_selected_action": [dup.pk]}
    bad = client.post(changelist(Source), {**selected, "apply": "1", "into_name": "nothing"})
    assert "No active source is named" in bad.content.decode()
    client.post(changelist(Source), {**selected, "apply": "1", "into_name": "tau a"})
    dup.refresh_from_db()
    assert dup.merged_into == keep


def test_aliases_are_edited_inline_and_checked(client, curator):
    crab = SourceFactory(name="Crab")
    SourceFactory(name="Vela X-1")
    url = reverse("admin:sources_source_change", args=[crab.pk])
    page = client.get(url).content.decode()
    assert "alternative names" in page.lower()

    def post(alias):
        return client.post(
            url,
            {
                "name": "Crab",
                "ra_deg": crab.ra_deg,
                "dec_deg": crab.dec_deg,
                "catalogue_url": "",
                "description": "",
                "names-TOTAL_FORMS": "1",
                "names-INITIAL_FORMS": "0",
                "names-0-name": alias,
                "names-0-source": crab.pk,
            },
        )

    taken = post("vela x1")
    assert taken.status_code == 200 and "already names" in taken.content.decode()
    assert post("Tau A").status_code == 302
    assert SourceName.objects.get(normalized="taua").source == crab
    assert crab.history.count() >= 1
