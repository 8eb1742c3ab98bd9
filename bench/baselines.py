"""The bare servers the benchmarks compare Kitteh against, each run as its own process:

    python -m bench.baselines page PORT BYTES [DATABASE_URL TOKEN]
                                                 aiohttp + aiohttp-jinja2, one HTML page of
                                                 about BYTES; with a database, each request
                                                 first runs Kitteh's image query for TOKEN
                                                 (plain asyncpg pool, default settings)
    python -m bench.baselines upload PORT DIR    aiohttp, streams a request body to a file in
                                                 DIR in 64 KiB chunks, answers its size

They are what a competent minimal service does, so a ratio against them shows what Kitteh's
own layers (gateway, middlewares, the database, validation) cost.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import aiohttp_jinja2
import asyncpg
import jinja2
from aiohttp import web

from shared.queries import BY_TOKEN

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<link rel="stylesheet" href="/assets/app.css"></head>
<body><main><h1>{{ title }}</h1>
{% for item in items %}<section class="item" id="item-{{ loop.index }}">
<h2>{{ item.name }}</h2><p>{{ item.text }}</p>
<img src="/i/{{ item.key }}/large.jpg" width="300" height="200" alt="{{ item.name }}">
</section>
{% endfor %}</main></body></html>
"""


async def page(request: web.Request) -> web.Response:
    title = "A bare page"
    if QUERY in request.app:
        pool, token = request.app[QUERY]
        row = await pool.fetchrow(BY_TOKEN, token)
        if row is None:
            raise web.HTTPNotFound()
        title = row["name"]
    return aiohttp_jinja2.render_template("page.html", request, {
        "title": title, "items": request.app[ITEMS]})


ITEMS = web.AppKey("items", list)
QUERY = web.AppKey("query", tuple)


def with_query(app: web.Application, database_url: str, token: str) -> web.Application:
    async def pool(app: web.Application):
        async with asyncpg.create_pool(database_url, min_size=1, max_size=10) as opened:
            app[QUERY] = (opened, token)
            yield

    app.cleanup_ctx.append(pool)
    return app


def items(count: int) -> list[dict]:
    return [{"name": f"Cat number {n} & friends", "key": f"{n % 256:02x}/{n:032x}",
             "text": "A cat sat on a mat, and that was <fine>. " * 2} for n in range(count)]


def page_app(size: int) -> web.Application:
    """The page has as many items as make it ``size`` bytes (within one item)."""
    app = web.Application()
    env = aiohttp_jinja2.setup(app, loader=jinja2.DictLoader({"page.html": PAGE}),
                               autoescape=True, auto_reload=False)
    template = env.get_template("page.html")
    one, two = (len(template.render(title="A bare page", items=items(n)).encode())
                for n in (1, 2))
    app[ITEMS] = items(max(1, 1 + round((size - one) / (two - one))))
    app.router.add_get("/", page)
    return app


UPLOAD_DIR = web.AppKey("upload_dir", Path)
CHUNK = 64 * 1024


async def upload(request: web.Request) -> web.Response:
    """The body straight to a temp file, chunk by chunk (blocking writes: a bare handler)."""
    size = 0
    with tempfile.NamedTemporaryFile(dir=request.app[UPLOAD_DIR], delete=True) as out:
        while chunk := await request.content.read(CHUNK):
            out.write(chunk)
            size += len(chunk)
    return web.json_response({"bytes": size})


def upload_app(directory: Path) -> web.Application:
    app = web.Application(client_max_size=1 << 40)
    app[UPLOAD_DIR] = directory
    app.router.add_post("/", upload)
    return app


def main(argv: list[str]) -> None:
    kind, port = argv[0], int(argv[1])
    if kind == "page":
        app = page_app(int(argv[2]))
        if len(argv) > 3:
            app = with_query(app, argv[3], argv[4])
    else:
        app = upload_app(Path(argv[2]))
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(sys.argv[1:])
