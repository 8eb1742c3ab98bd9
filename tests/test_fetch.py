"""Upload from a link, through the upload app's factory, with names resolved by an injected
lookup (no DNS: a made-up name stands for any name that resolves to a given address) and a
picture server on loopback. What the gateway adds (rate limit, the whole stack) is in
tests/e2e/test_sharing.py."""

from __future__ import annotations

import asyncio
import socket

import pytest

from services.resize.app import create_app as create_resize
from services.upload.app import create_app as create_upload
from services.upload.fetch import NAME_LOOKUP
from services.upload.fetch_policy import FetchPolicy
from shared.config import ResizeConfig, UploadConfig
from tests.fetch_support import ALLOWED_NETWORK, PictureServer
from tests.support import file_form, image_bytes

NAMES = {
    "cats.test": ["127.0.0.2"],  # on the allowed network
    "loopback.test": ["127.0.0.1"],  # a name resolving to 127.0.0.1
    "mixed.test": ["127.0.0.2", "127.0.0.1"],  # one good address is not enough
    "metadata.test": ["169.254.169.254"],
    "mapped.test": ["::ffff:127.0.0.1"],
}


@pytest.fixture
async def picture():
    server = await PictureServer(image_bytes("JPEG", size=(120, 90), color=(10, 200, 30))).start()
    yield server
    await server.stop()


@pytest.fixture
async def fetcher(aiohttp_client, aiohttp_server, env, db):
    looked_up: list[str] = []

    async def lookup(host: str, port: int) -> list[str]:
        looked_up.append(host)
        if host not in NAMES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return NAMES[host]

    resize = await aiohttp_server(create_resize(ResizeConfig.from_env(env)))
    config = UploadConfig.from_env({**env, "KITTEH_RESIZE_URL": str(resize.make_url("")),
                                    "KITTEH_FETCH_ALLOW_NETWORKS": ALLOWED_NETWORK})
    app = create_upload(config)
    app[NAME_LOOKUP] = lookup
    client = await aiohttp_client(app)
    client.looked_up = looked_up
    return client


async def test_a_name_on_an_allowed_network_is_fetched(fetcher, picture, db):
    response = await fetcher.post("/api/images", json={
        "url": f"http://cats.test:{picture.port}/photos/tabby%20cat.jpg"})
    body = await response.json()
    assert response.status == 201, body
    assert body["original"]["filename"] == "tabby cat.jpg"
    assert picture.seen("127.0.0.2") == ["/photos/tabby%20cat.jpg"]
    again = await fetcher.post("/api/images", data=file_form(picture.picture))
    assert again.status == 200 and (await again.json())["token"] == body["token"]


@pytest.mark.parametrize("name, words", [
    ("loopback.test", "loopback.test resolves to 127.0.0.1 is a loopback address"),
    ("mixed.test", "mixed.test resolves to 127.0.0.1 is a loopback address"),
    ("metadata.test", "169.254.169.254 is a link-local address"),
    ("mapped.test", "wraps 127.0.0.1"),
])
async def test_names_resolving_to_refused_addresses_are_refused_unseen(fetcher, picture, db,
                                                                       storage_dir, name,
                                                                       words):
    response = await fetcher.post("/api/images",
                                  json={"url": f"http://{name}:{picture.port}/cat.jpg"})
    body = await response.json()
    assert response.status == 422, body
    assert body["error"]["code"] == "fetch_refused" and words in body["error"]["message"]
    assert fetcher.looked_up == [name]  # resolved once, never again for the connection
    assert picture.requests == []
    assert await db.fetchval("SELECT count(*) FROM images") == 0
    assert not list((storage_dir / "tmp").iterdir())


async def test_refused_addresses_are_never_connected_to(fetcher, picture, db, monkeypatch):
    """Not even a connection attempt (no SYN to 169.254.169.254): every connection the loop
    opens during these fetches is recorded."""
    loop = asyncio.get_running_loop()
    opened: list[str] = []
    sock_connect = loop.sock_connect

    async def recording(sock, address):  # how aiohttp (aiohappyeyeballs) connects
        if address[1] != fetcher.port:  # not the test's own client calling the app
            opened.append(address[0])
        return await sock_connect(sock, address)

    monkeypatch.setattr(loop, "sock_connect", recording)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://metadata.test/",
                "http://[::ffff:169.254.169.254]/", f"http://loopback.test:{picture.port}/",
                f"http://[::1]:{picture.port}/cat.jpg"):
        response = await fetcher.post("/api/images", json={"url": url})
        assert response.status == 422, await response.text()
    assert opened == []
    assert picture.requests == []
    # The same recording sees an allowed fetch connect (it would see a refused one too).
    response = await fetcher.post("/api/images",
                                  json={"url": f"http://cats.test:{picture.port}/cat.jpg"})
    assert response.status == 201
    assert "127.0.0.2" in opened


async def test_an_unknown_name_is_unreachable(fetcher, db):
    response = await fetcher.post("/api/images", json={"url": "http://nowhere.test/cat.jpg"})
    body = await response.json()
    assert response.status == 422 and body["error"]["code"] == "unreachable", body
    assert "nowhere.test does not resolve" in body["error"]["message"]


async def test_a_redirect_to_a_name_of_a_refused_address_is_refused(fetcher, picture, db):
    target = f"http://loopback.test:{picture.port}/cat.jpg"
    response = await fetcher.post("/api/images", json={
        "url": f"http://cats.test:{picture.port}/redirect?to={target}"})
    body = await response.json()
    assert response.status == 422 and "loopback" in body["error"]["message"], body
    assert picture.seen("127.0.0.1") == [] and len(picture.seen("127.0.0.2")) == 1


def test_the_policy_names_each_kind_of_address():
    policy = FetchPolicy()
    expected = {
        "127.0.0.1": "loopback", "::1": "loopback", "10.1.2.3": "private",
        "192.168.1.1": "private", "172.16.0.1": "private", "169.254.169.254": "link-local",
        "fe80::1": "link-local", "224.0.0.1": "multicast", "ff02::1": "multicast",
        "240.0.0.1": "reserved", "fd00::1": "unique-local", "0.0.0.0": "unspecified",
        "::ffff:10.0.0.1": "wraps 10.0.0.1", "64:ff9b::a9fe:a9fe": "wraps 169.254.169.254",
        "2002:7f00:1::": "wraps 127.0.0.1", "100.64.0.1": "carrier-grade NAT",
    }
    for address, words in expected.items():
        why = policy.refusal(address)
        assert why is not None and words in why, (address, why)
    for address in ("93.184.215.14", "2606:4700:4700::1111", "::ffff:93.184.215.14"):
        assert policy.refusal(address) is None, address
