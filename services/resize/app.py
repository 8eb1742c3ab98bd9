"""The resize service's app factory."""

from __future__ import annotations

from aiohttp import web

from services.resize.engine import PillowEngine, ResizeEngine
from services.resize.keys import CONFIG, ENGINE, STORAGE, WORKERS
from services.resize.reconciler import reconciler
from services.resize.routes import setup_routes
from services.resize.workers import Workers
from shared.config import ResizeConfig
from shared.db import pool_context
from shared.http import error_middleware
from shared.imaging import configure_pillow
from shared.storage import Storage


def create_app(config: ResizeConfig, engine: ResizeEngine | None = None,
               run_reconciler: bool = True) -> web.Application:
    app = web.Application(middlewares=[error_middleware()])
    app[CONFIG] = config
    app[STORAGE] = Storage(config.storage_dir)
    app[ENGINE] = engine or PillowEngine()
    app[WORKERS] = Workers(config.workers, config.queue)
    configure_pillow(config.max_pixels)
    app.cleanup_ctx.append(pool_context(config.database_url))
    app.cleanup_ctx.append(app[WORKERS].lifetime)
    if run_reconciler:
        app.cleanup_ctx.append(reconciler)
    setup_routes(app)
    return app
