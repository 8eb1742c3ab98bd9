"""Prometheus metrics: one registry per app, served at ``/metrics`` on the service's own port.

Each app gets its own ``CollectorRegistry`` (tests build several apps in one process, and
prometheus-client's default registry is a module-level global). What every service has is
here: request latency by route, the database pool, the volume's free space, the process.
Each service adds its own metrics to the same registry (``services/*/metrics.py``).

Values that have to be looked up (free bytes, the pool, the resize backlog) are refreshed
when Prometheus scrapes, by the ``on_scrape`` callbacks, so nothing polls in between.

The gateway never routes ``/metrics``: it is for the operator's Prometheus, on the ports
the services listen on (loopback by default), not for the public.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from shared.db import DB_POOL

if TYPE_CHECKING:
    from shared.config import StoreConfig
    from shared.storage import ImageStore

log = logging.getLogger("kitteh")

OnScrape = Callable[[web.Application], Awaitable[None]]
SCRAPE_LOOKUP_TIMEOUT = 1.0  # seconds; a hung disk or database must not hang the scrape
# Methods the routes use; anything else a client invents is counted as "other", so that
# made-up methods cannot grow the label set without bound.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
UNMATCHED = "unmatched"  # 404s and 405s: one label value, whatever URL was asked for


class ServiceMetrics:
    """The registry of one app, and the metrics every service has."""

    def __init__(self, store: StoreConfig | None = None) -> None:
        self.registry = CollectorRegistry()
        # Free space is the volume's in local mode; an object store has no such number.
        self.storage_root = store.storage_dir if store and store.mode == "local" else None
        self.on_scrape: list[OnScrape] = []
        ProcessCollector(registry=self.registry)  # memory, CPU, open files of this process
        self.request_seconds = Histogram(
            "kitteh_http_request_duration_seconds",
            "Time to answer a request, by route (the route's pattern, not the URL).",
            ["route", "method", "status"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.db_pool_in_use = Gauge(
            "kitteh_db_pool_connections_in_use", "Database connections lent out right now.",
            registry=self.registry)
        self.db_pool_size = Gauge(
            "kitteh_db_pool_connections", "Database connections open (in use or idle).",
            registry=self.registry)
        self.storage_free_bytes = Gauge(
            "kitteh_storage_free_bytes",
            "Bytes free for Kitteh on the volume (KITTEH_STORAGE_DIR), as statvfs reports "
            "them to an unprivileged process.", registry=self.registry)
        self.store_seconds = Histogram(
            "kitteh_store_request_duration_seconds",
            "Time of a request to the image store (local directory or S3), by operation.",
            ["operation"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10))
        self.store_errors = Counter(
            "kitteh_store_errors",
            "Requests to the image store that failed (a missing file is not a failure).",
            ["operation"], registry=self.registry)

    def measured(self, store: ImageStore) -> ImageStore:
        """``store`` with its requests timed and its failures counted here."""
        from shared.storage.measured import MeasuredStore

        return MeasuredStore(store, self.store_seconds, self.store_errors)

    async def refresh(self, app: web.Application) -> None:
        pool = app.get(DB_POOL)
        if pool is not None:
            self.db_pool_size.set(pool.get_size())
            self.db_pool_in_use.set(pool.get_size() - pool.get_idle_size())
        if self.storage_root is not None:
            free = await lookup(free_bytes, self.storage_root)
            if free is not None:
                self.storage_free_bytes.set(free)
        for refresh in self.on_scrape:
            await refresh(app)


METRICS = web.AppKey("metrics", ServiceMetrics)


def free_bytes(root: Path) -> int:
    """Bytes an unprivileged writer may still use under ``root``. Blocking (statvfs)."""
    return shutil.disk_usage(root).free


async def lookup(fn: Callable[..., object], *args) -> object | None:
    """Run a blocking look-up in the default executor, or give up after a second."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(SCRAPE_LOOKUP_TIMEOUT):
            return await loop.run_in_executor(None, fn, *args)
    except (OSError, TimeoutError) as error:
        log.warning("metrics: %s failed: %r", getattr(fn, "__name__", fn), error)
        return None


def route_label(request: web.Request) -> str:
    """The route's canonical pattern (``/api/images/{token}``), never the raw URL, so the
    number of label values stays that of the route table."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


@web.middleware
async def observe_requests(request: web.Request, handler) -> web.StreamResponse:
    """Request latency by route, method and status; outside the error middleware, so errors
    are counted with the status they were answered with."""
    started = time.perf_counter()
    status = "aborted"  # the client went away (the handler was cancelled)
    try:
        response = await handler(request)
        status = str(response.status)
        return response
    except web.HTTPException as answer:
        status = str(answer.status)
        raise
    except Exception:
        status = "500"
        raise
    finally:
        method = request.method if request.method in KNOWN_METHODS else "other"
        request.app[METRICS].request_seconds.labels(
            route_label(request), method, status).observe(time.perf_counter() - started)


async def metrics_endpoint(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    await metrics.refresh(request.app)
    return web.Response(body=generate_latest(metrics.registry),
                        headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_metrics_route(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics_endpoint)
