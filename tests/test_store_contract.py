"""One contract for both image stores: the same tests against LocalStore (a temp directory)
and S3Store (a real SeaweedFS, tests/seaweedfs.py). No mocks.

Every test uses image keys of its own (random), so the S3 tests share one bucket: each
bucket SeaweedFS makes reserves volumes, and a bucket per test would run out of them.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import obstore
import pytest

from shared.config import S3Settings
from shared.storage.base import (
    ImageStore,
    StoredFileMissing,
    StoreError,
    file_name,
    key_prefix,
)
from shared.storage.local import LocalStore
from shared.storage.s3 import CACHE_CONTROL, PART_SIZE, S3Store, StoreUnavailable
from shared.storage.scratch import Scratch
from tests.seaweedfs import SeaweedFS, seaweedfs  # noqa: F401  (the session fixture)

FAST_FAILURE_SECONDS = 5.0  # a store that is down is reported this quickly at most


def new_key() -> str:
    return secrets.token_hex(16)


def settings(server: SeaweedFS, **changes: str) -> S3Settings:
    values = {"endpoint": server.endpoint, "bucket": server.bucket, "region": server.region,
              "access_key_id": server.access_key_id,
              "secret_access_key": server.secret_access_key, **changes}
    return S3Settings(**values)


def scratch_in(tmp_path: Path) -> Scratch:
    scratch = Scratch(tmp_path / "scratch")
    scratch.prepare()
    return scratch


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ImageStore]:
    made: ImageStore
    if request.param == "local":
        made = LocalStore(tmp_path / "images")
    else:
        server = request.getfixturevalue("seaweedfs")
        made = S3Store(settings(server), scratch_in(tmp_path))
    try:
        await made.check()
        yield made
    finally:
        await made.close()


async def read(store: ImageStore, name: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.stream(name, start, end)])


# -- writing and reading -----------------------------------------------------------------


async def test_put_bytes_then_read_it_back(store: ImageStore) -> None:
    name = file_name(new_key(), "large", "webp")
    data = os.urandom(100_000)
    assert not await store.exists(name)
    await store.put_bytes(name, data, "image/webp")
    assert await store.exists(name)
    assert await store.size(name) == len(data)
    assert await read(store, name) == data


async def test_put_file_streams_a_large_file(store: ImageStore, tmp_path: Path) -> None:
    # Above the S3 store's part size: a multipart upload there.
    source = tmp_path / "upload-big"
    data = os.urandom(PART_SIZE + 3 * 1024 * 1024 + 17)
    source.write_bytes(data)
    name = file_name(new_key(), "original", "png")
    await store.put_file(name, source, "image/png")
    assert await store.size(name) == len(data)
    async with store.open(name) as file:
        assert file.read() == data
        file.seek(len(data) - 17)  # seekable, as the resize engine needs
        assert file.read() == data[-17:]


async def test_s3_objects_carry_type_and_cache_control(seaweedfs: SeaweedFS,  # noqa: F811
                                                       tmp_path: Path) -> None:
    store = S3Store(settings(seaweedfs), scratch_in(tmp_path))
    await store.check()
    source = tmp_path / "upload-1"
    source.write_bytes(b"\x89PNG...")
    file_a, bytes_b = file_name(new_key(), "original", "png"), file_name(new_key(), "tiny", "jpg")
    await store.put_file(file_a, source, "image/png")
    await store.put_bytes(bytes_b, b"\xff\xd8...", "image/jpeg")
    for name, content_type in ((file_a, "image/png"), (bytes_b, "image/jpeg")):
        # Looked at through another client than the store's own: the bucket itself.
        status, _ = seaweedfs.request("GET", f"/{seaweedfs.bucket}/{name}")
        assert status == 200
        attributes = (await obstore.get_async(store._store(), name)).attributes
        assert attributes.get("Content-Type") == content_type
        assert attributes.get("Cache-Control") == CACHE_CONTROL
    await store.close()


async def test_open_gives_a_file_and_cleans_up(store: ImageStore, tmp_path: Path) -> None:
    name = file_name(new_key(), "original", "jpg")
    await store.put_bytes(name, b"0123456789", "image/jpeg")
    async with store.open(name) as file:
        assert file.read() == b"0123456789"
    assert list((tmp_path / "scratch").glob("*")) == []  # S3: the scratch copy is gone


@pytest.mark.parametrize(("start", "end", "expected"), [
    (0, None, b"0123456789"),
    (4, None, b"456789"),
    (2, 5, b"234"),
    (0, 1, b"0"),
    (9, 10, b"9"),
    (3, 3, b""),
    (3, 500, b"3456789"),  # an end past the file: up to its end
    (10, None, b""),  # a start at the end: nothing
    (12, 20, b""),
])
async def test_stream_ranges(store: ImageStore, start: int, end: int | None,
                             expected: bytes) -> None:
    name = file_name(new_key(), "large", "jpg")
    await store.put_bytes(name, b"0123456789", "image/jpeg")
    assert await read(store, name, start, end) == expected


async def test_stream_comes_in_chunks(store: ImageStore) -> None:
    name = file_name(new_key(), "original", "jpg")
    data = os.urandom(3 * 1024 * 1024 + 5)
    await store.put_bytes(name, data, "image/jpeg")
    chunks = [chunk async for chunk in store.stream(name)]
    assert len(chunks) > 1 and b"".join(chunks) == data
    assert all(isinstance(chunk, bytes) for chunk in chunks)


# -- missing files -----------------------------------------------------------------------


async def test_missing_files(store: ImageStore, tmp_path: Path) -> None:
    name = file_name(new_key(), "large", "webp")
    assert not await store.exists(name)
    assert await store.size(name) is None
    with pytest.raises(StoredFileMissing):
        async with store.open(name):
            pass
    assert list((tmp_path / "scratch").glob("*")) == []
    for start, end in ((0, None), (5, 10), (3, 3)):
        with pytest.raises(StoredFileMissing):
            await anext(aiter(store.stream(name, start, end)))
    await store.delete([name])  # nothing to delete: no error
    await store.delete_image(new_key())


async def test_names_are_checked(store: ImageStore) -> None:
    for bad in ("../etc/passwd", "ab/notakey/large.webp", "tmp/upload-1"):
        with pytest.raises(ValueError):
            await store.put_bytes(bad, b"x", "image/jpeg")
        with pytest.raises(ValueError):
            await store.delete([bad])


# -- deleting and listing ----------------------------------------------------------------


async def test_delete_removes_only_the_named(store: ImageStore) -> None:
    key = new_key()
    names = [file_name(key, stem, "jpg") for stem in ("original", "tiny", "large")]
    for name in names:
        await store.put_bytes(name, b"x" * 10, "image/jpeg")
    await store.delete([names[1], names[2], file_name(key, "medium", "jpg")])
    assert [await store.exists(name) for name in names] == [True, False, False]


async def test_delete_many(store: ImageStore) -> None:
    names = [file_name(new_key(), "tiny", "webp") for _ in range(30)]
    for name in names:
        await store.put_bytes(name, b"y", "image/webp")
    await store.delete(iter(names))
    assert not any([await store.exists(name) for name in names])


async def test_delete_image_removes_every_file_of_the_key(store: ImageStore) -> None:
    key, other = new_key(), new_key()
    for stem in ("original", "tiny", "large"):
        await store.put_bytes(file_name(key, stem, "jpg"), b"z", "image/jpeg")
    await store.put_bytes(file_name(other, "original", "jpg"), b"w", "image/jpeg")
    await store.delete_image(key)
    assert [o async for o in store.list(key_prefix(key))] == []
    assert await store.exists(file_name(other, "original", "jpg"))


async def test_list_with_prefix(store: ImageStore) -> None:
    key = new_key()
    before = time.time()
    sizes = {file_name(key, "original", "png"): 7, file_name(key, "tiny", "webp"): 3}
    for name, size in sizes.items():
        await store.put_bytes(name, b"a" * size, "image/png")
    other = file_name(new_key(), "original", "png")
    await store.put_bytes(other, b"b", "image/png")

    found = {o.name: o async for o in store.list(key_prefix(key))}
    assert {name: o.size for name, o in found.items()} == sizes
    for o in found.values():  # seconds since the epoch; S3 keeps whole seconds
        assert before - 2 <= o.modified <= time.time() + 2
    # A prefix is a prefix of the name, not only of whole path segments.
    partial = {o.name async for o in store.list(f"{key[:2]}/{key[:9]}")}
    assert partial == set(sizes)
    shard = {o.name async for o in store.list(key[:2] + "/")}
    assert set(sizes) <= shard
    everything = {o.name async for o in store.list()}
    assert {*sizes, other} <= everything


async def test_list_shows_only_image_files(store: ImageStore,
                                           request: pytest.FixtureRequest) -> None:
    """Temp files, check()'s probes and anything else beside the images are not listed."""
    key = new_key()
    await store.put_bytes(file_name(key, "original", "jpg"), b"x", "image/jpeg")
    strays = [f"{key[:2]}/{key}/read-me.txt", f"{key[:2]}/{key}/.tmp-large.webp", "README"]
    if isinstance(store, LocalStore):
        for stray in strays:
            (store.root / stray).write_bytes(b"?")
    else:
        server = request.getfixturevalue("seaweedfs")
        for stray in strays:
            assert server.request("PUT", f"/{server.bucket}/{stray}", b"?")[0] == 200
    assert [o.name async for o in store.list(key_prefix(key))] == [
        file_name(key, "original", "jpg")]
    assert not any([o.name in strays or o.name.startswith(".") async for o in store.list()])
    await store.delete_image(key)  # strays of the key's prefix too
    assert [o async for o in store.list(key_prefix(key))] == []


