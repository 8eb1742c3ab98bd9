"""The upload service's app factory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from services.upload.fetch import fetch_session
from services.upload.keys import CONFIG, IMAGE_WORKERS
from services.upload.metrics import UPLOAD_METRICS, UploadMetrics
from services.upload.resize_client import resize_session
from services.upload.routes import setup_routes
from shared.config import UploadConfig
from shared.db import pool_context
from shared.http import error_middleware
from shared.imaging import configure_pillow
from shared.logs import request_id_middleware
from shared.metrics import METRICS, ServiceMetrics, observe_requests
from shared.storage import store_context


def create_app(config: UploadConfig) -> web.Application:
    # One registry per app (never prometheus-client's global one): see shared/metrics.py.
    metrics = ServiceMetrics(config.store)
    upload_metrics = UploadMetrics(metrics.registry)
    # The gateway enforces the byte limit too; this is the same limit for direct callers.
    app = web.Application(
        middlewares=[request_id_middleware, observe_requests,
                     error_middleware(on_error=upload_metrics.refused)],
        client_max_size=config.limits.max_body_bytes + 1024 * 1024,
    )
    app[METRICS] = metrics
    app[UPLOAD_METRICS] = upload_metrics
    app[CONFIG] = config
    configure_pillow(config.limits.max_pixels)
    app.cleanup_ctx.append(store_context(config.store, metrics.measured))
    app.cleanup_ctx.append(image_workers)
    app.cleanup_ctx.append(pool_context(config.database_url))
    app.cleanup_ctx.append(resize_session)
    app.cleanup_ctx.append(fetch_session)  # upload from a link
    setup_routes(app)
    return app


async def image_workers(app: web.Application) -> AsyncIterator[None]:
    with ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="upload-image") as pool:
        app[IMAGE_WORKERS] = pool
        yield
