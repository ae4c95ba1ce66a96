"""``manage.py process_revolutions 100-500``: run the pipeline over revolutions of the archive.

Without ``--workers`` (or with 0) the revolutions are processed one after the other in this
process. With ``--workers N`` they are sent to the Celery workers, N revolutions at a time, and
the command follows their progress (and revives a run whose worker died or whose tasks the
broker lost) until all are finished; interrupting it leaves the queued runs to the workers.
Revolutions already processed with the same parameters on data of the same level are skipped
unless ``--force``.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ingest.models import RevolutionRun
from ingest.pipeline import archive, runs, service
from ingest.pipeline.config import INSTRUMENTS, RunParameters

from .make_archive import parse_revolutions


class Command(BaseCommand):
    help = (
        "Process revolutions with the pipeline (mosaics, source lists, spectra and light "
        "curves, ingested and published), in this process or on the Celery workers."
    )

    def add_arguments(self, parser):
        parser.add_argument("revolutions", help="e.g. 100-500 or 665 or 100,105-107")
        parser.add_argument("--backend", choices=["local", "mmoda"], default=None)
        parser.add_argument("--archive", default=None, help="archive folder (GALLERY_ARCHIVE_DIR)")
        parser.add_argument(
            "--workers",
            type=int,
            default=0,
            help="0: process here; N: send to the Celery workers, N revolutions at a time",
        )
        parser.add_argument("--threshold", type=float, default=None, help="detection (sigma)")
        parser.add_argument(
            "--instruments", default=None, help=f"comma-separated, among {', '.join(INSTRUMENTS)}"
        )
        parser.add_argument("--osa-label", default=None, help="OSA-like version label")
        parser.add_argument("--mmoda-url", default=None)
        parser.add_argument(
            "--grb-triggers",
            default=None,
            help="JSON list of {name, time_utc[, ra_deg, dec_deg]} (default: the archive's "
            "grb_triggers.json)",
        )
        parser.add_argument("--force", action="store_true", help="process revolutions done already")
        parser.add_argument("--poll", type=float, default=1.0, help="seconds between checks")
        parser.add_argument(
            "--timeout", type=float, default=0.0, help="give up following after this (s)"
        )

    def handle(self, *args, **options):
        instruments = (
            [c.strip() for c in options["instruments"].split(",") if c.strip()]
            if options["instruments"]
            else None
        )
        try:
            params = RunParameters.from_settings(
                backend=options["backend"],
                archive=str(Path(options["archive"]).resolve()) if options["archive"] else None,
                threshold=options["threshold"],
                instruments=instruments,
                osa_label=options["osa_label"],
                mmoda_url=options["mmoda_url"],
                grb_triggers=(
                    str(Path(options["grb_triggers"]).resolve())
                    if options["grb_triggers"]
                    else None
                ),
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if options["workers"] < 0:
            raise CommandError("--workers must be 0 or more")
        wanted = parse_revolutions(options["revolutions"])
        available = set(archive.revolutions_in_archive(params.archive))
        missing = [r for r in wanted if r not in available]
        todo = [r for r in wanted if r in available]
        if missing:
            self.stdout.write(
                f"{len(missing)} revolution(s) not in the archive {params.archive}: skipped"
            )
        if not options["force"]:
            latest = service.latest_runs(todo)
            done = [r for r in todo if not service.needs_processing(r, params, latest.get(r))]
            if done:
                self.stdout.write(f"{len(done)} revolution(s) already processed: skipped")
            todo = [r for r in todo if r not in done]
        if not todo:
            self.stdout.write("Nothing to process.")
            return
        show = options["verbosity"] >= 1
        if options["workers"]:
            finished = self._on_workers(todo, params, options, show)
        else:
            finished = self._in_process(todo, params, show)
        self._report(finished)

    # ------------------------------------------------------------------ in this process

    def _in_process(self, todo: list[int], params: RunParameters, show: bool) -> list[int]:
        run_ids = []
        with tqdm(total=len(todo), unit="rev", disable=not show) as bar:
            for index, revolution in enumerate(todo):
                run, created = runs.create_run(revolution, params)
                if not created and not runs.is_stale(run):
                    bar.write(f"revolution {revolution}: already running ({run.owner or 'queued'})")
                    bar.update(1)
                    continue

                def progress(step: str, done: int, total: int, rev=revolution, i=index) -> None:
                    bar.n = i + (done / total if total else 0)
                    bar.set_postfix_str(f"rev {rev}: {step}", refresh=True)

                service.run_inline(run.pk, progress=progress)
                run_ids.append(run.pk)
                bar.n = index + 1
                bar.refresh()
        return run_ids

    # ------------------------------------------------------------------ on the workers

    def _on_workers(self, todo: list[int], params: RunParameters, options, show: bool):
        from celery import current_app as app  # the project's app (loaded with Django)

        from ingest.pipeline import tasks

        try:
            answers = app.control.ping(timeout=2.0)
        except Exception:  # noqa: BLE001 - the broker may be down: the loop below waits
            answers = []
        if not answers:
            self.stdout.write("No Celery worker answered yet: runs wait in the queue for one.")
        pending = list(todo)
        active: dict[int, int] = {}  # run id -> revolution
        finished: list[int] = []
        started = time.monotonic()
        last_revive = 0.0
        with tqdm(total=len(todo), unit="rev", disable=not show) as bar:
            while pending or active:
                while pending and len(active) < options["workers"]:
                    revolution = pending[0]
                    run, created = runs.create_run(revolution, params)
                    if created or runs.is_stale(run):
                        try:
                            tasks.run_revolution.delay(run.pk)
                        except Exception as exc:  # noqa: BLE001 - broker down: try again later
                            bar.write(f"cannot reach the broker ({type(exc).__name__}); retrying")
                            break
                    pending.pop(0)
                    active[run.pk] = revolution
                fraction = 0.0
                for run in RevolutionRun.objects.filter(pk__in=list(active)):
                    if run.status not in RevolutionRun.ACTIVE:
                        finished.append(run.pk)
                        del active[run.pk]
                        bar.write(f"revolution {run.revolution_id}: {run.status}")
                    else:
                        fraction += service.progress_of(run)
                bar.n = round(len(finished) + fraction, 2)
                bar.set_postfix_str(f"{len(active)} running, {len(pending)} waiting", refresh=True)
                if not (pending or active):
                    break
                now = time.monotonic()
                if now - last_revive > max(5.0, options["poll"]):
                    last_revive = now
                    try:
                        for run_id in tasks.revive_stalled():
                            bar.write(f"run {run_id}: stalled, sent to the workers again")
                    except Exception as exc:  # noqa: BLE001 - broker down: try again later
                        bar.write(f"cannot revive stalled runs now ({type(exc).__name__})")
                if options["timeout"] and now - started > options["timeout"]:
                    raise CommandError(
                        f"gave up after {options['timeout']:g} s with {len(active)} run(s) "
                        "still active (they go on on the workers)"
                    )
                time.sleep(options["poll"])
            bar.n = len(todo)
            bar.refresh()
        return finished

    # ------------------------------------------------------------------ summary

    def _report(self, run_ids: list[int]) -> None:
        rows = RevolutionRun.objects.filter(pk__in=run_ids).order_by("revolution_id")
        n_done = n_failed = 0
        for run in rows:
            seconds = run.duration_s
            n_done += run.status == RevolutionRun.Status.DONE
            n_failed += run.status == RevolutionRun.Status.FAILED
            self.stdout.write(
                f"revolution {run.revolution_id}: {run.status}, {run.products.count()} products, "
                f"{len(run.errors)} error(s)" + (f", {seconds:.1f} s" if seconds else "")
            )
        self.stdout.write(f"{n_done} done, {n_failed} failed.")
