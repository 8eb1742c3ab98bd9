"""Keys mode in the browser: the page asks for the upload key once and keeps it; an admin's
browser gets Delete on every picture; a ShareX deletion link deletes after a confirmation."""

from __future__ import annotations

import json
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


def upload_with_chooser(page, path):
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Choose pictures").click()
    chooser.value.set_files(path)
    row = page.locator("#upload-list .upload").last
    expect(row).to_have_attribute("data-state", re.compile("done|error"), timeout=30_000)
    return row


def api_upload(api, key, path) -> dict:
    response = api.post("/api/images", headers={"Authorization": f"Bearer {key}"},
                        multipart={"file": {"name": path.name, "mimeType": "image/jpeg",
                                            "buffer": path.read_bytes()}})
    assert response.status == 201, response.text()
    return response.json()


def test_the_page_asks_for_the_key_once_and_keeps_it(new_page, keys_stack, tmp_path,
                                                     artifacts):
    key = create_key(keys_stack, "browser-user")
    page = new_page()
    page.goto("/")
    field = page.get_by_label("Upload key")
    expect(field).to_be_visible()
    page.screenshot(path=artifacts / "home-keys.png", full_page=True)
    row = upload_with_chooser(page, unique_copy(photo("j03_seeding.jpg"), tmp_path, "a.jpg"))
    expect(row.locator(".upload-message")).to_contain_text("upload key first")  # none typed

    field.fill("a wrong key")
    row = upload_with_chooser(page, unique_copy(photo("j03_seeding.jpg"), tmp_path, "b.jpg"))
    expect(row.locator(".upload-message")).to_contain_text("not accepted")

    field.fill(key)
    row = upload_with_chooser(page, unique_copy(photo("j03_seeding.jpg"), tmp_path, "c.jpg"))
    expect(row).to_have_attribute("data-state", "done")
    assert page.evaluate("localStorage.getItem('kitteh:upload-key')") == key

    page.reload()  # asked once: the kept key is used from now on
    expect(page.get_by_label("Upload key")).to_be_hidden()
    expect(page.get_by_role("button", name="Use another key")).to_be_visible()
    row = upload_with_chooser(page, unique_copy(photo("j04_dragonfly.jpg"), tmp_path, "d.jpg"))
    expect(row).to_have_attribute("data-state", "done")


def test_an_admin_browser_may_delete_any_picture(new_page, keys_stack, api, tmp_path):
    someone = create_key(keys_stack, "someone")
    admin = create_key(keys_stack, "moderator", admin=True)
    image = api_upload(api, someone, unique_copy(photo("j07_wine.jpg"), tmp_path, "w.jpg"))

    visitor = new_page()  # a browser with a plain key sees no Delete on others' pictures
    visitor.goto("/")
    visitor.evaluate(f"localStorage.setItem('kitteh:upload-key', '{someone}x')")
    visitor.goto(image["page_url"])
    expect(visitor.locator("#picture")).to_be_visible()
    expect(visitor.get_by_role("button", name="Delete")).to_be_hidden()

    moderator = new_page()
    moderator.goto("/")
    moderator.get_by_label("Upload key").fill(admin)
    upload_with_chooser(moderator, unique_copy(photo("j10_fallenleaf.jpg"), tmp_path, "m.jpg"))
    moderator.goto(image["page_url"])
    expect(moderator.locator("#owner")).to_contain_text("moderate")
    moderator.get_by_role("button", name="Delete").click()
    moderator.get_by_role("dialog", name="Delete this picture?").get_by_role(
        "button", name="Delete").click()
    expect(moderator).to_have_url(f"{keys_stack.url}/")
    assert api.get(f"/api/images/{image['token']}").status == 404


def test_a_sharex_deletion_link_deletes_after_a_confirmation(new_page, keys_stack, api,
                                                             tmp_path):
    key = create_key(keys_stack, "sharex-user")
    config = api.get("/api/sharex.sxcu", headers={"Authorization": f"Bearer {key}"}).json()
    image = api_upload(api, key, unique_copy(photo("j04_dragonfly.jpg"), tmp_path, "s.jpg"))
    deletion = (config["DeletionURL"].replace("{json:page_url}", image["page_url"])
                .replace("{json:delete_token}", image["delete_token"]))
    page = new_page()  # the browser ShareX opens: it never saw this upload
    page.goto(deletion)
    expect(page).to_have_url(f"{keys_stack.url}{image['page_url']}")  # the token left the bar
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog", name="Delete this picture?").get_by_role(
        "button", name="Delete").click()
    expect(page).to_have_url(f"{keys_stack.url}/")
    assert api.get(f"/api/images/{image['token']}").status == 404


def test_the_sharex_link_downloads_a_file_with_the_kept_key(new_page, keys_stack, tmp_path):
    key = create_key(keys_stack, "sharex-browser")
    page = new_page(accept_downloads=True)
    page.goto("/")
    page.evaluate(f"localStorage.setItem('kitteh:upload-key', '{key}')")
    page.reload()
    with page.expect_download() as download:
        page.get_by_role("link", name="ShareX: download the uploader file").click()
    saved = tmp_path / "kitteh.sxcu"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "kitteh.sxcu"
    config = json.loads(saved.read_text())
    assert config["Headers"] == {"Authorization": f"Bearer {key}"}
    assert config["RequestURL"] == f"{keys_stack.url}/api/images"
