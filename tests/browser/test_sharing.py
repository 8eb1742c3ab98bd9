"""Sharing in Chromium: the copy-as codes on the clipboard are the JSON's `embed`, the Share
button hands the page to the system share sheet, the web app manifest makes Kitteh
installable, and the share target (what Android's share sheet posts) lands on an album."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from deploy.system import require
from tests.browser.conftest import CHROMIUM_ARGS
from tests.browser.support import PageWatch, api_upload, photo_crop, unique_copy
from tests.support import photo

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

FAKE_SHARE = """
window.__shared = [];
Object.defineProperty(navigator, "share", { configurable: true,
  value: async (data) => { window.__shared.push(data); } });
"""


def test_copy_buttons_put_the_json_embed_codes_on_the_clipboard(new_page, stack, api,
                                                                tmp_path):
    wide = unique_copy(photo("j10_fallenleaf.jpg"), tmp_path)  # 2560 px: every size
    image = api_upload(api, wide.read_bytes(), "copy me.jpg")
    read = api.get(f"/api/images/{image['token']}").json()
    assert read["embed"] == image["embed"]  # the upload's answer and every read agree
    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.url)
    page.goto(image["page_url"])
    direct = f"{stack.url}{image['variants']['monstrous']['url']}"
    expected = {
        "Copy page link": f"{stack.url}{image['page_url']}",
        "Copy image link": direct,
        "Copy Markdown code": read["embed"]["markdown"],
        "Copy BBCode code": read["embed"]["bbcode"],
        "Copy HTML code": read["embed"]["html"],
    }
    for name, text in expected.items():
        page.get_by_role("button", name=name).click()
        assert page.evaluate("navigator.clipboard.readText()") == text, name
    page_url = f"{stack.url}{image['page_url']}"
    assert read["embed"]["markdown"] == f"[![{image['name']}]({direct})]({page_url})"
    assert read["embed"]["bbcode"] == f"[url={page_url}][img]{direct}[/img][/url]"
    html = read["embed"]["html"]
    assert html.startswith(f'<a href="{page_url}"><img src="{direct}" srcset="')
    monstrous = image["variants"]["monstrous"]
    assert f' alt="{image["name"]}" width="{monstrous["width"]}"' \
           f' height="{monstrous["height"]}"></a>' in html
    srcset = re.findall(r"/(\w+)\.jpg (\d+)w", html)  # every size, by its width
    assert srcset == [(k, str(v["width"])) for k, v in image["variants"].items()]
    assert len(srcset) == 5
    assert "original" not in html
    # The HTML code shows the picture, as pasted into a page of someone else's.
    shown = new_page()
    shown.set_content(html)
    shown.wait_for_function("() => document.images[0].complete"
                            " && document.images[0].naturalWidth > 0")


def test_a_link_refused_by_the_server_says_why_in_the_upload_list(new_page, artifacts):
    page = new_page()
    page.goto("/")
    link = page.get_by_label("Or a link to a picture")
    link.fill("http://169.254.169.254/latest/meta-data/")
    with page.expect_response(lambda r: r.url.endswith("/api/images")) as answer:
        page.get_by_role("button", name="Fetch").click()
    assert answer.value.status == 422
    row = page.locator("#upload-list .upload")
    expect(row).to_have_attribute("data-state", "error")
    expect(row.locator(".upload-message")).to_contain_text(
        "169.254.169.254 is a link-local address")
    expect(link).to_have_value("")
    page.screenshot(path=artifacts / "home-link-refused.png")


def test_the_share_button_opens_the_system_share_sheet(new_page, api):
    image = api_upload(api, photo_crop(43, 900), "share me.jpg")
    plain = new_page()
    plain.goto(image["page_url"])
    expect(plain.get_by_role("button", name="Share this picture")).to_be_hidden()  # no API
    page = new_page()
    page.add_init_script(FAKE_SHARE)
    page.goto(image["page_url"])
    page.get_by_role("button", name="Share this picture").click()
    shared = page.evaluate("window.__shared")
    assert shared == [{"title": image["name"], "url": page.url}]


def test_the_manifest_makes_kitteh_installable(playwright, api, stack, tmp_path):
    response = api.get("/manifest.webmanifest")
    assert response.status == 200
    assert response.headers["content-type"].split(";")[0] == "application/manifest+json"
    manifest = response.json()
    assert manifest["display"] == "standalone" and manifest["theme_color"]
    for icon in manifest["icons"]:
        got = api.get(icon["src"])
        assert got.status == 200 and got.headers["content-type"] == "image/png", icon
    # A profile on disk: Chromium installs nothing from an off-the-record context (what
    # new_context makes), and says so ("in-incognito").
    chromium = require("chromium")["chromium"]
    context = playwright.chromium.launch_persistent_context(
        tmp_path / "profile", executable_path=str(chromium), args=CHROMIUM_ARGS,
        base_url=stack.url)
    try:
        watch = PageWatch(stack.url)
        watch.attach(context)
        page = context.new_page()
        page.goto("/")
        cdp = context.new_cdp_session(page)
        app = cdp.send("Page.getAppManifest")
        assert app["url"] == f"{stack.url}/manifest.webmanifest"
        assert app["errors"] == [], app["errors"]
        assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
        watch.check()
    finally:
        context.close()


def test_a_share_of_two_photos_lands_on_an_album_with_both(new_page, api, stack, tmp_path,
                                                           artifacts):
    target = api.get("/manifest.webmanifest").json()["share_target"]
    files = [unique_copy(photo("j07_wine.jpg"), tmp_path, "IMG_0001.jpg"),
             unique_copy(photo("p03_coffee.png"), tmp_path, "Screenshot.png")]
    page = new_page()
    page.goto("/")
    # What Android's share sheet does with an installed web app's share_target: a form
    # navigation, POST, multipart/form-data, the files under the name the manifest gives.
    page.evaluate("""(target) => {
        const form = document.createElement("form");
        form.id = "android-share";
        form.method = target.method;
        form.enctype = target.enctype;
        form.action = target.action;
        const input = document.createElement("input");
        input.type = "file";
        input.multiple = true;
        input.name = target.params.files[0].name;
        form.append(input);
        document.body.append(form);
    }""", target)
    page.set_input_files("#android-share input", files)
    with page.expect_navigation():
        page.evaluate("document.getElementById('android-share').submit()")
    expect(page).to_have_url(re.compile(r"/[A-Z][A-Za-z]+Album\?uploaded=1$"))
    pictures = page.locator(".album-picture")
    expect(pictures).to_have_count(2)
    page.wait_for_function("() => [...document.querySelectorAll('.album-picture picture img')]"
                           ".every((i) => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=artifacts / "album.png", full_page=True)
    token = page.url.split("/")[-1].split("Album")[0].lower()
    album = api.get(f"/api/albums/{token}").json()
    assert [i["original"]["filename"] for i in album["images"]] == [
        "IMG_0001.jpg", "Screenshot.png"]
    for picture, image in zip(pictures.all(), album["images"], strict=True):
        expect(picture.get_by_role("link", name=image["name"], exact=True)).to_have_attribute(
            "href", image["page_url"])
    # The browser that shared keeps the album's delete token (it came in the fragment).
    page.get_by_label("Delete its pictures too").check()
    page.get_by_role("button", name="Delete album").click()
    page.get_by_role("dialog", name="Delete this album?").get_by_role(
        "button", name="Delete").click()
    expect(page).to_have_url(f"{stack.url}/")
    assert api.get(f"/api/albums/{token}").status == 404
    for image in album["images"]:
        assert api.get(f"/api/images/{image['token']}").status == 404
