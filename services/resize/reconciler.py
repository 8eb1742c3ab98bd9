"""Finishes variants nobody is making: pending after an outage, or claimed by a process that
died. Runs in every resize process; ``FOR UPDATE SKIP LOCKED`` keeps them from colliding."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from services.resize.jobs import claim_backlog, make_variants, specs_for
from services.resize.keys import CONFIG, ENGINE, STORAGE, WORKERS
from shared.db import DB_POOL
from shared.http import DATABASE_UNAVAILABLE
from shared.images import ImageRecord
from shared.queries import IMAGE_COLUMNS

log = logging.getLogger("kitteh.resize")

IMAGES_BY_ID = f"SELECT {IMAGE_COLUMNS} FROM images i WHERE i.id = ANY($1::bigint[])"


async def reconcile_once(app: web.Application) -> int:
    """Claim a batch of backlog and make it; returns how many images were worked on."""
    pool = app[DB_POOL]
    claimed = await claim_backlog(pool, limit=app[WORKERS].threads * 3)
    if not claimed:
        return 0
    for row in await pool.fetch(IMAGES_BY_ID, list(claimed)):
        image = ImageRecord.from_row(row)
        try:
            await make_variants(pool, app[STORAGE], app[ENGINE], app[WORKERS], image,
                                specs_for(image, claimed[image.id]), wait_for_room=True)
        except Exception:  # recorded by make_variants; go on with the rest of the batch
            log.warning("reconciler could not finish %s", image.name)
    return len(claimed)


async def reconciler(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the loop runs for the app's lifetime and is cancelled at shutdown."""
    task = asyncio.create_task(_loop(app), name="reconciler")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _loop(app: web.Application) -> None:
    interval = app[CONFIG].reconcile_interval
    while True:
        try:
            while await reconcile_once(app):
                pass  # keep going while there is backlog
        except DATABASE_UNAVAILABLE as error:
            log.warning("reconciler: database unavailable (%r); retrying", error)
        except Exception:
            log.exception("reconciler pass failed")
        await asyncio.sleep(interval)
