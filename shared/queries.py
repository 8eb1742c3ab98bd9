"""SQL shared by the services: reading images with their variants in one round trip."""

from __future__ import annotations

import asyncpg

from shared.images import ImageRecord

Db = asyncpg.Connection | asyncpg.Pool

IMAGE_COLUMNS = """
    i.id, i.token, i.name, i.storage_key, i.filename, i.content_type, i.width, i.height,
    i.bytes, i.frames, i.created_at, i.key_id, i.visibility, i.expires_at, i.thumbhash,
    i.gain_map,
    (SELECT json_agg(json_build_object('kind', v.kind, 'format', v.format, 'width', v.width,
                                       'height', v.height, 'state', v.state, 'bytes', v.bytes))
       FROM variants v WHERE v.image_id = i.id) AS variants,
    i.duration,
    (SELECT json_agg(json_build_object('name', r.name, 'width', r.width, 'height', r.height,
                                       'state', r.state, 'bytes', r.bytes))
       FROM renditions r WHERE r.image_id = i.id) AS renditions
"""

# An expired image is gone for every read the moment it expires, before the expiry job
# (services/resize/expiry.py) removes its row and files.
LIVE = "(i.expires_at IS NULL OR i.expires_at > now())"

BY_TOKEN = f"SELECT {IMAGE_COLUMNS} FROM images i WHERE i.token = $1 AND {LIVE}"
# Not filtered: an upload of the same bytes must see an expired row to replace it.
BY_SHA256 = f"SELECT {IMAGE_COLUMNS} FROM images i WHERE i.sha256 = $1"
BY_STORAGE_KEY = f"SELECT {IMAGE_COLUMNS} FROM images i WHERE i.storage_key = $1 AND {LIVE}"
NEWEST = f"""
    SELECT {IMAGE_COLUMNS} FROM images i
     WHERE ($2::bigint IS NULL OR i.id < $2) AND i.visibility = 'public' AND {LIVE}
     ORDER BY i.id DESC
     LIMIT $1
"""


async def image_by_token(conn: Db, token: str) -> ImageRecord | None:
    row = await conn.fetchrow(BY_TOKEN, token)
    return ImageRecord.from_row(row) if row else None


async def image_by_sha256(conn: Db, digest: bytes) -> ImageRecord | None:
    row = await conn.fetchrow(BY_SHA256, digest)
    return ImageRecord.from_row(row) if row else None


async def image_by_storage_key(conn: Db, key: str) -> ImageRecord | None:
    row = await conn.fetchrow(BY_STORAGE_KEY, key)
    return ImageRecord.from_row(row) if row else None


async def newest_images(conn: Db, limit: int, before: int | None) -> list[ImageRecord]:
    return [ImageRecord.from_row(r) for r in await conn.fetch(NEWEST, limit, before)]
