"""Typed keys for what the upload app keeps."""

import aiohttp
from aiohttp import web

from shared.config import UploadConfig
from shared.storage import Storage

CONFIG = web.AppKey("config", UploadConfig)
STORAGE = web.AppKey("storage", Storage)
RESIZE_SESSION = web.AppKey("resize_session", aiohttp.ClientSession)
