"""Typed keys for what the resize app keeps."""

import asyncio

from aiohttp import web

from services.resize.engine import ResizeEngine
from services.resize.workers import Workers
from shared.config import ResizeConfig

CONFIG = web.AppKey("config", ResizeConfig)
ENGINE = web.AppKey("engine", ResizeEngine)
WORKERS = web.AppKey("workers", Workers)  # work someone waits for: uploads, pages
BACKGROUND_WORKERS = web.AppKey("background_workers", Workers)  # niced: the reconciler
# Set when shutdown begins: background loops take no new work after it.
STOPPING = web.AppKey("stopping", asyncio.Event)
# Set to have the sweeper run now rather than at its next interval (an original is missing).
SWEEP_SOON = web.AppKey("sweep_soon", asyncio.Event)
# Set to have the reconciler run now: an upload has answered, and its other variants (display
# widths, modern formats) are waiting.
RECONCILE_SOON = web.AppKey("reconcile_soon", asyncio.Event)
# Set to have the renditions loop run now: an upload with renditions (a video, an animation)
# has answered.
RENDITIONS_SOON = web.AppKey("renditions_soon", asyncio.Event)
