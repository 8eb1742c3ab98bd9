"""A small blocking HTTP client for the compose test (its steps are blocking commands), and
waits for events with generous bounds: a busy two-core machine must not fail a right test."""

from __future__ import annotations

import http.client
import json
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)


def request(port: int, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None, tls: ssl.SSLContext | None = None,
            host: str = "127.0.0.1", timeout: float = 60) -> Response:
    connection = (http.client.HTTPSConnection(host, port, context=tls, timeout=timeout)
                  if tls else http.client.HTTPConnection(host, port, timeout=timeout))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        return Response(answer.status, answer.headers, answer.read())
    finally:
        connection.close()


def upload(port: int, photo: Path, tls: ssl.SSLContext | None = None) -> Response:
    """POST /api/images with the photo as the multipart field `file`."""
    boundary = uuid.uuid4().hex
    body = b"".join([
        f"--{boundary}\r\n".encode(),
        f'Content-Disposition: form-data; name="file"; filename="{photo.name}"\r\n'.encode(),
        b"Content-Type: application/octet-stream\r\n\r\n",
        photo.read_bytes(),
        f"\r\n--{boundary}--\r\n".encode(),
    ])
    return request(port, "POST", "/api/images", body, tls=tls,
                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 180,
             interval: float = 1.0) -> T:
    """The first true result of check(); errors count as "not yet" until the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
            if result:
                return result
            last = result
        except (OSError, http.client.HTTPException, ValueError, AssertionError) as error:
            last = error
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}; last: {last!r}")
        time.sleep(interval)


def formats_ready(port: int, token: str, variant: str = "large",
                  tls: ssl.SSLContext | None = None) -> dict | None:
    """The image's JSON once the variant is ready in JPEG/PNG and in AVIF and WebP."""
    image = request(port, "GET", f"/api/images/{token}", tls=tls).json()
    formats = image["variants"][variant].get("formats", {})
    ready = image["variants"][variant].get("ready") and {"avif", "webp"} <= set(formats)
    return image if ready else None
