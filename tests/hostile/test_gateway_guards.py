"""Delete tokens and response headers, through the gateway."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re

import aiohttp
import asyncpg
import pytest

from tests.hostile.corpus import small_image
from tests.hostile.traffic import client_from, database_url, source_address
from tests.support import file_form

pytestmark = pytest.mark.e2e


@pytest.fixture
async def http():
    async with client_from(source_address(500)) as session:
        yield session


async def upload(http, stack, data: bytes, name: str) -> dict:
    async with http.post(f"{stack.url}/api/images", data=file_form(data, name)) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def test_delete_token_is_random_hashed_and_checked_without_leaking(http, stack):
    image = await upload(http, stack, small_image("PNG", 5001), "mine.png")
    other = await upload(http, stack, small_image("PNG", 5002), "other.png")
    token = image["delete_token"]
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    assert token != other["delete_token"]

    conn = await asyncpg.connect(database_url(stack.data_dir))
    try:
        row = await conn.fetchrow("SELECT * FROM images WHERE token = $1", image["token"])
        assert row["delete_token_hash"] == hashlib.sha256(token.encode()).digest()
        assert not [k for k, v in row.items() if isinstance(v, str) and token in v]
    finally:
        await conn.close()

    async def delete(target: str, presented: str | None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {presented}"} if presented is not None else {}
        async with http.delete(f"{stack.url}/api/images/{target}", headers=headers) as response:
            return response.status, await response.json()

    wrong = await delete(image["token"], token[:-1] + ("A" if token[-1] != "A" else "B"))
    someone_elses = await delete(image["token"], other["delete_token"])
    unknown = await delete("nosuchkittyanywhere", token)
    assert wrong[0] == 403 and wrong == someone_elses == unknown, "a guess learns nothing"
    assert (await delete(image["token"], None))[0] == 403
    async with http.get(f"{stack.url}{image['original']['url']}") as response:
        assert response.status == 200, "refused deletes delete nothing"

    for target in (image, other):
        async with http.delete(
                f"{stack.url}/api/images/{target['token']}",
                headers={"Authorization": f"Bearer {target['delete_token']}"}) as response:
            assert response.status == 204
    assert not (stack.storage / image["original"]["url"].removeprefix("/i/")).parent.exists()
    # nginx keeps open descriptors for 2 s (open_file_cache_valid): gone soon after.
    for _ in range(50):
        async with http.get(f"{stack.url}{image['original']['url']}") as response:
            if response.status == 404:
                break
        await asyncio.sleep(0.1)
    assert response.status == 404


async def test_every_answer_says_nosniff_once(http, stack):
    image = await upload(http, stack, small_image("JPEG", 5003), "nosniff.jpg")
    async with http.get(f"{stack.url}/") as response:
        assets = re.findall(r'(?:href|src)="(/assets/[^"]+)"', await response.text())
    huge = file_form(b"\xff" * (41 * 1024 * 1024), "huge.jpg")
    requests = [
        ("GET", "/", None), ("GET", "/healthz", None), ("GET", "/api/limits", None),
        ("GET", "/api/images", None), ("GET", f"/api/images/{image['token']}", None),
        ("GET", image["page_url"], None), ("GET", image["download_url"], None),
        ("GET", image["original"]["url"], None), ("GET", image["variants"]["tiny"]["url"], None),
        ("GET", "/NoSuchKittyAnywhereKitty", None), ("GET", "/i/00/nothing.jpg", None),
        ("GET", "/api/images/nosuchkitty", None),
        ("POST", "/api/images", file_form(b"<html>not an image</html>", "x.jpg")),
        ("POST", "/upload", file_form(b"<html>not an image</html>", "x.jpg")),
        ("POST", "/api/images", huge),
        ("DELETE", f"/api/images/{image['token']}", None),
        *(("GET", asset, None) for asset in assets[:3]),
    ]
    seen = {}
    for method, path, data in requests:
        async with http.request(method, f"{stack.url}{path}", data=data,
                                allow_redirects=False) as response:
            await response.read()
            seen[f"{method} {path} {response.status}"] = response.headers.getall(
                "X-Content-Type-Options", [])
    assert {k: v for k, v in seen.items() if v != ["nosniff"]} == {}
    async with http.delete(f"{stack.url}/api/images/{image['token']}",
                           headers={"Authorization": f"Bearer {image['delete_token']}"}):
        pass


async def test_served_type_is_the_sniffed_one_never_the_clients(stack):
    async with aiohttp.ClientSession() as http:
        # a PNG that says it is HTML, named like a page
        form = file_form(small_image("PNG", 5004), "index.html", "text/html")
        async with http.post(f"{stack.url}/api/images", data=form) as response:
            image = await response.json()
        assert image["original"]["content_type"] == "image/png"
        assert image["original"]["filename"] == "index.html.png"
        assert image["original"]["url"].endswith(".png")
        for url in (image["original"]["url"], image["download_url"]):
            async with http.get(f"{stack.url}{url}") as response:
                assert response.headers["Content-Type"] == "image/png"
                assert response.headers["X-Content-Type-Options"] == "nosniff"
        async with http.delete(f"{stack.url}/api/images/{image['token']}",
                               headers={"Authorization": f"Bearer {image['delete_token']}"}):
            pass
