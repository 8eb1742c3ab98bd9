"""From a received temp file to a recorded image: deduplicate, validate and clean, name, store.

Duplicates are found by the sha256 of the bytes the client sent (the same upload twice is one
image), while what is stored, and counted in ``bytes``, is the cleaned file (see
``services.upload.prepare``). An image becomes visible only when its row is committed and its
file is in place: the file is renamed into place inside the transaction that inserts the row,
and removed again if the commit fails. A refused upload leaves neither.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from services.upload.filenames import stored_filename
from services.upload.options import UploadOptions
from services.upload.prepare import PreparedImage, prepare_image
from services.upload.receive import ReceivedFile
from services.upload.renditions import add_renditions
from shared.config import Limits
from shared.db import DATABASE_UNAVAILABLE
from shared.encoding import base_output
from shared.images import POSTER_FORMAT, POSTER_STEM, ImageRecord
from shared.naming import candidate_name, token_for
from shared.queries import image_by_sha256, image_by_token
from shared.removal import remove_image
from shared.storage import ImageStore, Scratch, file_name, storage_key
from shared.variants import VARIANT_PLAN, delivery_specs

log = logging.getLogger("kitteh.upload")

NAME_ATTEMPTS = 40  # the number suffix grows with each attempt, so this is never reached

INSERT_IMAGE = """
    INSERT INTO images (token, name, sha256, storage_key, filename, content_type,
                        width, height, bytes, frames, delete_token_hash,
                        key_id, visibility, expires_at, variant_plan)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
            now() + make_interval(secs => $14::int), $15)
    ON CONFLICT DO NOTHING
    RETURNING id
"""
INSERT_VARIANTS = """
    INSERT INTO variants (image_id, kind, format, width, height)
    SELECT $1, kind, format, width, height
      FROM unnest($2::text[], $3::text[], $4::int[], $5::int[]) AS v(kind, format, width, height)
"""


@dataclass(frozen=True)
class Placement:
    """Who sent the upload and how it is to be shown: the key, visibility and expiry."""

    key_id: int | None = None
    options: UploadOptions = field(default_factory=UploadOptions)


@dataclass(frozen=True)
class IngestResult:
    image: ImageRecord
    created: bool
    delete_token: str | None  # only for a newly created image


def hash_delete_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def ingest(
    pool: asyncpg.Pool, storage: ImageStore, scratch: Scratch, limits: Limits,
    received: ReceivedFile, image_workers: Executor, placement: Placement = Placement(),
) -> IngestResult:
    loop = asyncio.get_running_loop()
    prepared: PreparedImage | None = None
    try:
        existing = await image_by_sha256(pool, received.sha256)
        if existing is not None and _expired(existing):
            # Gone for every reader already; the expiry job has not come by yet. Remove it
            # now so that these bytes become a new image rather than a dead link.
            await _remove_expired(pool, storage, existing.id)
        elif existing is not None:
            return IngestResult(existing, created=False, delete_token=None)
        prepared = await loop.run_in_executor(image_workers, prepare_image, received.path,
                                              scratch, limits)
        return await _record(pool, storage, received, prepared, placement, limits)
    finally:
        # Placed files have been renamed away; anything still here was refused or a duplicate.
        leftovers = [received.path] + ([prepared.path, prepared.poster] if prepared else [])
        await loop.run_in_executor(None, _remove, leftovers)


def _expired(image: ImageRecord) -> bool:
    return image.expires_at is not None and image.expires_at <= datetime.now(UTC)


async def _remove_expired(pool: asyncpg.Pool, storage: ImageStore, image_id: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT id, storage_key FROM images WHERE id = $1 AND expires_at <= now()"
            " FOR UPDATE", image_id)
        if row is not None:
            await remove_image(conn, storage, row["id"], row["storage_key"])


def _remove(paths: list[Path | None]) -> None:
    for path in paths:
        if path is not None:
            path.unlink(missing_ok=True)


async def _record(
    pool: asyncpg.Pool, storage: ImageStore, received: ReceivedFile, prepared: PreparedImage,
    placement: Placement, limits: Limits,
) -> IngestResult:
    info = prepared.info
    key = storage_key(received.sha256.hex())
    delete_token = secrets.token_urlsafe(32)  # 256 bits; only its hash is stored
    filename = stored_filename(received.filename, info.format)
    placed: list[str] = []
    try:
        async with pool.acquire() as conn, conn.transaction():
            image_id, token = await _insert_named(conn, received.sha256, prepared, key,
                                                  filename, hash_delete_token(delete_token),
                                                  placement)
            if image_id is None:  # the same bytes were committed by a concurrent upload
                existing = await image_by_sha256(conn, received.sha256)
                assert existing is not None
                return IngestResult(existing, created=False, delete_token=None)
            if info.gain_map:  # HDR: the page offers its Ultra HDR JPEGs to HDR screens
                await conn.execute("UPDATE images SET gain_map = true WHERE id = $1", image_id)
            # Every (size, format) pair, pending: resize makes the first three sizes before
            # the upload answers, and the rest in the background.
            specs = delivery_specs(info.width, info.height,
                                   base_output(info.format, info.frames > 1).extension, info.frames)
            await conn.execute(INSERT_VARIANTS, image_id, [s.kind for s in specs],
                               [s.format for s in specs], [s.width for s in specs],
                               [s.height for s in specs])
            await add_renditions(conn, image_id, info, prepared.duration, limits)
            original = file_name(key, "original", info.format.extension)
            await storage.put_file(original, prepared.path, info.format.content_type)
            placed.append(original)
            if prepared.poster is not None:  # a video's variants are made from it
                poster = file_name(key, POSTER_STEM, POSTER_FORMAT.extension)
                await storage.put_file(poster, prepared.poster, POSTER_FORMAT.content_type)
                placed.append(poster)
            image = await image_by_token(conn, token)
    except BaseException as error:
        # The row was not committed: take the file back out. Unless the connection broke:
        # then COMMIT may have gone through with its answer lost, and removing the file would
        # leave a committed row without its original. Kept, an uncommitted file is an orphan
        # directory that the resize service's sweeper removes after KITTEH_TEMP_MAX_AGE.
        if placed and not isinstance(error, DATABASE_UNAVAILABLE):
            await storage.delete(placed)
        raise
    assert image is not None
    log.info("stored %s (%s, %dx%d, %d bytes, %d as uploaded)", image.name,
             info.format.name, info.width, info.height, prepared.size, received.size)
    return IngestResult(image, created=True, delete_token=delete_token)


async def _insert_named(conn, sha256, prepared, key, filename, token_hash, placement):
    """Insert with a fresh name until the unique index accepts one (no check-then-insert)."""
    info = prepared.info
    options = placement.options
    for attempt in range(NAME_ATTEMPTS):
        name = candidate_name(attempt)
        token = token_for(name)
        image_id = await conn.fetchval(
            INSERT_IMAGE, token, name, sha256, key, filename, info.format.content_type,
            info.width, info.height, prepared.size, info.frames, token_hash,
            placement.key_id, options.visibility, options.expires_in, VARIANT_PLAN)
        if image_id is not None:
            return image_id, token
        if await conn.fetchval("SELECT 1 FROM images WHERE sha256 = $1", sha256):
            return None, None
    raise RuntimeError("no free name after many attempts")  # unreachable: suffixes grow
