"""Removing an image: its rows and its files, inside the caller's transaction.

One path for every way an image goes (a delete by token or key, the expiry job). Files go
before the commit: an upload of the same bytes waits on this row's unique sha256 until the
commit, so it places its file only after this removal.
"""

from __future__ import annotations

import logging

import asyncpg

from shared.storage import ImageStore

log = logging.getLogger("kitteh")

EXPIRED = """
    SELECT id, storage_key, name FROM images
     WHERE expires_at <= now()
     ORDER BY expires_at
     LIMIT $1
       FOR UPDATE SKIP LOCKED
"""


async def remove_image(conn: asyncpg.Connection, storage: ImageStore, image_id: int,
                       storage_key: str) -> None:
    """Call inside a transaction that holds the row (``FOR UPDATE``)."""
    await conn.execute("DELETE FROM images WHERE id = $1", image_id)  # variants cascade
    await storage.delete_image(storage_key)


async def remove_expired(pool: asyncpg.Pool, storage: ImageStore, batch: int = 200) -> int:
    """Remove up to ``batch`` expired images; returns how many. Replicas skip each other's
    rows (SKIP LOCKED), so several resize processes share the work."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(EXPIRED, batch)
        for row in rows:
            await remove_image(conn, storage, row["id"], row["storage_key"])
    for row in rows:
        log.info("expired %s: removed", row["name"])
    return len(rows)
