"""Who may upload: anyone (``KITTEH_UPLOADS=open``) or the holders of an upload key (``keys``).

The key comes as ``Authorization: Bearer <key>``, checked before any of the body is read, or,
for the no-JavaScript form, as a ``key`` field placed before the file, checked before a byte of
the file is written. In open mode a key is never required, but a valid one is still recorded
with the upload (so its holder may delete it later); an invalid one is ignored, as before keys
existed.
"""

from __future__ import annotations

import asyncpg
from aiohttp import web

from services.upload.keys import CONFIG
from shared.db import DB_POOL
from shared.errors import Unauthorized
from shared.http import bearer
from shared.origin import share_urls
from shared.upload_keys import UploadKey, key_for_secret
from shared.urls import Urls

KEY_FIELD = "key"
NO_KEY = ("This Kitteh accepts uploads only with an upload key: send it as "
          "'Authorization: Bearer <key>'. Ask the operator for one (kitteh keys create).")
BAD_KEY = "That upload key is not valid (mistyped, or revoked)."


class UploadGate:
    """One upload's key check: the header first, else the form's ``key`` field."""

    def __init__(self, pool: asyncpg.Pool, mode: str, header: str | None):
        self.pool = pool
        self.required = mode == "keys"
        self.presented = bearer(header)
        self.key: UploadKey | None = None
        self.checked = False

    async def check_header(self) -> None:
        if self.presented is not None:
            await self._check(self.presented)

    async def check_fields(self, fields: dict[str, str]) -> None:
        """At the start of the file (or the end of a body without one)."""
        if not self.checked and fields.get(KEY_FIELD):
            await self._check(fields[KEY_FIELD])
        if self.required and self.key is None:
            raise Unauthorized(BAD_KEY if self.checked else NO_KEY)

    async def _check(self, secret: str) -> None:
        self.checked = True
        self.key = await key_for_secret(self.pool, secret)
        if self.required and self.key is None:
            raise Unauthorized(BAD_KEY)


def gate_for(request: web.Request) -> UploadGate:
    """The request's gate, with the key of its ``Authorization`` header (if any)."""
    app = request.app
    return UploadGate(app[DB_POOL], app[CONFIG].uploads, request.headers.get("Authorization"))


def share_urls_for(request: web.Request) -> Urls:
    """Absolute URLs for the ``embed`` codes of an answer: KITTEH_PUBLIC_URL's, else the
    request's own scheme and host."""
    config = request.app[CONFIG]
    return share_urls(request, config.public_url, config.files_url)
