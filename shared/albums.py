"""Albums as stored (a row and its pictures, in order) and as clients see them (the JSON album).

An album is a list: its pictures are images of their own, with their own pages, sizes and
delete tokens. Reads treat an expired album as gone at once, as for images, and show only the
pictures that are still live; the expiry job (``remove_expired_albums``) removes the rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

import asyncpg

from shared.embed import picture_embed
from shared.images import ImageRecord, created_at_text, image_json
from shared.queries import IMAGE_COLUMNS, LIVE
from shared.urls import RELATIVE, Urls

log = logging.getLogger("kitteh")

Db = asyncpg.Connection | asyncpg.Pool

MAX_ALBUM_IMAGES = 100
MAX_TITLE = 200
ALBUM_LIVE = "(a.expires_at IS NULL OR a.expires_at > now())"

ALBUM_BY_TOKEN = f"""
    SELECT a.id, a.token, a.name, a.title, a.key_id, a.visibility, a.expires_at, a.created_at
      FROM albums a WHERE a.token = $1 AND {ALBUM_LIVE}
"""
ALBUM_IMAGES = f"""
    SELECT {IMAGE_COLUMNS}, ai.owned FROM album_images ai JOIN images i ON i.id = ai.image_id
     WHERE ai.album_id = $1 AND {LIVE}
     ORDER BY ai.position
"""
EXPIRED_ALBUMS = """
    DELETE FROM albums WHERE id IN (
        SELECT id FROM albums WHERE expires_at <= now() ORDER BY expires_at LIMIT $1
           FOR UPDATE SKIP LOCKED)
    RETURNING name
"""

# The Newest grid: public images that are not shown in a public album, and public albums as
# one tile each (their first live picture as the cover). Both are ordered by an image id (an
# album by its newest picture's), so the grid's cursor stays an image id.
NEWEST_TILES = f"""
    WITH shown AS (
        SELECT a.id, a.token, a.name, a.title, max(ai.image_id) AS sort_id,
               (array_agg(ai.image_id ORDER BY ai.position))[1] AS cover_id,
               count(*) AS pictures
          FROM albums a
          JOIN album_images ai ON ai.album_id = a.id
          JOIN images i ON i.id = ai.image_id AND {LIVE}
         WHERE a.visibility = 'public' AND {ALBUM_LIVE}
         GROUP BY a.id
    ), tiles AS (
        SELECT i.id AS sort_id, i.id AS image_id, NULL::bigint AS album_id
          FROM images i
         WHERE i.visibility = 'public' AND {LIVE}
           AND ($2::bigint IS NULL OR i.id < $2)
           AND NOT EXISTS (SELECT 1 FROM album_images ai JOIN shown s ON s.id = ai.album_id
                            WHERE ai.image_id = i.id)
        UNION ALL
        SELECT sort_id, cover_id, id FROM shown WHERE $2::bigint IS NULL OR sort_id < $2
    )
    SELECT t.sort_id, s.token AS album_token, s.name AS album_name, s.title AS album_title,
           s.pictures AS album_pictures, {IMAGE_COLUMNS}
      FROM tiles t JOIN images i ON i.id = t.image_id LEFT JOIN shown s ON s.id = t.album_id
     ORDER BY t.sort_id DESC, t.album_id NULLS FIRST
     LIMIT $1
"""


@dataclass(frozen=True)
class AlbumRecord:
    id: int
    token: str
    name: str
    title: str | None
    key_id: int | None
    visibility: str
    expires_at: datetime | None
    created_at: datetime
    images: tuple[ImageRecord, ...]  # live pictures, in order
    owned: tuple[bool, ...] = ()  # per picture: may the album's delete token delete it

    @property
    def label(self) -> str:
        return self.title or self.name


@dataclass(frozen=True)
class Tile:
    """One tile of the Newest grid: an image, or an album shown by its cover picture."""

    sort_id: int
    image: ImageRecord
    album_token: str | None = None
    album_name: str | None = None
    album_title: str | None = None
    album_pictures: int = 0


async def album_by_token(conn: Db, token: str) -> AlbumRecord | None:
    row = await conn.fetchrow(ALBUM_BY_TOKEN, token)
    if row is None:
        return None
    rows = await conn.fetch(ALBUM_IMAGES, row["id"])
    return AlbumRecord(
        id=row["id"], token=row["token"], name=row["name"], title=row["title"],
        key_id=row["key_id"], visibility=row["visibility"], expires_at=row["expires_at"],
        created_at=row["created_at"], images=tuple(ImageRecord.from_row(r) for r in rows),
        owned=tuple(r["owned"] for r in rows))


async def newest_tiles(conn: Db, limit: int, before: int | None) -> list[Tile]:
    return [Tile(r["sort_id"], ImageRecord.from_row(r), r["album_token"], r["album_name"],
                 r["album_title"], r["album_pictures"] or 0)
            for r in await conn.fetch(NEWEST_TILES, limit, before)]


def album_embed(album: AlbumRecord, urls: Urls) -> dict[str, str]:
    """The album's codes: its first picture (the cover), linking to the album's page."""
    page = urls.album_page(album.name)
    if not album.images:
        return {"markdown": page, "bbcode": f"[url]{page}[/url]",
                "html": f'<a href="{escape(page)}">{escape(album.label)}</a>'}
    return picture_embed(album.images[0], urls, page, album.label)


def album_json(album: AlbumRecord, urls: Urls = RELATIVE,
               share: Urls | None = None) -> dict[str, Any]:
    """The JSON album (without ``delete_token``, which only its creation answer carries)."""
    return {
        "token": album.token,
        "name": album.name,
        "title": album.title,
        "page_url": urls.album_page(album.name),
        "images": [image_json(i, urls, share) for i in album.images],
        "created_at": created_at_text(album.created_at),
        "visibility": album.visibility,
        "expires_at": created_at_text(album.expires_at) if album.expires_at else None,
        "embed": album_embed(album, share or urls),
    }


async def remove_expired_albums(pool: asyncpg.Pool, batch: int = 200) -> int:
    """Remove up to ``batch`` expired albums (rows only: each picture expires on its own)."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(EXPIRED_ALBUMS, batch)
    for row in rows:
        log.info("expired album %s: removed", row["name"])
    return len(rows)
