"""The image store: where originals and variants live, behind one small async interface.

After pict-rs's ``Store`` and warehouse's ``IGenericFileStorage``: callers name a file by its
relative name (``ab/ab12…(32 hex)/large.webp``, the path under ``/i/``), never by a ``Path``,
and never run an executor for storage. Two implementations, chosen by ``KITTEH_STORAGE``:
``LocalStore`` (a directory, the default) and ``S3Store`` (any S3-compatible server).

Uploads in flight are not in the store: they are temp files on local disk (``Scratch``), and
only a finished, cleaned file is put into the store, before its row commits.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

KEY_PATTERN = re.compile(r"^[0-9a-f]{32}$")
# The only names the store holds: shard/key/stem.ext, all generated (never the client's).
NAME_PATTERN = re.compile(r"^([0-9a-f]{2})/([0-9a-f]{32})/([a-z]+)\.([a-z0-9]+)$")


class StoreError(Exception):
    """The store cannot be used (unreachable, no such bucket, not writable): the message names
    the setting and the place, for an operator."""


class StoredFileMissing(FileNotFoundError):
    """No file by that name in the store."""


class StoreUnavailable(OSError):
    """The store did not answer, or answered with an error that is not the file's (a timeout,
    a 5xx, refused credentials): the request may succeed later. Services answer 503."""


def storage_key(sha256_hex: str) -> str:
    """The first 128 bits of the original's sha256: a URL always names the same bytes, which
    is what makes ``Cache-Control: immutable`` true even across delete and upload again."""
    return sha256_hex[:32]


def file_name(key: str, stem: str, extension: str) -> str:
    """The stored name of one file of an image, which is also its path under ``/i/``."""
    if not KEY_PATTERN.match(key):
        raise ValueError(f"not a storage key: {key!r}")
    return f"{key[:2]}/{key}/{stem}.{extension}"


def key_prefix(key: str) -> str:
    """The prefix every file of the image with this storage key starts with."""
    if not KEY_PATTERN.match(key):
        raise ValueError(f"not a storage key: {key!r}")
    return f"{key[:2]}/{key}/"


def parse_name(name: str) -> tuple[str, str, str] | None:
    """(key, stem, extension) of a stored name, or None for anything else in the store."""
    match = NAME_PATTERN.match(name)
    if match is None or match.group(2)[:2] != match.group(1):
        return None
    return match.group(2), match.group(3), match.group(4)


@dataclass(frozen=True)
class StoredObject:
    name: str
    size: int
    modified: float  # seconds since the epoch


class ImageStore(Protocol):
    """Originals and variants. Every write is atomic: a reader sees no file or the whole one."""

    kind: str  # "local" or "s3": how the gateway delivers files (deploy/nginx)

    async def check(self, writable: bool = True) -> None:
        """At start: the store is there, and writable if asked (a missing bucket or directory
        is made when allowed). Raises ``StoreError`` naming the setting and the place."""

    async def close(self) -> None:
        """Let go of connections and executors."""

    async def put_file(self, name: str, source: Path, content_type: str) -> None:
        """Store a finished local file (a scratch file) under ``name``. The source may be
        moved rather than copied: the caller only removes it if it is still there."""

    async def put_bytes(self, name: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``name``."""

    async def exists(self, name: str) -> bool: ...

    async def size(self, name: str) -> int | None:
        """Its size in bytes, or None if there is no such file."""

    def open(self, name: str) -> AbstractAsyncContextManager[BinaryIO]:
        """A seekable, blocking binary file with the stored bytes, for work in an executor
        (the resize engine). Raises ``StoredFileMissing``. Local: the file itself; S3: a
        scratch copy, removed on exit."""

    def stream(self, name: str, start: int = 0,
               end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes ``start`` up to (not including) ``end``, in chunks. Raises
        ``StoredFileMissing`` before the first chunk."""

    async def delete(self, names: Iterable[str]) -> None:
        """Remove these files; names not there are ignored. Only these: the same bytes may be
        arriving again under the same key (an upload places its original before its row
        commits)."""

    async def delete_image(self, key: str) -> None:
        """Remove every file of one image (its row is gone, in the same transaction)."""

    def list(self, prefix: str = "") -> AsyncIterator[StoredObject]:
        """Every stored file whose name starts with ``prefix``, in no particular order."""

    async def remove_partial_writes(self, older_than: float) -> list[str]:
        """Remove what writes cut short by a crash left behind (local: ``.tmp-*`` files beside
        their final names; S3: unfinished multipart uploads), if started before
        ``older_than`` (epoch seconds). Returns what was removed, for the sweeper's report."""

    async def problem(self, writable: bool) -> str | None:
        """For /readyz: what is wrong with the store now, or None."""

    def describe(self) -> str:
        """Where the files are, for logs and messages: a directory or endpoint and bucket."""
