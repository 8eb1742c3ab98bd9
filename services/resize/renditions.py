"""Renditions in Postgres: a video's web MP4 and AV1, an animation's MP4, made one at a time
in the background, durable like variants (see jobs.py, whose rules these rows follow).

A row is ``pending`` until a process claims it (``working``, with ``claimed_at``, refreshed
by a heartbeat while the transcoder runs), then ``ready`` or ``failed`` with the reason. A
claim not refreshed for ``STALE_AFTER_SECONDS`` belongs to a process that died (its
transcoder died with it: ``PR_SET_PDEATHSIG``) and is claimed again, so a resize killed
mid-transcode finishes the rendition after it is back. Failures are retried with growing
pauses, up to ``MAX_ATTEMPTS``. MP4s go first: they play everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import asyncpg
from aiohttp import web

from services.resize.jobs import (
    MAX_ATTEMPTS,
    RETRY_FAILED_AFTER_SECONDS,
    STALE_AFTER_SECONDS,
    keep_claimed,
)
from services.resize.keys import STOPPING
from shared.db import DATABASE_UNAVAILABLE, DB_POOL, RETRY_TRANSACTION
from shared.images import ImageRecord
from shared.queries import IMAGE_COLUMNS
from shared.storage import SCRATCH, STORE, ImageStore, Scratch
from shared.video import isolated
from shared.video.catalog import BY_NAME as FILES

log = logging.getLogger("kitteh.resize")

CLAIMABLE = f"""(
    state = 'pending'
    OR (state = 'working' AND claimed_at < now() - interval '{STALE_AFTER_SECONDS} s')
    OR (state = 'failed' AND attempts < {MAX_ATTEMPTS}
        AND updated_at < now() - interval '{RETRY_FAILED_AFTER_SECONDS} s' * attempts))"""
CLAIM_NEXT = f"""
    WITH picked AS (
        SELECT image_id, name FROM renditions
         WHERE {CLAIMABLE}
         ORDER BY name = 'mp4' DESC, updated_at, image_id
         LIMIT 1
           FOR UPDATE SKIP LOCKED)
    UPDATE renditions r
       SET state = 'working', claimed_at = now(), attempts = attempts + 1, updated_at = now()
      FROM picked
     WHERE r.image_id = picked.image_id AND r.name = picked.name
 RETURNING r.image_id, r.name
"""
HEARTBEAT = """UPDATE renditions SET claimed_at = now()
                WHERE image_id = $1 AND name = $2 AND state = 'working'"""
MARK_READY = """
    UPDATE renditions
       SET state = 'ready', width = $3, height = $4, bytes = $5, renders = renders + 1,
           error = NULL, claimed_at = NULL, updated_at = now()
     WHERE image_id = $1 AND name = $2
"""
MARK_FAILED = """UPDATE renditions SET state = 'failed', error = $3, claimed_at = NULL,
                        updated_at = now() WHERE image_id = $1 AND name = $2"""
RELEASE = """UPDATE renditions SET state = 'pending', claimed_at = NULL, updated_at = now()
              WHERE image_id = $1 AND name = $2 AND state = 'working'"""
IMAGE_BY_ID = f"SELECT {IMAGE_COLUMNS} FROM images i WHERE i.id = $1"


async def make_next(pool: asyncpg.Pool, store: ImageStore, scratch: Scratch) -> bool:
    """Claim one rendition and make it. False when there is nothing to claim."""
    claimed = await pool.fetchrow(CLAIM_NEXT)
    if claimed is None:
        return False
    image_id, name = claimed["image_id"], claimed["name"]
    row = await pool.fetchrow(IMAGE_BY_ID, image_id)
    if row is None:  # deleted since: its rendition rows went with it
        return True
    image = ImageRecord.from_row(row)
    finished = False
    try:
        async with keep_claimed(pool, f"rendition-heartbeat-{image_id}-{name}", HEARTBEAT,
                                lambda: (image_id, name)):
            made = await _render(store, scratch, image, name)
        if made is None:
            await pool.execute(MARK_FAILED, image_id, name, "the original is missing")
        else:
            status = await pool.execute(MARK_READY, image_id, name, made["width"],
                                        made["height"], made["bytes"])
            if status == "UPDATE 0":  # deleted while we worked: take our file back
                await _remove_if_deleted(pool, store, image, name)
            else:
                log.info("made %s of %s (%d bytes)", name, image.name, made["bytes"])
        finished = True
    except isolated.RenderError as error:
        log.error("making %s of %s failed: %s", name, image.name, error)
        await pool.execute(MARK_FAILED, image_id, name, str(error)[:500])
        finished = True
    finally:
        if not finished:  # cancelled (shutdown), store or database away: hand it back
            with contextlib.suppress(*DATABASE_UNAVAILABLE, *RETRY_TRANSACTION):
                await asyncio.shield(pool.execute(RELEASE, image_id, name))
    return True


async def _render(store: ImageStore, scratch: Scratch, image: ImageRecord,
                  name: str) -> dict | None:
    """Transcode into a scratch file, then put it in the store. None: no original."""
    target: Path = await asyncio.to_thread(scratch.new_file, "rendition-")
    try:
        try:
            async with store.open(image.original_path) as source:
                job = name if image.kind == "video" else "animation"
                made = await isolated.render(job, source, target, image.format.name)
        except FileNotFoundError:
            return None
        await store.put_file(image.rendition_path(name), target, FILES[name].content_type)
        return made
    finally:
        await asyncio.to_thread(target.unlink, True)


async def _remove_if_deleted(pool: asyncpg.Pool, store: ImageStore, image: ImageRecord,
                             name: str) -> None:
    """As for variants (jobs._remove_if_deleted): unless the same bytes came back since."""
    if await pool.fetchval("SELECT 1 FROM images WHERE storage_key = $1", image.storage_key):
        return
    await store.delete([image.rendition_path(name)])
    log.info("%s was deleted while its %s was made; removed it", image.name, name)


async def make_renditions(app: web.Application) -> None:
    """The background pass: renditions one at a time until none is claimable or shutdown
    begins (the transcoder is a child at low priority; one at a time leaves the cores to
    uploads and pages)."""
    while not app[STOPPING].is_set() and await make_next(app[DB_POOL], app[STORE],
                                                         app[SCRATCH]):
        pass
