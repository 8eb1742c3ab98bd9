"""What the resize service measures: render time, the queue, the backlog, background runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.resize.engine import Rendering, ResizeEngine, Source
from services.resize.workers import Workers
from shared.db import DATABASE_UNAVAILABLE, DB_POOL
from shared.encoding import output_for
from shared.formats import Format
from shared.metrics import SCRAPE_LOOKUP_TIMEOUT
from shared.variants import VariantSpec

log = logging.getLogger("kitteh.resize")

# Variants not ready, by state; read from Postgres when Prometheus scrapes, so it is the
# whole system's backlog (every resize process reports the same number: use max()).
BACKLOG = "SELECT state, count(*) AS n FROM variants WHERE state <> 'ready' GROUP BY state"
BACKLOG_STATES = ("pending", "working", "failed")


class ResizeMetrics:
    def __init__(self, registry: CollectorRegistry, workers: Workers) -> None:
        self.render_seconds = Histogram(
            "kitteh_variant_render_seconds",
            "Time to make one variant (resize and encode; the largest of an image also "
            "counts the decode), by kind and output format.", ["kind", "format"],
            registry=registry, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.queue_depth = Gauge(
            "kitteh_resize_queue_depth", "Resize jobs waiting for a worker thread.",
            registry=registry)
        self.queue_depth.set_function(lambda: max(0, workers.busy - workers.threads))
        self.jobs_running = Gauge(
            "kitteh_resize_jobs_running", "Resize jobs a worker thread is doing now.",
            registry=registry)
        self.jobs_running.set_function(lambda: min(workers.busy, workers.threads))
        self.backlog = Gauge(
            "kitteh_variants_not_ready", "Variants not ready yet, by state (the whole "
            "system's backlog, from the database).", ["state"], registry=registry)
        self.background_runs = Counter(
            "kitteh_background_runs", "Passes of the resize service's background loops, by "
            "task (reconciler, sweeper) and outcome (ok, database_unavailable, failed).",
            ["task", "outcome"], registry=registry)

    async def refresh_backlog(self, app: web.Application) -> None:
        """``on_scrape``: the backlog from Postgres; left as it was if Postgres is away."""
        try:
            async with asyncio.timeout(SCRAPE_LOOKUP_TIMEOUT):
                rows = await app[DB_POOL].fetch(BACKLOG)
        except DATABASE_UNAVAILABLE as error:
            log.warning("metrics: backlog not read: %r", error)
            return
        counts = {row["state"]: row["n"] for row in rows}
        for state in BACKLOG_STATES:
            self.backlog.labels(state).set(counts.get(state, 0))


RESIZE_METRICS = web.AppKey("resize_metrics", ResizeMetrics)


class MeasuredEngine:
    """An engine that times every variant the engine it wraps makes (engines run in worker
    threads; prometheus-client's metrics are thread-safe)."""

    def __init__(self, engine: ResizeEngine, metrics: ResizeMetrics) -> None:
        self.engine = engine
        self.metrics = metrics

    def render_all(self, source: Source, fmt: Format, specs: Sequence[VariantSpec],
                   thumbhash: bool = False, pause: Callable[[], None] | None = None,
                   ) -> Rendering:
        rendering = self.engine.render_all(source, fmt, specs, thumbhash, pause)
        for variant in rendering.variants:
            output = output_for(fmt, variant.format, rendering.animated).name
            self.metrics.render_seconds.labels(variant.kind, output).observe(variant.seconds)
        return rendering
