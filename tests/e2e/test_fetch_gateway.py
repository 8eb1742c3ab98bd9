"""Upload from a link through the gateway: a stack whose upload service may reach 127.0.0.2
only (KITTEH_FETCH_ALLOW_NETWORKS), a picture server listening there and on 127.0.0.1 and
[::1] with the same port, so a fetch that got through to a refused address would be seen.
Names are resolved by the system (/etc/hosts): no DNS query leaves the machine, and no
request goes to 169.254.169.254 (refused before any connection)."""

from __future__ import annotations

import asyncio
import io
import re
import shutil

import aiohttp
import pytest

from tests.e2e.access_support import stack_db
from tests.fetch_support import ALLOWED_NETWORK, PictureServer
from tests.stack import RunningStack, stack_env
from tests.support import open_dir, photo

pytestmark = pytest.mark.e2e
LIMIT = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def fetch_stack():
    data_dir = open_dir("kitteh-fetch-") / "var"
    running = RunningStack(data_dir, stack_env(
        data_dir, KITTEH_FETCH_ALLOW_NETWORKS=ALLOWED_NETWORK,
        KITTEH_MAX_UPLOAD_BYTES=str(LIMIT)))
    running.start()
    yield running
    status = running.stop()
    assert status == 0, "".join(running.output[-40:])
    shutil.rmtree(data_dir.parent, ignore_errors=True)


@pytest.fixture
async def picture():
    server = await PictureServer(photo("j11_cups_gps.jpg").read_bytes()).start()
    yield server
    await server.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


async def fetch(http, stack, url: str, as_form: bool = False, paced: bool = True):
    """One upload from a link; a 429 (this module's writes come quickly) is retried a second
    later unless ``paced`` is off."""
    for _ in range(60):
        if as_form:
            form = aiohttp.FormData()
            form.add_field("url", url)
            request = http.post(f"{stack.url}/api/images", data=form)
        else:
            request = http.post(f"{stack.url}/api/images", json={"url": url})
        async with request as response:
            status, body = response.status, await response.json()
        if status != 429 or not paced:
            break
        await asyncio.sleep(1)
    return status, body


def leftovers(stack) -> list:
    return list((stack.storage / "tmp").iterdir())


async def image_count(stack) -> int:
    conn = await stack_db(stack)
    try:
        return await conn.fetchval("SELECT count(*) FROM images")
    finally:
        await conn.close()


async def test_a_link_on_an_allowed_network_gives_the_same_image_as_the_file(
        http, fetch_stack, picture):
    status, body = await fetch(http, fetch_stack, picture.url("/cat.jpg"))
    assert status == 201, body
    assert body["original"]["filename"] == "cat.jpg" and body["delete_token"]
    assert body["embed"]["markdown"].startswith(f"[![{body['name']}](http")
    assert picture.seen() == ["/cat.jpg"]
    # The same bytes as a file: the same image (same sniffing, cleaning and dedup).
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(picture.picture), filename="other.jpg",
                   content_type="image/jpeg")
    async with http.post(f"{fetch_stack.url}/api/images", data=form) as response:
        assert response.status == 200
        same = await response.json()
    assert same["token"] == body["token"] and same["original"] == body["original"]
    async with http.get(f"{fetch_stack.url}{body['original']['url']}") as response:
        stored = await response.read()
    assert b"Exif" not in stored[:4096]  # metadata removed as for an upload
    # The form field does the same (the home page without JavaScript).
    status, again = await fetch(http, fetch_stack, picture.url("/photos/again.jpg"),
                                as_form=True)
    assert status == 200 and again["token"] == body["token"]


async def test_without_the_allow_list_the_same_link_is_refused(http, stack, picture):
    before = await image_count(stack)
    status, body = await fetch(http, stack, picture.url("/cat.jpg"))
    assert status == 422 and body["error"]["code"] == "fetch_refused", body
    assert "127.0.0.2 is a loopback address" in body["error"]["message"]
    assert picture.requests == []
    assert await image_count(stack) == before and not leftovers(stack)


