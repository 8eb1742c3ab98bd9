"""HTTP in, domain call, HTTP out."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from services.upload.access import UploadGate
from services.upload.albums import clean_title, create_album, delete_album, parse_entries
from services.upload.batch import discard, receive_files
from services.upload.delete import bearer_token, delete_image
from services.upload.fetch import fetch_link
from services.upload.ingest import IngestResult, Placement, ingest
from services.upload.jsonbody import read_json, read_urlencoded, text_fields
from services.upload.keys import CONFIG, IMAGE_WORKERS, STORAGE
from services.upload.many import finish, ingest_all, make_album
from services.upload.metrics import UPLOAD_METRICS
from services.upload.options import parse_options
from services.upload.pending import PENDING_ID, park, unpark
from services.upload.receive import NoFile, ReceivedFile, receive_upload
from services.upload.resize_client import request_variants
from shared.albums import album_json
from shared.db import DATABASE_UNAVAILABLE, DB_POOL
from shared.errors import BadRequest, Unauthorized
from shared.http import bearer
from shared.images import image_json
from shared.origin import share_urls
from shared.queries import image_by_token
from shared.upload_keys import key_for_secret
from shared.urls import RELATIVE, Urls


def _gate(request: web.Request) -> UploadGate:
    app = request.app
    return UploadGate(app[DB_POOL], app[CONFIG].uploads, request.headers.get("Authorization"))


async def _receive(request: web.Request, gate: UploadGate) -> ReceivedFile:
    """The file of a multipart upload, or the file a link names (a ``url`` field, or a JSON
    body ``{"url": ...}``): either way the same ReceivedFile for the same ingest."""
    app = request.app
    limits = app[CONFIG].limits

    async def before_file(fields: dict[str, str]) -> None:
        await gate.check_fields(fields)
        parse_options(fields)  # options sent before the file: refused before it is written

    if request.content_type in ("application/json", "application/x-www-form-urlencoded"):
        if request.content_type == "application/json":
            fields = text_fields(await read_json(request), ("url", "visibility", "expires_in"))
        else:
            fields = await read_urlencoded(request)
        if not fields.get("url", "").strip():
            raise BadRequest("Send {\"url\": \"https://...\"} to upload from a link.")
        await before_file(fields)
        return await fetch_link(app, app[STORAGE], limits, fields["url"], fields)
    try:
        received = await receive_upload(request, app[STORAGE], limits, before_file)
    except NoFile as missing:
        if not missing.fields.get("url", "").strip():
            raise
        return await fetch_link(app, app[STORAGE], limits, missing.fields["url"],
                                missing.fields)
    if received.fields.get("url", "").strip():
        received.path.unlink(missing_ok=True)
        raise BadRequest("Send a file or a link ('url'), not both.")
    return received


async def _upload(request: web.Request) -> IngestResult:
    app = request.app
    limits = app[CONFIG].limits
    gate = _gate(request)
    await gate.check_header()  # a wrong key is refused before the body is read
    received = await _receive(request, gate)
    app[UPLOAD_METRICS].received_bytes.inc(received.size)
    try:
        options = parse_options(received.fields)
    except BaseException:
        received.path.unlink(missing_ok=True)
        raise
    placement = Placement(gate.key.id if gate.key else None, options)
    result = await ingest(app[DB_POOL], app[STORAGE], limits, received, app[IMAGE_WORKERS],
                          placement)
    app[UPLOAD_METRICS].accepted(result.created, result.image.format.name)
    if result.created and await request_variants(app, result.image.token):
        # Committed already: a database hiccup now must not turn the 201 into a 503 (the
        # client would retry and get a 200 for an upload it was told had failed).
        with contextlib.suppress(*DATABASE_UNAVAILABLE):
            refreshed = await image_by_token(app[DB_POOL], result.image.token)
            if refreshed is not None:
                result = IngestResult(refreshed, True, result.delete_token)
    return result


def _share(request: web.Request) -> Urls:
    config = request.app[CONFIG]
    return share_urls(request, config.public_url, config.files_url)


async def api_upload(request: web.Request) -> web.Response:
    result = await _upload(request)
    body = image_json(result.image, Urls.of(request.app[CONFIG]), _share(request))
    if result.created:
        body["delete_token"] = result.delete_token
    return web.json_response(body, status=201 if result.created else 200)


async def form_upload(request: web.Request) -> web.Response:
    """The no-JavaScript path: 303 to the image's page, with a flash flag for the page;
    several files make an album, and land on its page."""
    gate = _gate(request)
    await gate.check_header()

    async def before_file(fields: dict[str, str]) -> None:
        await gate.check_fields(fields)
        parse_options(fields)

    files, fields = await receive_files(request, request.app[STORAGE],
                                        request.app[CONFIG].limits, before_file)
    return await _land(request, gate, files, fields, share=False)


async def share_upload(request: web.Request) -> web.Response:
    """The web app's share target (the phone's share sheet): like the form, but in keys mode
    without a key the photos wait (``services.upload.pending``) while the home page asks for
    the key, or its script sends the one this browser keeps."""
    app = request.app
    gate = _gate(request)
    await gate.check_header()

    async def before_file(fields: dict[str, str]) -> None:
        parse_options(fields)

    files, fields = await receive_files(request, app[STORAGE], app[CONFIG].limits, before_file)
    wrong = ""
    if fields.get("key") and not gate.checked:
        try:
            await gate.check_fields(fields)
        except Unauthorized:
            wrong = "&key=wrong"
    pending = fields.get("pending")
    if pending:
        if files:
            discard(files)
            raise BadRequest("Send the waiting share's id or files, not both.")
        if gate.required and gate.key is None:  # still no good key: they keep waiting
            if not PENDING_ID.fullmatch(pending):
                raise BadRequest("That is not the id of shared pictures.")
            raise web.HTTPSeeOther(f"/?share={pending}{wrong}#upload-title")
        files = await asyncio.to_thread(unpark, app[STORAGE], pending, fields)
        fields = files[0].fields
    if gate.required and gate.key is None:
        if not files:
            await gate.check_fields(fields)  # nothing to keep: the usual 401
        pending = await asyncio.to_thread(park, app[STORAGE], files, fields)
        raise web.HTTPSeeOther(f"/?share={pending}&pictures={len(files)}{wrong}#upload-title")
    return await _land(request, gate, files, fields, share=True)


async def _land(request: web.Request, gate: UploadGate, files: list[ReceivedFile],
                fields: dict[str, str], share: bool) -> web.Response:
    """Upload what came (or the link), then 303 to the picture's page or the album's."""
    app = request.app
    try:
        options = parse_options(fields)
        title = clean_title(fields.get("title"))
        link = fields.get("url", "").strip()
        if files and link:
            raise BadRequest("Send files or a link ('url'), not both.")
        if not files and not link:
            raise BadRequest("No file was sent: choose an image (the form field is 'file').")
    except BaseException:
        discard(files)
        raise
    if link:
        files = [await fetch_link(app, app[STORAGE], app[CONFIG].limits, link, fields)]
    placement = Placement(gate.key.id if gate.key else None, options)
    results = await ingest_all(app, files, placement)
    if len({r.image.token for r in results}) == 1:
        await finish(app, results)
        result = results[0]
        flag = "uploaded" if result.created else "existing"
        secret = f"#delete={result.delete_token}" if share and result.delete_token else ""
        raise web.HTTPSeeOther(f"{result.image.page_path}?{flag}=1{secret}")
    album, delete_token = await make_album(app, results, title, placement, gate.key)
    await finish(app, results)
    # The album's delete token in the fragment (never sent to a server): the album page's
    # script keeps it, so this browser may delete the album and its pictures.
    raise web.HTTPSeeOther(f"{RELATIVE.album_page(album.name)}?uploaded=1"
                           f"#delete={delete_token}")


async def api_create_album(request: web.Request) -> web.Response:
    app = request.app
    gate = _gate(request)
    await gate.check_header()
    await gate.check_fields({})  # keys mode: a live key, as for uploads
    body = await read_json(request)
    entries = parse_entries(body.get("images"))
    title = clean_title(body.get("title"))
    options = parse_options(text_fields(body, ("visibility", "expires_in")))
    async with app[DB_POOL].acquire() as conn, conn.transaction():
        album, delete_token = await create_album(conn, entries, title, options, gate.key)
    answer = album_json(album, Urls.of(app[CONFIG]), _share(request))
    answer["delete_token"] = delete_token
    return web.json_response(answer, status=201)


async def api_delete_album(request: web.Request) -> web.Response:
    presented = bearer_token(request.headers.get("Authorization"))
    raw = request.query.get("images", "0").strip().lower()
    if raw not in ("0", "1", "true", "false", ""):
        raise BadRequest("'images' must be 1 (delete the album's pictures too) or 0.")
    token = request.match_info["token"].lower()
    await delete_album(request.app[DB_POOL], request.app[STORAGE], token, presented,
                       raw in ("1", "true"))
    await asyncio.sleep(request.app[CONFIG].cache_seconds + 0.1)  # as for an image delete
    return web.Response(status=204)


async def api_delete(request: web.Request) -> web.Response:
    presented = bearer_token(request.headers.get("Authorization"))
    await delete_image(request.app[DB_POOL], request.app[STORAGE],
                       request.match_info["token"].lower(), presented)
    # The gateway may hold the page (micro-cache) and open file descriptors of the files for
    # up to KITTEH_CACHE_SECONDS. Answering only after that means that once the deleter is
    # told "deleted", nobody is served the picture any more.
    await asyncio.sleep(request.app[CONFIG].cache_seconds + 0.1)
    return web.Response(status=204)


async def api_key_me(request: web.Request) -> web.Response:
    """Which key this is: lets the pages show moderation to an admin's browser."""
    secret = bearer(request.headers.get("Authorization"))
    key = await key_for_secret(request.app[DB_POOL], secret) if secret else None
    if key is None:
        raise Unauthorized("Send a live upload key as 'Authorization: Bearer <key>'.")
    return web.json_response({"name": key.name, "admin": key.admin})
