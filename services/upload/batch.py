"""Several files in one multipart body: the no-JavaScript form with several files chosen, and
the phone's share sheet (the web app's share target). Each file part is streamed exactly as a
single upload's (``receive``), to a temp file of its own; the whole body is still bounded by
the gateway's byte limit, and each file by the upload limit.
"""

from __future__ import annotations

from aiohttp import BodyPartReader, web

from services.upload.receive import (
    FILE_FIELD,
    KEPT_FIELDS,
    MALFORMED,
    MAX_FIELDS,
    MULTIPART_SLACK,
    BeforeFile,
    ReceivedFile,
    _first_line,
    _read_field,
    _skip_field,
    _stream_part,
    _timed,
    too_large,
)
from shared.albums import MAX_ALBUM_IMAGES, MAX_TITLE
from shared.config import Limits
from shared.errors import BadRequest
from shared.storage import Scratch

# The batch's own fields: an album title, and a share parked while the key was asked for.
BATCH_FIELDS = (*KEPT_FIELDS, "title", "pending")


async def receive_files(request: web.Request, storage: Scratch, limits: Limits,
                        before_file: BeforeFile) -> tuple[list[ReceivedFile], dict[str, str]]:
    """Every ``file`` part (none is fine: a link or a parked share may stand in), and the kept
    fields. ``before_file`` runs once, before the first byte of the first file is written
    (or at the end of a body without one)."""
    if request.content_length is not None and request.content_length > (
            limits.max_body_bytes + MULTIPART_SLACK * (MAX_ALBUM_IMAGES + 1)):
        raise too_large(limits)
    if request.content_type != "multipart/form-data":
        raise BadRequest("Send the images as multipart/form-data with fields named 'file'.")
    try:
        reader = await request.multipart()
    except (ValueError, KeyError, AssertionError):
        raise BadRequest("The multipart body is malformed (no boundary?).") from None
    files: list[ReceivedFile] = []
    fields: dict[str, str] = {}
    checked = False
    others = 0  # parts that are not files: as few as a single upload may have
    total = 0
    try:
        while True:
            part = await _timed(reader.next(), limits)
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise BadRequest("Nested multipart bodies are not accepted.")
            if part.name != FILE_FIELD:
                others += 1
                if others > MAX_FIELDS:
                    raise BadRequest(f"Too many form fields (more than {MAX_FIELDS}).")
                if part.name in BATCH_FIELDS:
                    if part.name in fields:
                        raise BadRequest(f"Send '{part.name}' once.")
                    fields[part.name] = await _read_field(part, limits)
                else:
                    await _skip_field(part, limits)
                continue
            if len(files) == MAX_ALBUM_IMAGES:
                raise BadRequest(f"Send at most {MAX_ALBUM_IMAGES} files at once.")
            if not checked:
                await before_file(dict(fields))
                checked = True
            # The declared size of the whole body against the first bytes' kind of file: the
            # gateway lets bodies up to the video limit through, images are refused at once.
            received = await _stream_part(part, storage, limits, request.content_length)
            if received.size == 0 and not part.filename:
                received.path.unlink(missing_ok=True)  # a form's empty file input
                others += 1
                if others > MAX_FIELDS:
                    raise BadRequest(f"Too many form fields (more than {MAX_FIELDS}).")
                continue
            files.append(received)
            total += received.size
            if total > limits.max_body_bytes:  # the gateway's limit is on the whole body
                raise too_large(limits)
        if not checked:
            await before_file(dict(fields))
    except MALFORMED as error:
        discard(files)
        raise BadRequest(f"The multipart body is malformed: {_first_line(error)}") from None
    except BaseException:
        discard(files)
        raise
    if any(f.size == 0 for f in files):
        discard(files)
        raise BadRequest("One of the files is empty.")
    if len(fields.get("title", "")) > MAX_TITLE:
        discard(files)
        raise BadRequest(f"'title' is longer than {MAX_TITLE} characters.")
    return [ReceivedFile(f.path, f.filename, f.sha256, f.size, fields) for f in files], fields


def discard(files: list[ReceivedFile]) -> None:
    for received in files:
        received.path.unlink(missing_ok=True)
