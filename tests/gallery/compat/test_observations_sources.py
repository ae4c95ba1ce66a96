"""Observations, astrophysical entities (sources) and deletions posted by the client."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from ingest.posting import external_series_key
from products.models import Observation, Product
from sources.models import Source
from tests.factories import ProductFactory, SourceFactory

from .conftest import BASE, body, error_of, make_user, png_upload, stored_files, token_for

pytestmark = pytest.mark.django_db
OBS = f"{BASE}/post_observation_to_gallery"
ENTITY = f"{BASE}/post_astro_entity_to_gallery"
DELETE = f"{BASE}/delete_product_to_gallery"
YAML_1 = b"- scw_id: 248500010010\n  ra: 83.63\n- scw_id: 248500020010\n"
YAML_2 = b"pointings: 2\nrevolution: 2485\n"


def yaml(content: bytes, name: str = "obs.yaml") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/yaml")


def link(node: dict, field: str) -> list:
    return next((v for k, v in node["_links"].items() if k.split("/")[-1] == field), [])


# --- observations ---------------------------------------------------------------------------


def test_post_an_observation_with_attachments(client, token):
    node = body(
        client.post(
            OBS,
            {
                "token": token,
                "title": "Crab rev 2485",
                "T1": "2022-03-29T15:51:01",
                "T2": "2022-03-30T02:00:00",
                "obsid": "19600010008,19600010009",
                "yaml_file_0": yaml(YAML_1),
                "yaml_file_1": yaml(YAML_2, "more.yaml"),
            },
        )
    )
    assert node["title"] == [{"value": "Crab rev 2485"}]
    assert node["field_rev1"] == [{"value": 2485}] and node["field_span_rev"] == [{"value": 0}]
    assert [o["value"] for o in node["field_obsid"]] == ["19600010008", "19600010009"]
    assert node["field_timerange"] == [
        {"value": "2022-03-29T15:51:01", "end_value": "2022-03-30T02:00:00"}
    ]
    assert len(link(node, "field_attachments")) == 2
    assert node["_links"]["self"]["href"] == "http://testserver/revolutions/2485/"
    observation = Observation.objects.get()
    assert (observation.obsid, observation.rev_first, observation.revolution_id) == (
        "19600010008",
        2485,
        2485,
    )

    got = body(
        client.get(
            f"{BASE}/get_observation_attachments", {"title": "Crab rev 2485", "token": token}
        )
    )
    assert YAML_1.decode().strip() in got["file_content"]
    assert YAML_2.decode().strip() in got["file_content"]
    assert len(got["file_path"].split(", ")) == 2
    download = client.get(got["attachments"][0]["url"])
    assert download.status_code == 200 and b"".join(download.streaming_content) == YAML_1
    assert download["Content-Disposition"].startswith('attachment; filename="obs.yaml"')


def test_observation_default_title(client, token):
    node = body(client.post(OBS, {"token": token, "T1": "2022-03-29T15:51:01",
                                  "T2": "2022-03-30T02:00:00"}))  # fmt: skip
    assert node["title"][0]["value"] == "observation_2022-03-29T15:51:01_2022-03-30T02:00:00"


def test_observation_create_and_update(client, token):
    data = {"token": token, "title": "obs A", "T1": "2022-03-29T15:51:01",
            "T2": "2022-03-30T02:00:00", "obsid": "1960001"}  # fmt: skip
    body(client.post(OBS, data))
    assert "update" in error_of(client.post(OBS, data), 409)

    update = {"token": token, "title": "obs A", "update_observation": "True",
              "create_new": "False", "obsid": ["1960002", "1960003"],
              "yaml_file": yaml(YAML_1)}  # fmt: skip
    node = body(client.post(OBS, update))
    assert [o["value"] for o in node["field_obsid"]] == ["1960002", "1960003"]
    assert node["field_rev1"] == [{"value": 2485}]  # times kept
    again = body(client.post(OBS, {**update, "yaml_file": yaml(YAML_1)}))
    assert len(link(again, "field_attachments")) == 1  # the same file is attached once

    missing = {"token": token, "title": "obs B", "update_observation": "True"}
    assert "create_new" in error_of(client.post(OBS, missing), 404)
    created = body(client.post(OBS, {**missing, "create_new": "True"}))
    assert created["title"] == [{"value": "obs B"}] and Observation.objects.count() == 2


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"T1": "2022-03-29 15:51:01"}, 400),
        ({"T2": None}, 400),
        ({"T1": "2022-03-31T00:00:00"}, 400),
        ({"obsid": "x" * 21}, 400),
        ({"yaml_file": SimpleUploadedFile("a.yaml", b"\x00\xff\xfe binary")}, 400),
        ({"img": png_upload()}, 400),
    ],
)
def test_bad_observations_are_refused(client, token, changes, status):
    data = {"token": token, "title": "bad", "T1": "2022-03-29T15:51:01",
            "T2": "2022-03-30T02:00:00", **changes}  # fmt: skip
    error_of(client.post(OBS, {k: v for k, v in data.items() if v is not None}), status)
    assert not Observation.objects.exists() and stored_files(settings.MEDIA_ROOT) == []


def test_attachments_of_an_unknown_observation(client, token):
    error_of(client.get(f"{BASE}/get_observation_attachments", {"title": "x", "token": token}), 404)


# --- astrophysical entities -----------------------------------------------------------------


def test_create_a_source(client, token):
    node = body(
        client.post(
            ENTITY,
            {
                "token": token,
                "src_name": "GX 1+4",
                "source_ra": "263.009",
                "source_dec": "-24.7456",
                "object_type": "LXB",
                "object_ids": ["V2116 Oph", "4U 1728-24"],
                "src_portal_link": "https://simbad.cds.unistra.fr/simbad/sim-id?Ident=GX+1%2B4",
            },
        )
    )
    source = Source.objects.get(name="GX 1+4")
    assert node["title"] == [{"value": "GX 1+4"}]
    assert node["_links"]["self"]["href"] == f"http://testserver{source.get_absolute_url()}"
    assert node["field_object_type"] == [{"value": "LMXB"}]
    assert source.dec_deg == pytest.approx(-24.7456) and source.object_class.code == "LMXB"
    assert set(source.aliases) == {"V2116 Oph", "4U 1728-24"}
    assert source.portal_url.startswith("https://simbad")
    assert "update" in error_of(client.post(ENTITY, {"token": token, "src_name": "gx 1+4"}), 409)


def test_update_a_source_needs_a_curator(client, token, curator_token):
    SourceFactory(name="GX 1+4", ra_deg=263.0, dec_deg=-24.7, aliases=["V2116 Oph"])
    update = {"src_name": "V2116 Oph", "update_astro_entity": "True", "source_dec": "-24.9",
              "source_ra": "263.01", "object_type": "HighMassXBin"}  # fmt: skip
    assert "curator" in error_of(client.post(ENTITY, {**update, "token": token}), 403)
    node = body(client.post(ENTITY, {**update, "token": curator_token}))
    source = Source.objects.get(name="GX 1+4")
    assert node["field_source_dec"] == [{"value": -24.9}] and source.object_class.code == "HMXB"
    auto = {"src_name": "GX 1+4", "update_astro_entity": "True", "auto_update": "True"}
    assert body(client.post(ENTITY, {**auto, "token": curator_token}))["field_source_ra"] == [
        {"value": 263.01}
    ]
    missing = {"src_name": "Nowhere X-1", "update_astro_entity": "True", "token": curator_token}
    error_of(client.post(ENTITY, missing), 404)
    # An update that changes nothing needs no curator.
    same = {"src_name": "GX 1+4", "update_astro_entity": "True", "source_dec": "-24.9"}
    assert body(client.post(ENTITY, {**same, "token": token}))["title"] == [{"value": "GX 1+4"}]


def test_an_alias_of_another_source_is_a_conflict(client, curator_token):
    SourceFactory(name="Crab", aliases=["M 1"])
    SourceFactory(name="GX 1+4")
    data = {"src_name": "GX 1+4", "update_astro_entity": "True", "object_ids": "M 1",
            "token": curator_token}  # fmt: skip
    assert "Crab" in error_of(client.post(ENTITY, data), 409)
    assert Source.objects.get(name="GX 1+4").aliases == []


@pytest.mark.parametrize(
    "changes",
    [
        {"src_name": "<b>bold</b>"},
        {"source_ra": "263.0"},
        {"source_ra": "263.0", "source_dec": "-91"},
        {"src_portal_link": "javascript:alert(1)"},
        {"src_name": None},
    ],
)
def test_bad_sources_are_refused(client, token, changes):
    data = {"token": token, "src_name": "GX 1+4", **changes}
    error_of(client.post(ENTITY, {k: v for k, v in data.items() if v is not None}), 400)
    assert not Source.objects.exists()


# --- deleting -------------------------------------------------------------------------------


def test_delete_hides_every_version(client, token, contributor):
    v1 = ProductFactory(external_id="del-1", series_key="s", submitted_by=contributor)
    v2 = ProductFactory(external_id="del-1", series_key="s", version=2, submitted_by=contributor)
    v1.superseded_by = v2
    v1.save()
    Product.objects.filter(pk__in=[v1.pk, v2.pk]).update(series_key=external_series_key("del-1"))
    listed = f"{BASE}/get_data_product_list_with_conditions"
    assert len(body(client.get(listed, {"product_id": "del-1", "token": token}))) == 1
    assert body(client.post(DELETE, {"token": token, "product_id": "del-1"})) == {}
    assert set(Product.objects.values_list("status", flat=True)) == {"hidden"}
    assert body(client.get(listed, {"product_id": "del-1", "token": token})) == []
    error_of(client.post(DELETE, {"token": token, "product_id": "del-1"}), 404)
    error_of(client.post(DELETE, {"token": token}), 400)


def test_delete_someone_elses_product(client, token):
    ProductFactory(external_id="theirs", series_key=external_series_key("theirs"))
    assert "curator" in error_of(client.post(DELETE, {"token": token, "product_id": "theirs"}), 403)
    curator = token_for(make_user("curator", "curator"))
    assert body(client.post(DELETE, {"token": curator, "product_id": "theirs"})) == {}
