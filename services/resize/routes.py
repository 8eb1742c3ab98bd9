"""The resize service's route table."""

from aiohttp import web

from services.resize import handlers
from services.resize.keys import CONFIG
from shared.http import add_probe_routes
from shared.metrics import add_metrics_route


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/variants/{token}", handlers.make_all)
    app.router.add_get(r"/i/{shard:[0-9a-f]{2}}/{key:[0-9a-f]{32}}/{kind:[a-z]+}.{ext:[a-z]+}",
                       handlers.variant_on_demand)
    add_probe_routes(app, writes_volume=True, min_free_bytes=app[CONFIG].min_free_bytes)
    add_metrics_route(app)
