"""Stream a multipart upload to a temp file, hashing and counting on the way.

Nothing is held in memory beyond one chunk. The file field is found by name (``file``);
two file fields, no file field, too many fields or a broken multipart body are a 400, too
many bytes a 413, a client silent for longer than the read timeout a 408. The part's own
Content-Type is ignored: what a file is comes from its content (``shared.imaging``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiofiles
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from services.upload.filenames import clean_filename
from shared.config import Limits
from shared.errors import BadRequest, RequestTimeout, TooLarge
from shared.formats import SNIFF_BYTES, sniff
from shared.http import is_storage_full
from shared.storage import Scratch
from shared.units import human_bytes

CHUNK = 1024 * 1024  # large chunks: fewer executor hops for the writes
FIELD_LIMIT = 64 * 1024  # other form fields are tiny; refuse to buffer large ones
MAX_FIELDS = 20  # the form has one field; thousands of tiny ones only cost parsing time
MULTIPART_SLACK = 64 * 1024  # boundaries and part headers on top of the file's own bytes
FILE_FIELD = "file"
# Small text fields kept for the caller (the upload key, visibility, expiry, a link to fetch
# instead of a file); others skipped.
KEPT_FIELDS = ("key", "visibility", "expires_in", "url")
# How aiohttp reports a broken body: a malformed multipart structure (ValueError,
# AssertionError), part headers it will not parse (NUL or CR in a header, a line too long,
# too many headers: HttpProcessingError), a body it cannot decode (RequestPayloadError), a
# client gone mid-body (ConnectionError). All are the client's doing: a 400, never a 500.
MALFORMED = (ValueError, AssertionError, HttpProcessingError, web.RequestPayloadError,
             ConnectionError)


@dataclass(frozen=True)
class ReceivedFile:
    path: Path
    filename: str
    sha256: bytes
    size: int
    fields: dict[str, str] = field(default_factory=dict)  # the KEPT_FIELDS that came


class NoFile(BadRequest):
    """A body without a file: the caller may still find a link to fetch in ``fields``."""

    def __init__(self, message: str, fields: dict[str, str]):
        super().__init__(message)
        self.fields = fields


# Called with the kept fields seen so far when the file part starts (or when the body ends
# without one), before a byte of the file is written: the upload key check.
BeforeFile = Callable[[dict[str, str]], Awaitable[None]]


def too_large(limits: Limits, video: bool = False) -> TooLarge:
    if video:
        return TooLarge("This video is too large: the limit is "
                        f"{human_bytes(limits.max_video_bytes)}.")
    return TooLarge(f"This file is too large: the limit is {human_bytes(limits.max_upload_bytes)}"
                    f" ({human_bytes(limits.max_video_bytes)} for a video).")


def _byte_limit(head: bytes, limits: Limits) -> tuple[int, bool]:
    """A video may be larger than an image: which it is comes from its first bytes."""
    fmt = sniff(head)
    video = fmt is not None and fmt.kind == "video"
    return (limits.max_video_bytes if video else limits.max_upload_bytes), video


async def receive_upload(request: web.Request, scratch: Scratch, limits: Limits,
                         before_file: BeforeFile | None = None) -> ReceivedFile:
    if request.content_length is not None and (
        request.content_length > limits.max_body_bytes + MULTIPART_SLACK
    ):
        raise too_large(limits)
    if request.content_type != "multipart/form-data":
        raise BadRequest("Send the image as multipart/form-data with a field named 'file'.")
    try:
        reader = await request.multipart()
    except (ValueError, KeyError, AssertionError):
        raise BadRequest("The multipart body is malformed (no boundary?).") from None

    received: ReceivedFile | None = None
    fields: dict[str, str] = {}
    try:
        for _ in range(MAX_FIELDS + 1):
            part = await _timed(reader.next(), limits)
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise BadRequest("Nested multipart bodies are not accepted.")
            if part.name in KEPT_FIELDS:
                if part.name in fields:
                    raise BadRequest(f"Send '{part.name}' once.")
                fields[part.name] = await _read_field(part, limits)
                continue
            if part.name != FILE_FIELD:
                await _skip_field(part, limits)
                continue
            if received is not None:
                raise BadRequest("Send one file per upload (found two 'file' fields).")
            if before_file is not None:
                await before_file(dict(fields))
            received = await _stream_part(part, scratch, limits, request.content_length)
        else:
            raise BadRequest(f"Too many form fields (more than {MAX_FIELDS}).")
        if received is None and before_file is not None:
            await before_file(dict(fields))
    except MALFORMED as error:
        if received is not None:
            received.path.unlink(missing_ok=True)
        raise BadRequest(f"The multipart body is malformed: {_first_line(error)}") from None
    except BaseException:
        if received is not None:
            received.path.unlink(missing_ok=True)
        raise
    if received is None:
        raise NoFile("No file was sent: choose an image (the form field is 'file').", fields)
    if received.size == 0:
        received.path.unlink(missing_ok=True)
        raise BadRequest("The file is empty.")
    return ReceivedFile(received.path, received.filename, received.sha256, received.size,
                        fields)


def _first_line(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error)
    return (str(text).strip().splitlines() or [type(error).__name__])[0][:200]


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


async def _drain(part: BodyPartReader, limits: Limits, size: int) -> None:
    """Read and drop the rest of a file part, up to the upload limit."""
    while size <= limits.max_body_bytes and (
            chunk := await _timed(part.read_chunk(CHUNK), limits)):
        size += len(chunk)


async def _read_field(part: BodyPartReader, limits: Limits) -> str:
    """A small text field's value (bounded: a huge one is refused, never buffered)."""
    data = bytearray()
    while chunk := await _timed(part.read_chunk(CHUNK), limits):
        data += chunk
        if len(data) > FIELD_LIMIT:
            raise BadRequest("A form field other than 'file' is too large.")
    return data.decode("utf-8", "replace")


