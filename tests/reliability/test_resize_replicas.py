"""Two upload and two resize processes against one Postgres and one volume: every variant is
made exactly once, whichever process (eager request, reconciler, on-demand) gets there."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import asyncpg
import pytest

from tests.reliability.harness import (
    OwnStack,
    files_on_volume,
    get_image,
    measured,
    post_image,
    unique_photo,
    variant_file,
    variant_rows,
    wait_until,
)

pytestmark = pytest.mark.e2e

UPLOADS = 50
CONCURRENCY = 10
MADE = re.compile(r"made ([a-z., ]+) of (\w+)")


async def test_two_resizers_make_every_variant_exactly_once():
    stack = OwnStack.start_new("replicas", KITTEH_UPLOAD_REPLICAS="2",
                               KITTEH_RESIZE_REPLICAS="2")
    try:
        assert {"upload", "upload-2", "resize", "resize-2"} <= set(stack.child_pids())
        uploads = [unique_photo(i) for i in range(UPLOADS)]
        gate = asyncio.Semaphore(CONCURRENCY)
        started = time.monotonic()

        async with aiohttp.ClientSession() as http:
            async def view_until_made(url: str) -> int:
                """A page that shows the variant while the upload is still being answered:
                the on-demand path races the eager one and the reconcilers, through the
                gateway's round robin over both resizers. 404 until the row is committed."""
                tries = 0
                while True:
                    tries += 1
                    status, _, _ = await get_image(http, url)
                    if status == 200:
                        return tries
                    assert status == 404, status
                    await asyncio.sleep(0.02)

            async def one(index: int) -> dict:
                upload = uploads[index]
                async with gate:
                    viewers = [asyncio.create_task(view_until_made(stack.url + url))
                               for url in upload.variant_urls()]
                    status, body = await post_image(http, stack.url, upload)
                    assert status == 201, body
                    await asyncio.gather(*viewers)
                    return body

            bodies = await asyncio.gather(*(one(i) for i in range(UPLOADS)))
        uploaded = time.monotonic() - started

        conn = await asyncpg.connect(stack.database_url)
        try:
            async def all_ready() -> bool:
                rows = await variant_rows(conn)
                return len(rows) >= UPLOADS * 9 and all(r["state"] in ("ready", "dropped")
                                                        for r in rows)

            # Every (size, format) pair: the modern ones are made after the uploads answered.
            await wait_until(all_ready, 240, what="all variants made")
            rows = await variant_rows(conn)
            names = await conn.fetch("SELECT name, token, storage_key FROM images")
        finally:
            await conn.close()

        renders = [r["renders"] for r in rows]
        assert renders == [1] * len(rows), [r for r in rows if r["renders"] != 1]
        assert len({r["name"] for r in names}) == len({r["token"] for r in names}) == UPLOADS
        assert {b["token"] for b in bodies} == {r["token"] for r in names}
        assert {u.storage_key for u in uploads} == {r["storage_key"] for r in names}

        # On the volume: each image's original and its variants that were kept, nothing else,
        # no temp files.
        volume = files_on_volume(stack.storage)
        assert set(volume) == {u.storage_key for u in uploads}
        for upload in uploads:
            ext = "jpg" if upload.content_type == "image/jpeg" else "png"
            kept = {variant_file(stack.storage, r).name for r in rows
                    if r["storage_key"] == upload.storage_key and r["state"] == "ready"}
            assert volume[upload.storage_key] == {f"original.{ext}", *kept}
        assert not list((stack.storage / "tmp").iterdir())

        # The logs agree: 150 variants made, each by one process, and both processes worked.
        made: dict[str, list[tuple[str, str]]] = {}
        for log_name in ("resize", "resize-2"):
            text = (stack.data_dir / "logs" / f"{log_name}.log").read_text()
            made[log_name] = [(name, kind) for kinds, name in MADE.findall(text)
                              for kind in kinds.split(", ")]
        everything = made["resize"] + made["resize-2"]
        assert len(everything) == len(set(everything)) == len(rows)
        assert made["resize"] and made["resize-2"]
        measured(f"two resizers: {UPLOADS} uploads at concurrency {CONCURRENCY} in "
                 f"{uploaded:.1f} s; renders per variant all 1; resize made "
                 f"{len(made['resize'])}, resize-2 made {len(made['resize-2'])}")
    finally:
        assert stack.stop_and_remove() == 0
