"""Whole revolutions through the local backend, in this process: products ingested and shown,
provisional sources, GRBs, reprocessing, corrupt ScWs, restarts, the lock and the commands."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import pytest
from astropy.io import fits
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from ingest.models import RevolutionRun
from ingest.pipeline import runs, service
from ingest.pipeline.generator import make_archive
from products.models import Observation, Product, Revolution
from sources.models import Source
from sources.sky import angular_distance_deg

from .conftest import GC_REVOLUTION, SMALL, parameters, process


def _latest(revolution: int):
    return Product.objects.filter(rev_first=revolution, superseded_by__isnull=True)


def test_a_revolution_becomes_published_products(
    reference_catalog, pipeline_settings, synthetic_archive, client
):
    run = process(GC_REVOLUTION, parameters(synthetic_archive))
    assert run.status == RevolutionRun.Status.DONE, run.log
    assert run.errors == []
    assert run.data_level == "CONS"
    assert {"plan", "publish"} <= set(run.steps) and run.timings["publish"] >= 0
    assert run.versions["pipeline"] and run.versions["astropy"]
    products = _latest(GC_REVOLUTION).select_related("kind", "instrument")
    kinds = {}
    for product in products:
        kinds.setdefault((product.kind.code, product.instrument.code), []).append(product)
        assert product.status == Product.Status.PUBLISHED
        assert product.external_id.startswith("pipeline:")
        assert product.provenance["pipeline_version"] and product.provenance["run"] == run.pk
        assert product.data_level == "CONS"
    for code in ("isgri", "jemx1"):
        assert len(kinds[("image", code)]) == 3
        assert len(kinds[("catalog", code)]) == 1
        assert len(kinds[("spectrum", code)]) == len(kinds[("lightcurve", code)]) >= 6
    assert len(kinds[("lightcurve", "spi_acs")]) == 1
    assert set(run.products.all()) == set(products)

    # Observation from the index, linked to the products; the revolution's data level.
    observation = Observation.objects.get(obsid="20010100001")
    assert observation.revolution_id == GC_REVOLUTION and len(observation.scw_ids) == 5
    assert all(p.observation_id == observation.pk for p in kinds[("image", "isgri")])
    assert Revolution.objects.get(number=GC_REVOLUTION).data_level == "CONS"

    # Spectra come with fits; light curves with one flux point per ScW.
    spectrum = next(p for p in kinds[("spectrum", "isgri")] if p.sources.filter(name="GX 5-1"))
    assert spectrum.fits.filter(is_preferred=True).exists()
    lightcurve = next(p for p in kinds[("lightcurve", "isgri")] if p.sources.filter(name="GX 5-1"))
    assert 3 <= lightcurve.flux_points.count() <= 5

    # The source the catalogue lacks got a provisional name and the flag.
    truth = json.loads((synthetic_archive / "truth.json").read_text())
    transient = next(
        s for s in truth["revolutions"][str(GC_REVOLUTION)]["sources"] if not s["in_catalogue"]
    )
    new = Source.objects.get(is_provisional=True)
    assert new.name.startswith("NEW J")
    assert (
        angular_distance_deg(new.ra_deg, new.dec_deg, transient["ra_deg"], transient["dec_deg"])
        * 60
        < 2.0
    )
    assert new.products.filter(kind__code="spectrum").count() == 2  # ISGRI and JEM-X

    # The GRB of the revolution: an SPI-ACS light curve of a GRB-class source.
    trigger = truth["revolutions"][str(GC_REVOLUTION)]["grbs"][0]
    grb = Source.objects.get(name=trigger["name"])
    assert grb.object_class.code == "GRB"
    acs = grb.products.get()
    assert acs.instrument.code == "spi_acs" and acs.flux_points.count() > 100
    assert max(p.significance for p in acs.flux_points.all()) > 20

    # The revolution page lists the products and the run; the source page its products.
    page = client.get(f"/revolutions/{GC_REVOLUTION}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Processing log" in html and "publish" in html
    assert spectrum.get_absolute_url() in html or "GX 5-1" in html
    source_page = client.get(Source.objects.get(name="GX 5-1").get_absolute_url())
    assert source_page.status_code == 200
    assert lightcurve.get_absolute_url() in source_page.content.decode()


def test_reprocessing_makes_new_versions_only_when_the_data_change(
    reference_catalog,
    pipeline_settings,
    small_archive,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    root = tmp_path / "archive"
    shutil.copytree(small_archive, root)
    params = parameters(root, instruments=["isgri"])
    first = process(SMALL, params)
    assert first.status == "done" and first.data_level == "NRT"
    nrt = set(_latest(SMALL))
    assert nrt and all(p.data_level == "NRT" and p.version == 1 for p in nrt)
    assert service.new_revolutions(params) == []

    # The same data again: the same files, so the same products (nothing new, nothing lost).
    again = process(SMALL, params)
    assert again.status == "done"
    assert set(_latest(SMALL)) == nrt and set(again.products.all()) == nrt

    # Consolidated data arrive: new versions supersede the NRT ones, which are kept.
    make_archive(
        root, [SMALL], scws_per_revolution=3, seed=5, instruments=["isgri"], bands="image",
        data_level="CONS", grbs=False,
    )  # fmt: skip
    assert service.new_revolutions(params) == [SMALL]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        from ingest.pipeline import tasks

        started = tasks.start_runs(service.new_revolutions(params), params)
    assert [r.revolution_id for r in started] == [SMALL] and len(callbacks) == 1
    service.run_inline(started[0].pk)
    cons = set(_latest(SMALL))
    assert len(cons) == len(nrt) and not cons & nrt
    assert all(p.data_level == "CONS" and p.version == 2 for p in cons)
    for old in nrt:
        old.refresh_from_db()
        assert old.superseded_by in cons  # kept, and pointing to its successor
    assert Revolution.objects.get(number=SMALL).data_level == "CONS"


def test_a_corrupt_scw_is_skipped_and_logged(
    reference_catalog, pipeline_settings, small_archive, tmp_path
):
    root = tmp_path / "archive"
    shutil.copytree(small_archive, root)
    folder = sorted((root / "scw" / f"{SMALL:04d}").glob("*.000"))[1]
    path = folder / "isgri_sky_ima.fits"
    path.write_bytes(path.read_bytes()[:100_000])  # truncated mid-data
    run = process(SMALL, parameters(root, instruments=["isgri"]))
    assert run.status == RevolutionRun.Status.DONE
    assert [e["scw"] for e in run.errors] == [folder.name]
    assert "truncated" in run.errors[0]["message"]
    image = _latest(SMALL).filter(kind__code="image").first()
    assert image.provenance["skipped_scws"] == [folder.name]
    with image.files.get(role="data").file.open("rb") as handle, fits.open(handle) as hdul:
        assert hdul[0].header["NSCW"] == 2
    assert folder.name in render_to_string(
        "includes/revolution_runs.html", {"revolution": run.revolution}
    )


def test_a_run_killed_mid_way_resumes_without_duplicates(
    reference_catalog, pipeline_settings, small_archive, monkeypatch
):
    pipeline_settings.GALLERY_PIPELINE_KEEP_WORK = True  # to count what the steps listed
    params = parameters(small_archive, instruments=["isgri"])
    run, _ = runs.create_run(SMALL, params)
    service.begin(run.pk)
    key = service.load_plan(RevolutionRun.objects.get(pk=run.pk)).units[0].key
    for step in ("mosaic", "detect", "extract"):
        assert service.unit_step(run.pk, key, step) == "done"

    # The worker dies in the middle of the ingest step (after two products).
    from ingest.pipeline import service as pipeline_service

    real_ingest, calls = pipeline_service.ingest_files, []

    def dying_ingest(*args, **kwargs):
        if len(calls) == 2:
            raise SystemExit("worker killed")
        calls.append(1)
        return real_ingest(*args, **kwargs)

    monkeypatch.setattr(pipeline_service, "ingest_files", dying_ingest)
    with pytest.raises(SystemExit):
        service.unit_step(run.pk, key, "ingest")
    monkeypatch.setattr(pipeline_service, "ingest_files", real_ingest)
    assert Product.objects.count() == 2

    # Another worker finds the run silent, takes it over and finishes it.
    RevolutionRun.objects.filter(pk=run.pk).update(
        owner="dead-host:1", heartbeat=timezone.now() - timedelta(hours=1)
    )
    assert service.run_inline(run.pk) == RevolutionRun.Status.DONE
    run.refresh_from_db()
    assert "taken over from dead-host:1" in run.log
    assert run.steps[key]["done"] == ["mosaic", "detect", "extract", "ingest"]
    listed = [
        entry
        for path in pipeline_settings.GALLERY_PIPELINE_WORK_DIR.glob("*/*/manifest-*.json")
        for entry in json.loads(path.read_text())
    ]
    products = list(Product.objects.all())
    assert len(products) == len(listed) >= 5  # 3 mosaics, a source list, light curves
    series = [p.series_key for p in products]
    assert len(series) == len(set(series)), "a product was ingested twice"
    assert all(p.status == Product.Status.PUBLISHED for p in products)
    assert set(run.products.all()) == set(products)


def test_one_active_run_per_revolution_and_stale_takeover(
    reference_catalog, pipeline_settings, small_archive
):
    params = parameters(small_archive, instruments=["isgri"])
    run, created = runs.create_run(SMALL, params)
    again, created_again = runs.create_run(SMALL, params)
    assert created and not created_again and again.pk == run.pk
    with pytest.raises(IntegrityError), transaction.atomic():
        RevolutionRun.objects.create(revolution_id=SMALL, backend="local")

    claimed, why = runs.claim(run.pk)
    assert claimed is not None and why == ""
    RevolutionRun.objects.filter(pk=run.pk).update(owner="other-host:7", heartbeat=timezone.now())
    claimed, why = runs.claim(run.pk)
    assert claimed is None and why == "running on other-host:7"
    RevolutionRun.objects.filter(pk=run.pk).update(heartbeat=timezone.now() - timedelta(hours=1))
    claimed, why = runs.claim(run.pk)
    assert claimed is not None and claimed.owner == runs.worker_name()
    assert "taken over from other-host:7" in claimed.log

    service.fail(run.pk, "stopped by the test")
    assert runs.claim(run.pk) == (None, "run already failed")
    fresh, created = runs.create_run(SMALL, params)
    assert created and fresh.pk != run.pk


def test_stalled_runs_are_found_only_when_nothing_waits(pipeline_settings, small_archive, db):
    params = parameters(small_archive, instruments=["isgri"])
    run, _ = runs.create_run(SMALL, params)
    assert service.stalled_runs(queue_length=0) == []  # fresh heartbeat
    RevolutionRun.objects.filter(pk=run.pk).update(heartbeat=timezone.now() - timedelta(minutes=2))
    assert service.stalled_runs(queue_length=0) == [run]
    assert service.stalled_runs(queue_length=4) == []  # its tasks may be waiting
    assert service.stalled_runs(queue_length=None) == []  # unknown queue: wait longer
    RevolutionRun.objects.filter(pk=run.pk).update(heartbeat=timezone.now() - timedelta(hours=1))
    assert service.stalled_runs(queue_length=None) == [run]
    assert service.revive(run.pk)
    assert service.stalled_runs(queue_length=0) == []
    revived = RevolutionRun.objects.get(pk=run.pk)
    assert "enqueued again" in revived.log and revived.owner == ""
    assert runs.claim(run.pk)[0] is not None  # released: the next worker takes it at once


def test_process_revolutions_command_in_process(
    reference_catalog, pipeline_settings, small_archive, capsys
):
    call_command(
        "process_revolutions", f"{SMALL}-{SMALL + 1}", "--archive", str(small_archive),
        "--instruments", "isgri", verbosity=0,
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "1 revolution(s) not in the archive" in out
    assert f"revolution {SMALL}: done" in out and "1 done, 0 failed." in out
    call_command(
        "process_revolutions", str(SMALL), "--archive", str(small_archive),
        "--instruments", "isgri", verbosity=0,
    )  # fmt: skip
    assert "already processed: skipped" in capsys.readouterr().out
    assert RevolutionRun.objects.filter(revolution_id=SMALL).count() == 1


def test_runs_in_the_admin_and_the_include(admin_client, pipeline_settings, db):
    Revolution.for_number(SMALL)
    empty = render_to_string("includes/revolution_runs.html", {"revolution": Revolution(SMALL)})
    assert "No pipeline run" in empty
    run = RevolutionRun.objects.create(
        revolution_id=SMALL,
        backend="local",
        status=RevolutionRun.Status.FAILED,
        steps={"plan": {"state": "done", "detail": "1 observation(s)", "plan": {"x": 1}}},
        timings={"plan": 1.24},
        versions={"pipeline": "1.0"},
        errors=[{"step": "obs1/isgri", "scw": "130000020010.000", "message": "ScW skipped: bad"}],
        log="line one\nline <two>",
    )
    html = render_to_string("includes/revolution_runs.html", {"revolution": run.revolution})
    assert "failed" in html and "1 observation(s)" in html and "1.2" in html
    assert "130000020010.000" in html and "pipeline 1.0" in html
    assert "line &lt;two&gt;" in html  # escaped
    assert admin_client.get("/admin/ingest/revolutionrun/").status_code == 200
    page = admin_client.get(f"/admin/ingest/revolutionrun/{run.pk}/change/")
    assert page.status_code == 200 and "130000020010.000" in page.content.decode()
    assert admin_client.get("/admin/ingest/ingestjob/").status_code == 200


def test_the_real_scws_of_revolution_665(reference_catalog, pipeline_settings, real_archive):
    """The two real ISGRI ScW images: one 25-80 keV mosaic whose only source is the Crab
    (within 2'), its source list, and the Crab's light curve with one bin per ScW."""
    run = process(665, parameters(real_archive, instruments=["isgri", "jemx1"]))
    assert run.status == RevolutionRun.Status.DONE, run.log
    products = {p.kind.code: p for p in _latest(665).select_related("kind")}
    assert set(products) == {"image", "catalog", "lightcurve"}  # one band: no spectrum
    image = products["image"]
    assert (image.e_min_kev, image.e_max_kev) == (25.0, 80.0)
    crab = Source.objects.get(name="Crab")
    (row,) = products["catalog"].metadata["detected_sources"]
    assert row["name"] == "Crab"
    assert angular_distance_deg(row["ra_deg"], row["dec_deg"], crab.ra_deg, crab.dec_deg) * 60 < 2
    assert image.source_links.get(source=crab).role == "detected"
    points = list(products["lightcurve"].flux_points.order_by("t_start_ijd"))
    assert [p.scw_id for p in points] in (["", ""], ["066500280010.001", "066500330010.001"])
    assert len(points) == 2 and all(p.significance > 50 for p in points)
    assert Observation.objects.get(revolution_id=665).scw_ids == [
        "066500280010.001",
        "066500330010.001",
    ]
