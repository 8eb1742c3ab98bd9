"""The image store in an S3 bucket: AWS S3, SeaweedFS, MinIO, Ceph RGW, Swift's s3api.

Objects are named exactly as the local files (``ab/ab12…/large.webp``), so a URL under
``/i/`` is the object's key. The client is obstore (Rust ``object_store``: SigV4, retries,
multipart, DeleteObjects batches), chosen by measurement (bench/store_client.py: 1.7-4.8×
aiobotocore's requests per second on 4-100 KB objects, at 0.2-0.5× its CPU per request).
obstore has no bucket-level calls, so HeadBucket and CreateBucket are two requests signed
here (``shared.storage.sigv4``) over aiohttp.

Errors: a missing object is ``StoredFileMissing``; anything else the server or the network
does is ``StoreUnavailable`` (an ``OSError``, as a failing disk is for the local store), which
the services answer with 503. Requests are bounded (a few seconds to connect, a few retries
within ``RETRY_SECONDS``), so a node whose store is down fails fast instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

import aiohttp
import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store as ObjectStore

from shared.config import S3Settings
from shared.storage.base import (
    StoredFileMissing,
    StoredObject,
    StoreError,
    StoreUnavailable,
    key_prefix,
    parse_name,
)
from shared.storage.scratch import Scratch
from shared.storage.sigv4 import EMPTY_SHA256, sigv4_headers

# Objects are never rewritten under a name (a name is a hash of the original's bytes), so
# browsers and the gateway's cache may keep them for a year.
CACHE_CONTROL = "public, max-age=31536000, immutable"
CONNECT_SECONDS = 3
# A server that accepted the connection but stopped answering: each read waits this long
# at most (the answer's headers too), so a hung store costs a request seconds, not minutes.
READ_SECONDS = 5
# One request, start to end, however steadily the bytes flow: a part of a multipart upload
# (PART_SIZE) over a slow link.
REQUEST_SECONDS = 120
# Retries (5xx, dropped connections, timeouts of reads) are not started after this long.
RETRY_SECONDS = 5
MAX_RETRIES = 2
PROBLEM_SECONDS = 2  # /readyz: a cheap HeadBucket, and an answer quickly either way
CHECK_SECONDS = 10
# put_file sends larger files as a multipart upload (S3's minimum part is 5 MiB), a few
# parts at a time: a 200 MB original is never in memory, and a lost part is retried alone.
PART_SIZE = 8 * 1024 * 1024
PART_CONCURRENCY = 4
STREAM_CHUNK = 256 * 1024  # what stream() yields at most at a time (what LocalStore reads)
DOWNLOAD_CHUNK = 1024 * 1024  # open(): the scratch copy is written in pieces this big
PROBE_PREFIX = ".kitteh-probe/"  # check() writes and deletes one object here
T = TypeVar("T")


class S3Store:
    kind = "s3"

    def __init__(self, settings: S3Settings, scratch: Scratch):
        self.settings = settings
        self.scratch = scratch
        endpoint = settings.endpoint.rstrip("/")
        # Path-style (``endpoint/bucket/key``) for any server of one's own: no wildcard DNS
        # needed. AWS itself is addressed virtual-host style, as it asks, unless the bucket's
        # name has a dot (its TLS certificate covers one level of subdomain only).
        self._virtual_host = not endpoint and "." not in settings.bucket
        if endpoint:
            self._bucket_url = f"{endpoint}/{settings.bucket}"
        elif self._virtual_host:
            self._bucket_url = f"https://{settings.bucket}.s3.{settings.region}.amazonaws.com/"
        else:
            self._bucket_url = f"https://s3.{settings.region}.amazonaws.com/{settings.bucket}"
        self._objects: ObjectStore | None = None
        self._session: aiohttp.ClientSession | None = None

    def describe(self) -> str:
        return f"the S3 bucket {self.settings.bucket} at {self._where()}"

    def _where(self) -> str:
        if self.settings.endpoint:
            return f"{self.settings.endpoint} (KITTEH_S3_ENDPOINT)"
        return f"AWS S3 in {self.settings.region} (KITTEH_S3_ENDPOINT empty, KITTEH_S3_REGION)"

    # -- clients: made on first use, let go of in close() -----------------------------------

    def _store(self) -> ObjectStore:
        if self._objects is None:
            s = self.settings
            options: dict[str, Any] = {
                "allow_http": s.endpoint.startswith("http://"),
                "connect_timeout": timedelta(seconds=CONNECT_SECONDS),
                "read_timeout": timedelta(seconds=READ_SECONDS),
                "timeout": timedelta(seconds=REQUEST_SECONDS),
            }
            retry: dict[str, Any] = {
                "max_retries": MAX_RETRIES,
                "retry_timeout": timedelta(seconds=RETRY_SECONDS),
                "backoff": {"init_backoff": timedelta(milliseconds=100),
                            "max_backoff": timedelta(seconds=2), "base": 2},
            }
            where: dict[str, Any] = {"virtual_hosted_style_request": self._virtual_host}
            if s.endpoint:
                where["endpoint"] = s.endpoint.rstrip("/")
            # Keys as plain values: a credential_provider (a Python callback on every
            # request) halves obstore's rate of small requests (HEAD 4,750/s vs 2,500/s on
            # SeaweedFS). But obstore also reads AWS_* from the environment, and would sign
            # with an AWS_SESSION_TOKEN found there: only then, a provider that has none.
            keys: dict[str, Any] = {"access_key_id": s.access_key_id,
                                    "secret_access_key": s.secret_access_key}
            if os.environ.get("AWS_SESSION_TOKEN") or os.environ.get("AWS_SECURITY_TOKEN"):
                static = {**keys, "token": None, "expires_at": None}
                keys = {"credential_provider": lambda: static}
            self._objects = ObjectStore(s.bucket, region=s.region, client_options=options,
                                        retry_config=retry, **where, **keys)
        return self._objects

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=CHECK_SECONDS, connect=CONNECT_SECONDS))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._objects = None  # obstore's connection pool goes with the object

    # -- errors -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, action: str, name: str = "") -> Iterator[None]:
        try:
            yield
        except FileNotFoundError:
            raise StoredFileMissing(name) from None
        except (BaseError, OSError) as error:
            raise StoreUnavailable(
                f"S3 {action} {name} in {self.describe()}: {_short(error)}") from error

    # -- bucket-level requests (signed here; obstore has none) ------------------------------

    async def _bucket_request(self, method: str, query: str = "", body: bytes = b"",
                              seconds: float = CHECK_SECONDS) -> tuple[int, bytes]:
        s = self.settings
        url = urlsplit(self._bucket_url)
        headers = sigv4_headers(method, url.netloc, url.path or "/", query,
                                hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256,
                                s.access_key_id, s.secret_access_key, s.region)
        target = f"{self._bucket_url}?{query}" if query else self._bucket_url
        async with self._http().request(
                method, target, data=body or None, headers=headers,
                timeout=aiohttp.ClientTimeout(total=seconds, connect=min(seconds,
                                                                         CONNECT_SECONDS)),
                allow_redirects=False) as answer:
            return answer.status, await answer.read()

    async def check(self, writable: bool = True) -> None:
        """The bucket answers to this key (made if missing and the key may), and, if
        ``writable``, an object can be written to it and deleted."""
        s = self.settings
        where = self._where()
        try:
            # ListObjectsV2 rather than HeadBucket: its error body says which setting is wrong.
            status, body = await self._bucket_request(
                "GET", f"list-type=2&max-keys=1&prefix={PROBE_PREFIX.rstrip('/')}%2F")
            if status == 404 and _error_code(body) in ("NoSuchBucket", ""):
                status, body = await self._create_bucket()
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            place = (f"KITTEH_S3_ENDPOINT={s.endpoint}" if s.endpoint else
                     f"AWS S3 (KITTEH_S3_ENDPOINT empty) in KITTEH_S3_REGION={s.region}")
            raise StoreError(f"{place}: cannot reach the S3 server: "
                             f"{_short(error) or type(error).__name__}") from None
        if status != 200:
            raise StoreError(self._refusal(status, body))
        if not writable:
            return
        probe = f"{PROBE_PREFIX}{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            await obstore.put_async(self._store(), probe, b"",
                                    attributes={"Content-Type": "text/plain"})
            await obstore.delete_async(self._store(), probe)
        except (BaseError, OSError) as error:
            raise StoreError(
                f"KITTEH_S3_BUCKET={s.bucket} at {where}: cannot write and delete an object "
                f"with KITTEH_S3_ACCESS_KEY_ID={s.access_key_id}: {_short(error)}") from None

    async def _create_bucket(self) -> tuple[int, bytes]:
        body = b""
        if self.settings.region != "us-east-1":  # AWS wants the region said, elsewhere
            body = ("<CreateBucketConfiguration><LocationConstraint>"
                    f"{self.settings.region}</LocationConstraint></CreateBucketConfiguration>"
                    ).encode()
        status, answer = await self._bucket_request("PUT", body=body)
        if status == 409 and b"BucketAlreadyOwnedByYou" in answer:
            status = 200  # made by another node starting at the same moment
        if status != 200:
            return status, answer
        return await self._bucket_request("GET", "list-type=2&max-keys=1")

    def _refusal(self, status: int, body: bytes) -> str:
        """An operator's message for a refused bucket request: which setting to look at."""
        s = self.settings
        where = self._where()
        code = _error_code(body)
        if code == "InvalidAccessKeyId":
            return (f"KITTEH_S3_ACCESS_KEY_ID={s.access_key_id}: {where} does not know this "
                    "access key")
        if code == "SignatureDoesNotMatch":
            return (f"KITTEH_S3_SECRET_ACCESS_KEY: {where} rejects the signature: the secret "
                    f"is not the one of KITTEH_S3_ACCESS_KEY_ID={s.access_key_id}")
        if code in ("AuthorizationHeaderMalformed", "PermanentRedirect") or status == 301:
            return (f"KITTEH_S3_REGION={s.region}: KITTEH_S3_BUCKET={s.bucket} at {where} is "
                    f"in another region ({code or status})")
        if status in (401, 403):
            return (f"KITTEH_S3_ACCESS_KEY_ID={s.access_key_id} may not list "
                    f"KITTEH_S3_BUCKET={s.bucket} at {where} ({code or status}); if the bucket "
                    "is missing, create it or give the key the right to")
        if status == 404:
            return (f"KITTEH_S3_BUCKET={s.bucket} does not exist at {where} and could not be "
                    "created")
        return (f"KITTEH_S3_BUCKET={s.bucket} at {where}: unexpected answer HTTP {status} "
                f"{code}".rstrip())

    async def remove_partial_writes(self, older_than: float) -> list[str]:
        """Abort multipart uploads begun before ``older_than`` and never finished (a process
        killed in the middle of a large ``put_file``): their parts are invisible but stored,
        and billed. ListMultipartUploads and AbortMultipartUpload, signed here."""
        try:
            status, body = await self._bucket_request("GET", "uploads")
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise StoreUnavailable(f"S3 list uploads in {self.describe()}: "
                                   f"{_short(error) or type(error).__name__}") from error
        if status != 200:
            raise StoreUnavailable(f"S3 list uploads in {self.describe()}: HTTP {status}")
        aborted = []
        for key, upload_id, initiated in _multipart_uploads(body):
            if initiated >= older_than:
                continue
            status, _ = await self._object_request("DELETE", key,
                                                   f"uploadId={quote(upload_id, safe='')}")
            if status in (200, 204, 404):
                aborted.append(f"s3 multipart upload of {key}")
        return aborted

    async def _object_request(self, method: str, key: str, query: str) -> tuple[int, bytes]:
        s = self.settings
        url = urlsplit(self._bucket_url)
        path = f"{url.path.rstrip('/')}/{key}"
        headers = sigv4_headers(method, url.netloc, path, query, EMPTY_SHA256,
                                s.access_key_id, s.secret_access_key, s.region)
        target = f"{url.scheme}://{url.netloc}{quote(path, safe='/-_.~')}?{query}"
        async with self._http().request(method, target, headers=headers,
                                        allow_redirects=False) as answer:
            return answer.status, await answer.read()

    async def problem(self, writable: bool) -> str | None:
        """HeadBucket within PROBLEM_SECONDS. (Whether the key may write is known from
        ``check`` at start; a probe write on every /readyz would cost too much.)"""
        try:
            status, _ = await self._bucket_request("HEAD", seconds=PROBLEM_SECONDS)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return f"cannot reach {self.describe()}: {_short(error) or type(error).__name__}"
        if status == 200:
            return None
        return f"{self.describe()} answers HTTP {status} to HeadBucket"

    # -- objects ----------------------------------------------------------------------------

    @staticmethod
    def _check_name(name: str) -> str:
        if parse_name(name) is None:
            raise ValueError(f"not a stored file name: {name!r}")
        return name

    def _attributes(self, content_type: str) -> dict[str, str]:
        return {"Content-Type": content_type, "Cache-Control": CACHE_CONTROL}

    async def put_file(self, name: str, source: Path, content_type: str) -> None:
        # A Path is read by obstore in parts (multipart above PART_SIZE), never whole.
        with self._errors("put", self._check_name(name)):
            await obstore.put_async(self._store(), name, source,
                                    attributes=self._attributes(content_type),
                                    chunk_size=PART_SIZE, max_concurrency=PART_CONCURRENCY)

    async def put_bytes(self, name: str, data: bytes, content_type: str) -> None:
        with self._errors("put", self._check_name(name)):
            await obstore.put_async(self._store(), name, data,
                                    attributes=self._attributes(content_type),
                                    use_multipart=False)

    async def exists(self, name: str) -> bool:
        return await self.size(name) is not None

    async def size(self, name: str) -> int | None:
        try:
            with self._errors("head", self._check_name(name)):
                meta = await obstore.head_async(self._store(), name)
        except StoredFileMissing:
            return None
        return meta["size"]

    @contextlib.asynccontextmanager
    async def open(self, name: str) -> AsyncIterator[BinaryIO]:
        self._check_name(name)
        path = await _run(self.scratch.new_file, "s3-")
        try:
            with self._errors("get", name):
                answer = await obstore.get_async(self._store(), name)
                with await _run(path.open, "wb") as out:
                    async for chunk in answer.stream(min_chunk_size=DOWNLOAD_CHUNK):
                        await _run(out.write, chunk)
            file = await _run(path.open, "rb")
            try:
                yield file
            finally:
                await _run(file.close)
        finally:
            await _run(path.unlink, True)

    async def stream(self, name: str, start: int = 0,
                     end: int | None = None) -> AsyncIterator[bytes]:
        self._check_name(name)
        if end is not None and end <= start:
            if await self.size(name) is None:  # nothing to send, but the same errors
                raise StoredFileMissing(name)
            return
        options: dict[str, Any] = {}
        if end is not None:
            options["range"] = (start, end)
        elif start:
            options["range"] = {"offset": start}
        try:
            with self._errors("get", name):
                answer = await obstore.get_async(self._store(), name, options=options)
        except StoreUnavailable as error:
            # A start at or past the end: S3 answers 416, the local store no bytes.
            size = await self.size(name) if start and "416" in str(error) else None
            if size is not None and start >= size:
                return
            raise
        with self._errors("get", name):
            async for chunk in answer.stream(min_chunk_size=STREAM_CHUNK):
                yield bytes(chunk)

    async def delete(self, names: Iterable[str]) -> None:
        """DeleteObjects, up to 1,000 names a request (obstore batches); S3 deletes a missing
        name without complaint."""
        batch = [self._check_name(name) for name in names]
        if batch:
            with self._errors("delete", f"{len(batch)} objects"):
                await obstore.delete_async(self._store(), batch)

    async def delete_image(self, key: str) -> None:
        # Everything under the key's prefix, even names this version would not make.
        names = [meta["path"] async for meta in self._list_raw(key_prefix(key))]
        if names:
            with self._errors("delete", key_prefix(key)):
                await obstore.delete_async(self._store(), names)

    async def list(self, prefix: str = "") -> AsyncIterator[StoredObject]:
        async for meta in self._list_raw(prefix):
            name = meta["path"]
            if parse_name(name) is not None:  # not probes, not anything else in the bucket
                yield StoredObject(name, meta["size"], meta["last_modified"].timestamp())

    async def _list_raw(self, prefix: str) -> AsyncIterator[Any]:
        """ListObjectsV2, page by page. obstore matches prefixes by whole path segments
        (``ab/ab1`` finds nothing): list from the last ``/`` and keep what starts with
        ``prefix``."""
        segments = prefix[:prefix.rfind("/") + 1]
        with self._errors("list", prefix or "/"):
            pages = obstore.list(self._store(), segments or None, chunk_size=1000)
            async for page in pages:
                for meta in page:
                    if meta["path"].startswith(prefix):
                        yield meta


async def _run(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))


def _short(error: BaseException) -> str:
    """The first line of an error: obstore appends a multi-line debug dump."""
    text = str(error).split("\n\nDebug source:", 1)[0].strip()
    return text.splitlines()[0][:300] if text else ""


def _multipart_uploads(body: bytes) -> list[tuple[str, str, float]]:
    """(key, upload id, initiated as epoch seconds) of a ListMultipartUploads answer."""
    found = []
    for upload in ElementTree.fromstring(body or b"<r/>").iter():
        if not upload.tag.endswith("Upload"):
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in upload}
        if {"Key", "UploadId", "Initiated"} <= fields.keys():
            initiated = datetime.fromisoformat(fields["Initiated"].replace("Z", "+00:00"))
            found.append((fields["Key"], fields["UploadId"], initiated.timestamp()))
    return found


def _error_code(body: bytes) -> str:
    """``<Code>...</Code>`` of an S3 error body ('' if none)."""
    start = body.find(b"<Code>")
    end = body.find(b"</Code>", start)
    return body[start + 6:end].decode(errors="replace") if start >= 0 and end > 0 else ""
