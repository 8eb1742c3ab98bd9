"""``GET /manifest.webmanifest``: the web app manifest that makes Kitteh installable, and whose
``share_target`` puts Kitteh in a phone's share sheet.

Served by the gallery rather than the assets nginx: its icons are fingerprinted asset URLs
(known only to the gallery), and a manifest's ``share_target`` action must be on the pages'
origin, which the assets may not be (``KITTEH_ASSETS_URL`` may name a CDN). The share target
posts like the no-JavaScript form: ``multipart/form-data`` with the photos as ``file`` fields,
to ``/share`` (services/upload/handlers.py).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from services.gallery.keys import ASSETS
from shared.formats import FORMATS

CONTENT_TYPE = "application/manifest+json"
LIGHT = "#fbf8f4"  # base.html's theme-color for light screens; the brand orange on the icon


def manifest(asset_url) -> dict[str, Any]:
    accept = [t for f in FORMATS for t in (f.content_type, *f.aliases)]
    accept += [f".{e}" for f in FORMATS for e in f.extensions]
    return {
        "id": "/",
        "name": "Kitteh",
        "short_name": "Kitteh",
        "description": "Share a cat picture: a memorable name, a page, every size.",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": LIGHT,
        "theme_color": LIGHT,
        "icons": [
            {"src": asset_url("img/icon192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": asset_url("img/icon512.png"), "sizes": "512x512", "type": "image/png"},
            {"src": asset_url("img/maskable512.png"), "sizes": "512x512",
             "type": "image/png", "purpose": "maskable"},
        ],
        "share_target": {
            "action": "/share",
            "method": "POST",
            "enctype": "multipart/form-data",
            "params": {"files": [{"name": "file", "accept": accept}]},
        },
    }


async def manifest_file(request: web.Request) -> web.Response:
    return web.Response(text=json.dumps(manifest(request.app[ASSETS].url)),
                        content_type=CONTENT_TYPE, headers={"Cache-Control": "no-cache"})
