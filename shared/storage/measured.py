"""Store requests timed and counted for Prometheus, whatever the store (a wrapper, so neither
implementation knows about metrics)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import BinaryIO

from prometheus_client import Counter, Histogram

from shared.storage.base import ImageStore, StoredFileMissing, StoredObject


class MeasuredStore:
    def __init__(self, inner: ImageStore, seconds: Histogram, errors: Counter):
        self.inner = inner
        self.kind = inner.kind
        self._seconds = seconds
        self._errors = errors

    @contextlib.contextmanager
    def _measure(self, operation: str):
        started = time.perf_counter()
        try:
            yield
        except StoredFileMissing:
            raise  # an answer, not an error of the store
        except Exception:
            self._errors.labels(operation).inc()
            raise
        finally:
            self._seconds.labels(operation).observe(time.perf_counter() - started)

    def describe(self) -> str:
        return self.inner.describe()

    async def check(self, writable: bool = True) -> None:
        await self.inner.check(writable)

    async def close(self) -> None:
        await self.inner.close()

    async def put_file(self, name: str, source: Path, content_type: str) -> None:
        with self._measure("put"):
            await self.inner.put_file(name, source, content_type)

    async def put_bytes(self, name: str, data: bytes, content_type: str) -> None:
        with self._measure("put"):
            await self.inner.put_bytes(name, data, content_type)

    async def exists(self, name: str) -> bool:
        with self._measure("head"):
            return await self.inner.exists(name)

    async def size(self, name: str) -> int | None:
        with self._measure("head"):
            return await self.inner.size(name)

    @contextlib.asynccontextmanager
    async def open(self, name: str) -> AsyncIterator[BinaryIO]:
        with self._measure("get"):
            opened = self.inner.open(name)
            file = await opened.__aenter__()
        try:
            yield file
        finally:
            await opened.__aexit__(None, None, None)

    async def stream(self, name: str, start: int = 0,
                     end: int | None = None) -> AsyncIterator[bytes]:
        with self._measure("get"):
            async for chunk in self.inner.stream(name, start, end):
                yield chunk

    async def delete(self, names: Iterable[str]) -> None:
        with self._measure("delete"):
            await self.inner.delete(names)

    async def delete_image(self, key: str) -> None:
        with self._measure("delete"):
            await self.inner.delete_image(key)

    async def list(self, prefix: str = "") -> AsyncIterator[StoredObject]:
        with self._measure("list"):
            async for found in self.inner.list(prefix):
                yield found

    async def remove_partial_writes(self, older_than: float) -> list[str]:
        with self._measure("list"):
            return await self.inner.remove_partial_writes(older_than)

    async def problem(self, writable: bool) -> str | None:
        return await self.inner.problem(writable)
