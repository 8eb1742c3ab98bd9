"""The image page of an HDR photo in Chromium (issue 19): a screen that shows HDR loads the
Ultra HDR JPEG, any other screen the smaller SDR AVIF, as for every photo.

Chromium is told its screen is HDR by ``--force-color-profile=hdr10`` (then
``(dynamic-range: high)`` matches, as on an HDR laptop); the other browser is the suite's.
"""

from __future__ import annotations

import time

import pytest
import pyvips
from playwright.sync_api import APIRequestContext, Browser, Playwright

from deploy.system import require
from tests.browser.conftest import CHROMIUM_ARGS, DESKTOP
from tests.support import photo

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture(scope="module")
def hdr_browser(playwright: Playwright):
    chromium = require("chromium")["chromium"]
    browser = playwright.chromium.launch(
        executable_path=str(chromium), args=[*CHROMIUM_ARGS, "--force-color-profile=hdr10"])
    yield browser
    browser.close()


def upload(api: APIRequestContext, name: str, data: bytes, kind: str = "image/jpeg") -> dict:
    response = api.post("/api/images", multipart={
        "file": {"name": name, "mimeType": kind, "buffer": data}})
    # 200: the same bytes were uploaded by another test on this session's stack; same image
    assert response.status in (200, 201), response.text()
    return response.json()


def page_with_avif(api: APIRequestContext, page_url: str) -> None:
    """Wait for the AVIF files (made after the upload answers) to be offered."""
    deadline = time.monotonic() + 120
    while 'type="image/avif"' not in api.get(page_url).text():
        assert time.monotonic() < deadline, "the AVIF variants were never made"
        time.sleep(0.5)


def chosen(browser: Browser, stack, page_url: str) -> str:
    context = browser.new_context(base_url=stack.url, viewport=DESKTOP)
    try:
        page = context.new_page()
        page.goto(page_url)
        page.wait_for_function("document.getElementById('picture').complete")
        return page.evaluate("document.getElementById('picture').currentSrc")
    finally:
        context.close()


def test_hdr_screens_load_the_ultrahdr_jpeg_others_the_avif(hdr_browser, browser, stack, api):
    hdr = upload(api, "PXL_hdr.jpg", photo("u01_seeding_ultrahdr.jpg").read_bytes())
    heic = upload(api, "IMG_4242.HEIC", photo("h01_pug_iphone13pro_hdr.heic").read_bytes(),
                  "image/heic")
    sdr = upload(api, "cups.jpg", photo("j11_cups_gps.jpg").read_bytes())
    for image in (hdr, heic, sdr):
        page_with_avif(api, image["page_url"])

    for image in (hdr, heic):  # an Ultra HDR JPEG and an iPhone HDR HEIC
        on_hdr_screen = chosen(hdr_browser, stack, image["page_url"])
        assert on_hdr_screen.endswith(".jpg"), on_hdr_screen
        loaded = api.get(on_hdr_screen).body()
        img = pyvips.Image.new_from_buffer(loaded, "")
        assert img.get("vips-loader") == "uhdrload_buffer", "the file loaded is Ultra HDR"

    assert chosen(browser, stack, hdr["page_url"]).endswith(".avif"), "SDR screens: AVIF"
    assert chosen(hdr_browser, stack, sdr["page_url"]).endswith(".avif"), "SDR photo: AVIF"