@pytest.mark.parametrize("where, status, words", [
    ("http://[::1]/", 422, "::1 is a loopback address"),
    ("http://localhost/", 422, "localhost resolves to"),
    ("http://[::1]:{port}/cat.jpg", 422, "::1 is a loopback address"),
    ("http://127.0.0.1:{port}/cat.jpg", 422, "127.0.0.1 is a loopback address"),
    ("http://localhost:{port}/cat.jpg", 422, "localhost resolves to"),
    ("http://[::ffff:127.0.0.1]:{port}/cat.jpg", 422, "wraps 127.0.0.1"),
    ("http://169.254.169.254/latest/meta-data/", 422, "169.254.169.254 is a link-local"),
    ("http://10.0.0.1:{port}/cat.jpg", 422, "private"),
    ("file:///etc/passwd", 400, "Only http:// and https://"),
    ("ftp://127.0.0.2:{port}/cat.jpg", 400, "Only http:// and https://"),
    ("http://user:secret@127.0.0.2:{port}/cat.jpg", 400, "user name or password"),
    ("not a link", 400, ""),
])
async def test_refused_links_are_never_requested(http, fetch_stack, picture, where, status,
                                                 words):
    before = await image_count(fetch_stack)
    got, body = await fetch(http, fetch_stack, where.format(port=picture.port))
    assert got == status, body
    assert words in body["error"]["message"]
    assert picture.requests == []
    assert await image_count(fetch_stack) == before and not leftovers(fetch_stack)


async def test_a_redirect_to_a_refused_address_is_refused(http, fetch_stack, picture):
    for target in (f"http://127.0.0.1:{picture.port}/cat.jpg", "http://[::1]/cat.jpg",
                   "file:///etc/passwd"):
        status, body = await fetch(http, fetch_stack,
                                   picture.url(f"/redirect?to={target}"))
        assert status == 422 and body["error"]["code"] == "fetch_refused", body
    assert picture.seen("127.0.0.1") == [] and picture.seen("::1") == []
    assert len(picture.seen("127.0.0.2")) == 3
    # Allowed hops are followed, at most three of them.
    hop = picture.url("/cat.jpg")
    for _ in range(3):
        hop = picture.url(f"/redirect?to={hop}")
    status, body = await fetch(http, fetch_stack, hop)
    assert status in (200, 201), body
    status, body = await fetch(http, fetch_stack, picture.url(f"/redirect?to={hop}"))
    assert status == 422 and "more than 3" in body["error"]["message"]


async def test_a_body_over_the_limit_stops_at_the_limit(http, fetch_stack, picture):
    status, body = await fetch(http, fetch_stack, picture.url("/big.jpg"))
    assert status == 413 and body["error"]["code"] == "too_large", body
    # The server had 64 MiB to send; the fetch stopped reading at the 2 MiB limit (what it
    # wrote beyond is what the sockets' buffers took).
    assert picture.big_sent < 16 * 1024 * 1024, picture.big_sent
    assert not leftovers(fetch_stack)


async def test_not_a_picture_and_not_found_are_refused_like_uploads(http, fetch_stack,
                                                                   picture):
    status, body = await fetch(http, fetch_stack, picture.url("/missing.jpg"))
    assert status == 422 and body["error"]["code"] == "unreachable"
    assert "404" in body["error"]["message"]
    picture.picture = b"<html>not a cat</html>"
    status, body = await fetch(http, fetch_stack, picture.url("/cat.jpg"))
    assert status == 415 and body["error"]["code"] == "unsupported_image", body
    assert not leftovers(fetch_stack)


async def test_fetches_are_counted_and_rate_limited_like_uploads(http, fetch_stack, picture):
    port = fetch_stack.env["KITTEH_UPLOAD_PORT"]
    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
        metrics = await response.text()
    counts = {m[0]: float(m[1]) for m in re.findall(
        r'^kitteh_upload_fetches_total\{outcome="([a-z_]+)"\} ([0-9.e+]+)$', metrics, re.M)}
    assert counts["fetched"] >= 1 and counts["refused"] >= 5, counts
    await asyncio.sleep(11)  # the address's burst of 20 refilled at 2 a second
    statuses = [(await fetch(http, fetch_stack, "http://169.254.169.254/", paced=False))[0]
                for _ in range(40)]
    assert set(statuses) == {422, 429}, statuses
