"""Typed keys for what the gallery app keeps."""

from aiohttp import web

from services.gallery.assets import AssetManifest
from shared.config import GalleryConfig
from shared.storage import Storage

CONFIG = web.AppKey("config", GalleryConfig)
STORAGE = web.AppKey("storage", Storage)
ASSETS = web.AppKey("assets", AssetManifest)
