"""How the pages look and whether everyone can use them: screenshots (test-artifacts/),
contrast in both themes, labels and alt text, keyboard use, phone widths, headers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.support import ensure_images, unique_copy
from tests.support import photo

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PHONE = {"width": 375, "height": 760}
SCRIPTS = Path(__file__).with_name("js")
# WCAG 2 contrast of all visible text; labels, alt text and sideways scrolling.
CONTRAST = (SCRIPTS / "contrast.js").read_text()
LABELS_AND_ALT = (SCRIPTS / "labels_and_alt.js").read_text()


def audit(page: Page) -> int:
    contrast = page.evaluate(CONTRAST)
    assert contrast["problems"] == [], f"{page.url}:\n" + "\n".join(contrast["problems"])
    problems = page.evaluate(LABELS_AND_ALT)
    assert problems == [], f"{page.url}:\n" + "\n".join(problems)
    return contrast["checked"]


def upload_two(page: Page, tmp_path) -> list[str]:
    files = [unique_copy(photo("j04_dragonfly.jpg"), tmp_path, "dragonfly.jpg"),
             unique_copy(photo("p01_chelsea.png"), tmp_path, "chelsea on the sofa.png")]
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Choose pictures").click()
    chooser.value.set_files(files)
    rows = page.locator("#upload-list .upload")
    for row in rows.all():
        expect(row).to_have_attribute("data-state", "done", timeout=30_000)
    return [row.get_by_role("link").get_attribute("href") for row in rows.all()]


def below(lower: Locator, upper: Locator) -> bool:
    """Layout sanity: ``lower`` starts where ``upper`` ends or further down: no overlap."""
    top, bottom = lower.bounding_box(), upper.bounding_box()
    assert top and bottom
    return top["y"] >= bottom["y"] + bottom["height"]


def settle(page: Page) -> None:
    """Images loaded, pointer out of the way, nothing moving: a stable screenshot."""
    page.mouse.move(0, 0)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.wait_for_load_state("networkidle")
    page.wait_for_function("[...document.images].every((i) => i.loading === 'lazy' || i.complete)")
    page.wait_for_timeout(400)  # the rows' and tiles' entry animations


def test_screenshots_and_audit_in_light_and_dark(new_page, api, artifacts, tmp_path):
    ensure_images(api, 26)
    for scheme in ("light", "dark"):
        suffix = "" if scheme == "light" else "-dark"
        page = new_page(color_scheme=scheme)
        page.goto("/")
        folder = tmp_path / scheme
        folder.mkdir()
        links = upload_two(page, folder)
        settle(page)
        assert audit(page) > 20
        page.screenshot(path=artifacts / f"home{suffix}.png", full_page=True)

        page.goto(links[0] + "?uploaded=1")
        picture = page.locator("#picture")
        expect(picture).to_be_visible()
        expect(page.locator("#owner")).to_be_visible()
        settle(page)
        assert picture.evaluate("i => i.naturalWidth") > 0
        assert below(page.locator(".sizes"), picture)
        assert below(page.locator("#owner"), page.locator("h1"))
        assert audit(page) > 15
        page.screenshot(path=artifacts / f"image{suffix}.png", full_page=True)

        page.goto("/NoSuchKitty")
        settle(page)
        audit(page)
        page.screenshot(path=artifacts / f"not-found{suffix}.png")

        # Errors are readable too.
        page.goto("/")
        text = tmp_path / f"letter-{scheme}.jpg"
        text.write_text("not a picture")
        with page.expect_file_chooser() as chooser:
            page.get_by_text("Choose pictures").click()
        chooser.value.set_files(text)
        expect(page.locator(".upload[data-state=error]")).to_be_visible()
        audit(page)


def test_phone_layout(new_page, api, artifacts, tmp_path):
    ensure_images(api, 26)
    page = new_page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.goto("/")
    expect(page.locator("#drop-title")).to_be_hidden()  # nothing to drag on a touch screen
    expect(page.locator("#paste-hint")).to_be_hidden()
    settle(page)
    audit(page)
    page.screenshot(path=artifacts / "home-phone.png")
    page.locator("#grid .tile:not(.album-tile) a").first.click()  # an image's own page
    picture = page.locator("#picture")
    expect(picture).to_be_visible()
    settle(page)
    audit(page)
    box = picture.bounding_box()
    assert box and box["width"] <= PHONE["width"] - 32
    assert below(page.locator("h1"), picture)  # one column: picture, words, then sizes
    assert below(page.locator(".sizes"), page.locator(".share"))
    # A dense screen gets a sharper candidate than the tiny 90 px one.
    current = picture.evaluate("i => i.currentSrc")
    assert not current.endswith(("/tiny.jpg", "/tiny.png"))
    page.screenshot(path=artifacts / "image-phone.png", full_page=True)


def test_keyboard_only_upload_and_copy(new_page, stack, tmp_path):
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    # Intercept file choosers from the start: a key press is quicker than the interception
    # that expect_file_chooser switches on, and would open a real (invisible) dialog.
    page.on("filechooser", lambda chooser: None)
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "file":
            break
    else:
        pytest.fail("the file chooser is not reachable with Tab")
    # The focused (visually hidden) input shows its ring on the visible button.
    outline = page.locator("label.choose").evaluate("l => getComputedStyle(l).outlineStyle")
    assert outline == "solid"
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Enter")
    chooser.value.set_files(unique_copy(photo("j03_seeding.jpg"), tmp_path, "seeding.jpg"))
    row = page.locator("#upload-list .upload")
    expect(row).to_have_attribute("data-state", "done", timeout=30_000)
    link = row.get_by_role("link")
    page_url = link.get_attribute("href")
    link.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(page_url) + "$"))

    page.get_by_role("button", name="Copy page link").focus()
    page.keyboard.press("Enter")
    expect(page.locator("button[data-copy=page-link]")).to_have_text("Copied page link")
    expect(page.locator("#copy-status")).to_have_text("The page link is on your clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == stack.url + page_url
    page.get_by_role("button", name="Copy image link").press("Enter")
    direct = page.evaluate("navigator.clipboard.readText()")
    # A size, never the original (issue 20: what people paste elsewhere).
    assert re.fullmatch(re.escape(stack.url) + r"/i/[0-9a-f]{2}/[0-9a-f]{32}/monstrous\.jpg",
                        direct)

    # Delete asks first; Escape keeps the picture and gives focus back.
    delete = page.get_by_role("button", name="Delete")
    delete.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Keep it")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()


def test_html_security_headers(new_page, stack):
    page = new_page()
    for path in ("/", "/NoSuchKitty"):
        response = page.goto(path)
        headers = response.headers
        policy = headers["content-security-policy"]
        assert "script-src 'self';" in policy and "style-src 'self';" in policy
        assert "unsafe-inline" not in policy
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
        # Every stylesheet and script is a fingerprinted file of the assets nginx.
        # (The web app manifest is the gallery's: its icons are assets, its share target is
        # on the pages' origin.)
        assert page.locator("link[rel=manifest]").get_attribute("href") == "/manifest.webmanifest"
        assets = page.evaluate("""[...document.querySelectorAll(
                                      'link[href]:not([rel=manifest]), script[src]')]
                                  .map((e) => e.getAttribute('href') || e.getAttribute('src'))""")
        assert assets and all(re.fullmatch(r"/assets/[\w/]+-[0-9a-f]{12}\.\w+", a) for a in assets)
        assert page.locator("script:not([src]), style, [style]").count() == 0
