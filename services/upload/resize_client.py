"""Asking the resize service for variants: one client session for the app's lifetime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from services.upload.keys import CONFIG, RESIZE_SESSION
from shared.logs import REQUEST_ID, REQUEST_ID_HEADER

log = logging.getLogger("kitteh.upload")


async def resize_session(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=app[CONFIG].resize_timeout, sock_connect=2)
    async with aiohttp.ClientSession(base_url=app[CONFIG].resize_url + "/",
                                     timeout=timeout) as session:
        app[RESIZE_SESSION] = session
        yield


async def request_variants(app: web.Application, token: str) -> bool:
    """Ask resize to make the variants now. Failure is not the uploader's problem: the
    variants stay pending and are made by the reconciler or on first request. The request
    id goes along, so resize's log lines for this work carry the upload's id."""
    request_id = REQUEST_ID.get()
    headers = {REQUEST_ID_HEADER: request_id} if request_id else None
    try:
        async with app[RESIZE_SESSION].post(f"variants/{token}", headers=headers) as response:
            if response.status == 200:
                return True
            log.warning("resize answered %s for %s", response.status, token)
    except (aiohttp.ClientError, TimeoutError) as error:
        log.warning("resize unreachable for %s: %r", token, error)
    return False
