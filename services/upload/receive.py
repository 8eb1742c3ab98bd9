"""Stream a multipart upload to a temp file, hashing and counting on the way.

Nothing is held in memory beyond one chunk. The file field is found by name (``file``);
two file fields, no file field or a broken multipart body are a 400, too many bytes a 413,
a client silent for longer than the read timeout a 408.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from aiohttp import BodyPartReader, web

from shared.config import Limits
from shared.errors import BadRequest, RequestTimeout, TooLarge
from shared.storage import Storage

CHUNK = 1024 * 1024  # large chunks: fewer executor hops; hashlib releases the GIL on them
FIELD_LIMIT = 64 * 1024  # other form fields are tiny; refuse to buffer large ones
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers on top of the file's own bytes
MAX_FILENAME = 200
FILE_FIELD = "file"


@dataclass(frozen=True)
class ReceivedFile:
    path: Path
    filename: str
    sha256: bytes
    size: int


def too_large(limits: Limits) -> TooLarge:
    return TooLarge(f"This file is too large: the limit is {human_bytes(limits.max_upload_bytes)}.")


def human_bytes(count: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count} bytes"


def clean_filename(raw: str | None) -> str:
    """Keep what a person would recognise; drop paths, control and direction characters."""
    name = raw or ""
    if name.isascii() and "%" in name:
        # Browsers send UTF-8 as is and escape only quotes and newlines as %22/%0D/%0A;
        # some clients (aiohttp, scripts) percent-encode the whole name. Both mean this:
        name = unquote(name)
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))
    name = name.strip().strip(".")
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_FILENAME - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 \
            else name[:MAX_FILENAME]
    return name


async def receive_upload(request: web.Request, storage: Storage, limits: Limits) -> ReceivedFile:
    if request.content_length is not None and (
        request.content_length > limits.max_upload_bytes + MULTIPART_SLACK
    ):
        raise too_large(limits)
    if request.content_type != "multipart/form-data":
        raise BadRequest("Send the image as multipart/form-data with a field named 'file'.")
    try:
        reader = await request.multipart()
    except (ValueError, KeyError, AssertionError):
        raise BadRequest("The multipart body is malformed (no boundary?).") from None

    received: ReceivedFile | None = None
    try:
        while True:
            part = await _timed(reader.next(), limits)
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise BadRequest("Nested multipart bodies are not accepted.")
            if part.name != FILE_FIELD:
                await _skip_field(part, limits)
                continue
            if received is not None:
                raise BadRequest("Send one file per upload (found two 'file' fields).")
            received = await _stream_part(part, storage, limits)
    except (ValueError, AssertionError) as error:
        # aiohttp's multipart parser reports malformed bodies as ValueError/AssertionError
        if received is not None:
            received.path.unlink(missing_ok=True)
        raise BadRequest(f"The multipart body is malformed: {error}") from None
    except BaseException:
        if received is not None:
            received.path.unlink(missing_ok=True)
        raise
    if received is None:
        raise BadRequest("No file was sent: choose an image (the form field is 'file').")
    if received.size == 0:
        received.path.unlink(missing_ok=True)
        raise BadRequest("The file is empty.")
    return received


async def _timed(awaitable, limits: Limits):
    try:
        async with asyncio.timeout(limits.upload_read_timeout):
            return await awaitable
    except TimeoutError:
        raise RequestTimeout(
            f"The upload stalled for more than {limits.upload_read_timeout} s."
        ) from None


async def _skip_field(part: BodyPartReader, limits: Limits) -> None:
    seen = 0
    while chunk := await _timed(part.read_chunk(CHUNK), limits):
        seen += len(chunk)
        if seen > FIELD_LIMIT:
            raise BadRequest("A form field other than 'file' is too large.")


async def _stream_part(part: BodyPartReader, storage: Storage, limits: Limits) -> ReceivedFile:
    loop = asyncio.get_running_loop()
    path = await loop.run_in_executor(None, storage.new_upload_file)
    digest = hashlib.sha256()
    size = 0
    try:
        out: BinaryIO = await loop.run_in_executor(None, open, path, "wb")
        try:
            while chunk := await _timed(part.read_chunk(CHUNK), limits):
                size += len(chunk)
                if size > limits.max_upload_bytes:
                    raise too_large(limits)
                await loop.run_in_executor(None, _write_and_hash, out, digest, chunk)
        finally:
            await loop.run_in_executor(None, out.close)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return ReceivedFile(path, clean_filename(part.filename), digest.digest(), size)


def _write_and_hash(out: BinaryIO, digest, chunk: bytes) -> None:
    digest.update(chunk)
    out.write(chunk)
