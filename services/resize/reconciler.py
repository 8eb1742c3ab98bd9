"""Finishes variants nobody is making: the display widths and modern formats of a new upload
(after it has answered), pending after an outage (resize down, Postgres down), claimed by a
process that died, or failed and due for another try. Runs in every resize process;
``FOR UPDATE SKIP LOCKED`` keeps them from claiming the same rows.

It also backfills images uploaded before a variant was added (``images.variant_plan``):
their missing rows are inserted as pending, a batch at a time, and made like any others,
while everything keeps being served."""

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
from services.resize.keys import (
    BACKGROUND_WORKERS,
    ENGINE,
    STOPPING,
    SWEEP_SOON,
    WORKERS,
)
from shared.db import DB_POOL
from shared.encoding import base_output
from shared.formats import BY_CONTENT_TYPE
from shared.images import ImageRecord
from shared.queries import IMAGE_COLUMNS
from shared.storage import STORE
from shared.variants import FORMAT_ORDER, KINDS, VARIANT_PLAN, delivery_specs

log = logging.getLogger("kitteh.resize")

IMAGES_BY_ID = f"SELECT {IMAGE_COLUMNS} FROM images i WHERE i.id = ANY($1::bigint[])"
BACKFILL_BATCH = 100
OLD_PLAN = """
    SELECT id, width, height, frames, content_type FROM images
     WHERE variant_plan < $1 ORDER BY id DESC LIMIT $2 FOR UPDATE SKIP LOCKED
"""
ADD_ROWS = """
    INSERT INTO variants (image_id, kind, format, width, height)
    SELECT $1, kind, format, width, height
      FROM unnest($2::text[], $3::text[], $4::int[], $5::int[]) AS v(kind, format, width, height)
    ON CONFLICT DO NOTHING
"""
# A variant is (size, format): an image has at most this many rows, so a batch of this many
# per image lets one decode make them all.
ROWS_PER_IMAGE = len(KINDS) * len(FORMAT_ORDER)


async def reconcile(app: web.Application) -> None:
    """One pass: the backfill, then batches until the backlog is empty or shutdown begins."""
    while not app[STOPPING].is_set() and await backfill_once(app[DB_POOL]):
        pass
    while not app[STOPPING].is_set() and await reconcile_once(app):
        pass


async def backfill_once(pool) -> int:
    """Give a batch of images made under an older plan their missing variant rows (pending:
    the passes after this make them). Newest first: those are the ones being looked at."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(OLD_PLAN, VARIANT_PLAN, BACKFILL_BATCH)
        for row in rows:
            fmt = BY_CONTENT_TYPE[row["content_type"]]
            specs = delivery_specs(row["width"], row["height"],
                                   base_output(fmt, row["frames"] > 1).extension,
                                   row["frames"])
            await conn.execute(ADD_ROWS, row["id"], [s.kind for s in specs],
                               [s.format for s in specs], [s.width for s in specs],
                               [s.height for s in specs])
        await conn.execute("UPDATE images SET variant_plan = $1 WHERE id = ANY($2::bigint[])",
                           VARIANT_PLAN, [r["id"] for r in rows])
    if rows:
        log.info("backfill: variant rows added for %d older image(s)", len(rows))
    return len(rows)


async def reconcile_once(app: web.Application) -> int:
    """Claim a batch of backlog and make it; returns how many images were worked on."""
    pool, workers = app[DB_POOL], app[BACKGROUND_WORKERS]
    # About one image per worker thread and some to queue: enough to keep the cores busy,
    # few enough that other processes find work too.
    claimed = await claim_backlog(pool, limit=workers.threads * 3 * ROWS_PER_IMAGE)
    if not claimed:
        return 0
    images = [ImageRecord.from_row(row) for row in await pool.fetch(IMAGES_BY_ID, list(claimed))]
    results = await asyncio.gather(*(
        make_variants(pool, app[STORE], app[ENGINE], workers, image,
                      specs_for(image, claimed[image.id]), wait_for_room=True,
                      yield_to=app[WORKERS])
        for image in images), return_exceptions=True)
    for result in results:
        if isinstance(result, OriginalMissing):
            app[SWEEP_SOON].set()  # the sweeper decides about the row, with its safeguards
        elif isinstance(result, BaseException) and not isinstance(result, RenderFailed):
            raise result  # the database went away: the loop retries after its pause
        # RenderFailed: recorded and logged by make_variants; the rest of the batch went on
    return len(claimed)
