"""Security headers on every gallery response; a strict CSP on HTML (no inline script)."""

from __future__ import annotations

from aiohttp import web

from services.gallery.keys import ASSETS, CONFIG


def csp(asset_origin: str, files_origin: str = "") -> str:
    """``files_origin``: KITTEH_FILES_URL, where every picture of a page comes from."""
    extra = f" {asset_origin}" if asset_origin else ""
    images = f" {files_origin}" if files_origin else ""
    return (f"default-src 'self'; script-src 'self'{extra}; style-src 'self'{extra}; "
            f"img-src 'self'{images} data: blob:; media-src 'self'{images}; connect-src 'self'; "
            f"font-src 'self'{extra}; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@web.middleware
async def security_headers(request: web.Request, handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if (response.content_type or "").startswith("text/html"):
        response.headers["Content-Security-Policy"] = csp(request.app[ASSETS].origin,
                                                          request.app[CONFIG].files_url)
        response.headers.setdefault("X-Frame-Options", "DENY")
    return response
