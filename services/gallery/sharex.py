"""``GET /api/sharex.sxcu``: a ShareX custom-uploader file for this Kitteh.

ShareX imports it with a double click. It posts the screenshot as the multipart field
``file`` with the caller's upload key (when the file was fetched with one: it is copied, not
checked, so this endpoint tells nothing about keys), takes the link from the JSON answer
(``page_url``), and its deletion URL is the image page with the delete token in the fragment:
ShareX opens it in a browser, where the page's Delete button (with its confirmation) does the
rest. A fragment never reaches a server, so the token is in no access log.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from services.gallery.keys import CONFIG
from services.gallery.origin import share_origin
from shared.errors import BadRequest
from shared.http import bearer

SHAREX_VERSION = "15.0.0"  # the custom-uploader format with {json:...} placeholders
KEY_SHAPE = re.compile(r"[A-Za-z0-9_\-]{1,200}")  # what token_urlsafe makes


def site_url(request: web.Request) -> str:
    """Absolute base URL: KITTEH_PUBLIC_URL, else the scheme and host the visitor used (the
    same rule as the pages' share URLs)."""
    origin = share_origin(request, request.app[CONFIG].public_url)
    if not origin:
        raise BadRequest("The request's Host header is not a host name.")
    return origin


def sharex_config(base: str, key: str | None, absolute_answers: bool) -> dict[str, Any]:
    # URLs in the JSON answer are paths unless KITTEH_PUBLIC_URL is set: prefix them then.
    prefix = "" if absolute_answers else base
    config: dict[str, Any] = {
        "Version": SHAREX_VERSION,
        "Name": f"Kitteh ({base.split('://', 1)[1]})",
        "DestinationType": "ImageUploader, FileUploader",
        "RequestMethod": "POST",
        "RequestURL": f"{base}/api/images",
        "Body": "MultipartFormData",
        "FileFormName": "file",
        "URL": prefix + "{json:page_url}",
        "ThumbnailURL": prefix + "{json:variants.large.url}",
        "DeletionURL": prefix + "{json:page_url}#delete={json:delete_token}",
        "ErrorMessage": "{json:error.message}",
    }
    if key:
        config["Headers"] = {"Authorization": f"Bearer {key}"}
    return config


async def sharex_file(request: web.Request) -> web.Response:
    key = bearer(request.headers.get("Authorization"))
    if key is not None and not KEY_SHAPE.fullmatch(key):
        raise BadRequest("That is not the shape of an upload key.")
    base = site_url(request)
    body = sharex_config(base, key, bool(request.app[CONFIG].public_url))
    return web.json_response(body, headers={
        "Content-Disposition": 'attachment; filename="kitteh.sxcu"',
        # It may carry a key: never kept by a cache on the way.
        "Cache-Control": "no-store",
    })
