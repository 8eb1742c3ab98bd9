"""A small web server for the upload-from-a-link tests: it serves a picture on 127.0.0.2 (a
loopback address a test opens with KITTEH_FETCH_ALLOW_NETWORKS=127.0.0.2/32) and listens on
the same port on 127.0.0.1 and [::1] too, so a fetch that should have been refused and was not
would be seen. It records every request with the address it came in on."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass, field

from aiohttp import web

ALLOWED_HOST = "127.0.0.2"
ALLOWED_NETWORK = "127.0.0.2/32"


@dataclass
class PictureServer:
    picture: bytes
    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)  # (address, path)
    big_sent: int = 0  # bytes /big wrote before the client stopped reading
    runner: web.AppRunner | None = None

    def url(self, path: str, host: str = ALLOWED_HOST) -> str:
        return f"http://{host}:{self.port}{path}"

    def seen(self, address: str | None = None) -> list[str]:
        return [p for a, p in self.requests if address is None or a == address]

    async def start(self) -> PictureServer:
        app = web.Application()
        app.router.add_get("/cat.jpg", self._picture)
        app.router.add_get("/photos/{name}", self._picture)
        app.router.add_get("/redirect", self._redirect)
        app.router.add_get("/missing.jpg", self._missing)
        app.router.add_get("/big.jpg", self._big)
        app.middlewares.append(self._record)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        for _ in range(20):  # one port free on all three addresses
            with socket.socket() as probe:
                probe.bind((ALLOWED_HOST, 0))
                self.port = probe.getsockname()[1]
            sites = [web.TCPSite(self.runner, host, self.port)
                     for host in (ALLOWED_HOST, "127.0.0.1", "::1")]
            try:
                for site in sites:
                    await site.start()
            except OSError:
                for site in sites:
                    with contextlib.suppress(Exception):
                        await site.stop()
                continue
            return self
        raise RuntimeError("no port free on 127.0.0.2, 127.0.0.1 and ::1 at once")

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler):
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        self.requests.append((sockname[0] if sockname else "?", request.path_qs))
        return await handler(request)

    async def _picture(self, request: web.Request) -> web.Response:
        return web.Response(body=self.picture, content_type="image/jpeg")

    async def _missing(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="no such cat")

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def _big(self, request: web.Request) -> web.StreamResponse:
        """64 MiB of JPEG-looking bytes, chunked (no Content-Length to refuse early)."""
        response = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"\xff\xd8\xff\xe0" + bytes(64 * 1024 - 4)
        try:
            for _ in range(1024):
                await response.write(chunk)
                self.big_sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading: what we want to see
        return response
