"""The scheme and host the visitor used, for absolute share URLs when KITTEH_PUBLIC_URL is
unset. Behind the gateway they come from X-Forwarded-Proto and X-Forwarded-Host, which the
gateway always sets (overwriting whatever the client sent), and which it puts in the page
cache's key, so a page made for one host is never served to another. Shared by the gallery
(pages, JSON reads) and upload (the JSON of an upload), whose ``embed`` codes are absolute."""

from __future__ import annotations

import re

from aiohttp import web

from shared.urls import Urls

# A host name, IPv4 or [IPv6] literal, with an optional port: nothing that could smuggle a
# path, a user name or markup into a URL.
HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def request_origin(request: web.Request) -> str:
    """``https://kitteh.example:8443``, or "" when the request names no usable host."""
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).lower()
    host = request.headers.get("X-Forwarded-Host") or request.headers.get("Host", "")
    if scheme not in ("http", "https") or not HOST.fullmatch(host):
        return ""
    return f"{scheme}://{host}"


def share_origin(request: web.Request, public_url: str) -> str:
    return public_url or request_origin(request)


def share_urls(request: web.Request, public_url: str, files_url: str) -> Urls:
    """URLs for what people copy (the ``embed`` codes): absolute on the share origin."""
    return Urls(share_origin(request, public_url), files_url)
