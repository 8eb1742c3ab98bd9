"""The gallery service's route table."""

from aiohttp import web

from services.gallery import handlers
from services.gallery.manifest import manifest_file
from services.gallery.openapi import openapi_document
from services.gallery.sharex import sharex_file
from shared.http import add_probe_routes
from shared.metrics import add_metrics_route


def setup_routes(app: web.Application) -> None:
    add_probe_routes(app)
    add_metrics_route(app)  # before /{name}, which would take it for an image's name
    app.router.add_get("/", handlers.home)
    app.router.add_get("/api/limits", handlers.api_limits)
    app.router.add_get("/api/openapi.json", openapi_document)
    app.router.add_get("/api/sharex.sxcu", sharex_file)
    app.router.add_get("/api/images", handlers.api_list)
    app.router.add_get("/api/images/{token}", handlers.api_image)
    app.router.add_get("/api/albums/{token}", handlers.api_album)
    app.router.add_get("/manifest.webmanifest", manifest_file)
    app.router.add_get("/img/{token}", handlers.download)
    app.router.add_get(r"/_files/{name:[0-9a-f]{2}/[0-9a-f]{32}/[a-z]+\.[a-z0-9]+}",
                       handlers.stored_file)
    app.router.add_get("/_original_instead/{shard:[0-9a-f]{2}}/{key:[0-9a-f]{32}}",
                       handlers.original_instead)
    app.router.add_get("/_upload_failed", handlers.upload_failed)
    app.router.add_get("/{name}", handlers.image_page)
