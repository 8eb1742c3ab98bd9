"""Small JSON or url-encoded request bodies (an album, a link to fetch): bounded, and a 400
when broken."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from shared.errors import BadRequest, TooLarge

JSON_LIMIT = 64 * 1024


async def read_json(request: web.Request, limit: int = JSON_LIMIT) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise BadRequest("Send a JSON object (Content-Type: application/json).")
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"The JSON body is larger than {limit // 1024} KiB.")
    data = bytearray()
    try:
        async for chunk in request.content.iter_chunked(16 * 1024):
            data += chunk
            if len(data) > limit:
                raise TooLarge(f"The JSON body is larger than {limit // 1024} KiB.")
    except (ConnectionError, web.RequestPayloadError, ValueError):
        raise BadRequest("The body could not be read.") from None
    try:
        body = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("Send a JSON object ({...}).")
    return body


def text_fields(body: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """JSON values of these names as the form's text fields (numbers as digits)."""
    fields = {}
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise BadRequest(f"'{name}' must be a string" +
                             (" or a whole number." if name == "expires_in" else "."))
        fields[name] = str(value)
    return fields


async def read_urlencoded(request: web.Request, limit: int = JSON_LIMIT) -> dict[str, str]:
    """A small ``application/x-www-form-urlencoded`` body (a link and its options)."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(f"The form is larger than {limit // 1024} KiB.")
    data = bytearray()
    try:
        async for chunk in request.content.iter_chunked(16 * 1024):
            data += chunk
            if len(data) > limit:
                raise TooLarge(f"The form is larger than {limit // 1024} KiB.")
    except (ConnectionError, web.RequestPayloadError, ValueError):
        raise BadRequest("The body could not be read.") from None
    fields: dict[str, str] = {}
    try:
        pairs = parse_qsl(data.decode("utf-8", "replace"), keep_blank_values=True,
                          max_num_fields=20)
    except ValueError:
        raise BadRequest("Too many form fields.") from None
    for name, value in pairs:
        if name in fields:
            raise BadRequest(f"Send '{name}' once.")
        fields[name] = value
    return fields
