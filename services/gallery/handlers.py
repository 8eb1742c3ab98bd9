"""HTTP in, one query, HTTP out."""

from __future__ import annotations

import re
from dataclasses import asdict
from urllib.parse import quote

import aiohttp_jinja2
from aiohttp import web

from services.gallery.keys import CONFIG
from services.gallery.origin import share_origin
from services.gallery.pages import album_context, home_context, image_context
from shared.albums import album_by_token, album_json, newest_tiles
from shared.db import DB_POOL
from shared.errors import BadRequest, NotFound
from shared.formats import ACCEPTED_NAMES, browser_originals, mime_types
from shared.http import BEARER_CHALLENGE
from shared.images import image_json
from shared.naming import album_token_from_path, token_from_path
from shared.origin import share_urls
from shared.queries import image_by_storage_key, image_by_token, newest_images
from shared.storage import STORE, StoredFileMissing, parse_name
from shared.storage.respond import stored_file_response
from shared.units import human_bytes
from shared.urls import Urls

# A stored file's type, from its (generated) extension: the same table nginx serves /i/ with.
CONTENT_TYPES = {ext: content_type for content_type, extensions in mime_types().items()
                 for ext in extensions}

HOME_COUNT = 24
TOKEN_SHAPE = re.compile(r"[a-z0-9]{1,120}")
PENDING_ID = re.compile(r"[A-Za-z0-9_-]{24}")  # services/upload/pending.py
MAX_PAGE = 100


@aiohttp_jinja2.template("index.html")
async def home(request: web.Request) -> dict:
    before = _int_param(request, "before", None, 1, 2**62)  # "Load more" without JavaScript
    config = request.app[CONFIG]
    tiles = await _newest(request, HOME_COUNT, before)
    # A share from the phone's share sheet waiting for the upload key (services/upload/pending)
    pending = request.query.get("share", "")
    share = None
    if PENDING_ID.fullmatch(pending):
        share = {"id": pending, "pictures": _int_param(request, "pictures", 1, 1, 1000),
                 "wrong_key": request.query.get("key") == "wrong"}
    return home_context(tiles, config,
                        str(tiles[-1].sort_id) if len(tiles) == HOME_COUNT else None,
                        before=before, share=share)


async def _newest(request: web.Request, count: int, before: int | None) -> list:
    """The Newest grid's tiles (images, and albums as one tile each); none at all when
    KITTEH_NEWEST=off (no query either)."""
    if not request.app[CONFIG].newest:
        return []
    return await newest_tiles(request.app[DB_POOL], count, before)


async def upload_failed(request: web.Request) -> web.Response:
    """The form page again, with what went wrong: the gateway sends failed no-JavaScript
    uploads here (nginx ``error_page``), passing the status the upload got."""
    raw = request.headers.get("X-Kitteh-Status", "400")
    status = int(raw) if re.fullmatch(r"[0-9]{3}", raw) and 400 <= int(raw) < 600 else 400
    limits = request.app[CONFIG].limits
    code, message = upload_error(status, limits)
    retry = {"Retry-After": "60" if status == 429 else "5"} if status in (429, 503) else {}
    if status == 401:
        retry = {"WWW-Authenticate": BEARER_CHALLENGE}
    if request.headers.get("X-Kitteh-Format") == "json":
        return web.json_response({"error": {"code": code, "message": message}},
                                 status=status, headers=retry)
    images = await _newest(request, HOME_COUNT, None)
    response = aiohttp_jinja2.render_template("index.html", request, home_context(
        images, request.app[CONFIG], None, message), status=status)
    response.headers.update(retry)
    return response


def upload_error(status: int, limits) -> tuple[str, str]:
    code = {400: "bad_request", 401: "unauthorized", 408: "too_slow", 413: "too_large",
            415: "unsupported_image", 422: "over_limits", 429: "rate_limited",
            507: "storage_full"}.get(status, "busy")
    return code, {
        400: "No image arrived, or the form was not filled in as expected. Choose a file, "
             "then press Upload.",
        401: "This Kitteh takes uploads only with an upload key, and none (or a wrong or "
             "revoked one) came with this one. Paste the key you were given into the "
             "Upload key field, then upload again. No key? Ask whoever runs this Kitteh.",
        408: "The upload was too slow and timed out. Try again.",
        413: f"That file is too large: the limit is {human_bytes(limits.max_upload_bytes)} "
             f"({human_bytes(limits.max_video_bytes)} for a video).",
        415: f"That file is not an image Kitteh accepts ({ACCEPTED_NAMES}), or it is damaged.",
        422: f"That image is too big: at most {limits.max_side:,} pixels a side, "
             f"{limits.max_pixels // 1_000_000} megapixels and {limits.max_frames} frames "
             f"(a video: {limits.max_video_seconds:,} seconds). "
             "Or, for a link: Kitteh could not fetch it (it fetches only from public "
             "addresses, and the server must answer with the picture).",
        429: "Too many uploads from your address. Wait a minute, then try again.",
        507: "Kitteh's storage is full, so this picture was not kept. Try again later.",
    }.get(status, "Kitteh is busy right now. Try again in a moment.")


