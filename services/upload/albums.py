"""Making and deleting albums.

An album lists images by token. Each picture given with its delete token, or covered by the
upload key presented (the key it was uploaded with, or an admin key), is *owned* by the album:
``DELETE /api/albums/{token}?images=1`` deletes those along with the album. A picture given
without proof is only linked (its token is its link: anyone who has it may show it), never
deleted through the album. A wrong delete token is a 403: nothing is made.
"""

from __future__ import annotations

import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass

import asyncpg

from services.upload.ingest import hash_delete_token
from services.upload.options import UploadOptions
from shared.albums import MAX_ALBUM_IMAGES, MAX_TITLE, AlbumRecord, album_by_token
from shared.errors import BadRequest, Forbidden
from shared.naming import candidate_name, token_for
from shared.queries import LIVE
from shared.removal import remove_image
from shared.storage import ImageStore
from shared.upload_keys import UploadKey, key_for_secret

NAME_ATTEMPTS = 40
TOKEN_SHAPE = re.compile(r"[a-z0-9]{1,120}")
REFUSED = "This delete token does not match that album."

INSERT_ALBUM = """
    INSERT INTO albums (token, name, title, delete_token_hash, key_id, visibility, expires_at)
    VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7::int))
    ON CONFLICT (token) DO NOTHING
    RETURNING id
"""
INSERT_MEMBERS = """
    INSERT INTO album_images (album_id, image_id, position, owned)
    SELECT $1, image_id, position, owned
      FROM unnest($2::bigint[], $3::int[], $4::bool[]) AS m(image_id, position, owned)
"""


@dataclass(frozen=True)
class AlbumEntry:
    token: str
    delete_token: str | None = None


def clean_title(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise BadRequest("'title' must be a string.")
    title = "".join(c for c in raw if unicodedata.category(c) not in ("Cc", "Cf", "Cs"))
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise BadRequest(f"'title' is longer than {MAX_TITLE} characters.")
    return title or None


def parse_entries(raw: object) -> list[AlbumEntry]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'images' must be a list of 1 to "
                         f"{MAX_ALBUM_IMAGES} {{\"token\": ..., \"delete_token\": ...}}.")
    if len(raw) > MAX_ALBUM_IMAGES:
        raise BadRequest(f"An album holds at most {MAX_ALBUM_IMAGES} pictures.")
    entries = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("token"), str) \
                or not isinstance(item.get("delete_token", ""), str | None):
            raise BadRequest("Each of 'images' must be {\"token\": \"...\", "
                             "\"delete_token\": \"...\"} (delete_token optional).")
        token = item["token"].strip().lower()
        if not TOKEN_SHAPE.fullmatch(token):
            raise BadRequest(f"{item['token'][:130]!r} is not an image token.")
        entries.append(AlbumEntry(token, item.get("delete_token") or None))
    if len({e.token for e in entries}) != len(entries):
        raise BadRequest("An image appears twice in 'images'.")
    return entries


async def create_album(conn: asyncpg.Connection, entries: list[AlbumEntry],
                       title: str | None, options: UploadOptions,
                       key: UploadKey | None) -> tuple[AlbumRecord, str]:
    """Call inside a transaction. Returns the album and its delete token (shown once)."""
    ids, owned = [], []
    for entry in entries:
        row = await conn.fetchrow(
            f"SELECT i.id, i.delete_token_hash, i.key_id FROM images i"
            f" WHERE i.token = $1 AND {LIVE} FOR SHARE", entry.token)
        if row is None:
            raise BadRequest(f"No image has the token {entry.token!r}.")
        by_key = key is not None and (key.admin or key.id == row["key_id"])
        by_token = entry.delete_token is not None and hmac.compare_digest(
            row["delete_token_hash"], hash_delete_token(entry.delete_token))
        if entry.delete_token is not None and not (by_token or by_key):
            raise Forbidden(f"The delete token given for {entry.token!r} does not match it.")
        ids.append(row["id"])
        owned.append(by_token or by_key)
    delete_token = secrets.token_urlsafe(32)
    for attempt in range(NAME_ATTEMPTS):
        name = candidate_name(attempt)
        album_id = await conn.fetchval(
            INSERT_ALBUM, token_for(name), name, title, hash_delete_token(delete_token),
            key.id if key else None, options.visibility, options.expires_in)
        if album_id is not None:
            break
    else:
        raise RuntimeError("no free album name after many attempts")  # suffixes grow
    await conn.execute(INSERT_MEMBERS, album_id, ids, list(range(len(ids))), owned)
    album = await album_by_token(conn, token_for(name))
    assert album is not None
    return album, delete_token


async def delete_album(pool: asyncpg.Pool, storage: ImageStore, token: str, presented: str,
                       with_images: bool) -> int:
    """The album, and with ``with_images`` the pictures it owns (or, for an admin key, all of
    them; for an upload key, those it uploaded too). Returns how many pictures went."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT id, delete_token_hash, key_id FROM albums"
                                  " WHERE token = $1 FOR UPDATE", token)
        stored = row["delete_token_hash"] if row else hash_delete_token("")
        allowed = row is not None and hmac.compare_digest(stored, hash_delete_token(presented))
        key = None
        if row is not None:
            key = await key_for_secret(conn, presented)
            allowed = allowed or (key is not None and (key.admin or key.id == row["key_id"]))
        if not allowed or row is None:
            raise Forbidden(REFUSED)
        removed = 0
        if with_images:
            pictures = await conn.fetch(
                "SELECT i.id, i.storage_key FROM album_images ai"
                "  JOIN images i ON i.id = ai.image_id"
                " WHERE ai.album_id = $1 AND (ai.owned OR $2 OR i.key_id = $3)"
                " ORDER BY i.id FOR UPDATE OF i",
                row["id"], bool(key and key.admin), key.id if key else None)
            for picture in pictures:
                await remove_image(conn, storage, picture["id"], picture["storage_key"])
            removed = len(pictures)
        await conn.execute("DELETE FROM albums WHERE id = $1", row["id"])
        return removed
