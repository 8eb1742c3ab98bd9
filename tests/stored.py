"""What a stack keeps, read the way it keeps it: files on its volume, or objects in its S3
bucket read with Kitteh's own S3 client against the real server (never a mock). Tests that
run in both storage modes look at stored files only through this."""

from __future__ import annotations

from collections.abc import Mapping

from shared.config import Env, StoreConfig
from shared.storage import ImageStore, StoredFileMissing, open_store


class StoredFiles:
    def __init__(self, env: Mapping[str, str]):
        self.config = StoreConfig.from_env(Env(env))

    async def _store(self) -> ImageStore:
        store = open_store(self.config)
        await store.check(writable=False)
        return store

    async def names(self, prefix: str = "") -> set[str]:
        store = await self._store()
        try:
            return {found.name async for found in store.list(prefix)}
        finally:
            await store.close()

    async def read(self, url: str) -> bytes | None:
        """The bytes stored for ``/i/...`` (or a stored name), or None."""
        store = await self._store()
        try:
            return b"".join([c async for c in store.stream(url.removeprefix("/i/"))])
        except StoredFileMissing:
            return None
        finally:
            await store.close()

    async def remove(self, url: str) -> None:
        store = await self._store()
        try:
            await store.delete([url.removeprefix("/i/")])
        finally:
            await store.close()

    async def put(self, name: str, data: bytes) -> None:
        store = await self._store()
        try:
            await store.put_bytes(name, data, "application/octet-stream")
        finally:
            await store.close()
