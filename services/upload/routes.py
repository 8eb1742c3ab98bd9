"""The upload service's route table."""

from aiohttp import web

from services.upload import album_handlers, forms, handlers
from services.upload.keys import CONFIG
from shared.http import add_probe_routes
from shared.metrics import add_metrics_route


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/images", handlers.api_upload)
    app.router.add_post("/upload", forms.form_upload)
    app.router.add_post("/share", forms.share_upload)
    app.router.add_delete("/api/images/{token}", handlers.api_delete)
    app.router.add_post("/api/albums", album_handlers.api_create_album)
    app.router.add_delete("/api/albums/{token}", album_handlers.api_delete_album)
    app.router.add_get("/api/keys/me", handlers.api_key_me)
    add_probe_routes(app, writes_volume=True, min_free_bytes=app[CONFIG].min_free_bytes)
    add_metrics_route(app)
