"""Answering an HTTP request with a stored file, streamed from the store (either kind).

Used where nginx does not serve the file itself: a variant just made on demand, the S3 mode's
file origin behind the gateway's cache, downloads without X-Accel-Redirect. One byte range
(``Range: bytes=a-b``, ``a-``, ``-n``) is honoured, as browsers and video players ask;
anything else gets the whole file.
"""

from __future__ import annotations

import re

from aiohttp import web

from shared.storage.base import ImageStore, StoredFileMissing

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) of a satisfiable single range, None for the whole file.
    Raises ``web.HTTPRequestRangeNotSatisfiable`` for a range past the end."""
    match = RANGE.match(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":  # the last n bytes
        start, end = max(0, size - int(last)), size
    else:
        start = int(first)
        end = size if last == "" else min(size, int(last) + 1)
    if start >= size or start >= end:
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{size}"})
    return start, end


async def stored_file_response(request: web.Request, store: ImageStore, name: str,
                               headers: dict[str, str]) -> web.StreamResponse:
    """Stream ``name`` with ``headers`` (Content-Type and caching are the caller's). Raises
    ``StoredFileMissing`` before anything is sent if there is no such file."""
    size = await store.size(name)
    if size is None:
        raise StoredFileMissing(name)
    wanted = byte_range(request.headers.get("Range"), size)
    start, end = wanted or (0, size)
    response = web.StreamResponse(status=206 if wanted else 200, headers={
        **headers, "Accept-Ranges": "bytes"})
    response.content_length = end - start
    if wanted:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    if request.method == "HEAD":
        await response.prepare(request)
        return response
    chunks = store.stream(name, start, end)
    first = await anext(chunks, b"")  # a file removed since size() fails here, not midway
    await response.prepare(request)
    await response.write(first)
    async for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response