# -- health ------------------------------------------------------------------------------


async def test_problem_is_none_when_healthy(store: ImageStore) -> None:
    assert await store.problem(writable=True) is None
    assert await store.problem(writable=False) is None


async def test_describe_names_the_place(store: ImageStore) -> None:
    text = store.describe()
    assert "KITTEH_STORAGE_DIR" in text or "KITTEH_S3_ENDPOINT" in text


# -- check: made when missing, refused with the setting named ----------------------------


async def test_check_makes_a_missing_directory(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "not" / "yet")
    await store.check()
    assert (tmp_path / "not" / "yet").is_dir()


async def test_check_makes_a_missing_bucket(seaweedfs: SeaweedFS,  # noqa: F811
                                            tmp_path: Path) -> None:
    bucket = f"kitteh-made-{secrets.token_hex(4)}"
    status, _ = seaweedfs.request("HEAD", f"/{bucket}")
    assert status == 404
    store = S3Store(settings(seaweedfs, bucket=bucket), scratch_in(tmp_path))
    await store.check()
    await store.check()  # and again, now that it is there
    assert seaweedfs.request("HEAD", f"/{bucket}")[0] == 200
    name = file_name(new_key(), "original", "jpg")
    await store.put_bytes(name, b"x", "image/jpeg")
    assert await store.exists(name)
    await store.close()


