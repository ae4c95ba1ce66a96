"""Browser tests: Debian's chromium driven by Playwright against pytest-django's live server.

The data are made once: the reference catalogue and the demo products (written by the
project's own code), plus a real OSA mosaic when ../shared is present, are loaded into the test
database, copied into memory (the rows of the project's apps), and bulk-inserted again before
each test — live_server needs transactional_db, which empties the database after every test,
and a restore takes a fraction of a second where generating and ingesting takes many. Stored
files live in one media folder for all the browser tests.

The tests skip with one line when GALLERY_NO_BROWSER=1 or /usr/bin/chromium is absent; a
browser is never downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR, SHARED_FIXTURES

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = PROJECT_DIR / "test-artifacts" / "screenshots"
REAL_MOSAIC = "isgri/mosaic_crab_20-40keV.fits"


def browser_skip_reason() -> str | None:
    if os.environ.get("GALLERY_NO_BROWSER") == "1":
        return "browser tests skipped: GALLERY_NO_BROWSER=1"
    if not CHROMIUM.exists():
        return "browser tests skipped: /usr/bin/chromium is absent"
    return None


def pytest_collection_modifyitems(config, items):
    reason = browser_skip_reason()
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


#: Apps whose rows the snapshot keeps (auth, sessions and content types are left alone).
SNAPSHOT_APPS = ("sources", "products", "ingest")


@dataclass
class DemoData:
    """What was loaded, for the tests to find their way, and the rows to restore."""

    media_root: Path
    products: dict[str, str] = field(default_factory=dict)  # label -> uuid
    real_mosaic: str | None = None  # uuid of the real OSA mosaic, when ../shared is present
    snapshot: list = field(default_factory=list)  # [(model, [row dicts])]


def take_snapshot() -> list:
    from django.apps import apps

    snapshot = []
    for label in SNAPSHOT_APPS:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            if model._meta.proxy or not model._meta.managed:
                continue
            names = [f.attname for f in model._meta.concrete_fields if not f.generated]
            snapshot.append((model, list(model._base_manager.values(*names))))
    return snapshot


def restore_snapshot(snapshot: list) -> None:
    """Insert the rows again, in bulk; foreign keys are checked at commit (Django makes them
    deferrable), so the order of the tables does not matter. ``auto_now`` columns take the
    time of the restore."""
    from django.core.management.color import no_style
    from django.db import connection, transaction

    with transaction.atomic():
        # Rows seeded since the flush (reference rows) give way to the snapshot's.
        for model, _ in snapshot:
            model._base_manager.all()._raw_delete(connection.alias)
        for model, rows in snapshot:
            model._base_manager.bulk_create([model(**row) for row in rows], batch_size=500)
    # Explicit ids leave PostgreSQL's sequences behind: move them past the restored rows.
    statements = connection.ops.sequence_reset_sql(no_style(), [m for m, _ in snapshot])
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


@pytest.fixture(scope="session")
def _session_media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("browser-media")


@pytest.fixture(autouse=True)
def _private_media(settings, _session_media, tmp_path):
    """Overrides the per-test media folder: the live server reads the session's files."""
    settings.MEDIA_ROOT = _session_media
    settings.GALLERY_STAGING_DIR = tmp_path / "staging"
    return settings.MEDIA_ROOT


@pytest.fixture(scope="package")
def demo_data(browser, django_db_setup, django_db_blocker, _session_media, tmp_path_factory):
    """Load the demo once, keep its rows as the snapshot tests restore, and leave the database
    empty for whatever runs next.

    It runs after the browser starts: Playwright's sync API switches greenlets, each with its
    own context variables, hence its own database connection (in-memory SQLite: its own
    database); the data must be loaded through the connection the tests use."""
    reason = browser_skip_reason()
    if reason:
        pytest.skip(reason)
    from django.core.management import call_command
    from django.test import override_settings

    from ingest.readers.base import InputFile
    from ingest.service import IngestOptions, ingest_files
    from products.models import Product
    from tests.seed import ensure_reference_rows

    data = DemoData(media_root=_session_media)
    with override_settings(MEDIA_ROOT=_session_media), django_db_blocker.unblock():
        # An earlier transactional test may have flushed the seeded rows.
        ensure_reference_rows()
        call_command("load_reference_catalog", verbosity=0)
        call_command("make_demo_data", out=str(tmp_path_factory.mktemp("demo")), verbosity=0)
        if SHARED_FIXTURES.is_dir():
            path = SHARED_FIXTURES / REAL_MOSAIC
            report = ingest_files(
                [InputFile(path, "data", path.name)],
                IngestOptions(produced_by="browser tests", tags=["real"]),
            )
            assert report.ok, report.rejected
            data.real_mosaic = str(report.outcomes[0].product.uuid)
        for label, kind, instrument in (
            ("image", "image", "isgri"),
            ("spectrum", "spectrum", "isgri"),
            ("lightcurve", "lightcurve", "isgri"),
            ("catalog", "catalog", "isgri"),
            ("jemx_image", "image", "jemx1"),
        ):
            product = (
                Product.objects.filter(
                    kind__code=kind, instrument__code=instrument, tags__name="demo"
                )
                .order_by("pk")
                .first()
            )
            data.products[label] = str(product.uuid)
        data.snapshot = take_snapshot()
        # Leave the database empty, as the tests that run next expect it.
        call_command("flush", interactive=False, verbosity=0)
    return data


@pytest.fixture(scope="session")
def browser():
    reason = browser_skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test code's ORM calls are
    # plain synchronous calls all the same.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


class PageWatcher:
    """Console errors, uncaught exceptions and failed requests of one page."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("requestfailed", lambda req: self.errors.append(f"request failed: {req.url}"))
        page.on("response", self._response)

    def _console(self, message):
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _response(self, response):
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status}: {response.url}")


@pytest.fixture
def site(demo_data, live_server, browser, transactional_db):
    """A fresh browser context on the live server with the demo restored; yields a helper."""
    restore_snapshot(demo_data.snapshot)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watcher = PageWatcher(page)
    yield Site(live_server.url, page, watcher, demo_data, context)
    context.close()


@dataclass
class Site:
    url: str
    page: object
    watcher: PageWatcher
    data: DemoData
    context: object

    def open(self, path: str):
        response = self.page.goto(self.url + path, wait_until="networkidle")
        status = response.status if response is not None else None
        assert status == 200, f"{path} answered {status}"
        return response

    def screenshot(self, name: str) -> Path:
        target = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(target), full_page=True)
        return target
