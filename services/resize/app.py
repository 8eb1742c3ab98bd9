"""The resize service's app factory."""

from __future__ import annotations

import asyncio

from aiohttp import web

from services.resize.config import SweepConfig
from services.resize.engine import PillowEngine, ResizeEngine
from services.resize.expiry import EXPIRY_INTERVAL, expire
from services.resize.hdr import configure_vips
from services.resize.keys import (
    BACKGROUND_WORKERS,
    CONFIG,
    ENGINE,
    RECONCILE_SOON,
    RENDITIONS_SOON,
    STOPPING,
    SWEEP_SOON,
    WORKERS,
)
from services.resize.metrics import RESIZE_METRICS, MeasuredEngine, ResizeMetrics
from services.resize.periodic import mark_stopping, periodic
from services.resize.reconciler import reconcile
from services.resize.renditions import make_renditions
from services.resize.routes import setup_routes
from services.resize.sweeper import sweep
from services.resize.waiters import WAITERS, VariantWaiters
from services.resize.workers import Workers
from shared.config import ResizeConfig
from shared.db import DB_POOL, pool_context
from shared.http import error_middleware
from shared.imaging import configure_pillow
from shared.logs import request_id_middleware
from shared.metrics import METRICS, ServiceMetrics, observe_requests
from shared.storage import SCRATCH, STORE, store_context

# The background (display widths, AVIF/WebP, backlog) gets half the worker threads, at a
# lower CPU priority: at nice 10 the scheduler gives work at nice 0 about nine times their
# share, so uploads answer about as fast as before the background existed.
BACKGROUND_NICE = 10


def create_app(config: ResizeConfig, engine: ResizeEngine | None = None,
               run_reconciler: bool = True, sweep: SweepConfig | None = None) -> web.Application:
    """``sweep``: run the volume sweeper periodically (``python -m services.resize`` does;
    tests that share one database between apps on different volumes must not)."""
    app = web.Application(middlewares=[request_id_middleware, observe_requests,
                                       error_middleware()])
    app[CONFIG] = config
    app[WORKERS] = Workers(config.workers, config.queue)
    # One registry per app (never prometheus-client's global one): see shared/metrics.py.
    app[METRICS] = ServiceMetrics(config.store)
    app[RESIZE_METRICS] = ResizeMetrics(app[METRICS].registry, app[WORKERS])
    app[METRICS].on_scrape.append(app[RESIZE_METRICS].refresh_backlog)
    app[ENGINE] = MeasuredEngine(
        engine or PillowEngine(max_animation_work=config.max_animation_work),
        app[RESIZE_METRICS])
    app[BACKGROUND_WORKERS] = Workers(max(1, config.workers // 2), config.queue,
                                      nice=BACKGROUND_NICE, name="background")
    app[STOPPING] = asyncio.Event()
    app[WAITERS] = VariantWaiters(config.database_url)
    app[SWEEP_SOON] = asyncio.Event()
    app[RECONCILE_SOON] = asyncio.Event()
    app[RENDITIONS_SOON] = asyncio.Event()
    configure_pillow(config.max_pixels)
    configure_vips()
    app.on_shutdown.append(mark_stopping)
    # Cleanup runs in reverse: the loops stop first, then the executor, then the pool.
    app.cleanup_ctx.append(store_context(config.store, app[METRICS].measured))
    app.cleanup_ctx.append(pool_context(config.database_url))
    app.cleanup_ctx.append(app[WAITERS].lifetime)
    app.cleanup_ctx.append(app[WORKERS].lifetime)
    app.cleanup_ctx.append(app[BACKGROUND_WORKERS].lifetime)
    if run_reconciler:
        app.cleanup_ctx.append(periodic("reconciler", config.reconcile_interval, reconcile,
                                        wake=RECONCILE_SOON))
        app.cleanup_ctx.append(periodic("expiry", EXPIRY_INTERVAL, expire))
        app.cleanup_ctx.append(periodic("renditions", config.reconcile_interval,
                                        make_renditions, wake=RENDITIONS_SOON))
    if sweep is not None and sweep.interval > 0:
        app.cleanup_ctx.append(periodic("sweeper", sweep.interval,
                                        sweep_pass(sweep.temp_max_age), wake=SWEEP_SOON))
    setup_routes(app)
    return app


def sweep_pass(max_age: int):
    async def run(app: web.Application) -> None:
        await sweep(app[DB_POOL], app[STORE], app[SCRATCH], max_age)

    return run