async def image_page(request: web.Request) -> web.Response:
    segment = request.match_info["name"]
    config = request.app[CONFIG]
    album_token = album_token_from_path(segment)
    album = await album_by_token(request.app[DB_POOL], album_token) if album_token else None
    if album is not None:
        return aiohttp_jinja2.render_template("album.html", request, album_context(
            album, Urls.of(config), request.query, share_origin(request, config.public_url)))
    token = token_from_path(segment)
    image = await image_by_token(request.app[DB_POOL], token) if token else None
    if image is None:
        raise NotFound("There is no kitty by that name.")
    return aiohttp_jinja2.render_template("image.html", request, image_context(
        image, Urls.of(config), request.query, config.limits,
        share_origin(request, config.public_url)))


def _share(request: web.Request) -> Urls:
    config = request.app[CONFIG]
    return share_urls(request, config.public_url, config.files_url)


async def api_image(request: web.Request) -> web.Response:
    image = await image_by_token(request.app[DB_POOL], request.match_info["token"].lower())
    if image is None:
        raise NotFound("No image has that token.")
    return web.json_response(image_json(image, Urls.of(request.app[CONFIG]), _share(request)))


async def api_album(request: web.Request) -> web.Response:
    token = request.match_info["token"].lower()
    album = await album_by_token(request.app[DB_POOL], token) \
        if TOKEN_SHAPE.fullmatch(token) else None
    if album is None:
        raise NotFound("No album has that token.")
    return web.json_response(album_json(album, Urls.of(request.app[CONFIG]), _share(request)))


async def api_list(request: web.Request) -> web.Response:
    if not request.app[CONFIG].newest:
        raise NotFound("The list of images is turned off on this server (KITTEH_NEWEST=off); "
                       "each image is still at /api/images/{token}.")
    limit = _int_param(request, "limit", 20, 1, MAX_PAGE)
    before = _int_param(request, "before", None, 1, 2**62)
    images = await newest_images(request.app[DB_POOL], limit, before)
    urls = Urls.of(request.app[CONFIG])
    share = _share(request)
    return web.json_response({
        "images": [image_json(i, urls, share) for i in images],
        "next": str(images[-1].id) if len(images) == limit else None,
    })


async def api_limits(request: web.Request) -> web.Response:
    return web.json_response(asdict(request.app[CONFIG].limits))


async def download(request: web.Request) -> web.StreamResponse:
    """The original as an attachment: nginx streams it (X-Accel-Redirect) when in front."""
    image = await image_by_token(request.app[DB_POOL], request.match_info["token"].lower())
    if image is None:
        raise NotFound("No image has that token.")
    headers = {
        "Content-Type": image.content_type,
        "Content-Disposition": content_disposition(image.filename),
        "X-Content-Type-Options": "nosniff",
    }
    if request.app[CONFIG].accel_redirect:
        headers["X-Accel-Redirect"] = f"/_originals/{image.original_path}"
        return web.Response(headers=headers)
    try:
        return await stored_file_response(request, request.app[STORE], image.original_path,
                                          headers)
    except StoredFileMissing:
        raise NotFound("This image's file is missing.") from None


async def stored_file(request: web.Request) -> web.StreamResponse:
    """GET /_files/{name}: a stored file, for the gateway's file cache in S3 mode (nginx
    cannot sign S3 requests; it caches what this streams, so a hot file is fetched from the
    store once per KITTEH_CACHE_SECONDS, whatever the traffic). A missing file is a plain
    404, which the gateway turns into the on-demand variant path."""
    name = request.match_info["name"]
    parsed = parse_name(name)
    content_type = CONTENT_TYPES.get(parsed[2]) if parsed else None
    if content_type is None:
        raise NotFound("No such image file.")
    try:
        return await stored_file_response(request, request.app[STORE], name, {
            "Content-Type": content_type,
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff"})
    except StoredFileMissing:
        raise NotFound("No such image file.") from None


async def original_instead(request: web.Request) -> web.StreamResponse:
    """GET /_original_instead/{shard}/{key}: S3 mode's show-the-original fallback of the
    gateway while no resize process answers (local mode's nginx finds the file itself). Only
    originals browsers can show (never a HEIC), and never cached."""
    image = await image_by_storage_key(request.app[DB_POOL], request.match_info["key"])
    if image is None or image.format.extension not in browser_originals():
        raise NotFound("No such image file.")
    try:
        return await stored_file_response(request, request.app[STORE], image.original_path, {
            "Content-Type": image.content_type, "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff"})
    except StoredFileMissing:
        raise NotFound("No such image file.") from None


def content_disposition(filename: str) -> str:
    """ASCII fallback for old clients, the real name (RFC 6266 / 5987) for the rest."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename) or "image"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _int_param(request: web.Request, name: str, default, low: int, high: int):
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    # ASCII digits only, and few: str.isdigit() admits "²", and int() refuses huge strings.
    if not re.fullmatch(r"[0-9]{1,19}", raw) or not low <= int(raw) <= high:
        raise BadRequest(f"'{name}' must be a whole number from {low} to {high}.")
    return int(raw)
