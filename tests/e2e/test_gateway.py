"""Through the gateway only, against the stacks the local runner started: one keeping its
pictures on the volume, one in an S3 bucket (SeaweedFS)."""

from __future__ import annotations

import asyncio
import io
import json
import re

import aiohttp
import pytest
from PIL import Image

from tests.support import file_form, photo

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(any_stack):
    return any_stack


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def upload(http, stack, path, name=None) -> dict:
    form = file_form(path.read_bytes(), name or path.name)
    async with http.post(f"{stack.url}/api/images", data=form) as response:
        assert response.status in (200, 201), await response.text()
        return await response.json()


async def test_home_links_fingerprinted_immutable_assets(http, stack):
    async with http.get(f"{stack.url}/") as response:
        assert response.status == 200
        html = await response.text()
    assert 'action="/upload"' in html and 'name="file"' in html
    assets = re.findall(r'(?:href|src)="(/assets/[^"]+)"', html)
    assert {a.rsplit(".", 1)[1] for a in assets} >= {"css", "js", "svg"}
    for asset in assets:
        assert re.search(r"-[0-9a-f]{12}\.[a-z]+$", asset), asset
        async with http.get(f"{stack.url}{asset}",
                            headers={"Accept-Encoding": "gzip"}) as response:
            assert response.status == 200
            assert "immutable" in response.headers["Cache-Control"]
            if asset.endswith((".css", ".js")):
                assert response.headers.get("Content-Encoding") == "gzip"


async def test_every_url_of_an_upload_answers(http, stack):
    body = await upload(http, stack, photo("j04_dragonfly.jpg"))
    expected = {"original": (4224, 3168), **{k: (v["width"], v["height"])
                                            for k, v in body["variants"].items()}}
    assert expected["monstrous"] == (600, 450)
    urls = {"original": body["original"]["url"],
            **{k: v["url"] for k, v in body["variants"].items()}}
    for kind, url in urls.items():
        async with http.get(f"{stack.url}{url}") as response:
            assert response.status == 200, kind
            assert response.headers["Content-Type"] == "image/jpeg"
            assert "immutable" in response.headers["Cache-Control"]
            with Image.open(io.BytesIO(await response.read())) as img:
                assert img.size == expected[kind], kind
    async with http.get(f"{stack.url}{body['page_url']}") as response:
        assert response.status == 200
        page = await response.text()
        assert body["name"] in page and body["variants"]["large"]["url"] in page
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    async with http.get(f"{stack.url}{body['page_url'].lower()}") as response:
        assert response.status == 200  # names match case-insensitively
    async with http.get(f"{stack.url}/api/images/{body['token']}") as response:
        assert response.status == 200
        fetched = await response.json()
        assert "delete_token" not in fetched and fetched["token"] == body["token"]


async def test_download_streams_original_as_attachment(http, stack):
    source = photo("p03_coffee.png")
    body = await upload(http, stack, source, "my coffee ☕.png")
    async with http.get(f"{stack.url}{body['download_url']}") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("attachment;")
        assert "filename*=UTF-8''my%20coffee%20%E2%98%95.png" in disposition
        data = await response.read()
    # The stored original: the upload's pixels, its metadata (here a tIME chunk) removed.
    async with http.get(f"{stack.url}{body['original']['url']}") as response:
        assert data == await response.read() and len(data) == body["original"]["bytes"]
    with Image.open(io.BytesIO(data)) as served, Image.open(source) as uploaded:
        assert served.tobytes() == uploaded.tobytes()


async def test_form_upload_follows_303_to_its_page(http, stack):
    form = file_form(photo("p01_chelsea.png").read_bytes(), "chelsea.png", "image/png")
    async with http.post(f"{stack.url}/upload", data=form, allow_redirects=False) as response:
        assert response.status == 303
        location = response.headers["Location"]
    assert re.match(r"^/[A-Za-z0-9]+Kitty\?(uploaded|existing)=1$", location), location
    async with http.get(f"{stack.url}{location}") as response:
        page = await response.text()
    assert response.status == 200
    src = re.search(r'<img id="picture" src="([^"]+)"', page).group(1)
    async with http.get(f"{stack.url}{src}") as response:
        assert response.status == 200 and response.headers["Content-Type"] == "image/png"


async def test_lost_variant_is_made_again_on_demand(http, stack):
    body = await upload(http, stack, photo("j03_seeding.jpg"))
    url = body["variants"]["large"]["url"]
    for _ in range(100):  # the upload answered; the file is written by then or soon after
        if await stack.files.read(url) is not None:
            break
        await asyncio.sleep(0.1)
    await stack.files.remove(url)
    async with http.get(f"{stack.url}{url}") as response:
        assert response.status == 200
        data = await response.read()
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (300, 169)
    assert await stack.files.read(url) == data, "made on demand and written back to the store"


async def test_upload_over_the_byte_limit_gets_413_from_the_gateway(http, stack):
    async with http.get(f"{stack.url}/api/limits") as response:
        limit = (await response.json())["max_upload_bytes"]
    form = file_form(b"\xff" * (limit + 1024), "huge.jpg")
    async with http.post(f"{stack.url}/api/images", data=form) as response:
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "too_large"
    async with http.post(f"{stack.url}/upload", data=form) as response:
        assert response.status == 413
        assert "too large" in await response.text()
    # No upload temp file left (in S3 mode, resize's read copies of originals being made
    # into variants come and go beside them: not this upload's).
    assert not list((stack.storage / "tmp").glob("upload-*"))


async def test_refused_form_upload_shows_the_form_with_a_message(http, stack):
    form = file_form(b"just some text, not a picture", "notes.jpg")
    async with http.post(f"{stack.url}/upload", data=form) as response:
        assert response.status == 415
        page = await response.text()
    assert 'role="alert"' in page and "not an image" in page and 'action="/upload"' in page


async def test_unknown_page_is_a_helpful_404(http, stack):
    async with http.get(f"{stack.url}/NoSuchCatAnywhereKitty") as response:
        assert response.status == 404
        assert 'href="/"' in await response.text()
    async with http.get(f"{stack.url}/api/images/nosuchcat") as response:
        assert response.status == 404
        assert json.loads(await response.text())["error"]["code"] == "not_found"


async def test_every_part_is_healthy(http, stack):
    async with http.get(f"{stack.url}/healthz") as response:
        assert response.status == 200
    # Readiness reports name database errors and paths: not published through the gateway.
    async with http.get(f"{stack.url}/readyz") as response:
        assert response.status == 404


async def test_without_tls_or_a_files_url_any_host_serves_everything_and_no_hsts(http, stack):
    body = await upload(http, stack, photo("j03_seeding.jpg"))
    for path in ("/", body["page_url"], body["original"]["url"], body["download_url"]):
        for host in ("127.0.0.1", "cats.example", "images.example"):
            async with http.get(f"{stack.url}{path}", headers={"Host": host}) as response:
                assert response.status == 200, (path, host)
                # HSTS only over HTTPS: over plain HTTP it would be ignored, and misleading.
                assert "Strict-Transport-Security" not in response.headers, path