@pytest.mark.parametrize(("change", "variable"), [
    ({"secret_access_key": "not-the-secret-at-all"}, "KITTEH_S3_SECRET_ACCESS_KEY"),
    ({"access_key_id": "nobody-knows-me"}, "KITTEH_S3_ACCESS_KEY_ID"),
])
async def test_check_refuses_wrong_credentials(seaweedfs: SeaweedFS,  # noqa: F811
                                               tmp_path: Path, change: dict[str, str],
                                               variable: str) -> None:
    store = S3Store(settings(seaweedfs, **change), scratch_in(tmp_path))
    with pytest.raises(StoreError) as raised:
        await store.check()
    message = str(raised.value)
    assert variable in message and seaweedfs.endpoint in message
    assert "not-the-secret-at-all" not in message
    assert seaweedfs.secret_access_key not in message
    assert await store.problem(writable=True) is not None
    await store.close()


async def test_unreachable_endpoint_fails_fast(seaweedfs: SeaweedFS,  # noqa: F811
                                               tmp_path: Path) -> None:
    endpoint = "http://127.0.0.1:9"  # discard: nothing listens there
    store = S3Store(settings(seaweedfs, endpoint=endpoint), scratch_in(tmp_path))
    started = time.monotonic()
    with pytest.raises(StoreError) as raised:
        await store.check()
    assert "KITTEH_S3_ENDPOINT" in str(raised.value) and endpoint in str(raised.value)
    assert seaweedfs.secret_access_key not in str(raised.value)
    problem = await store.problem(writable=True)
    assert problem is not None and endpoint in problem
    name = file_name(new_key(), "large", "webp")
    # Object requests: an OSError of the store's own (503 in the services), never a miss.
    with pytest.raises(StoreUnavailable):
        await store.size(name)
    with pytest.raises(StoreUnavailable):
        await store.put_bytes(name, b"x", "image/webp")
    with pytest.raises(StoreUnavailable):
        await anext(aiter(store.stream(name)))
    assert time.monotonic() - started < 4 * FAST_FAILURE_SECONDS
    await store.close()


