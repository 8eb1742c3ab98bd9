"""Finishes variants nobody is making: pending after an outage (resize down, Postgres down),
claimed by a process that died, or failed and due for another try. Runs in every resize
process; ``FOR UPDATE SKIP LOCKED`` keeps them from claiming the same rows."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from services.resize.jobs import (
    OriginalMissing,
    RenderFailed,
    claim_backlog,
    make_variants,
    specs_for,
)
from services.resize.keys import ENGINE, STOPPING, STORAGE, SWEEP_SOON, WORKERS
from shared.db import DB_POOL
from shared.images import ImageRecord
from shared.queries import IMAGE_COLUMNS

log = logging.getLogger("kitteh.resize")

IMAGES_BY_ID = f"SELECT {IMAGE_COLUMNS} FROM images i WHERE i.id = ANY($1::bigint[])"


async def reconcile(app: web.Application) -> None:
    """One pass: batches until the backlog is empty or shutdown begins."""
    while not app[STOPPING].is_set() and await reconcile_once(app):
        pass


async def reconcile_once(app: web.Application) -> int:
    """Claim a batch of backlog and make it; returns how many images were worked on."""
    pool, workers = app[DB_POOL], app[WORKERS]
    # About one image per worker thread and some to queue: enough to keep the cores busy,
    # few enough that other processes find work too.
    claimed = await claim_backlog(pool, limit=workers.threads * 3)
    if not claimed:
        return 0
    images = [ImageRecord.from_row(row) for row in await pool.fetch(IMAGES_BY_ID, list(claimed))]
    results = await asyncio.gather(*(
        make_variants(pool, app[STORAGE], app[ENGINE], workers, image,
                      specs_for(image, claimed[image.id]), wait_for_room=True)
        for image in images), return_exceptions=True)
    for result in results:
        if isinstance(result, OriginalMissing):
            app[SWEEP_SOON].set()  # the sweeper decides about the row, with its safeguards
        elif isinstance(result, BaseException) and not isinstance(result, RenderFailed):
            raise result  # the database went away: the loop retries after its pause
        # RenderFailed: recorded and logged by make_variants; the rest of the batch went on
    return len(claimed)
