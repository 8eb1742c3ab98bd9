"""SIGTERM: a service stops accepting, finishes what it has in hand within a bounded time,
and leaves no claim behind."""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import asyncpg
import pytest

from tests.reliability.harness import (
    OwnStack,
    image_size,
    measured,
    post_image,
    unique_photo,
    variant_file,
    variant_rows,
    wait_until,
)
from tests.reliability.test_crash_mid_upload import BOUNDARY, CHUNK, multipart

pytestmark = pytest.mark.e2e

# aiohttp's run_app drops the rest of a request body once shutdown begins; shared/serve.py
# therefore serves through shared/graceful.py, which this test holds to its promise.
async def test_sigterm_finishes_an_upload_in_flight_and_refuses_new_ones():
    stack = OwnStack.start_new("term-upload", KITTEH_UPLOAD_REPLICAS="0")
    upload_process = stack.service("upload").start()
    try:
        upload = unique_photo(1)
        data = multipart(upload.data, upload.filename)
        half_sent, go_on = asyncio.Event(), asyncio.Event()

        async def pausing_body():
            for start in range(0, len(data), CHUNK):
                if start >= len(data) // 2 and not half_sent.is_set():
                    half_sent.set()
                    await go_on.wait()
                yield data[start:start + CHUNK]

        async with aiohttp.ClientSession() as http:
            async def send() -> tuple[int, dict]:
                # Straight to the upload process: this is about its own shutdown.
                async with http.post(
                        f"{upload_process.url}/api/images", data=pausing_body(),
                        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                ) as response:
                    return response.status, await response.json()

            in_flight = asyncio.create_task(send())
            await asyncio.wait_for(half_sent.wait(), 10)
            await asyncio.sleep(0.2)
            upload_process.signal(signal.SIGTERM)
            signalled = time.monotonic()
            await asyncio.sleep(0.5)
            # It no longer accepts connections...
            with pytest.raises(aiohttp.ClientConnectionError):
                await http.get(f"{upload_process.url}/healthz")
            # ...but the upload it was receiving completes.
            go_on.set()
            status, body = await asyncio.wait_for(in_flight, 15)
            assert status == 201, body
            exit_status = await asyncio.to_thread(upload_process.wait, 40)
            stopped = time.monotonic() - signalled
        assert exit_status == 0
        original = stack.storage / body["original"]["url"].removeprefix("/i/")
        assert image_size(original.read_bytes()) == (body["original"]["width"],
                                                     body["original"]["height"])
        measured(f"SIGTERM during an upload: it answered 201 and the process exited 0, "
                 f"{stopped:.1f} s after the signal")
    finally:
        upload_process.stop()
        assert stack.stop_and_remove() == 0


async def test_sigterm_stops_the_reconciler_without_stranding_claims():
    stack = OwnStack.start_new("term-resize", KITTEH_RESIZE_REPLICAS="0")
    resize = stack.service("resize")
    try:
        async with aiohttp.ClientSession() as http:
            answers = await asyncio.gather(*(post_image(http, stack.url, unique_photo(i))
                                             for i in range(12)))
        assert {status for status, _ in answers} == {201}
        conn = await asyncpg.connect(stack.database_url)
        try:
            async def some_made() -> bool:
                return any(r["state"] == "ready" for r in await variant_rows(conn))

            resize.start()  # its reconciler finds every variant pending
            await wait_until(some_made, 30, step=0.02, what="the reconciler at work")
            resize.signal(signal.SIGTERM)
            signalled = time.monotonic()
            exit_status = await asyncio.to_thread(resize.wait, 40)
            stopped = time.monotonic() - signalled
            assert exit_status == 0
            rows = await variant_rows(conn)
            states = {s: sum(r["state"] == s for r in rows) for s in
                      ("pending", "working", "ready", "failed", "dropped")}
            assert states["working"] == states["failed"] == 0, states
            assert all(variant_file(stack.storage, r).exists() for r in rows
                       if r["state"] == "ready")

            # The next resize process finishes the rest at once (nothing waits to go stale).
            restart = stack.service("resize").start()
            try:
                async def all_ready() -> bool:  # every (size, format): made, or dropped
                    return all(r["state"] in ("ready", "dropped")
                               for r in await variant_rows(conn))

                # 12 photos' every size and format (AVIF on one background thread).
                finished = await wait_until(all_ready, 120, what="the rest made after restart")
            finally:
                restart.stop()
            rows = await variant_rows(conn)
            assert [r["renders"] for r in rows] == [1] * len(rows)
        finally:
            await conn.close()
        measured(f"SIGTERM during reconciling: exited 0 after {stopped:.1f} s with "
                 f"{states['ready']} ready, {states['pending']} pending, 0 working; the rest "
                 f"made {finished:.1f} s after a new process started")
    finally:
        resize.stop()
        assert stack.stop_and_remove() == 0