async def _stream_part(part: BodyPartReader, scratch: Scratch, limits: Limits,
                       declared: int | None = None) -> ReceivedFile:
    """``declared``: the request's Content-Length. Once the file's first bytes say whether it
    is a video, a body declared larger than that kind's limit is refused at once (the gateway
    lets bodies up to the larger limit through: it cannot tell the two apart)."""
    path = await asyncio.to_thread(scratch.new_file)
    digest = hashlib.sha256()
    size = 0
    head = b""
    limit, video = limits.max_upload_bytes, False
    try:
        # aiofiles runs the open, each write and the close in the loop's executor, so a slow
        # disk never stalls the loop. The hash runs in a thread of its own beside the write
        # (hashlib releases the GIL on big chunks): on the loop, about 1.4 ms a MiB, it would
        # stop the socket being read while it hashes.
        async with aiofiles.open(path, "wb") as out:
            while chunk := await _timed(part.read_chunk(CHUNK), limits):
                size += len(chunk)
                if len(head) < SNIFF_BYTES:
                    head += chunk[:SNIFF_BYTES - len(head)]
                    limit, video = _byte_limit(head, limits)
                    # The whole body, framing included, as the gateway counted it before it
                    # had two limits (client_max_body_size was the image limit).
                    if len(head) >= SNIFF_BYTES and declared is not None and declared > limit:
                        raise too_large(limits, video)
                if size > limit:
                    raise too_large(limits, video)
                try:
                    await asyncio.gather(out.write(chunk),
                                         asyncio.to_thread(digest.update, chunk))
                except OSError as error:
                    if is_storage_full(error):
                        # Read the rest of the file before answering 507: a client still
                        # sending when the answer comes sees a reset, not the answer.
                        await _drain(part, limits, size)
                    raise
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return ReceivedFile(path, clean_filename(part.filename), digest.digest(), size)
