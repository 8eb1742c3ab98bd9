"""PostgreSQL access: one asyncpg pool per service, opened and closed in ``cleanup_ctx``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web

DB_POOL = web.AppKey("db_pool", asyncpg.Pool)


def pool_context(
    database_url: str, min_size: int = 1, max_size: int = 10
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that keeps the pool under ``DB_POOL`` for the app's lifetime."""

    async def open_pool(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            database_url,
            min_size=min_size,
            max_size=max_size,
            # A dead server must not hang a request forever; the statement cache is on by default.
            timeout=10,
            command_timeout=30,
            init=register_codecs,
        )
        app[DB_POOL] = pool
        try:
            yield
        finally:
            await pool.close()

    return open_pool


async def register_codecs(connection: asyncpg.Connection) -> None:
    """json columns (from json_agg) arrive as Python objects, not strings."""
    await connection.set_type_codec(
        "json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )
