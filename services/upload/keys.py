"""Typed keys for what the upload app keeps."""

from concurrent.futures import ThreadPoolExecutor

import aiohttp
from aiohttp import web

from shared.config import UploadConfig

CONFIG = web.AppKey("config", UploadConfig)
RESIZE_SESSION = web.AppKey("resize_session", aiohttp.ClientSession)
# Checking, cleaning and decode-checking uploads: one thread per core, so at most that many
# images are decoded at once (40 MP is 160 MiB decoded); more uploads wait their turn.
IMAGE_WORKERS = web.AppKey("image_workers", ThreadPoolExecutor)
