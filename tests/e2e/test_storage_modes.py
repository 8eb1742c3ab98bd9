"""What is particular to where the pictures are kept, through the gateway of a stack in each
storage mode: byte ranges, delete, the sweeper; in S3 mode, the gateway's file cache, the
store in /readyz, and a data directory that keeps nothing of the pictures."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import aiohttp
import asyncpg
import pytest

from services.resize.sweeper import sweep
from shared.config import Env, StoreConfig
from shared.storage import open_store, scratch_for
from tests.reliability.harness import database_url_of, post_image, unique_photo, wait_until
from tests.support import REPO

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack(any_stack):
    return any_stack


async def test_byte_ranges_of_files_and_downloads(stack):
    async with aiohttp.ClientSession() as http:
        status, body = await post_image(http, stack.url, unique_photo(201))
        assert status == 201
        whole = await stack.files.read(body["original"]["url"])
        for url in (body["original"]["url"], body["download_url"]):
            async with http.get(stack.url + url, headers={"Range": "bytes=10-109"}) as answer:
                assert answer.status == 206, url
                assert answer.headers["Content-Range"] == f"bytes 10-109/{len(whole)}"
                assert await answer.read() == whole[10:110]


async def test_delete_removes_every_stored_file_and_stops_serving(stack):
    async with aiohttp.ClientSession() as http:
        status, body = await post_image(http, stack.url, unique_photo(202))
        assert status == 201
        urls = [body["original"]["url"], *(v["url"] for v in body["variants"].values())]
        for url in urls:  # served (and, in S3 mode, now in the gateway's cache)
            async with http.get(stack.url + url) as answer:
                assert answer.status == 200, url
        prefix = body["original"]["url"].removeprefix("/i/").rsplit("/", 1)[0] + "/"
        assert await stack.files.names(prefix)
        async with http.delete(f"{stack.url}/api/images/{body['token']}", headers={
                "Authorization": f"Bearer {body['delete_token']}"}) as answer:
            assert answer.status == 204
        # Once the delete is answered, nothing of it is served, cached or not.
        for url in urls:
            async with http.get(stack.url + url) as answer:
                assert answer.status == 404, url
    assert await stack.files.names(prefix) == set()


async def test_expiry_removes_the_files_and_every_node_stops_serving_them(stack):
    async with aiohttp.ClientSession() as http:
        status, body = await post_image(http, stack.url, unique_photo(204))
        assert status == 201
        urls = [body["original"]["url"], *(v["url"] for v in body["variants"].values())]
        prefix = body["original"]["url"].removeprefix("/i/").rsplit("/", 1)[0] + "/"
        conn = await asyncpg.connect(database_url_of(stack))
        try:
            await conn.execute("UPDATE images SET expires_at = now() - interval '1 second'"
                               " WHERE token = $1", body["token"])

            async def removed() -> bool:  # the expiry job runs every 10 s
                return not await conn.fetchval("SELECT count(*) FROM images WHERE token = $1",
                                               body["token"])

            await wait_until(removed, 60, what="the expired image removed")
        finally:
            await conn.close()
        assert await stack.files.names(prefix) == set()
        await asyncio.sleep(int(stack.env.get("KITTEH_CACHE_SECONDS") or 1) + 2)
        for url in urls:
            async with http.get(stack.url + url) as answer:
                assert answer.status == 404, url


async def test_the_sweeper_removes_old_orphans_and_keeps_young_ones(stack):
    old = "0a/0a" + "0" * 30 + "/original.jpg"  # as if an upload crashed before its commit
    await stack.files.put(old, b"from an upload that never committed")
    await asyncio.sleep(2)  # S3 objects cannot be backdated: they age instead
    young = "0b/0b" + "1" * 30 + "/original.jpg"
    await stack.files.put(young, b"an upload in progress")
    env = {**stack.env, "KITTEH_STORAGE_DIR": str(stack.storage)}
    store = open_store(StoreConfig.from_env(Env(env)))
    pool = await asyncpg.create_pool(database_url_of(stack), min_size=1, max_size=2)
    try:
        await store.check()
        report = await sweep(pool, store, scratch_for(stack.storage), max_age=1)
    finally:
        await pool.close()
        await store.close()
    assert report.orphan_dirs == [old.split("/")[1]], report.summary()
    names = await stack.files.names()
    assert old not in names and young in names

    # The same from the command line, as an operator runs it after a crash.
    await asyncio.sleep(2)
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.resize.sweep", "--max-age", "1"],
        cwd=REPO, env={**env, "DATABASE_URL": database_url_of(stack)}, capture_output=True,
        text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"orphan dir: {young.split('/')[1]}" in result.stdout
    assert young not in await stack.files.names()


async def test_s3_mode_serves_hot_files_from_the_gateway_cache(s3_stack):
    stack = s3_stack
    async with aiohttp.ClientSession() as http:
        status, body = await post_image(http, stack.url, unique_photo(203))
        assert status == 201
        url = stack.url + body["variants"]["monstrous"]["url"]
        caches = []
        for _ in range(3):
            async with http.get(url) as answer:
                assert answer.status == 200
                assert "immutable" in answer.headers["Cache-Control"]
                assert answer.headers["Content-Type"] == "image/jpeg"
                caches.append(answer.headers["X-Kitteh-Cache"])
        assert caches[0] == "MISS" and "HIT" in caches[1:], caches


async def test_s3_mode_keeps_nothing_of_the_pictures_on_local_disk(s3_stack):
    stack = s3_stack
    async with aiohttp.ClientSession() as http:
        tokens = []
        for n in range(3):
            status, body = await post_image(http, stack.url, unique_photo(210 + n))
            assert status == 201
            tokens.append(body["token"])
    conn = await asyncpg.connect(database_url_of(stack))
    try:
        async def all_made() -> bool:
            return not await conn.fetchval(
                "SELECT count(*) FROM variants v JOIN images i ON i.id = v.image_id "
                "WHERE i.token = ANY($1) AND v.state NOT IN ('ready', 'dropped')", tokens)

        await wait_until(all_made, 180, what="every variant made or dropped")
    finally:
        await conn.close()
    local = [os.path.join(d, f) for d, _, files in os.walk(stack.storage) for f in files]
    assert local == [], "only upload temp files belong on local disk, and only while in flight"
    for service in ("upload", "resize", "gallery"):
        port = stack.env[f"KITTEH_{service.upper()}_PORT"]
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{port}/readyz") as answer:
            body = await answer.json()
        assert answer.status == 200 and body["storage"] == "s3" and body["store"] == "ok", body
    # Store requests are timed for Prometheus, by operation.
    port = stack.env["KITTEH_RESIZE_PORT"]
    async with aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{port}/metrics") as answer:
        metrics = await answer.text()
    for operation in ("put", "get"):
        series = f'kitteh_store_request_duration_seconds_count{{operation="{operation}"}}'
        count = re.search(rf"^{re.escape(series)} (\S+)$", metrics, re.M)
        assert count and float(count.group(1)) > 0, operation
