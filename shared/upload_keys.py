"""Upload keys: made by ``kitteh keys create``, presented as ``Authorization: Bearer <key>``.

A key is 256 random bits (``secrets.token_urlsafe(32)``), shown once and stored only as its
sha256: a fast hash is enough for a random secret that long (nothing to brute-force), and it
lets a presented key be looked up by its hash in one indexed query. The stored hash is then
compared with ``hmac.compare_digest`` as well, so the answer never depends on how much of a
guess matched. Keys are never logged: only their names are.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

Db = asyncpg.Connection | asyncpg.Pool

KEY_BYTES = 32  # 256 bits
MAX_KEY_LENGTH = 200  # far above the 43 characters of a real key; longer is not a key


@dataclass(frozen=True)
class UploadKey:
    id: int
    name: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> UploadKey:
        return cls(row["id"], row["name"], row["admin"], row["created_at"], row["revoked_at"])


class KeyNameTaken(ValueError):
    pass


def new_secret() -> str:
    return secrets.token_urlsafe(KEY_BYTES)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


async def key_for_secret(conn: Db, secret: str) -> UploadKey | None:
    """The live (not revoked) key with this secret, or None."""
    if not secret or len(secret) > MAX_KEY_LENGTH:
        return None
    presented = hash_secret(secret)
    row = await conn.fetchrow(
        "SELECT id, name, admin, created_at, revoked_at, key_hash FROM upload_keys"
        " WHERE key_hash = $1 AND revoked_at IS NULL", presented)
    if row is None or not hmac.compare_digest(bytes(row["key_hash"]), presented):
        return None
    return UploadKey.from_row(row)


async def create_key(conn: Db, name: str, admin: bool) -> tuple[UploadKey, str]:
    """A new key and its secret (the only time the secret exists outside the client)."""
    secret = new_secret()
    try:
        row = await conn.fetchrow(
            "INSERT INTO upload_keys (name, key_hash, admin) VALUES ($1, $2, $3)"
            " RETURNING id, name, admin, created_at, revoked_at",
            name, hash_secret(secret), admin)
    except asyncpg.UniqueViolationError:
        raise KeyNameTaken(name) from None
    return UploadKey.from_row(row), secret


async def all_keys(conn: Db) -> list[UploadKey]:
    rows = await conn.fetch(
        "SELECT id, name, admin, created_at, revoked_at FROM upload_keys ORDER BY name")
    return [UploadKey.from_row(r) for r in rows]


async def revoke_key(conn: Db, name: str) -> bool:
    """Revoke the key of that name; False if there is no live key by that name."""
    status = await conn.execute(
        "UPDATE upload_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name)
    return status.endswith(" 1")
