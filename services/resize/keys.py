"""Typed keys for what the resize app keeps."""

from aiohttp import web

from services.resize.engine import ResizeEngine
from services.resize.workers import Workers
from shared.config import ResizeConfig
from shared.storage import Storage

CONFIG = web.AppKey("config", ResizeConfig)
STORAGE = web.AppKey("storage", Storage)
ENGINE = web.AppKey("engine", ResizeEngine)
WORKERS = web.AppKey("workers", Workers)
