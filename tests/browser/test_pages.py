"""Every page in chromium: no console error, no failed request, no serious axe-core violation,
usable at phone width (375 px, nothing wider than the screen), with screenshots saved in
test-artifacts/screenshots/. Then the interactions: the image plot's pointer read-out, the
Explore page's Resolve button and search, and merging two sources in the admin."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import SHARED_FIXTURES

pytestmark = pytest.mark.browser

PHONE = {"width": 375, "height": 740}
SERIOUS = ("serious", "critical")


def axe_violations(page) -> list[str]:
    """Serious and critical axe-core violations; axe is read from the installed package."""
    axe = pytest.importorskip("axe_playwright_python.base")
    page.evaluate(Path(axe.AXE_FILE_PATH).read_text(encoding="utf-8"))
    results = page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes'][:3]]}"
        for v in results
        if v["impact"] in SERIOUS
    ]


def page_paths(data) -> dict[str, str]:
    products = data.products
    return {
        "home": "/",
        "sources": "/sources/",
        "sources-search": "/sources/?q=cyg&cls=XRB&sort=-ra",
        "source": "/sources/crab/",
        "revolutions": "/revolutions/",
        "revolution": "/revolutions/1521/",
        "products": "/products/?instrument=isgri",
        "product-image": f"/products/{products['image']}/",
        "product-spectrum": f"/products/{products['spectrum']}/",
        "product-lightcurve": f"/products/{products['lightcurve']}/",
        "product-catalog": f"/products/{products['catalog']}/",
        "explore": "/explore/?name=Crab&radius=5",
        "statistics": "/statistics/",
    }


@pytest.mark.parametrize(
    "name",
    [
        "home",
        "sources",
        "sources-search",
        "source",
        "revolutions",
        "revolution",
        "products",
        "product-image",
        "product-spectrum",
        "product-lightcurve",
        "product-catalog",
        "explore",
        "statistics",
    ],
)
def test_page_renders_cleanly(site, name):
    path = page_paths(site.data)[name]
    site.open(path)
    page = site.page
    assert page.title().endswith("INTEGRAL Gallery")
    assert page.locator("h1").count() == 1
    plot = page.locator("[data-plot-url]")
    if plot.count():
        # The interactive plot is drawn (or says why not) once its JSON has arrived.
        page.wait_for_selector("[data-plot-url][data-drawn]", timeout=15000)
    assert site.screenshot(name).stat().st_size > 0
    assert axe_violations(page) == []
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(200)
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= PHONE["width"] + 1, f"{name} is {overflow} px wide at phone width"
    site.screenshot(f"{name}-phone")
    assert site.watcher.errors == []


def test_keyboard_reaches_the_content_first(site):
    site.open("/")
    site.page.keyboard.press("Tab")
    focused = site.page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Skip to content"
    site.page.keyboard.press("Enter")
    assert site.page.evaluate("location.hash") == "#main"


def _pixel_world(uuid: str, site) -> tuple[dict, object]:
    response = site.page.request.get(f"{site.url}/products/{uuid}/plot.json")
    assert response.ok
    return response.json(), response


@pytest.mark.parametrize("which", ["demo", "real"])
def test_image_plot_shows_value_and_position_under_the_pointer(site, which):
    if which == "real":
        if not SHARED_FIXTURES.is_dir():
            pytest.skip("real fixtures not found: ../shared/fixtures is absent beside the project")
        uuid = site.data.real_mosaic
    else:
        uuid = site.data.products["image"]
    site.open(f"/products/{uuid}/")
    page = site.page
    page.wait_for_selector("[data-plot-url][data-drawn='image']", timeout=15000)
    drag_layer = page.locator("[data-role='plot'] .nsewdrag").first
    drag_layer.scroll_into_view_if_needed()
    area = drag_layer.bounding_box()
    readout = page.locator("[data-role='readout']")
    page.mouse.move(area["x"] + area["width"] * 0.45, area["y"] + area["height"] * 0.55, steps=4)
    page.wait_for_selector("[data-role='readout'][data-i]", timeout=5000)
    # Plotly throttles hover events (50 ms): let the last one land before reading.
    page.wait_for_timeout(300)
    text = readout.inner_text()
    assert re.search(r"RA \d+\.\d{4}° .*Dec [-+]?\d+\.\d{4}°", text), text
    i, j = int(readout.get_attribute("data-i")), int(readout.get_attribute("data-j"))
    data, _ = _pixel_world(uuid, site)
    expected = data["z"][j][i]
    shown = readout.get_attribute("data-value")
    assert expected is not None and math.isclose(float(shown), expected, abs_tol=1e-6)
    assert f"{expected:.2f}" in text

    # The browser's RA/Dec of that pixel agrees with astropy's on the stored file.
    from astropy.wcs import WCS

    from ingest.fitsio import open_fits
    from ingest.readers.image import image_wcs, read_image
    from products.models import Product

    stored = Product.objects.get(uuid=uuid).files.get(role="data")
    with open_fits(Path(stored.file.path)) as hdul:
        wcs: WCS = image_wcs(read_image(hdul, 7.0)["image"])
    f = data["factor"]
    world = wcs.pixel_to_world(f * i + (f - 1) / 2, f * j + (f - 1) / 2).icrs
    ra, dec = float(readout.get_attribute("data-ra")), float(readout.get_attribute("data-dec"))
    assert abs((ra - world.ra.deg + 180) % 360 - 180) * math.cos(math.radians(dec)) < 1e-4
    assert abs(dec - world.dec.deg) < 1e-4

    # The colour scale follows the inputs.
    page.fill("#zmin", "-1")
    page.fill("#zmax", "12")
    page.click("[data-role='colour-scale'] button[type='submit']")
    expect(page.locator("[data-role='plot']")).to_have_attribute("data-zmax", "12")
    site.screenshot(f"image-plot-{which}")
    assert site.watcher.errors == []


def test_spectrum_and_light_curve_plots_are_drawn(site):
    for label, kind in (("spectrum", "spectrum"), ("lightcurve", "lightcurve")):
        site.open(f"/products/{site.data.products[label]}/")
        site.page.wait_for_selector(f"[data-plot-url][data-drawn='{kind}']", timeout=15000)
        traces = int(site.page.get_attribute("[data-role='plot']", "data-traces"))
        assert traces >= (3 if kind == "spectrum" else 1)
    assert site.watcher.errors == []


def test_explore_resolves_a_name_and_finds_its_products(site):
    site.open("/explore/")
    page = site.page
    page.fill("#id_name", "tau a")  # an alias of the Crab in the reference catalogue
    page.click("button[data-role='resolve']")
    status = page.locator("[data-role='resolve-status']")
    expect(status).to_contain_text("successfully resolved")
    assert abs(float(page.input_value("#id_ra")) - 83.633) < 0.01
    assert abs(float(page.input_value("#id_dec")) - 22.014) < 0.01
    page.select_option("#id_kind", "image")
    with page.expect_navigation():
        page.click("form.explore button[type='submit']")
    rows = page.locator("#results-h + .table-wrap tbody tr")
    titles = rows.all_inner_texts()
    assert titles and all("image" in t for t in titles)
    assert any("Crab field" in t for t in titles)
    site.screenshot("explore-results")
    page.fill("#id_name", "no such object anywhere")
    page.click("button[data-role='resolve']")
    expect(status).to_contain_text("could not be resolved")
    assert site.watcher.errors == []


def test_admin_merges_two_sources(site, django_user_model):
    from products.models import Product
    from sources.models import Source

    django_user_model.objects.create_superuser("curator", "c@example.org", "pw-merge-test-1")
    keep = Source.objects.get(slug="crab")
    duplicate = Source.objects.create(name="Crab duplicate", ra_deg=83.63, dec_deg=22.01)
    duplicate.add_alias("Crab Nebula dup")
    product = Product.objects.filter(source_links__source=keep).first()
    product.source_links.create(source=duplicate, role="detected")

    page = site.page
    site.open("/admin/login/?next=/admin/sources/source/")
    page.fill("#id_username", "curator")
    page.fill("#id_password", "pw-merge-test-1")
    with page.expect_navigation():
        page.click("input[type='submit']")
    site.open("/admin/sources/source/?q=crab")
    site.screenshot("admin-sources")
    for source in (keep, duplicate):
        page.check(f"input[name='_selected_action'][value='{source.pk}']")
    page.select_option("select[name='action']", "merge")
    with page.expect_navigation():
        page.click("button[name='index']")
    page.select_option("#id_into", str(keep.pk))
    site.screenshot("admin-merge")
    with page.expect_navigation():
        page.click("input[value='Merge']")
    assert "Merged Crab duplicate into Crab" in page.content()

    duplicate.refresh_from_db()
    assert duplicate.merged_into_id == keep.pk
    assert keep.names.filter(name="Crab Nebula dup").exists()
    response = page.goto(f"{site.url}/sources/{duplicate.slug}/")
    assert response.url.endswith("/sources/crab/")
    assert site.watcher.errors == []
