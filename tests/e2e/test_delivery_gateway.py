"""Delivery through the gateway: compression, AVIF/WebP files from disk (and on demand),
absolute share URLs from the host the visitor used."""

from __future__ import annotations

import asyncio
import gzip
import re

import aiohttp
import pytest

from services.gallery.app import TEMPLATES
from tests.support import file_form, photo

pytestmark = pytest.mark.e2e
STATIC = TEMPLATES.parent / "static"
GZIP = {"Accept-Encoding": "gzip"}
PLAIN = {"Accept-Encoding": "identity"}


@pytest.fixture
async def http():
    # Raw bodies: what went over the wire, to compare with the precompressed files.
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session


async def upload_ready(http, stack, name="j10_fallenleaf.jpg") -> dict:
    """Upload, then wait until the background has made the AVIF of every size."""
    form = file_form(photo(name).read_bytes(), name)
    async with http.post(f"{stack.url}/api/images", data=form, headers=PLAIN) as response:
        assert response.status in (200, 201), await response.text()
        body = await response.json()
    for _ in range(300):
        async with http.get(f"{stack.url}/api/images/{body['token']}",
                            headers=PLAIN) as response:
            image = await response.json()
        if all("avif" in v["formats"] for v in image["variants"].values()):
            return image
        await asyncio.sleep(0.1)
    raise AssertionError(f"no AVIF files made for {body['name']}")


async def test_text_is_gzipped_images_are_not(http, stack):
    image = await upload_ready(http, stack)
    async with http.get(f"{stack.url}/", headers=GZIP) as response:
        html = gzip.decompress(await response.read()).decode()
        assert response.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in response.headers.get("Vary", "")
    assets = re.findall(r'(?:href|src)="(/assets/[^"]+\.(?:css|js|svg))"', html)
    assert {a.rsplit(".", 1)[1] for a in assets} == {"css", "js", "svg"}
    for url in (image["page_url"], f"/api/images/{image['token']}", "/api/images?limit=2",
                *assets):
        async with http.get(stack.url + url, headers=GZIP) as response:
            assert response.status == 200, url
            assert response.headers.get("Content-Encoding") == "gzip", url
            gzip.decompress(await response.read())
    for url in (image["variants"]["large"]["url"],
                image["variants"]["large"]["formats"]["avif"]["url"]):
        async with http.get(stack.url + url, headers=GZIP) as response:
            assert response.status == 200 and "Content-Encoding" not in response.headers
    # Without Accept-Encoding: plain, as before.
    async with http.get(stack.url + image["page_url"], headers=PLAIN) as response:
        assert "Content-Encoding" not in response.headers
        assert b"<picture>" in await response.read()


async def test_fingerprinted_assets_are_sent_precompressed(http, stack):
    async with http.get(f"{stack.url}/", headers=PLAIN) as response:
        html = (await response.read()).decode()
    for asset in re.findall(r'(?:href|src)="/assets/([^"]+\.(?:css|js))"', html):
        plain = re.sub(r"-[0-9a-f]{12}(\.[a-z]+)$", r"\1", asset)
        async with http.get(f"{stack.url}/assets/{asset}", headers=GZIP) as response:
            raw = await response.read()
        # Exactly the build's gzip -9 (deploy/build_assets.py), not nginx's on-the-fly gzip.
        assert raw == gzip.compress((STATIC / plain).read_bytes(), 9, mtime=0), asset


async def test_modern_files_come_from_disk_and_on_demand(http, stack):
    image = await upload_ready(http, stack, "j04_dragonfly.jpg")
    wide = image["variants"]["wide"]
    for name, content_type in (("avif", "image/avif"), ("webp", "image/webp")):
        entry = wide["formats"].get(name)
        if entry is None:  # dropped as larger than the JPEG
            continue
        async with http.get(stack.url + entry["url"]) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == content_type
            assert "immutable" in response.headers["Cache-Control"]
            assert len(await response.read()) == entry["bytes"]
    # Lost (one not requested yet: nginx keeps descriptors of files it served open a while).
    avif = image["variants"]["huge"]["formats"]["avif"]["url"]
    (stack.storage / avif.removeprefix("/i/")).unlink()  # made again on request
    async with http.get(stack.url + avif) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "image/avif"
        assert (await response.read())[4:12] == b"ftypavif"
    assert (stack.storage / avif.removeprefix("/i/")).exists()


async def test_share_urls_are_absolute_on_the_host_used(http, stack):
    image = await upload_ready(http, stack, "j07_wine.jpg")
    port = stack.url.rsplit(":", 1)[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):  # within one page-cache second
        async with http.get(stack.url + image["page_url"],
                            headers={"Host": host, **PLAIN}) as response:
            html = (await response.read()).decode()
        og_url = re.search(r'<meta property="og:url" content="([^"]+)"', html)[1]
        og_image = re.search(r'<meta property="og:image" content="([^"]+)"', html)[1]
        assert og_url == f"http://{host}{image['page_url']}"
        assert og_image == f"http://{host}{image['variants']['wide']['url']}"
    # A client cannot choose the host through the forwarded header: the gateway overwrites it.
    async with http.get(stack.url + image["page_url"],
                        headers={"X-Forwarded-Host": "evil.example", **PLAIN}) as response:
        assert "evil.example" not in (await response.read()).decode()
