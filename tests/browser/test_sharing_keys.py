"""The share target in keys mode: a share is a plain form post (no script runs first, so no
key comes with it); the photos wait while the home page sends the key this browser keeps, or
asks for one. Nothing is lost either way."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import unique_copy
from tests.e2e.access_support import create_key
from tests.support import photo

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def stack(keys_stack):
    """Every page and API request of this module goes to the keys-mode stack."""
    return keys_stack


def share(page, api, files) -> None:
    """Post the files as Android's share sheet does (see test_sharing.py)."""
    target = api.get("/manifest.webmanifest").json()["share_target"]
    page.evaluate("""(target) => {
        const form = document.createElement("form");
        form.id = "android-share";
        form.method = target.method;
        form.enctype = target.enctype;
        form.action = target.action;
        form.innerHTML = `<input type="file" multiple name="${target.params.files[0].name}">`;
        document.body.append(form);
    }""", target)
    page.set_input_files("#android-share input", files)
    with page.expect_navigation():
        page.evaluate("document.getElementById('android-share').submit()")


def album_of(api, page) -> dict:
    token = page.url.split("/")[-1].split("Album")[0].lower()
    return api.get(f"/api/albums/{token}").json()


def test_a_share_uses_the_kept_key(new_page, keys_stack, api, tmp_path):
    key = create_key(keys_stack, "phone-owner")
    page = new_page()
    page.goto("/")
    page.evaluate(f"localStorage.setItem('kitteh:upload-key', '{key}')")
    share(page, api, [unique_copy(photo("j03_seeding.jpg"), tmp_path, "a.jpg"),
                      unique_copy(photo("j04_dragonfly.jpg"), tmp_path, "b.jpg")])
    expect(page).to_have_url(re.compile(r"/[A-Z][A-Za-z]+Album\?uploaded=1$"))
    expect(page.locator(".album-picture")).to_have_count(2)
    assert [i["original"]["filename"] for i in album_of(api, page)["images"]] == [
        "a.jpg", "b.jpg"]


def test_without_a_kept_key_the_share_waits_and_the_page_asks(new_page, keys_stack, api,
                                                              tmp_path):
    key = create_key(keys_stack, "new-phone")
    page = new_page()
    page.goto("/")
    share(page, api, [unique_copy(photo("j07_wine.jpg"), tmp_path, "c.jpg"),
                      unique_copy(photo("j10_fallenleaf.jpg"), tmp_path, "d.jpg")])
    expect(page).to_have_url(re.compile(r"/\?share=[A-Za-z0-9_-]{24}&pictures=2#upload-title$"))
    waiting = page.locator("#share-form")
    expect(waiting).to_contain_text("2 shared pictures are waiting")
    waiting.get_by_label("Upload key").fill("not the key")
    waiting.get_by_role("button", name="Upload them").click()
    expect(page).to_have_url(re.compile(r"key=wrong"))
    expect(page.locator("#share-form")).to_contain_text("that key was not accepted")
    page.locator("#share-form").get_by_label("Upload key").fill(key)
    page.locator("#share-form").get_by_role("button", name="Upload them").click()
    expect(page).to_have_url(re.compile(r"/[A-Z][A-Za-z]+Album\?uploaded=1$"))
    assert [i["original"]["filename"] for i in album_of(api, page)["images"]] == [
        "c.jpg", "d.jpg"]
    assert page.evaluate("localStorage.getItem('kitteh:upload-key')") == key  # kept now
