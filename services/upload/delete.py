"""Deleting an image: with its delete token, with the upload key it came with, or with an
admin key (moderation). Rows and files go together, or not at all."""

from __future__ import annotations

import hmac

import asyncpg

from services.upload.ingest import hash_delete_token
from shared.errors import Forbidden
from shared.http import bearer
from shared.removal import remove_image
from shared.storage import ImageStore
from shared.upload_keys import key_for_secret

# One answer for "no such image" and "wrong token", so a guess reveals nothing.
REFUSED = "This delete token does not match that image."


async def delete_image(pool: asyncpg.Pool, storage: ImageStore, token: str,
                       presented: str) -> None:
    presented_hash = hash_delete_token(presented)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT id, storage_key, delete_token_hash, key_id FROM images"
            " WHERE token = $1 FOR UPDATE", token)
        stored_hash = row["delete_token_hash"] if row else hash_delete_token("")
        allowed = hmac.compare_digest(stored_hash, presented_hash) and row is not None
        if not allowed and row is not None:
            key = await key_for_secret(conn, presented)
            allowed = key is not None and (key.admin or key.id == row["key_id"])
        if not allowed or row is None:
            raise Forbidden(REFUSED)
        await remove_image(conn, storage, row["id"], row["storage_key"])


def bearer_token(header: str | None) -> str:
    presented = bearer(header)
    if presented is None:
        raise Forbidden("Send the delete token (or an upload key) as "
                        "'Authorization: Bearer <token>'.")
    return presented