async def test_hung_server_fails_within_seconds(seaweedfs: SeaweedFS,  # noqa: F811
                                                tmp_path: Path) -> None:
    """A server that accepts connections and never answers (a stopped process, a full
    backlog): /readyz and requests give up after seconds, they do not hang a node."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # the kernel completes the handshakes; nobody reads or answers
        endpoint = f"http://127.0.0.1:{hung.getsockname()[1]}"
        store = S3Store(settings(seaweedfs, endpoint=endpoint), scratch_in(tmp_path))
        started = time.monotonic()
        assert await store.problem(writable=True) is not None
        assert time.monotonic() - started < FAST_FAILURE_SECONDS
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.size(file_name(new_key(), "large", "webp"))
        assert time.monotonic() - started < 2 * FAST_FAILURE_SECONDS
        await store.close()


# -- writes cut short by a crash ---------------------------------------------------------


async def test_writes_cut_short_are_removed_once_old_enough(store: ImageStore,
                                                            request: pytest.FixtureRequest,
                                                            tmp_path: Path) -> None:
    key = new_key()
    name = file_name(key, "original", "jpg")
    if isinstance(store, LocalStore):  # a .tmp- file beside its final name
        partial = tmp_path / "images" / key_prefix(key) / ".tmp-crashed"
        partial.parent.mkdir(parents=True)
        partial.write_bytes(b"half an image")
    else:  # a multipart upload begun and never completed or aborted
        server = request.getfixturevalue("seaweedfs")
        status, body = server.request("POST", f"/{server.bucket}/{name}?uploads")
        assert status == 200, body
    assert await store.remove_partial_writes(older_than=time.time() - 3600) == []
    removed = await store.remove_partial_writes(older_than=time.time() + 60)
    assert len(removed) == 1 and name.rsplit("/", 1)[0] in removed[0], removed
    assert await store.remove_partial_writes(older_than=time.time() + 60) == []
    assert [f async for f in store.list(key_prefix(key))] == []


async def test_a_reader_checks_without_writing(store: ImageStore) -> None:
    await store.check(writable=False)


# -- a service whose store cannot be used does not start -----------------------------------


@pytest.mark.parametrize("service", ["upload", "resize", "gallery"])
def test_a_service_with_an_unreachable_store_exits_naming_the_setting(service, tmp_path,
                                                                       database_url):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    env = {**os.environ, "DATABASE_URL": database_url, "KITTEH_STORAGE": "s3",
           "KITTEH_S3_ENDPOINT": f"http://127.0.0.1:{port}", "KITTEH_S3_BUCKET": "kitteh",
           "KITTEH_S3_ACCESS_KEY_ID": "k", "KITTEH_S3_SECRET_ACCESS_KEY": "never-printed-9f2",
           "KITTEH_STORAGE_DIR": str(tmp_path / "images"),
           f"KITTEH_{service.upper()}_PORT": str(port)}
    result = subprocess.run([sys.executable, "-m", f"services.{service}"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert f"KITTEH_S3_ENDPOINT=http://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr and "never-printed-9f2" not in result.stderr
