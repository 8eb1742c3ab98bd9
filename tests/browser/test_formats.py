"""HEIC and AVIF pages in Debian's Chromium: the picture is shown (from its JPEG variants:
no browser shows a HEIC), with the format named."""

from __future__ import annotations

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.heif_files import avif_bytes, heic_bytes
from tests.support import photo

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.mark.parametrize(("make", "name", "label"), [
    (lambda img: heic_bytes(img), "IMG_0003.HEIC", "HEIC"),
    (lambda img: avif_bytes(img), "holiday.avif", "AVIF"),
])
def test_heic_and_avif_pages_show_the_picture(new_page, api, artifacts, make, name, label):
    with Image.open(photo("j03_seeding.jpg")) as img:
        data = make(img.convert("RGB").resize((1600, 1200)))
    answer = api.post("/api/images", multipart={
        "file": {"name": name, "mimeType": f"image/{label.lower()}", "buffer": data}})
    assert answer.status == 201, answer.text()
    image = answer.json()
    page = new_page()
    page.goto(image["page_url"])
    picture = page.locator("#picture")
    expect(picture).to_be_visible()
    page.wait_for_function("document.getElementById('picture').complete")
    width = page.evaluate("document.getElementById('picture').naturalWidth")
    assert width in (300, 600), "a JPEG variant was shown"
    assert ".jpg" in page.evaluate("document.getElementById('picture').currentSrc")
    expect(page.locator(".facts")).to_contain_text(label)
    page.screenshot(path=artifacts / f"formats-{label.lower()}.png")
