"""The gallery service's app factory."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from services.gallery.assets import AssetManifest
from services.gallery.errors import render_error
from services.gallery.keys import ASSETS, CONFIG
from services.gallery.routes import setup_routes
from services.gallery.security import security_headers
from shared.config import GalleryConfig
from shared.db import pool_context
from shared.http import error_middleware
from shared.logs import request_id_middleware
from shared.metrics import METRICS, ServiceMetrics, observe_requests
from shared.storage import store_context
from shared.urls import Urls

TEMPLATES = Path(__file__).with_name("templates")


def create_app(config: GalleryConfig) -> web.Application:
    app = web.Application(middlewares=[request_id_middleware, observe_requests,
                                       security_headers, error_middleware(render_error)])
    # One registry per app (never prometheus-client's global one): see shared/metrics.py.
    app[METRICS] = ServiceMetrics(config.store)
    app[CONFIG] = config
    app[ASSETS] = AssetManifest.load(config.assets_url, config.assets_manifest)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        # Templates are compiled once and kept: no stat() per render in production.
        auto_reload=False,
    )
    env.globals["asset_url"] = app[ASSETS].url
    env.globals["public_url"] = config.public_url
    env.globals["urls"] = Urls.of(config)
    env.globals["newest_on"] = config.newest  # KITTEH_NEWEST: the nav links to the grid
    app.cleanup_ctx.append(store_context(config.store, app[METRICS].measured, writable=False))
    app.cleanup_ctx.append(pool_context(config.database_url))
    setup_routes(app)
    return app
