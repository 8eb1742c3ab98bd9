"""Talking to the gateway like a hostile client: from many addresses, with hand-made bodies,
slowly, and checking the state it leaves behind."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg

BOUNDARY = "KittehHostileBoundary"


@asynccontextmanager
async def client_from(address: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A session whose connections come from ``address`` (any of 127.0.0.0/8 is local).
    The gateway rate-limits uploads per client address; each case gets its own, so the
    corpus is not throttled and does not throttle the other tests."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


def source_address(index: int) -> str:
    return f"127.0.{77 + index // 250}.{1 + index % 250}"


def multipart(*parts: tuple[bytes, bytes]) -> bytes:
    """A multipart/form-data body from (raw part headers, data) pairs, exactly as given."""
    body = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + headers + b"\r\n\r\n" + data + b"\r\n"
                    for headers, data in parts)
    return body + b"--" + BOUNDARY.encode() + b"--\r\n"


def file_part(data: bytes, filename: bytes = b"cat.png", field: bytes = b"file",
              content_type: bytes = b"image/png") -> tuple[bytes, bytes]:
    return (b'Content-Disposition: form-data; name="' + field + b'"; filename="' + filename
            + b'"\r\nContent-Type: ' + content_type, data)


def browser_file_part(data: bytes, filename: str, content_type: str) -> tuple[bytes, bytes]:
    """The file part as a browser writes it (WHATWG HTML: UTF-8, with only ``"``, CR and LF
    percent-encoded); NUL, which no browser sends, is percent-encoded as scripts do."""
    escaped = (filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
               .replace("\0", "%00"))
    return file_part(data, escaped.encode(), content_type=content_type.encode())


def field_part(name: bytes, value: bytes) -> tuple[bytes, bytes]:
    return b'Content-Disposition: form-data; name="' + name + b'"', value


@dataclass
class RawResponse:
    status: int
    headers: dict[str, list[str]]
    body: bytes
    seconds: float

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


async def raw_post(url: str, path: str, headers: dict[str, str], body: AsyncIterator[bytes],
                   source: str, within: float = 30) -> RawResponse:
    """POST over a plain socket, sending ``body`` as it comes, and read the answer as soon as
    the server gives one, even mid-body (as nginx does when a body passes its limit)."""
    parts = urlsplit(url)
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port,
                                                   local_addr=(source, 0))
    head = f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode())

    async def send() -> None:
        try:
            async for piece in body:
                writer.write(piece)
                await writer.drain()
        except (ConnectionError, OSError):
            pass  # the server answered and closed: what we are testing for

    sender = asyncio.create_task(send())
    try:
        async with asyncio.timeout(within):
            response = await _read_response(reader)
    finally:
        sender.cancel()
        writer.close()
        with suppress(ConnectionError, OSError):
            await writer.wait_closed()
    response.seconds = time.monotonic() - started
    return response


async def _read_response(reader: asyncio.StreamReader) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    if headers.get("transfer-encoding", [""])[0].lower() == "chunked":
        body = b""
        while size := int((await reader.readline()).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readline()
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"][0]))
    else:
        body = await reader.read()
    return RawResponse(status, headers, body, 0.0)


async def once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def file_part_head(filename: bytes = b"huge.jpg") -> bytes:
    """The start of a multipart body, up to where the file's bytes begin."""
    headers, _ = file_part(b"", filename, content_type=b"image/jpeg")
    return b"--" + BOUNDARY.encode() + b"\r\n" + headers + b"\r\n\r\n"


async def trickle(total: int, piece: int, pause: float, head: bytes = b"") -> AsyncIterator[bytes]:
    """``head``, then ``total`` bytes in pieces of ``piece`` with ``pause`` seconds between."""
    if head:
        yield head
    sent = 0
    while sent < total:
        size = min(piece, total - sent)
        yield b"\xff" * size
        sent += size
        await asyncio.sleep(pause)


def chunked(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async def encode() -> AsyncIterator[bytes]:
        async for piece in pieces:
            yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        yield b"0\r\n\r\n"
    return encode()


def alert_text(html: str) -> str:
    """The message of the form page's error notice, tags stripped."""
    found = re.search(r'role="alert"[^>]*>(.*?)</(?:p|div)>', html, re.S)
    return re.sub(r"<[^>]+>|\s+", " ", found.group(1)).strip() if found else ""


# --- the state a refused upload must leave untouched ----------------------------------------


def volume_snapshot(root: Path) -> dict[str, str]:
    """Every directory and file under the volume, files with their content hash."""
    snapshot = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        snapshot[key] = ("dir" if path.is_dir()
                         else hashlib.sha256(path.read_bytes()).hexdigest())
    return snapshot


def database_url(data_dir: Path) -> str:
    return f"postgresql://postgres@/kitteh?host={data_dir / 'postgres' / 'run'}"


async def database_snapshot(conn: asyncpg.Connection) -> dict[str, list]:
    return {
        "images": [tuple(r) for r in await conn.fetch("SELECT * FROM images ORDER BY id")],
        "variants": [tuple(r) for r in await conn.fetch(
            "SELECT * FROM variants ORDER BY image_id, kind")],
    }


def temp_files(temp_dir: Path) -> list[str]:
    return sorted(p.name for p in temp_dir.iterdir())


async def wait_for_no_temp_files(temp_dir: Path, seconds: float = 10) -> list[str]:
    """Uploads cut off mid-body are cleaned up by the upload service soon after."""
    deadline = time.monotonic() + seconds
    while True:
        left = temp_files(temp_dir)
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.05)


async def wait_until_quiet(conn: asyncpg.Connection, temp_dir: Path, seconds: float = 60) -> None:
    """No variant being made, no upload being received: the state can be compared."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        busy = await conn.fetchval(
            "SELECT count(*) FROM variants WHERE state IN ('pending', 'working')")
        if not busy and not temp_files(temp_dir):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the stack did not settle: {busy} variants busy, "
                         f"temp dir {temp_files(temp_dir)}")
