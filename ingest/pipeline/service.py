"""The pipeline's steps and their orchestration, callable with or without Celery.

A run goes through: ``plan`` (observations and units from the archive; Observation rows
created or updated), then for every *member* — each unit (field x instrument) and, when GRB
triggers fall in the revolution, ``grb`` — its steps (``mosaic``, ``detect``, ``extract``,
``ingest`` for a unit), then ``publish``. Each step records its state, timing and a log line
in the run; a step already done is skipped, so any step may be run again after a crash, by
any worker. Members run in parallel on Celery (``tasks``) or one after the other
(``run_inline``). The last member to finish triggers ``publish``, which makes the run's
products visible at once and closes the run.

Products are ingested through ``ingest.service.ingest_files`` as drafts, with an
``external_id`` hashing the parameters that made them, so that processing a revolution again
makes new versions that supersede the old ones (nothing is deleted); files identical to a
stored product are recognised and not stored twice.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import shutil
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from products import timeline
from products.models import Instrument, Observation, Product, Revolution
from sources.models import Source, SourceClass
from sources.names import provisional_name

from .. import linking
from ..lightcurve_tasks import enqueue_refresh
from ..models import RevolutionRun
from ..readers.base import InputFile
from ..service import IngestOptions, ingest_files
from . import PIPELINE_VERSION, archive, runs
from .archive import RevolutionPlan, Unit
from .backends import StepContext, get_backend
from .config import RunParameters, band_label, external_id
from .osafits import FileMeta

logger = logging.getLogger("ingest.pipeline")

UNIT_STEPS = ("mosaic", "detect", "extract", "ingest")
GRB_MEMBER = "grb"
#: Errors that a later attempt may not meet: the task is retried instead of failing the unit.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


# ------------------------------------------------------------------------------- helpers


def work_dir(run: RevolutionRun) -> Path:
    return Path(settings.GALLERY_PIPELINE_WORK_DIR) / f"rev{run.revolution_id:04d}-run{run.pk}"


def unit_dir(run: RevolutionRun, key: str) -> Path:
    return work_dir(run) / key.replace("/", "_")


def versions(backend: str) -> dict:
    import astropy
    import numpy
    import scipy

    found = {
        "pipeline": PIPELINE_VERSION,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "astropy": astropy.__version__,
    }
    for package in ("integral-gallery", "oda-api") if backend == "mmoda" else ("integral-gallery",):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


def load_plan(run: RevolutionRun) -> RevolutionPlan | None:
    data = (run.steps.get("plan") or {}).get("plan")
    return RevolutionPlan.from_json(data) if data else None


def members(plan: RevolutionPlan) -> list[str]:
    return [u.key for u in plan.units] + ([GRB_MEMBER] if plan.grbs else [])


def unfinished_members(run: RevolutionRun) -> list[str]:
    plan = load_plan(run)
    if plan is None:
        return []
    return [
        key
        for key in members(plan)
        if (run.steps.get(key) or {}).get("state") not in ("done", "failed")
    ]


def _meta(run: RevolutionRun, plan: RevolutionPlan, unit: Unit | None) -> FileMeta:
    params = RunParameters.from_json(run.parameters)
    return FileMeta(
        revolution=plan.revolution,
        osa_label=params.osa_label,
        backend=params.backend,
        data_level=plan.data_level,
        obsid=unit.obsid if unit else "",
    )


def _context(run: RevolutionRun, plan: RevolutionPlan, unit: Unit | None) -> StepContext:
    folder = unit_dir(run, unit.key) if unit else work_dir(run) / GRB_MEMBER
    folder.mkdir(parents=True, exist_ok=True)
    step = unit.key if unit else GRB_MEMBER

    def log(message: str) -> None:
        runs.append_log(run.pk, f"{step}: {message}")

    def skip_scw(scw: str, reason: str) -> None:
        runs.add_error(run.pk, step, f"ScW skipped: {reason}", scw=scw)

    return StepContext(
        run_id=run.pk,
        params=RunParameters.from_json(run.parameters),
        plan=plan,
        unit=unit,
        workdir=folder,
        meta=_meta(run, plan, unit),
        log=log,
        skip_scw=skip_scw,
        name_sources=name_sources,
    )


# ------------------------------------------------------------------------------- naming


def name_sources(rows: list[dict], instrument_code: str) -> list[dict]:
    """Name detections: the catalogue source within the instrument's match radius, else a
    new provisional source (``NEW Jhhmmss.s+ddmmss``, flagged ``is_provisional``).

    Adds to each row ``name``, ``is_new`` and the target position spectra and light curves
    are extracted at (the catalogue's position for a known source, the fitted one else).
    """
    instrument = Instrument.objects.get(code=instrument_code)
    radius = linking.match_radius_deg(instrument)
    named = []
    for row in rows:
        source = linking.find_by_position(row["ra_deg"], row["dec_deg"], radius)
        if source is None:
            source = _provisional_source(row)
        named.append(
            {
                **row,
                "name": source.name,
                "is_new": bool(source.is_provisional),
                "target_ra_deg": source.ra_deg if source.ra_deg is not None else row["ra_deg"],
                "target_dec_deg": source.dec_deg if source.dec_deg is not None else row["dec_deg"],
            }
        )
    return named


def _provisional_source(row: dict) -> Source:
    name = provisional_name(row["ra_deg"], row["dec_deg"])
    existing = Source.objects.named(name).first()
    if existing is not None:
        return existing
    source = Source(
        name=name,
        is_provisional=True,
        error_radius_arcmin=round(row.get("err_rad_deg", 0.05) * 60.0, 2),
        description="Found by the revolution pipeline without a catalogue counterpart.",
    )
    source.set_position(row["ra_deg"], row["dec_deg"])
    try:
        with transaction.atomic():
            source.save()
    except (IntegrityError, ValidationError):  # another unit named it at the same moment
        found = Source.objects.named(name).first()
        if found is None:
            raise
        return found
    return source


def grb_source(trigger: archive.GrbTrigger) -> Source:
    """The GRB's source, created (class GRB) when the catalogue does not know it."""
    source = linking.find_by_name(trigger.name)
    if source is not None:
        return source
    source = Source(
        name=trigger.name,
        object_class=SourceClass.objects.filter(code="GRB").first(),
        description=f"Gamma-ray burst, trigger {trigger.time_utc} UTC.",
    )
    source.set_position(trigger.ra_deg, trigger.dec_deg)
    try:
        with transaction.atomic():
            source.save()
    except (IntegrityError, ValidationError):  # created by another worker meanwhile
        found = linking.find_by_name(trigger.name)
        if found is None:
            raise
        return found
    return source


# ------------------------------------------------------------------------------- steps


def plan_step(run_id: int) -> RevolutionPlan:
    """Plan the run (once): units, observations, GRB triggers; Observation rows updated."""
    run = RevolutionRun.objects.get(pk=run_id)
    plan = load_plan(run)
    if plan is not None:
        return plan
    started = time.monotonic()
    params = RunParameters.from_json(run.parameters)
    triggers_path = Path(params.grb_triggers or Path(params.archive) / archive.GRB_TRIGGERS)
    triggers = archive.load_grb_triggers(triggers_path)
    plan = archive.plan_revolution(params.archive, run.revolution_id, params.instruments, triggers)
    _store_observations(plan)
    for skipped in plan.skipped:
        runs.add_error(
            run_id, "plan", f"ScW skipped: {skipped['reason']}", scw=skipped["scw"],
            instrument=skipped["instrument"],
        )  # fmt: skip
    n_scw = len({s.scw_id for u in plan.units for s in u.scws})

    def change(run: RevolutionRun) -> None:
        run.data_level = plan.data_level
        run.versions = versions(params.backend)
        steps = dict(run.steps)
        steps["plan"] = {
            "state": "done",
            "detail": f"{len(plan.observations)} observation(s), {len(plan.units)} unit(s), "
            f"{n_scw} ScWs, {len(plan.grbs)} GRB trigger(s), {plan.data_level}",
            "plan": plan.to_json(),
        }
        for key in members(plan):
            steps.setdefault(key, {"state": "pending", "done": []})
        run.steps = steps
        run.timings = {**run.timings, "plan": round(time.monotonic() - started, 3)}
        runs.add_line(run, f"plan: {steps['plan']['detail']}")

    runs.update(run_id, change)
    return plan


def _store_observations(plan: RevolutionPlan) -> None:
    revolution = Revolution.for_number(plan.revolution)
    for obs in plan.observations:

        def when(ijd):
            return None if ijd is None else timeline.to_datetime(timeline.ijd_to_time(ijd))

        Observation.objects.update_or_create(
            title=obs.title,
            defaults={
                "obsid": obs.obsid,
                "expid": obs.expid,
                "pi_name": obs.pi_name,
                "revolution": revolution,
                "rev_first": plan.revolution,
                "rev_last": plan.revolution,
                "time_start": when(obs.t_start_ijd),
                "time_end": when(obs.t_stop_ijd),
                "scw_ids": obs.scw_ids,
                "ra_deg": obs.ra_deg,
                "dec_deg": obs.dec_deg,
            },
        )


def unit_step(run_id: int, key: str, step: str) -> str:
    """Run one step of one unit unless done; returns its state ('done', 'failed', 'skipped')."""
    run = RevolutionRun.objects.get(pk=run_id)
    if run.status not in RevolutionRun.ACTIVE:
        return "skipped"
    state = run.steps.get(key) or {}
    if state.get("state") == "failed" or step in state.get("done", []):
        return "skipped"
    plan = load_plan(run)
    unit = plan.unit(key)
    runs.set_step(run_id, key, state="running", current=step)
    started = time.monotonic()
    try:
        with runs.heartbeat(run_id):
            ctx = _context(run, plan, unit)
            if step == "ingest":
                detail = ingest_unit(run, ctx)
            else:
                detail = getattr(get_backend(ctx.params), step)(ctx)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:  # a bug or bad input must not stop the other units
        logger.exception("pipeline run %s %s %s failed", run_id, key, step)
        runs.add_error(run_id, key, f"{step} failed: {type(exc).__name__}: {exc}")
        runs.set_step(
            run_id, key, state="failed", current="", seconds=time.monotonic() - started,
            timing_key=f"{key}:{step}",
        )  # fmt: skip
        return "failed"

    def change(run: RevolutionRun) -> None:
        current = run.steps.get(key) or {}
        done = [*current.get("done", []), step] if step not in current.get("done", []) else None
        if done is not None:
            runs.add_line(run, f"{key} {step}: {detail}")
        steps = dict(run.steps)
        steps[key] = {
            **current,
            "done": done or current.get("done", []),
            "detail": detail,
            "current": "",
            "state": "running",
        }
        run.steps = steps
        seconds = round(time.monotonic() - started, 3)
        timings = dict(run.timings)
        timings[f"{key}:{step}"] = seconds
        timings[key] = round(sum(v for k, v in timings.items() if k.startswith(f"{key}:")), 3)
        run.timings = timings
        run.heartbeat = timezone.now()

    runs.update(run_id, change)
    return "done"


def ingest_unit(run: RevolutionRun, ctx: StepContext) -> str:
    """Ingest every product the unit's steps listed (idempotent: the same files give the same
    product), as drafts that ``publish`` makes visible."""
    unit = ctx.unit
    params = ctx.params
    plan = ctx.plan
    entries = [e for step in ("mosaic", "detect", "extract") for e in ctx.read_manifest(step)]
    skipped = [
        e["scw"]
        for e in run.errors
        if e.get("scw")
        and (
            e.get("step") == unit.key
            or (e.get("step") == "plan" and e.get("instrument") == unit.instrument)
        )
    ]
    field = unit.key.split("/")[0]
    created = existing = 0
    for entry in entries:
        band = entry.get("band")
        identity = {
            "product": entry["product"],
            "instrument": unit.instrument,
            "band": band_label(band) if band else "",
            "osa": params.osa_label,
            "threshold": params.threshold,
            "revolution": plan.revolution,
            "obsid": unit.obsid or unit.observation,
            "field": field,
            "source": entry.get("source", ""),
        }
        options = IngestOptions(
            source_name=entry.get("source") or None,
            observation=unit.observation,
            external_id=external_id(**identity),
            data_level=plan.data_level,
            status=Product.Status.DRAFT,
            detection_threshold=params.threshold,
            produced_by=f"ingest.pipeline {PIPELINE_VERSION} ({params.backend} backend)",
            provenance={
                "pipeline": "ingest.pipeline",
                "pipeline_version": PIPELINE_VERSION,
                "backend": params.backend,
                "run": run.pk,
                "parameters": identity,
                "observation": unit.observation,
                "scws": ctx.meta.scw_ids or [s.scw_id for s in unit.scws],
                "skipped_scws": skipped,
                "data_level": plan.data_level,
                "code_versions": run.versions,
            },
        )
        files = [InputFile(ctx.workdir / name, "data", name) for name in entry["files"]]
        report = ingest_files(files, options)
        for name, reason in report.rejected:
            runs.add_error(run.pk, unit.key, f"ingest refused {name}: {reason}")
        _attach(run.pk, [o.product for o in report.outcomes])
        created += sum(1 for o in report.outcomes if o.created)
        existing += sum(1 for o in report.outcomes if not o.created)
    return f"{created} product(s) ingested, {existing} already present"


def _attach(run_id: int, products: list[Product]) -> None:
    if products:
        RevolutionRun.objects.get(pk=run_id).products.add(*products)


def grb_step(run_id: int) -> str:
    """SPI-ACS light curves of the revolution's GRB triggers, ingested as drafts."""
    run = RevolutionRun.objects.get(pk=run_id)
    state = run.steps.get(GRB_MEMBER) or {}
    if run.status not in RevolutionRun.ACTIVE or state.get("state") in ("done", "failed"):
        return "skipped"
    plan = load_plan(run)
    runs.set_step(run_id, GRB_MEMBER, state="running", current="lightcurves")
    started = time.monotonic()
    made = 0
    try:
        with runs.heartbeat(run_id):
            ctx = _context(run, plan, None)
            backend = get_backend(ctx.params)
            for trigger in plan.grbs:
                source = grb_source(trigger)
                path = ctx.workdir / f"{_stem(trigger.name)}_spi_acs_lc.fits"
                if backend.grb_lightcurve(ctx, trigger, path) is None:
                    continue
                identity = {
                    "product": "lightcurve",
                    "instrument": "spi_acs",
                    "osa": ctx.params.osa_label,
                    "revolution": plan.revolution,
                    "source": trigger.name,
                }
                report = ingest_files(
                    [InputFile(path, "data", path.name)],
                    IngestOptions(
                        source_name=source.name,
                        external_id=external_id(**identity),
                        data_level=plan.data_level,
                        status=Product.Status.DRAFT,
                        produced_by=f"ingest.pipeline {PIPELINE_VERSION} "
                        f"({ctx.params.backend} backend)",
                        provenance={
                            "pipeline": "ingest.pipeline",
                            "pipeline_version": PIPELINE_VERSION,
                            "backend": ctx.params.backend,
                            "run": run.pk,
                            "parameters": identity,
                            "trigger": {"name": trigger.name, "time_utc": trigger.time_utc},
                        },
                    ),
                )
                for name, reason in report.rejected:
                    runs.add_error(run_id, GRB_MEMBER, f"ingest refused {name}: {reason}")
                _attach(run_id, [o.product for o in report.outcomes])
                made += len(report.outcomes)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        logger.exception("pipeline run %s GRB light curves failed", run_id)
        runs.add_error(run_id, GRB_MEMBER, f"failed: {type(exc).__name__}: {exc}")
        runs.set_step(run_id, GRB_MEMBER, state="failed", seconds=time.monotonic() - started)
        return "failed"
    runs.set_step(
        run_id,
        GRB_MEMBER,
        state="done",
        current="",
        detail=f"{made} SPI-ACS light curve(s) for {len(plan.grbs)} trigger(s)",
        seconds=time.monotonic() - started,
        log=f"grb: {made} SPI-ACS light curve(s) for {len(plan.grbs)} trigger(s)",
    )
    return "done"


def _stem(name: str) -> str:
    return "".join(c if c.isalnum() or c in "+-." else "_" for c in name).strip("_")


def finish_member(run_id: int, key: str) -> bool:
    """Mark a member finished; True for the one call that finds every member finished (its
    caller then publishes)."""
    result = {"publish": False}

    def change(run: RevolutionRun) -> None:
        steps = dict(run.steps)
        state = dict(steps.get(key) or {})
        if state.get("state") not in ("done", "failed"):
            state["state"] = "done"
            steps[key] = state
        plan = load_plan(run)
        pending = [
            k for k in members(plan) if (steps.get(k) or {}).get("state") not in ("done", "failed")
        ]
        publish = steps.get("publish") or {}
        if not pending and not publish.get("state"):
            steps["publish"] = {"state": "queued"}
            result["publish"] = True
        run.steps = steps
        run.heartbeat = timezone.now()

    runs.update(run_id, change)
    return result["publish"]


def publish(run_id: int) -> str:
    """Make the run's draft products public, record the revolution's data level, close."""
    run = RevolutionRun.objects.get(pk=run_id)
    if run.status not in RevolutionRun.ACTIVE:
        return run.status
    started = time.monotonic()
    with transaction.atomic():
        published = 0
        for product in run.products.filter(status=Product.Status.DRAFT):
            product.status = Product.Status.PUBLISHED
            product.save(update_fields=["status", "updated"])
            published += 1
        if run.data_level:
            Revolution.objects.filter(number=run.revolution_id).update(data_level=run.data_level)
        if published and getattr(settings, "GALLERY_LIGHTCURVE_REFRESH_TASKS", True):
            # The monitor counts published products only: refresh it now that they are.
            revolution = run.revolution_id
            transaction.on_commit(lambda: enqueue_refresh(revolution))
    failed = [
        key
        for key, state in run.steps.items()
        if isinstance(state, dict) and state.get("state") == "failed"
    ]
    total = run.products.count()

    def change(run: RevolutionRun) -> None:
        steps = dict(run.steps)
        steps["publish"] = {
            "state": "done",
            "detail": f"{published} product(s) published, {total} in the run",
        }
        run.steps = steps
        run.timings = {**run.timings, "publish": round(time.monotonic() - started, 3)}
        run.status = RevolutionRun.Status.FAILED if failed else RevolutionRun.Status.DONE
        run.finished = timezone.now()
        run.heartbeat = run.finished
        outcome = f"failed ({', '.join(failed)})" if failed else "done"
        runs.add_line(run, f"publish: {published} product(s) published; run {outcome}")

    run = runs.update(run_id, change)
    if run.status == RevolutionRun.Status.DONE and not settings.GALLERY_PIPELINE_KEEP_WORK:
        shutil.rmtree(work_dir(run), ignore_errors=True)
    return run.status


def fail(run_id: int, message: str) -> None:
    def change(run: RevolutionRun) -> None:
        if run.status in RevolutionRun.ACTIVE:
            run.status = RevolutionRun.Status.FAILED
            run.finished = timezone.now()
            run.errors = [*run.errors, {"step": "run", "message": message[:500]}]
            runs.add_line(run, f"failed: {message[:500]}")

    runs.update(run_id, change)


def begin(run_id: int) -> tuple[RevolutionRun | None, list[str], str]:
    """Claim the run and plan it: (run, members still to do, '') or (None, [], why not)."""
    run, why = runs.claim(run_id)
    if run is None:
        return None, [], why
    try:
        plan_step(run_id)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        logger.exception("pipeline run %s: plan failed", run_id)
        fail(run_id, f"plan failed: {type(exc).__name__}: {exc}")
        return None, [], "plan failed"
    run.refresh_from_db()
    return run, unfinished_members(run), ""


# ------------------------------------------------------------------------------- in-process


def run_inline(run_id: int, progress: Callable[[str, int, int], None] | None = None) -> str:
    """Run every remaining step of a run in this process; returns the run's final status."""
    run, todo, why = begin(run_id)
    if run is None:
        return why
    total = len(todo) * len(UNIT_STEPS) + 1
    done = 0
    with runs.heartbeat(run_id):
        for key in todo:
            if key == GRB_MEMBER:
                grb_step(run_id)
                done += len(UNIT_STEPS)
            else:
                for step in UNIT_STEPS:
                    if progress:
                        progress(f"{key} {step}", done, total)
                    unit_step(run_id, key, step)
                    done += 1
            finish_member(run_id, key)
        if progress:
            progress("publish", done, total)
        status = publish(run_id)
    if progress:
        progress("done", total, total)
    return status


def progress_of(run: RevolutionRun) -> float:
    """Fraction of the run's work done (0..1), from its recorded steps."""
    if run.status not in RevolutionRun.ACTIVE:
        return 1.0
    plan = load_plan(run)
    if plan is None:
        return 0.0
    keys = members(plan)
    if not keys:
        return 0.9
    done = 0.0
    for key in keys:
        state = run.steps.get(key) or {}
        if state.get("state") in ("done", "failed"):
            done += 1
        elif key != GRB_MEMBER:
            done += len(state.get("done", [])) / len(UNIT_STEPS)
    return 0.05 + 0.9 * done / len(keys)


# ------------------------------------------------------------------------------- scheduling


def latest_runs(revolutions: list[int]) -> dict[int, RevolutionRun]:
    found: dict[int, RevolutionRun] = {}
    for run in RevolutionRun.objects.filter(revolution_id__in=revolutions).order_by("created"):
        found[run.revolution_id] = run
    return found


def needs_processing(revolution: int, params: RunParameters, latest: RevolutionRun | None) -> bool:
    """True unless the revolution's latest run is active, or done with these parameters on
    data of the archive's current level (NRT data made CONS since count as new)."""
    if latest is None:
        return True
    if latest.status in RevolutionRun.ACTIVE:
        return False
    if latest.status != RevolutionRun.Status.DONE:
        return True
    if RunParameters.from_json(latest.parameters).key != params.key:
        return True
    level = archive.data_level(archive.scw_entries(params.archive, revolution, params.instruments))
    return latest.data_level != level


def new_revolutions(params: RunParameters) -> list[int]:
    """Revolutions of the archive that were never processed (or whose data changed level)."""
    available = archive.revolutions_in_archive(params.archive)
    latest = latest_runs(available)
    return [r for r in available if needs_processing(r, params, latest.get(r))]


def recent_revolutions(params: RunParameters, count: int) -> list[int]:
    return archive.revolutions_in_archive(params.archive)[-count:]


def stalled_runs(queue_length: int | None) -> list[RevolutionRun]:
    """Active runs nobody works on: heartbeat stale and no task waiting in the queue for them
    (while tasks wait, a silent run may simply be queued behind others). With the queue's
    length unknown, a run is given five times longer before it counts as stalled."""
    threshold = runs.stale_before()
    if queue_length is None:
        threshold = timezone.now() - 5 * (timezone.now() - threshold)
    elif queue_length > 0:
        return []
    return list(RevolutionRun.objects.active().filter(heartbeat__lt=threshold).order_by("pk"))


def revive(run_id: int) -> bool:
    """Release a stalled run for the next worker to claim, and give it a fresh heartbeat so
    that it is not revived again before that worker had time to start."""

    def change(run: RevolutionRun) -> None:
        was = f" on {run.owner}" if run.owner else ""
        since = run.heartbeat.strftime("%H:%M:%S") if run.heartbeat else "never"
        runs.add_line(run, f"stalled{was} (silent since {since}): enqueued again")
        run.owner = ""
        run.heartbeat = timezone.now()

    try:
        runs.update(run_id, change)
    except (DatabaseError, RevolutionRun.DoesNotExist):
        return False
    return True
