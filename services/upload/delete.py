"""Deleting an image with its delete token: rows and files go together, or not at all."""

from __future__ import annotations

import asyncio
import hmac

import asyncpg

from services.upload.ingest import hash_delete_token
from shared.errors import Forbidden
from shared.storage import Storage

# One answer for "no such image" and "wrong token", so a guess reveals nothing.
REFUSED = "This delete token does not match that image."


async def delete_image(pool: asyncpg.Pool, storage: Storage, token: str, presented: str) -> None:
    loop = asyncio.get_running_loop()
    presented_hash = hash_delete_token(presented)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT id, storage_key, delete_token_hash FROM images WHERE token = $1 FOR UPDATE",
            token)
        stored_hash = row["delete_token_hash"] if row else hash_delete_token("")
        if not hmac.compare_digest(stored_hash, presented_hash) or row is None:
            raise Forbidden(REFUSED)
        await conn.execute("DELETE FROM images WHERE id = $1", row["id"])
        # Files go before the commit: an upload of the same bytes waits on this row's unique
        # sha256 until we commit, so it places its file only after this removal.
        await loop.run_in_executor(None, storage.remove_image, row["storage_key"])


def bearer_token(header: str | None) -> str:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Forbidden("Send the delete token as 'Authorization: Bearer <delete_token>'.")
    return value.strip()
