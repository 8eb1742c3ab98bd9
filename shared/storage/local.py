"""The image store as a directory on a local (or mounted) disk: the default.

Layout under the root, served by nginx at ``/i/`` straight from the disk (sendfile)::

    ab/ab12…(32 hex)/original.jpg   tiny.jpg   large.webp ...
    tmp/                             uploads in flight (``Scratch``; same file system, so a
                                     finished upload is renamed into place, not copied)

Blocking file work runs in the default executor here, so no caller has to.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import BinaryIO, TypeVar

from shared.storage.base import (
    StoredFileMissing,
    StoredObject,
    StoreError,
    key_prefix,
    parse_name,
)

TEMP_PREFIX = ".tmp-"  # a file being written beside its final name
CHUNK = 256 * 1024
T = TypeVar("T")


class LocalStore:
    kind = "local"

    def __init__(self, root: Path):
        self.root = root

    def describe(self) -> str:
        return f"the directory {self.root} (KITTEH_STORAGE_DIR)"

    def path(self, name: str) -> Path:
        """The file behind a stored name. Only for this module and the local gateway's
        configuration: everything else goes through the interface."""
        if parse_name(name) is None:
            raise ValueError(f"not a stored file name: {name!r}")
        return self.root / name

    async def _run(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(fn, *args))

    async def check(self, writable: bool = True) -> None:
        def make() -> None:
            if not writable:  # the gallery: a volume mounted later is reported by /readyz
                return
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f"{TEMP_PREFIX}probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()

        try:
            await self._run(make)
        except OSError as error:
            raise StoreError(f"KITTEH_STORAGE_DIR={self.root}: cannot write there: "
                             f"{error.strerror or error}") from None

    async def close(self) -> None:
        pass

    async def put_file(self, name: str, source: Path, content_type: str) -> None:
        await self._run(self._place, source, self.path(name))

    @staticmethod
    def _place(source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(source, 0o644)
        try:
            os.replace(source, target)  # the scratch directory is on this file system
        except OSError as error:
            if error.errno != 18:  # EXDEV: scratch on another disk; copy beside, then rename
                raise
            LocalStore._write(target, lambda out: shutil.copyfileobj(source.open("rb"), out))

    async def put_bytes(self, name: str, data: bytes, content_type: str) -> None:
        await self._run(self._write, self.path(name), lambda out: out.write(data))

    @staticmethod
    def _write(target: Path, fill: Callable[[BinaryIO], object]) -> None:
        """Write beside the final name, then rename: readers see no file or the whole one."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
            os.chmod(temp, 0o644)
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    async def exists(self, name: str) -> bool:
        return await self._run(self.path(name).is_file)

    async def size(self, name: str) -> int | None:
        try:
            return (await self._run(self.path(name).stat)).st_size
        except FileNotFoundError:
            return None

    @contextlib.asynccontextmanager
    async def open(self, name: str) -> AsyncIterator[BinaryIO]:
        try:
            file = await self._run(self.path(name).open, "rb")
        except FileNotFoundError:
            raise StoredFileMissing(name) from None
        try:
            yield file
        finally:
            await self._run(file.close)

    async def stream(self, name: str, start: int = 0,
                     end: int | None = None) -> AsyncIterator[bytes]:
        async with self.open(name) as file:
            await self._run(file.seek, start)
            left = None if end is None else max(0, end - start)
            while left is None or left > 0:
                chunk = await self._run(file.read, CHUNK if left is None else min(CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    async def delete(self, names: Iterable[str]) -> None:
        paths = [self.path(n) for n in names]
        await self._run(self._remove, paths)

    def _remove(self, paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)
        for directory in {p.parent for p in paths}:
            self._prune(directory)

    def _prune(self, directory: Path) -> None:
        """An image directory and its shard, if now empty. A directory that is not empty
        belongs to an upload of the same bytes arriving now: left alone."""
        with contextlib.suppress(OSError):
            directory.rmdir()
            directory.parent.rmdir()

    async def delete_image(self, key: str) -> None:
        directory = self.root / key_prefix(key)

        def remove() -> None:
            shutil.rmtree(directory, ignore_errors=True)
            with contextlib.suppress(OSError):
                directory.parent.rmdir()

        await self._run(remove)

    async def list(self, prefix: str = "") -> AsyncIterator[StoredObject]:
        for found in await self._run(self._scan, prefix):
            yield found

    def _scan(self, prefix: str) -> list[StoredObject]:
        found: list[StoredObject] = []
        for directory, _dirs, files in os.walk(self.root):
            relative = os.path.relpath(directory, self.root)
            for file in files:
                name = file if relative == "." else f"{relative}/{file}"
                if not name.startswith(prefix) or parse_name(name) is None:
                    continue  # temp files, scratch, anything else on the volume
                with contextlib.suppress(FileNotFoundError):
                    stat = os.stat(os.path.join(directory, file), follow_symlinks=False)
                    found.append(StoredObject(name, stat.st_size, stat.st_mtime))
        return found

    async def remove_partial_writes(self, older_than: float) -> list[str]:
        return await self._run(self._remove_partial, older_than)

    def _remove_partial(self, older_than: float) -> list[str]:
        removed = []
        for directory, _dirs, files in os.walk(self.root):
            for file in files:
                if not file.startswith(TEMP_PREFIX):
                    continue
                path = os.path.join(directory, file)
                with contextlib.suppress(FileNotFoundError):
                    if os.stat(path, follow_symlinks=False).st_mtime < older_than:
                        os.unlink(path)
                        removed.append(path)
        return removed

    async def problem(self, writable: bool) -> str | None:
        root = self.root
        if not await self._run(root.is_dir):
            return f"{root} is not a directory (volume not mounted?)"
        wanted = os.R_OK | os.X_OK | (os.W_OK if writable else 0)
        if not await self._run(os.access, root, wanted):
            return f"{root} is not {'writable' if writable else 'readable'} by this process"
        return None
