"""Video pages in Debian's Chromium: the <video> reaches readyState 2 (a frame to show) for an
iPhone-like MOV, an Android-like MP4 and a WebM, and for a GIF's MP4.

What Debian's Chromium plays, checked here rather than assumed: H.264 + AAC in MP4 (Debian
builds it with the proprietary codecs), AV1 and VP9 with Opus in WebM; not HEVC, so an
iPhone's original never plays in it, only its renditions do. Pages list AV1 first, so
Chromium plays that; the H.264 MP4 (what Safari and older browsers take) is played on its
own below, so both renditions are proven to play.
"""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image
from playwright.sync_api import APIRequestContext, expect

from tests.video_files import android_mp4, iphone_mov, webm_vp9

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
RENDITION_WAIT_SECONDS = 300


def playable(element_id: str) -> str:
    """HAVE_CURRENT_DATA: a decoded frame to show. A function, not an expression: the page's
    CSP refuses the eval Playwright would use for one."""
    return f"() => document.getElementById('{element_id}').readyState >= 2"


def played(api: APIRequestContext, data: bytes, name: str, content_type: str) -> dict:
    answer = api.post("/api/images", multipart={
        "file": {"name": name, "mimeType": content_type, "buffer": data}})
    assert answer.status == 201, answer.text()
    token = answer.json()["token"]
    deadline = time.monotonic() + RENDITION_WAIT_SECONDS
    while True:
        body = api.get(f"/api/images/{token}").json()
        if body["renditions"] and all(r["ready"] for r in body["renditions"].values()):
            return body
        assert time.monotonic() < deadline, body["renditions"]
        time.sleep(1)


def test_what_debians_chromium_can_play(new_page):
    page = new_page()
    page.goto("/")
    answers = page.evaluate("""() => { const v = document.createElement('video');
        return ['video/mp4; codecs="avc1.640028, mp4a.40.2"',
                'video/webm; codecs="av01.0.08M.08, opus"', 'video/webm; codecs="vp9, opus"',
                'video/mp4; codecs="hvc1.1.6.L93.B0"']
               .map(t => v.canPlayType(t)); }""")
    assert answers[:3] == ["probably"] * 3, answers
    assert answers[3] == "", "HEVC: only the renditions of an iPhone video can play"


@pytest.mark.parametrize(("make", "name", "content_type"), [
    (iphone_mov, "IMG_0042.MOV", "video/quicktime"),
    (android_mp4, "VID_20261207.mp4", "video/mp4"),
    (webm_vp9, "clip.webm", "video/webm"),
])
def test_video_pages_play_in_chromium(new_page, api, artifacts, make, name, content_type):
    body = played(api, make(), name, content_type)
    page = new_page()
    page.goto(body["page_url"])
    video = page.locator("#video")
    expect(video).to_be_visible()
    assert video.get_attribute("preload") == "metadata"
    assert video.get_attribute("controls") is not None
    assert video.get_attribute("playsinline") is not None
    assert video.get_attribute("poster").endswith(".jpg")
    # Sized before it loads: its box has the picture's ratio from the first layout.
    box = video.bounding_box()
    ratio = body["original"]["width"] / body["original"]["height"]
    assert box and abs(box["width"] / box["height"] - ratio) < 0.02
    video.evaluate("v => v.load()")
    page.wait_for_function(playable("video"),
                           timeout=30_000)
    assert video.evaluate("v => v.currentSrc").endswith("/play.webm")  # AV1: listed first
    assert video.evaluate("v => [v.videoWidth, v.videoHeight]") == \
        [body["renditions"]["av1"]["width"], body["renditions"]["av1"]["height"]]
    after = video.bounding_box()
    assert after and abs(after["height"] - box["height"]) < 1, "nothing moved"
    # The H.264 MP4 plays too, on its own.
    mp4 = body["renditions"]["mp4"]["url"]
    page.evaluate("""url => { const v = document.createElement('video'); v.id = 'mp4';
        v.muted = true; v.preload = 'auto'; v.src = url; document.body.append(v); }""", mp4)
    page.wait_for_function(playable("mp4"), timeout=30_000)
    page.screenshot(path=artifacts / f"video-{name.rsplit('.', 1)[1].lower()}.png")


def test_a_gifs_page_plays_its_mp4_muted_and_looping(new_page, api):
    frames = []
    for i in range(20):
        frame = Image.new("RGB", (300, 200), (235, 240, 250))
        frame.paste((200, 60, 30), (i * 12, 60, i * 12 + 50, 110))
        frames.append(frame.quantize(32))
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    body = played(api, gif.getvalue(), "dance.gif", "image/gif")
    page = new_page()
    page.goto(body["page_url"])
    video = page.locator("#video")
    page.wait_for_function(playable("video"), timeout=30_000)
    assert video.evaluate("v => [v.muted, v.loop, v.autoplay, v.controls]") == \
        [True, True, True, False]
    assert video.evaluate("v => v.currentSrc").endswith("/play.mp4")
    webp = body["variants"]["large"]["formats"]["webp"]["bytes"]
    assert body["renditions"]["mp4"]["bytes"] < webp


def test_a_video_chosen_on_the_home_page_uploads_and_gets_a_tile_with_a_play_mark(
        new_page, tmp_path, artifacts):
    clip = tmp_path / "cat clip.mp4"
    clip.write_bytes(android_mp4(0.6, (480, 270)))
    page = new_page()
    page.goto("/")
    expect(page.locator("#limits")).to_contain_text("videos up to 200 MB and 5 min")
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Choose pictures").click()
    chooser.value.set_files([clip])
    row = page.locator("#upload-list .upload")
    expect(row).to_have_attribute("data-state", "done", timeout=60_000)
    link = row.get_by_role("link").get_attribute("href")
    tile = page.locator(f'#grid .tile a[href="{link}"]')
    expect(tile.locator(".play-mark")).to_have_count(1)
    page.reload()  # the server draws the same tile
    expect(page.locator(f'#grid .tile a[href="{link}"] .play-mark')).to_have_count(1)
    page.locator("#grid").screenshot(path=artifacts / "video-tile.png")
