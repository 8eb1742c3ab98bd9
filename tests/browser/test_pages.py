"""The image page (delete for the uploader only), the 404 page and the newest grid."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import ensure_images, unique_copy, volume_files
from tests.support import photo

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def upload_in_browser(page, path) -> str:
    """Upload one file from the home page; the page URL it got."""
    page.goto("/")
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Choose pictures").click()
    chooser.value.set_files(path)
    row = page.locator("#upload-list .upload").last
    expect(row).to_have_attribute("data-state", "done", timeout=30_000)
    return row.get_by_role("link").get_attribute("href")


def test_only_the_uploading_browser_can_delete(new_page, stack, api, tmp_path):
    owner = new_page()
    page_url = upload_in_browser(owner, unique_copy(photo("j07_wine.jpg"), tmp_path, "wine.jpg"))
    token = page_url.removeprefix("/").removesuffix("Kitty").lower()
    image = api.get(f"/api/images/{token}").json()
    key_dir = image["original"]["url"].removeprefix("/i/").rsplit("/", 1)[0]
    assert any(f.startswith(key_dir + "/") for f in volume_files(stack.storage))

    # Another visitor (another browser context, its own storage) sees no Delete button,
    # and the API refuses a delete from there: with a guessed token or with none.
    visitor = new_page()
    visitor.goto(page_url)
    expect(visitor.locator("#picture")).to_be_visible()
    expect(visitor.get_by_role("button", name="Delete")).to_have_count(0)
    statuses = visitor.evaluate("""async (token) => {
        const guess = await fetch(`/api/images/${token}`, { method: "DELETE",
            headers: { Authorization: "Bearer " + "0".repeat(43) } });
        const none = await fetch(`/api/images/${token}`, { method: "DELETE" });
        return [guess.status, none.status];
    }""", token)
    assert statuses == [403, 403]
    assert api.get(f"/api/images/{token}").status == 200

    # The uploader's browser kept the delete token: its Delete works, after a confirmation.
    owner.goto(page_url)
    delete = owner.get_by_role("button", name="Delete")
    expect(delete).to_be_visible()
    delete.click()
    dialog = owner.get_by_role("dialog", name="Delete this picture?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Keep it").click()  # changing one's mind deletes nothing
    expect(dialog).to_be_hidden()
    assert api.get(f"/api/images/{token}").status == 200
    delete.click()
    dialog.get_by_role("button", name="Delete").click()

    expect(owner).to_have_url(f"{stack.url}/")
    expect(owner.locator("#page-notice")).to_have_text(f"{image['name']} was deleted.")
    assert api.get(f"/api/images/{token}").status == 404
    assert not any(f.startswith(key_dir + "/") for f in volume_files(stack.storage))
    assert owner.evaluate(f"localStorage.getItem('kitteh:delete:{token}')") is None
    visitor.goto(page_url)
    expect(visitor.get_by_role("heading", name="No kitty here")).to_be_visible()


def test_unknown_name_gets_a_404_page_that_leads_back_to_upload(new_page):
    page = new_page()
    response = page.goto("/NoSuchCatAnywhereKitty")
    assert response.status == 404
    expect(page).to_have_title(re.compile("No kitty here"))
    expect(page.get_by_role("heading", level=1)).to_have_text("No kitty here")
    page.get_by_role("link", name="Upload a picture").click()
    expect(page.get_by_role("heading", name="Share a cat picture")).to_be_visible()


def test_newest_grid_loads_more_with_the_keyset_cursor(new_page, api):
    ensure_images(api, 26)
    page = new_page()
    page.goto("/")
    tiles = page.locator("#grid .tile")
    expect(tiles).to_have_count(24)
    first = tiles.locator("picture img").first  # not the placeholder under it
    expect(first).to_have_attribute("loading", "lazy")
    assert re.search(r"/tiny\.\w+ \d+w, .*/large\.\w+ \d+w$", first.get_attribute("srcset"))

    more = page.get_by_role("link", name="Load more")
    cursor = more.get_attribute("data-next")
    # The next page as the server draws it (albums are one tile there: issue 20).
    older_page = api.get(f"/?before={cursor}").text()
    with page.expect_response(re.compile(r"/\?before=\d+$")) as answer:
        more.click()
    assert answer.value.url.endswith(f"before={cursor}")
    expect(tiles).to_have_count(24 + len(re.findall(r'<li class="tile[^"]*" data-token=',
                                                    older_page)))
    tokens = [t.get_attribute("data-token") for t in tiles.all()]
    assert len(tokens) == len(set(tokens)), "no image twice"
    expect(page.locator("#grid .tile a").nth(24)).to_be_focused()  # keyboard users go on

    # The same link works without JavaScript: a page of older kitties.
    plain = new_page(java_script_enabled=False)
    plain.goto("/")
    plain.get_by_role("link", name="Load more").click()
    expect(plain).to_have_url(re.compile(rf"/\?before={cursor}#recent-title$"))
    expect(plain.get_by_role("heading", name="Older kitties")).to_be_visible()
    older = [t.get_attribute("data-token") for t in plain.locator("#grid .tile").all()]
    assert older == tokens[24:24 + len(older)]
