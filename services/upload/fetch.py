"""Upload from a link: fetch the bytes a URL names into the same temp file a multipart upload
streams to, and hand the same ``ReceivedFile`` to the same ingest (sniffing, limits, metadata
removal, dedup all as for a file).

It must not be a way into the host's network (SSRF): only ``http`` and ``https``; the name is
resolved once and every address checked (``fetch_policy``), and the connection goes to a
checked address; redirects (at most ``MAX_REDIRECTS``) are followed here, by hand, each new
address checked again. No cookies, no credentials, no proxy from the environment. The byte
limit is enforced while streaming; connect and total timeouts bound a slow server.

Errors: 400 a malformed or non-http link, 422 (``fetch_refused``) an address Kitteh will not
reach or (``unreachable``) a server that does not answer with a picture, 413 too many bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from urllib.parse import unquote

import aiofiles
import aiohttp
from aiohttp import web
from yarl import URL

from services.upload.fetch_policy import (
    FetchPolicy,
    NameLookup,
    RefusedAddress,
    Unresolvable,
    VettingResolver,
    literal_address,
    system_lookup,
)
from services.upload.filenames import clean_filename
from services.upload.keys import CONFIG
from services.upload.metrics import UPLOAD_METRICS
from services.upload.receive import ReceivedFile, too_large
from shared.config import Limits
from shared.errors import BadRequest, KittehError
from shared.storage import Scratch

log = logging.getLogger("kitteh.upload")

MAX_URL = 2048
MAX_REDIRECTS = 3
CONNECT_TIMEOUT = 5  # seconds to open a connection (each hop)
TOTAL_TIMEOUT = 60  # seconds for the whole fetch, redirects included
CHUNK = 256 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "Kitteh (upload from a link)"

FETCH_SESSION = web.AppKey("fetch_session", aiohttp.ClientSession)
NAME_LOOKUP = web.AppKey("name_lookup", NameLookup)


class FetchRefused(KittehError):
    """An address Kitteh will not reach (loopback, private, link-local...)."""

    status, code = 422, "fetch_refused"


class Unreachable(KittehError):
    """The link's server could not be reached, or did not answer with a file."""

    status, code = 422, "unreachable"


async def fetch_session(app: web.Application) -> AsyncIterator[None]:
    """One session for every fetch, its resolver vetting every address it hands out. No
    connection is kept (each fetch resolves and checks anew), no cookies, no proxy."""
    policy = FetchPolicy(app[CONFIG].fetch_allow_networks)
    connector = aiohttp.TCPConnector(
        resolver=VettingResolver(app.get(NAME_LOOKUP, system_lookup), policy),
        use_dns_cache=False, force_close=True, limit=32)
    async with aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT),
            headers={"User-Agent": USER_AGENT, "Accept": "image/*",
                     "Accept-Encoding": "identity"}) as session:
        app[FETCH_SESSION] = session
        yield


def parse_link(text: str) -> URL:
    text = text.strip()
    if len(text) > MAX_URL:
        raise BadRequest(f"The link is too long (more than {MAX_URL} characters).")
    try:
        url = URL(text)
    except (ValueError, TypeError):
        raise BadRequest("That is not a link Kitteh can read.") from None
    if url.scheme not in ("http", "https"):
        raise BadRequest("Only http:// and https:// links can be fetched.")
    if not url.host or not url.is_absolute():
        raise BadRequest("The link names no host.")
    if url.user is not None or url.password is not None:
        raise BadRequest("Links with a user name or password are not fetched.")
    try:
        url.port  # noqa: B018 - a port out of range raises here
    except ValueError:
        raise BadRequest("The link's port is not a number from 1 to 65535.") from None
    return url


def filename_of(url: URL) -> str:
    return clean_filename(unquote(url.raw_path.rsplit("/", 1)[-1]))


