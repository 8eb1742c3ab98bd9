"""Typed keys for what the gallery app keeps."""

from aiohttp import web

from services.gallery.assets import AssetManifest
from shared.config import GalleryConfig

CONFIG = web.AppKey("config", GalleryConfig)
ASSETS = web.AppKey("assets", AssetManifest)
