"""Videos through the gateway (nginx, the three services, Postgres, as users run them; the
pictures on a volume, and in an S3 bucket): 201,
renditions made, every byte served free of the location, files served with Range, the web
MP4 upright and at most 1280 wide, refusals clear and leaving nothing behind."""

from __future__ import annotations

import asyncio
import io
import json
import re

import aiohttp
import av
import pytest
from PIL import Image

from tests.support import file_form
from tests.video_files import PRIVATE, android_mp4, iphone_mov, webm_vp9

pytestmark = pytest.mark.e2e
RENDITION_WAIT_SECONDS = 300


@pytest.fixture
def stack(any_stack):
    return any_stack


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def upload(http, stack, data: bytes, filename: str, content_type: str) -> tuple[int, dict]:
    async with http.post(f"{stack.url}/api/images",
                         data=file_form(data, filename, content_type)) as response:
        return response.status, await response.json()


async def when_played(http, stack, token: str) -> dict:
    """The JSON image once every rendition is ready (polling the API: the event a client
    sees)."""
    deadline = asyncio.get_running_loop().time() + RENDITION_WAIT_SECONDS
    while True:
        async with http.get(f"{stack.url}/api/images/{token}") as response:
            body = await response.json()
        if body["renditions"] and all(r["ready"] for r in body["renditions"].values()):
            return body
        assert asyncio.get_running_loop().time() < deadline, body["renditions"]
        await asyncio.sleep(1)


async def served(http, stack, url: str, **headers) -> tuple[int, bytes, dict]:
    async with http.get(f"{stack.url}{url}", headers=headers) as response:
        return response.status, await response.read(), dict(response.headers)


@pytest.mark.parametrize(("make", "filename", "content_type", "upright"), [
    (iphone_mov, "IMG_0042.MOV", "video/quicktime", (240, 320)),
    (android_mp4, "VID_20261207.mp4", "video/mp4", (1440, 810)),
    (webm_vp9, "clip.webm", "video/webm", (320, 240)),
])
async def test_videos_play_from_the_gateway_without_their_location(
        http, stack, make, filename, content_type, upright):
    status, body = await upload(http, stack, make(), filename, content_type)
    assert status == 201, body
    assert body["kind"] == "video" and body["duration"] == pytest.approx(1.0, abs=0.1)
    body = await when_played(http, stack, body["token"])
    urls = {body["original"]["url"]: content_type, body["download_url"]: content_type,
            body["page_url"]: "text/html"}
    for rendition in body["renditions"].values():
        urls[rendition["url"]] = rendition["content_type"]
    for variant in body["variants"].values():
        for file in variant["formats"].values():
            urls[file["url"]] = file["content_type"]
    for url, expected_type in urls.items():
        status, data, headers = await served(http, stack, url)
        assert status == 200, url
        assert headers["Content-Type"].startswith(expected_type), (url, headers)
        assert not [p for p in PRIVATE if p in data], url

    mp4 = body["renditions"]["mp4"]
    _, page, _ = await served(http, stack, body["page_url"])
    assert f'<meta property="og:video" content="{stack.url}{mp4["url"]}">'.encode() in page
    status, data, _ = await served(http, stack, mp4["url"])
    with av.open(io.BytesIO(data)) as played:
        frame = next(played.decode(video=0))
    width = min(upright[0], 1280)
    assert (frame.width, frame.height) == (mp4["width"], mp4["height"]) == \
        (width, round(width * upright[1] / upright[0]) // 2 * 2)
    assert frame.rotation == 0
    # Seeking in a player is a Range request.
    status, part, headers = await served(http, stack, mp4["url"], Range="bytes=100-199")
    assert status == 206 and part == data[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(data)}"


async def test_an_animations_page_plays_its_mp4_smaller_than_its_animated_webp(http, stack):
    frames = []
    for i in range(24):
        frame = Image.new("RGB", (400, 300), (240, 235, 220))
        frame.paste((30, 90, 200), (i * 12, 100, i * 12 + 70, 170))
        frames.append(frame.quantize(64))
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=60, loop=0)
    status, body = await upload(http, stack, gif.getvalue(), "moving.gif", "image/gif")
    assert status == 201, body
    body = await when_played(http, stack, body["token"])
    mp4 = body["renditions"]["mp4"]
    _, page, _ = await served(http, stack, body["page_url"])
    video = re.search(rb"<video [^>]*>", page).group(0)
    assert b"autoplay muted loop" in video and b"playsinline" in video
    assert f'src="{mp4["url"]}"'.encode() in page
    webp = max((v for v in body["variants"].values() if v["width"] <= mp4["width"]),
               key=lambda v: v["width"])["formats"]["webp"]
    assert mp4["bytes"] < webp["bytes"], (mp4, webp)


async def test_refused_videos_are_clear_4xx_through_the_gateway(http, stack):
    data = android_mp4()
    status, body = await upload(http, stack, data[: len(data) // 3], "cut.mp4", "video/mp4")
    assert status == 415 and "damaged or truncated" in body["error"]["message"]
    status, body = await upload(http, stack, b"not a film at all " * 50, "film.mp4",
                                "video/mp4")
    assert status == 415 and body["error"]["code"] == "unsupported_image"
    assert not list((stack.storage / "tmp").glob("upload-*"))


async def test_sharex_uploads_videos_as_files_too(http, stack):
    status, data, _ = await served(http, stack, "/api/sharex.sxcu")
    config = json.loads(data)
    assert "FileUploader" in config["DestinationType"]  # ShareX sends screen recordings there
    assert config["FileFormName"] == "file"
    status, body = await upload(http, stack, webm_vp9(2.0), "ShareX_recording.webm",
                                "video/webm")
    assert status == 201 and body["variants"]["large"]["url"]  # the sxcu's thumbnail
