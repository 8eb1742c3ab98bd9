"""A request for a variant another process is making (on this node or another) is woken by
Postgres NOTIFY when that process finishes, not by polling the store: two resize apps on one
database, built by their factories."""

from __future__ import annotations

import asyncio

from services.resize.app import create_app as create_resize
from services.resize.waiters import WAITERS
from shared.config import ResizeConfig
from tests.reliability.harness import wait_until
from tests.support import file_form, image_bytes

MARK = """UPDATE variants SET state = $2, claimed_at = now(), updated_at = now()
           WHERE image_id = (SELECT id FROM images WHERE token = $1)
             AND kind = 'large' AND format = 'base'"""


async def test_a_waiter_is_woken_by_the_process_that_made_the_variant(
        upload_client, aiohttp_client, env, db, storage_dir):
    response = await upload_client.post("/api/images", data=file_form(
        image_bytes(size=(640, 480), color=(30, 160, 90))))
    assert response.status == 201
    image = await response.json()
    url = image["variants"]["large"]["url"]
    made = (storage_dir / url.removeprefix("/i/")).read_bytes()
    # Another node is making it: its row is claimed and its file is not there yet.
    (storage_dir / url.removeprefix("/i/")).unlink()
    await db.execute(MARK, image["token"], "working")

    waiting_app = create_resize(ResizeConfig.from_env(env), run_reconciler=False)
    client = await aiohttp_client(waiting_app)
    waiters = waiting_app[WAITERS]
    # The listener is up once the app has started: a NOTIFY sent by hand reaches it.
    await wait_until(lambda: _listening(db, waiters), 30, what="the variant listener")
    seen = waiters.notifications

    request = asyncio.create_task(client.get(url))
    await asyncio.sleep(0.5)
    assert not request.done(), "the request waits for the other process"
    # The other process finishes: its file is in place, then its row says ready (NOTIFY).
    (storage_dir / url.removeprefix("/i/")).write_bytes(made)
    await db.execute(MARK, image["token"], "ready")

    answer = await asyncio.wait_for(request, 30)
    assert answer.status == 200
    assert await answer.read() == made
    assert waiters.notifications > seen


async def _listening(db, waiters) -> bool:
    before = waiters.notifications
    await db.execute("SELECT pg_notify('kitteh_variants', '0 probe base')")
    await asyncio.sleep(0.2)
    return waiters.notifications > before


async def test_a_variant_that_failed_meanwhile_is_not_waited_for(
        upload_client, aiohttp_client, env, db, storage_dir):
    response = await upload_client.post("/api/images", data=file_form(
        image_bytes(size=(640, 480), color=(200, 60, 90))))
    image = await response.json()
    url = image["variants"]["large"]["url"]
    (storage_dir / url.removeprefix("/i/")).unlink()
    await db.execute(MARK, image["token"], "working")
    client = await aiohttp_client(create_resize(ResizeConfig.from_env(env),
                                                run_reconciler=False))
    request = asyncio.create_task(client.get(url))
    await asyncio.sleep(0.5)
    await db.execute(MARK, image["token"], "failed")
    answer = await asyncio.wait_for(request, 30)
    # 503: the gateway shows the original instead (and the page never breaks).
    assert answer.status == 503
    assert (await answer.json())["error"]["code"]
