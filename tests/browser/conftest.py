"""Browser fixtures: Debian's Chromium (installed with apt-get when missing, never downloaded
by Playwright) driven by Playwright's sync API against the stack the local runner started."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import APIRequestContext, Browser, Page, Playwright, sync_playwright

from deploy.system import require
from tests.browser.support import PageWatch
from tests.support import REPO

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container has no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
]
DESKTOP = {"width": 1280, "height": 860}

NewPage = Callable[..., Page]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Chromium against the running stack")


FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


# Module scope, not session: between its calls the sync API leaves its event loop marked as
# running in this thread, which would break the asyncio tests that run after these modules.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = require("chromium")["chromium"]
    browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def api(playwright: Playwright, stack) -> Iterator[APIRequestContext]:
    """HTTP from outside the browser, for checking what the pages did."""
    context = playwright.request.new_context(base_url=stack.url)
    yield context
    context.dispose()


@pytest.fixture
def artifacts():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def new_page(browser: Browser, stack, request: pytest.FixtureRequest) -> Iterator[NewPage]:
    """A page in a fresh browser context (its own storage: another visitor), watched for
    console errors, CSP violations and requests that leave the site. Options go to
    ``Browser.new_context`` (java_script_enabled, color_scheme, viewport...)."""
    opened: list[tuple[object, PageWatch, Page]] = []

    def open_page(**options) -> Page:
        options.setdefault("viewport", DESKTOP)
        context = browser.new_context(base_url=stack.url, **options)
        context.set_default_timeout(15_000)
        watch = PageWatch(stack.url)
        watch.attach(context, scripts=options.get("java_script_enabled", True))
        page = context.new_page()
        opened.append((context, watch, page))
        return page

    yield open_page
    failed = request.node.stash.get(FAILED, False)
    for number, (context, _, page) in enumerate(opened):
        if failed and not page.is_closed():
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            (ARTIFACTS / "failures").mkdir(parents=True, exist_ok=True)
            page.screenshot(path=ARTIFACTS / "failures" / f"{name}-{number}.png", full_page=True)
        context.close()
    if not failed:
        for _, watch, _ in opened:
            watch.check()
