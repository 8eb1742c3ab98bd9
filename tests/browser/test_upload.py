"""Uploading from the home page, as a person does it: the file chooser, progress, links,
errors in words, and the plain form when JavaScript is off."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.support import all_images, photo_crop, unique_copy, upload_traces
from tests.support import photo

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SCRIPTS = Path(__file__).with_name("js")
RECORD_PROGRESS = (SCRIPTS / "record_progress.js").read_text()
DROP_AND_PASTE = (SCRIPTS / "drop_and_paste.js").read_text()
PAGE_NAME = re.compile(r"^/[A-Z][A-Za-z]+Kitty$")


def choose_files(page, paths) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Choose pictures").click()
    assert chooser.value.is_multiple()
    chooser.value.set_files(paths)


def throttle_uploads(page, bytes_per_second: int) -> None:
    """Slow the upload link (Chrome's network emulation) so progress has steps to show."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1,
        "uploadThroughput": bytes_per_second})


def test_two_photos_upload_with_progress_and_open_on_their_page(new_page, stack, tmp_path):
    files = [unique_copy(photo("j10_fallenleaf.jpg"), tmp_path, "fallen leaf.jpg"),
             unique_copy(photo("p01_chelsea.png"), tmp_path, "chelsea.png")]
    page = new_page()
    page.add_init_script(RECORD_PROGRESS)
    page.goto("/")
    throttle_uploads(page, 1024 * 1024)
    choose_files(page, files)

    rows = page.locator("#upload-list .upload:not(.album-row)")
    expect(rows).to_have_count(2)
    for row, path in zip(rows.all(), files, strict=True):
        expect(row.locator(".upload-name")).to_have_text(path.name)
        expect(row.locator(".upload-thumb img")).to_be_visible()  # the local preview
        expect(row).to_have_attribute("data-state", "done", timeout=30_000)
        expect(row.locator(".upload-message")).to_contain_text("Uploaded as")
        expect(row.get_by_role("link")).to_have_attribute("href", PAGE_NAME)
        value, maximum = row.locator("progress").evaluate("bar => [bar.value, bar.max]")
        assert value == maximum > path.stat().st_size  # the whole multipart body was sent

    # The bars were driven by the browser's own upload progress events, step by step.
    recorded = {r["file"]: r for r in page.evaluate("window.__uploads")}
    for row, path in zip(rows.all(), files, strict=True):
        events = recorded[path.name]
        assert events["loaded"][-1] == events["total"] == int(row.get_attribute("data-total"))
    big = recorded["fallen leaf.jpg"]["loaded"]
    assert len(big) >= 3 and big == sorted(big), big

    # Chosen together, they became one album (issue 20), which leads the grid as one tile.
    links = [row.get_by_role("link").get_attribute("href") for row in rows.all()]
    album_row = page.locator("#upload-list .album-row")
    expect(album_row).to_have_attribute("data-state", "done", timeout=30_000)
    expect(album_row.locator(".upload-message")).to_contain_text("Album: ")
    album_url = album_row.get_by_role("link").get_attribute("href")
    assert re.fullmatch(r"/[A-Z][A-Za-z]+Album", album_url)
    tiles = page.locator("#grid .tile a")
    expect(tiles.first).to_have_attribute("href", album_url)
    album = page.context.request.get(f"/api/albums/{album_url[1:-5].lower()}").json()
    assert [i["page_url"] for i in album["images"]] == links  # in the order chosen

    rows.first.get_by_role("link").click()
    expect(page).to_have_url(re.compile(re.escape(links[0]) + "$"))
    picture = page.locator("#picture")
    expect(picture).to_be_visible()
    page.wait_for_function("() => { const i = document.getElementById('picture');"
                           " return i.complete && i.naturalWidth > 0; }")
    current, srcset, sources = picture.evaluate(
        "i => [i.currentSrc, i.srcset, [...i.parentElement.querySelectorAll('source')]"
        ".map(s => s.srcset)]")
    files = [entry.split()[0].rsplit("/", 1)[1] for entry in srcset.split(",")]
    assert files == ["tiny.jpg", "large.jpg", "monstrous.jpg", "wide.jpg", "huge.jpg"]
    candidates = [stack.url + entry.split()[0]
                  for candidate_set in (srcset, *sources) for entry in candidate_set.split(",")]
    # One of the sizes (in AVIF or WebP once made), never the original.
    assert current in candidates and "/original." not in current
    expect(page.locator(".facts")).to_contain_text("2,560 × 1,600 px")
    expect(page.locator(".facts")).to_contain_text("JPEG")
    expect(page.locator(".filename")).to_contain_text("fallen leaf.jpg")


