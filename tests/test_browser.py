"""The real app in Debian's chromium, driven by Playwright: live swaps, uploads and screenshots.

Screenshots of each tab go to VSA_SCREENSHOT_DIR when it is set (docs/ for the README).
"""

import os
import shutil
from pathlib import Path

import pytest

from .upload_corpus import corpus

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
]


@pytest.fixture(scope="module")
def page(app_server):
    if not Path(CHROMIUM).exists():
        if os.environ.get("VSA_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing; install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is missing; install Debian's chromium to run browser tests")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app_server)
        page.get_by_role("tab", name="Swap").wait_for(timeout=30_000)
        yield page
        browser.close()


def screenshot(page, name):
    folder = os.environ.get("VSA_SCREENSHOT_DIR")
    if folder:
        page.wait_for_timeout(800)
        page.screenshot(path=str(Path(folder) / f"screenshot_{name}.png"), full_page=True)


def image_src(page, selector):
    locator = page.locator(f"{selector} img")
    return locator.first.get_attribute("src") if locator.count() else None


def wait_for_change(page, selector, before, timeout=20_000):
    page.wait_for_function(
        "([selector, before]) => { const img = document.querySelector(selector + ' img'); return img && img.src !== before; }",
        arg=[selector, before],
        timeout=timeout,
    )


def test_encode_tab_renders(page):
    page.get_by_role("tab", name="Encode").click()
    page.wait_for_function("() => document.querySelectorAll('img').length >= 3", timeout=20_000)
    screenshot(page, "encode")


def test_swap_updates_live(page):
    page.get_by_role("tab", name="Swap").click()
    page.wait_for_function("() => document.querySelector('#swap-result img')", timeout=20_000)
    before = image_src(page, "#swap-result")

    page.locator("#swap-features").get_by_label("posX").check()
    wait_for_change(page, "#swap-result", before)
    assert "posX" in page.locator("#swap-summary").inner_text()

    before = image_src(page, "#swap-result")
    enter_number(page, "#A-scale", "0.5")
    wait_for_change(page, "#swap-result", before)
    screenshot(page, "swap")


def enter_number(page, selector, value):
    number = page.locator(f"{selector} input[type=number]")
    number.fill(value)
    number.press("Enter")


def upload(page, tmp_path, name, data):
    path = tmp_path / name.removesuffix(".bad")
    path.write_bytes(data)
    page.get_by_role("tab", name="Sketch & upload").click()
    clear = page.locator("#sketch-upload button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#sketch-upload input[type=file]").set_input_files(str(path))


def test_upload_png_becomes_sprite(page, tmp_path):
    files = corpus()
    upload(page, tmp_path, "mode_RGB.png", files["mode_RGB.png"])
    page.wait_for_function("() => document.querySelector('#sketch-message').innerText.includes('Sprite ready')", timeout=20_000)
    assert page.locator("#sketch-sprite img").count() == 1
    screenshot(page, "sketch")

    page.get_by_role("button", name="Use as swap A").click()
    page.wait_for_function("() => document.querySelector('#swap-summary').innerText.includes('custom image')", timeout=20_000)
    assert page.locator("#A-source input[value=image]").is_checked()


def test_bad_upload_shows_message(page, tmp_path):
    files = corpus()
    upload(page, tmp_path, "truncated.png.bad", files["truncated.png.bad"])
    page.wait_for_function("() => document.querySelector('#sketch-message').innerText.includes('Cannot use this file')", timeout=20_000)
    assert "truncated or corrupt" in page.locator("#sketch-message").inner_text()


def test_scene_tab_updates_live(page):
    page.get_by_role("tab", name="Scene").click()
    page.wait_for_function("() => document.querySelector('#scene-stage3 img')", timeout=30_000)
    assert "IoU with the rendered scene" in page.locator("#scene-summary").inner_text()
    before = image_src(page, "#scene-stage3")
    enter_number(page, "#object-1-scale", "1")
    wait_for_change(page, "#scene-stage3", before)
    screenshot(page, "scene")


def test_about_tab(page):
    page.get_by_role("tab", name="About").click()
    page.wait_for_timeout(500)
    assert "model card" in page.content()
    screenshot(page, "about")


def test_chromium_available_when_required():
    if os.environ.get("VSA_REQUIRE_BROWSER"):
        assert shutil.which("chromium") or Path(CHROMIUM).exists()
