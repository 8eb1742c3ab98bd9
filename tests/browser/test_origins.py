"""Chromium over HTTPS with a files origin: the pages on one host show pictures from the
other, within the pages' Content-Security-Policy, and the HTTP port sends Chromium to HTTPS.

Chromium resolves both names to 127.0.0.1 (--host-resolver-rules) and is told to accept the
self-signed certificate, so it sends the Host and SNI a real visitor's browser sends.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from deploy.system import require
from tests.browser.conftest import CHROMIUM_ARGS, DESKTOP
from tests.browser.support import PageWatch, photo_crop
from tests.certs import FILES_HOST, PAGES_HOST, origins_env, self_signed
from tests.stack import RunningStack, free_ports, stack_env
from tests.support import open_dir

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def origins_stack() -> Iterator[RunningStack]:
    base = open_dir("kitteh-origins-")
    certificate = self_signed(base / "tls", [PAGES_HOST, FILES_HOST])
    data_dir = base / "var"
    [http_port] = free_ports(1)
    running = RunningStack(data_dir, origins_env(stack_env(data_dir), certificate, http_port))
    running.start()
    yield running
    status = running.stop()
    assert status == 0, "".join(running.output[-40:])
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def mapped_browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = require("chromium")["chromium"]
    rules = f"MAP {PAGES_HOST} 127.0.0.1, MAP {FILES_HOST} 127.0.0.1"
    browser = playwright.chromium.launch(executable_path=str(chromium),
                                         args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"])
    yield browser
    browser.close()


@pytest.fixture
def visitor(mapped_browser, origins_stack) -> Iterator[tuple[Page, PageWatch]]:
    context = mapped_browser.new_context(ignore_https_errors=True, viewport=DESKTOP,
                                         base_url=origins_stack.env["KITTEH_PUBLIC_URL"])
    context.set_default_timeout(15_000)
    watch = PageWatch(origins_stack.env["KITTEH_PUBLIC_URL"])
    watch.attach(context)
    yield context.new_page(), watch
    context.close()


def loaded_from(page: Page, selector: str) -> str:
    """The URL an <img> really shows, once it has decoded (fails if it never does)."""
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i?.complete && i.naturalWidth > 0 }",
        arg=selector)
    return page.eval_on_selector(selector, "i => i.currentSrc")


def test_pages_show_pictures_from_the_files_origin_within_their_csp(visitor, origins_stack):
    page, watch = visitor
    files = origins_stack.env["KITTEH_FILES_URL"]
    page.goto("/")
    page.set_input_files("#file", files=[
        {"name": "origin.jpg", "mimeType": "image/jpeg", "buffer": photo_crop(3)}])
    row = page.locator("#upload-list .upload")
    expect(row).to_have_attribute("data-state", "done", timeout=30_000)
    page_url = row.get_by_role("link").get_attribute("href")
    assert page_url.startswith(f"{origins_stack.env['KITTEH_PUBLIC_URL']}/")
    # The tile upload.js added from the JSON answer shows the tiny file from the files host.
    assert loaded_from(page, "#grid .tile img:not(.placeholder)").startswith(f"{files}/i/")

    page.goto(page_url)
    assert loaded_from(page, "#picture").startswith(f"{files}/i/")
    assert page.get_attribute("a[download]", "href").startswith(f"{files}/img/")
    page.reload()  # the home page as the server renders it, tiles included
    page.goto("/")
    assert loaded_from(page, "#grid .tile img:not(.placeholder)").startswith(f"{files}/i/")

    # The only requests off the pages' origin went to the files origin, for files; no CSP
    # violation and no console error (PageWatch collects both).
    off_site = [p for p in watch.problems if p.startswith("request off the site: ")]
    assert off_site, "no picture came from the files origin"
    assert all(p.startswith(f"request off the site: {files}/i/") for p in off_site), off_site
    assert [p for p in watch.problems if p not in off_site] == []


def test_chromium_follows_the_http_port_to_https(visitor, origins_stack):
    page, _ = visitor
    http_port = origins_stack.env["KITTEH_HTTP_PORT"]
    response = page.goto(f"http://{PAGES_HOST}:{http_port}/?before=1")
    assert page.url == f"{origins_stack.env['KITTEH_PUBLIC_URL']}/?before=1"
    assert response is not None and response.status == 200
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert response.request.redirected_from is not None
    assert response.request.redirected_from.url.startswith("http://")
