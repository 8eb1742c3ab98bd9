"""What a page shows when a variant cannot be served from the store, on the shared stacks
(the volume, and an S3 bucket): a lost variant is made again on demand; one that cannot be
made shows the original, uncached, and never an error."""

from __future__ import annotations

import aiohttp
import asyncpg
import pytest

from services.resize.jobs import MAX_ATTEMPTS
from tests.reliability.harness import (
    database_url_of,
    get_image,
    image_size,
    post_image,
    unique_photo,
)

pytestmark = pytest.mark.e2e

@pytest.fixture
def stack(any_stack):
    return any_stack


RENDERS = """SELECT v.state, v.renders FROM variants v JOIN images i ON i.id = v.image_id
              WHERE i.token = $1 AND v.kind = $2 AND v.format = 'base'"""


async def test_a_lost_variant_is_made_once_more_on_demand(stack):
    async with aiohttp.ClientSession() as http:
        status, body = await post_image(http, stack.url, unique_photo(101))
        assert status == 201
        large = body["variants"]["large"]
        await stack.files.remove(large["url"])  # lost from the store

        status, cache, data = await get_image(http, stack.url + large["url"])
        assert status == 200 and "immutable" in cache
        assert image_size(data) == (large["width"], large["height"])
    conn = await asyncpg.connect(database_url_of(stack))
    try:
        assert tuple(await conn.fetchrow(RENDERS, body["token"], "large")) == ("ready", 2)
    finally:
        await conn.close()


async def test_a_variant_that_cannot_be_made_shows_the_original_uncached(stack):
    upload = unique_photo(102)
    conn = await asyncpg.connect(database_url_of(stack))
    try:
        async with aiohttp.ClientSession() as http:
            status, body = await post_image(http, stack.url, upload)
            assert status == 201
            tiny = body["variants"]["tiny"]
            await stack.files.remove(tiny["url"])
            # As if every attempt had failed (a render the engine cannot do).
            await conn.execute(
                "UPDATE variants SET state = 'failed', attempts = $3, error = 'test' "
                "WHERE image_id = (SELECT id FROM images WHERE token = $1) AND kind = $2 "
                "AND format = 'base'",
                body["token"], "tiny", MAX_ATTEMPTS)

            status, cache, data = await get_image(http, stack.url + tiny["url"])
            assert status == 200 and cache == "no-store"
            assert data == await stack.files.read(body["original"]["url"])
            # The resize service itself says why, with a time to come back.
            resize = f"http://127.0.0.1:{stack.env['KITTEH_RESIZE_PORT']}"
            async with http.get(resize + tiny["url"]) as response:
                assert response.status == 503 and response.headers["Retry-After"]
            # and no render was tried again (the one render is the eager one at upload)
            assert tuple(await conn.fetchrow(RENDERS, body["token"], "tiny")) == ("failed", 1)
    finally:
        await conn.close()