def test_files_dropped_anywhere_or_pasted_upload_too(new_page):
    page = new_page()
    page.goto("/")
    form = page.locator("#upload-form")

    def send(kind: str, target: str, data: bytes, name: str) -> list[bool]:
        return page.evaluate(DROP_AND_PASTE, {
            "kind": kind, "target": target, "base64": base64.b64encode(data).decode(),
            "name": name, "type": "image/jpeg"})

    # Dragging files over any part of the page lights up the drop zone; the page keeps the
    # drop (default prevented) instead of letting the browser open the file.
    assert send("enter", "#grid", b"x", "x.jpg") == [False, False]
    expect(form).to_have_class(re.compile(r"\bdragging\b"))
    assert send("drop", "#recent-title", photo_crop(2, 640), "dropped.jpg") == [False]
    expect(form).not_to_have_class(re.compile(r"\bdragging\b"))
    # A pasted screenshot is "image.png" in every browser: it gets a name of its own.
    assert send("paste", "body", photo_crop(4, 640), "image.png") == [False]

    rows = page.locator("#upload-list .upload")
    expect(rows).to_have_count(2)
    expect(rows.nth(0).locator(".upload-name")).to_have_text("dropped.jpg")
    expect(rows.nth(1).locator(".upload-name")).to_have_text(
        re.compile(r"^pasted-\d{4}-\d{2}-\d{2}-\d{6}\.jpg$"))
    for row in rows.all():
        expect(row).to_have_attribute("data-state", "done", timeout=30_000)
        expect(row.get_by_role("link")).to_have_attribute("href", PAGE_NAME)


def test_text_file_named_jpg_is_refused_in_words_and_nothing_is_stored(
        new_page, stack, api, tmp_path):
    fake = tmp_path / "holiday.jpg"
    fake.write_text("Dear diary, today I did not take a picture.\n" * 20)
    images_before = all_images(api)
    files_before = upload_traces(stack.storage)

    page = new_page()
    page.goto("/")
    with page.expect_response(lambda r: r.url.endswith("/api/images")) as answer:
        choose_files(page, [fake])
    assert answer.value.status == 415
    row = page.locator("#upload-list .upload")
    expect(row).to_have_attribute("data-state", "error")
    expect(row.locator(".upload-message")).to_have_text(
        "Not a picture or video Kitteh can read. Choose a JPEG, PNG, GIF, WebP, AVIF, HEIC, MP4, "
        "MOV or WebM file.")
    expect(row.get_by_role("link")).to_have_count(0)
    expect(row.get_by_role("button", name="Try again")).to_be_hidden()  # retrying cannot help

    # (Earlier images gain AVIF and WebP files meanwhile, in the background.)
    assert [i["token"] for i in all_images(api)] == [i["token"] for i in images_before]
    assert upload_traces(stack.storage) == files_before
    assert not list((stack.storage / "tmp").glob("*"))


def test_file_over_the_published_limit_is_refused_before_sending(new_page, api, tmp_path):
    limit = api.get("/api/limits").json()["max_upload_bytes"]
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as f:  # sparse: the size is all that matters here
        f.write(photo("j07_wine.jpg").read_bytes()[:1024])
        f.truncate(limit + 1)
    page = new_page()
    sent = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    with page.expect_response(lambda r: r.url.endswith("/api/limits")) as published:
        page.goto("/")  # the page asks for the limits the server publishes
    assert published.value.json()["max_upload_bytes"] == limit
    choose_files(page, [huge])
    row = page.locator("#upload-list .upload")
    expect(row).to_have_attribute("data-state", "error")
    megabytes = limit / 1024 / 1024
    expect(row.locator(".upload-message")).to_have_text(
        f"Too large: the limit is {megabytes:.1f}".removesuffix(".0") + " MB.")
    assert sent == []
    row.get_by_role("button", name="Remove from the list").click()
    expect(page.locator("#upload-list")).to_be_hidden()


def test_without_javascript_the_form_uploads_and_lands_on_the_page(new_page, tmp_path):
    page = new_page(java_script_enabled=False)
    page.goto("/")
    expect(page.get_by_role("button", name="Upload")).to_be_visible()
    page.set_input_files("#file", unique_copy(photo("p03_coffee.png"), tmp_path, "coffee.png"))
    page.get_by_role("button", name="Upload").click()

    expect(page).to_have_url(re.compile(r"/[A-Z][A-Za-z]+Kitty\?uploaded=1$"))
    expect(page.locator(".flash")).to_contain_text("Uploaded")
    expect(page.locator("#picture")).to_be_visible()
    expect(page.locator(".filename")).to_contain_text("coffee.png")
    expect(page.get_by_role("button", name=re.compile("Copy"))).to_have_count(0)  # need JS
    # Absolute, on the host the page was asked for (share URLs must be), even without JS.
    expect(page.get_by_label("Page link")).to_have_value(
        re.compile(r"^http://127\.0\.0\.1:[0-9]+/[A-Z][A-Za-z]+Kitty$"))

    # A refused file comes back as the form with the reason, still without JavaScript.
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture at all")
    page.goto("/")
    page.set_input_files("#file", text)
    with page.expect_response(lambda r: r.url.endswith("/upload")) as answer:
        page.get_by_role("button", name="Upload").click()
    assert answer.value.status == 415
    expect(page.get_by_role("alert")).to_contain_text("not an image")
    expect(page.locator("#upload-form")).to_be_visible()
