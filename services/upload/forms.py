"""The no-JavaScript form and the web app's share target: one or several files (or a link),
landing on the picture's page or, for several, the album's."""

from __future__ import annotations

import asyncio

from aiohttp import web

from services.upload.access import UploadGate, gate_for
from services.upload.albums import clean_title
from services.upload.batch import discard, receive_files
from services.upload.fetch import fetch_link
from services.upload.ingest import Placement
from services.upload.keys import CONFIG
from services.upload.many import finish, ingest_all, make_album
from services.upload.options import parse_options
from services.upload.pending import PENDING_ID, park, unpark
from services.upload.receive import ReceivedFile
from shared.errors import BadRequest, Unauthorized
from shared.storage import SCRATCH
from shared.urls import RELATIVE


async def form_upload(request: web.Request) -> web.Response:
    """The no-JavaScript path: 303 to the image's page, with a flash flag for the page;
    several files make an album, and land on its page."""
    gate = gate_for(request)
    await gate.check_header()

    async def before_file(fields: dict[str, str]) -> None:
        await gate.check_fields(fields)
        parse_options(fields)

    files, fields = await receive_files(request, request.app[SCRATCH],
                                        request.app[CONFIG].limits, before_file)
    return await _land(request, gate, files, fields, share=False)


async def share_upload(request: web.Request) -> web.Response:
    """The web app's share target (the phone's share sheet): like the form, but in keys mode
    without a key the photos wait (``services.upload.pending``) while the home page asks for
    the key, or its script sends the one this browser keeps."""
    app = request.app
    gate = gate_for(request)
    await gate.check_header()

    async def before_file(fields: dict[str, str]) -> None:
        parse_options(fields)

    files, fields = await receive_files(request, app[SCRATCH], app[CONFIG].limits, before_file)
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
        files = await asyncio.to_thread(unpark, app[SCRATCH], pending, fields)
        fields = files[0].fields
    if gate.required and gate.key is None:
        if not files:
            await gate.check_fields(fields)  # nothing to keep: the usual 401
        pending = await asyncio.to_thread(park, app[SCRATCH], files, fields)
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
        files = [await fetch_link(app, app[SCRATCH], app[CONFIG].limits, link, fields)]
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
