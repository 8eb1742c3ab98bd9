"""Files of images: the image store (local directory or S3) and scratch space for uploads.

See ``shared.storage.base`` for the interface. Services keep one store under ``STORE``,
opened and checked in a cleanup context (``store_context``), and scratch under ``SCRATCH``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from shared.config import StoreConfig
from shared.storage.base import (
    KEY_PATTERN,
    ImageStore,
    StoredFileMissing,
    StoredObject,
    StoreError,
    StoreUnavailable,
    file_name,
    key_prefix,
    parse_name,
    storage_key,
)
from shared.storage.local import TEMP_PREFIX, LocalStore
from shared.storage.scratch import Scratch, scratch_for

__all__ = [
    "KEY_PATTERN", "SCRATCH", "STORE", "TEMP_PREFIX", "ImageStore", "LocalStore", "Scratch",
    "StoreError", "StoreUnavailable", "StoredFileMissing", "StoredObject", "file_name",
    "key_prefix", "open_store", "parse_name", "scratch_for", "storage_key", "store_context",
]

STORE = web.AppKey("store", ImageStore)
SCRATCH = web.AppKey("scratch", Scratch)


def open_store(config: StoreConfig) -> ImageStore:
    """The store the configuration names; nothing is connected or checked yet (``check``)."""
    if config.mode == "s3":
        from shared.storage.s3 import S3Store  # the S3 client is only imported when used

        assert config.s3 is not None
        return S3Store(config.s3, scratch_for(config.storage_dir))
    return LocalStore(config.storage_dir)


def store_context(config: StoreConfig, wrap: Callable[[ImageStore], ImageStore] | None = None,
                  writable: bool = True) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that opens the store, checks it (a service that cannot use its store
    does not start: ``StoreError`` names the setting), keeps it under ``STORE`` with scratch
    under ``SCRATCH``, and closes it at shutdown. ``wrap`` adds metrics. ``writable``: False
    for a service that only reads (the gallery)."""

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        store = open_store(config)
        scratch = scratch_for(config.storage_dir)
        if writable:
            scratch.prepare()
        try:
            await store.check(writable)
            app[STORE] = wrap(store) if wrap else store
            app[SCRATCH] = scratch
            yield
        finally:
            await store.close()

    return lifetime
