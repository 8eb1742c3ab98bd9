"""An upload process killed with SIGKILL in the middle of an upload: nothing a user can see
(no row, no image file, no URL that answers), the temp file it leaves is removed by the
sweeper once old enough, and the same bytes can be uploaded again afterwards."""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import asyncpg
import pytest

from tests.reliability.harness import (
    OwnStack,
    Upload,
    files_on_volume,
    image_size,
    measured,
    post_image,
    wait_until,
)
from tests.support import photo

pytestmark = pytest.mark.e2e

CHUNK = 64 * 1024
BOUNDARY = "kitteh-crash-test"


async def test_sigkill_mid_upload_leaves_nothing_visible_and_the_sweeper_cleans_up():
    # The runner supervises its children (a dead one stops the stack), so this test runs
    # the upload process itself, on the port the gateway points at.
    stack = OwnStack.start_new("crash", KITTEH_UPLOAD_REPLICAS="0")
    upload_process = stack.service("upload").start()
    temp_dir = stack.storage / "tmp"
    # The full-size photo (1.5 MB): the upload service writes in 1 MiB chunks, so sending
    # all but the end puts a part of the file on disk before the kill.
    upload = Upload(photo("j03_seeding.jpg").read_bytes(), "seeding.jpg", "image/jpeg")
    assert len(upload.data) > 1024 * 1024 + 4 * CHUNK
    try:
        async with aiohttp.ClientSession() as http:
            most_sent = asyncio.Event()
            never = asyncio.Event()
            data = multipart(upload.data, upload.filename)

            cut = len(data) - 2 * CHUNK

            async def most_then_silence():
                for start in range(0, cut, CHUNK):
                    yield data[start:min(start + CHUNK, cut)]
                most_sent.set()
                await never.wait()

            stalled = asyncio.create_task(http.post(
                f"{stack.url}/api/images", data=most_then_silence(),
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}))
            await asyncio.wait_for(most_sent.wait(), 10)

            async def receiving() -> bool:
                return any(f.stat().st_size > 0 for f in temp_dir.iterdir())

            await wait_until(receiving, 10, step=0.05, what="the upload is being received")
            written = sum(f.stat().st_size for f in temp_dir.iterdir())
            upload_process.kill()  # SIGKILL: no cleanup of any kind
            stalled.cancel()
            await asyncio.gather(stalled, return_exceptions=True)

            # Nothing visible: no row, no image directory, no URL that answers.
            conn = await asyncpg.connect(stack.database_url)
            try:
                assert await conn.fetchval("SELECT count(*) FROM images") == 0
            finally:
                await conn.close()
            assert files_on_volume(stack.storage) == {}
            key = upload.storage_key
            async with http.get(f"{stack.url}/i/{key[:2]}/{key}/original.jpg") as response:
                assert response.status == 404
            async with http.get(f"{stack.url}/i/{key[:2]}/{key}/large.jpg") as response:
                assert response.status == 404
            leftovers = list(temp_dir.iterdir())
            assert len(leftovers) == 1 and leftovers[0].name.startswith("upload-")

            # The sweeper leaves a young temp file alone (it may be a live upload)...
            young = stack.sweep()
            assert young.returncode == 0, young.stderr
            assert "0 temp file(s) removed" in young.stdout and leftovers[0].exists()
            # ...and removes it once it is older than KITTEH_TEMP_MAX_AGE.
            hour_ago = time.time() - 3600
            os.utime(leftovers[0], (hour_ago, hour_ago))
            old = stack.sweep(KITTEH_TEMP_MAX_AGE="600")
            assert old.returncode == 0, old.stderr
            assert "1 temp file(s) removed" in old.stdout, old.stdout
            assert not leftovers[0].exists()

            # Back up: the same bytes are a new image (no ghost of the killed one).
            upload_process = stack.service("upload").start()
            status, image = await post_image(http, stack.url, upload)
            assert status == 201, image
            async with http.get(stack.url + image["original"]["url"]) as response:
                assert response.status == 200
                assert image_size(await response.read()) == (5312, 2988)
        measured(f"crash mid-upload: killed after {cut} of {len(data)} bytes "
                 f"({written} on disk); nothing visible; sweeper: "
                 f"{old.stdout.strip().splitlines()[-1]}")
    finally:
        upload_process.stop()
        assert stack.stop_and_remove() == 0


def multipart(data: bytes, filename: str) -> bytes:
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()