async def fetch_link(app: web.Application, storage: Scratch, limits: Limits, link: str,
                     fields: dict[str, str]) -> ReceivedFile:
    """Counted in ``kitteh_upload_fetches_total`` by outcome."""
    try:
        received = await _fetch(app, storage, limits, link, fields)
    except KittehError as error:
        outcome = {"fetch_refused": "refused", "unreachable": "unreachable",
                   "too_large": "too_large"}.get(error.code, "bad_link")
        app[UPLOAD_METRICS].fetches.labels(outcome).inc()
        raise
    app[UPLOAD_METRICS].fetches.labels("fetched").inc()
    return received


async def _fetch(app: web.Application, storage: Scratch, limits: Limits, link: str,
                 fields: dict[str, str]) -> ReceivedFile:
    url = parse_link(link)
    session = app[FETCH_SESSION]
    policy = FetchPolicy(app[CONFIG].fetch_allow_networks)
    try:
        async with asyncio.timeout(TOTAL_TIMEOUT):
            for hop in range(MAX_REDIRECTS + 1):
                literal = literal_address(url.host or "")
                if literal is not None:  # aiohttp connects to literals without a resolver
                    policy.check(literal, literal)
                async with session.get(url, allow_redirects=False) as response:
                    if response.status in REDIRECTS:
                        url = _next_hop(url, response, hop)
                        continue
                    if response.status != 200:
                        raise Unreachable(f"The link answered {response.status} "
                                          f"{response.reason or ''}, not a picture.".replace(
                                              " ,", ","))
                    return await _stream(response, storage, limits, filename_of(URL(link)),
                                         fields)
    except RefusedAddress as refused:
        raise FetchRefused(refused.reason) from None
    except TimeoutError:
        raise Unreachable(f"The link did not answer in time ({TOTAL_TIMEOUT} s).") from None
    except aiohttp.ClientConnectorError as error:
        cause = error.os_error
        if isinstance(cause, RefusedAddress):
            raise FetchRefused(cause.reason) from None
        if isinstance(cause, Unresolvable):
            raise Unreachable(cause.reason) from None
        raise Unreachable(f"Could not connect to {url.host}: {cause.strerror or cause}.") \
            from None
    except aiohttp.InvalidURL:
        raise BadRequest("That is not a link Kitteh can fetch.") from None
    except (aiohttp.ClientError, ValueError) as error:
        raise Unreachable(f"The link could not be fetched: {type(error).__name__}.") from None
    raise Unreachable(f"The link redirects more than {MAX_REDIRECTS} times.")


def _next_hop(url: URL, response: aiohttp.ClientResponse, hop: int) -> URL:
    location = response.headers.get("Location")
    if not location:
        raise Unreachable(f"The link answered {response.status} without saying where to.")
    if hop >= MAX_REDIRECTS:
        raise Unreachable(f"The link redirects more than {MAX_REDIRECTS} times.")
    try:
        target = url.join(URL(location))
    except ValueError:
        raise Unreachable("The link redirects to something that is not a link.") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise FetchRefused("Refused to fetch: the link redirects to a "
                           f"{target.scheme or 'relative'}: address; only http and https "
                           "are fetched.")
    if target.user is not None or target.password is not None:
        raise FetchRefused("Refused to fetch: the link redirects to an address with a user "
                           "name or password.")
    return target


async def _stream(response: aiohttp.ClientResponse, storage: Scratch, limits: Limits,
                  filename: str, fields: dict[str, str]) -> ReceivedFile:
    if response.content_length is not None and response.content_length > limits.max_upload_bytes:
        raise too_large(limits)
    path = await asyncio.to_thread(storage.new_file)
    digest = hashlib.sha256()
    size = 0
    try:
        async with aiofiles.open(path, "wb") as out:
            async for chunk in response.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > limits.max_upload_bytes:  # stop reading at the limit
                    raise too_large(limits)
                await asyncio.gather(out.write(chunk), asyncio.to_thread(digest.update, chunk))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise BadRequest("The link gave an empty file.")
    return ReceivedFile(path, filename, digest.digest(), size, fields)
