"""PostgreSQL access: one asyncpg pool per service, opened and closed in ``cleanup_ctx``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web

log = logging.getLogger("kitteh")

DB_POOL = web.AppKey("db_pool", asyncpg.Pool)

# What a lost, restarting or overloaded database looks like from asyncpg. Requests that meet
# one of these answer 503 with Retry-After (shared.http), background work retries later.
# OSError covers a refused TCP connection and a Unix socket that is gone while the server is
# down; the two Postgres classes cover "terminating connection due to administrator command"
# (57P01), "the database system is starting up" (57P03) and a connection dropped mid-query.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # a standby during a failover
    asyncpg.InterfaceError,  # the pool or the connection was closed under us
    # An idle connection the server terminated at shutdown can fail its next query with
    # "cannot switch to state 12; another operation (2) is in progress" (asyncpg issue
    # #1069) before asyncpg notices the socket is gone; the pool then replaces it.
    asyncpg.exceptions.InternalClientError,
)

# Postgres's "repeat the transaction" class (40xxx): a deadlock victim (40P01) or a
# serialization failure (40001) was rolled back whole, and the same statement, repeated,
# succeeds. Processes updating the same variant rows at once (two resize replicas, the
# reconciler, on-demand requests) can meet one under load. Nothing is wrong with the server:
# a write retries it, a request answers 503 with Retry-After, never 500.
RETRY_TRANSACTION: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.TransactionRollbackError,
)

# A service that starts while Postgres is restarting waits for it instead of exiting at once.
START_PATIENCE = 60.0


def pool_context(
    database_url: str, min_size: int = 1, max_size: int = 10
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that keeps the pool under ``DB_POOL`` for the app's lifetime.

    After that, a Postgres restart needs nothing from us: asyncpg drops connections the server
    closed and opens fresh ones on the next ``acquire``.
    """

    async def open_pool(app: web.Application) -> AsyncIterator[None]:
        pool = await _create_pool_patiently(
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


async def _create_pool_patiently(database_url: str, **options) -> asyncpg.Pool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_PATIENCE
    delay = 0.25
    while True:
        try:
            return await asyncpg.create_pool(database_url, **options)
        except DATABASE_UNAVAILABLE as error:
            if loop.time() + delay > deadline:
                raise
            log.warning("database not reachable yet (%r); retrying in %.1f s", error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def register_codecs(connection: asyncpg.Connection) -> None:
    """json columns (from json_agg) arrive as Python objects, not strings."""
    await connection.set_type_codec(
        "json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )
