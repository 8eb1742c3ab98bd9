"""Postgres stopped and started again under a stream of uploads and page views: 503 with
Retry-After during the outage (never 500), every service recovers by itself, every upload
that was answered 201 ends complete, and a client that retries its 503s as told ends with
all of its images."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
import pytest

from tests.reliability.harness import (
    OwnStack,
    Upload,
    files_on_volume,
    measured,
    post_image,
    unique_photo,
    variant_file,
    variant_rows,
    wait_until,
)

pytestmark = pytest.mark.e2e

UPLOADERS = 3
VIEWERS = 2
BEFORE, OUTAGE, AFTER = 2.0, 4.0, 5.0  # seconds of load around and during the outage


@dataclass
class Answer:
    at: float
    what: str
    status: int
    retry_after: str | None


async def every_image_complete(conn: asyncpg.Connection, storage, tokens: set[str]) -> bool:
    """Each of ``tokens`` has a row, and every row has its original and all its variants on
    disk, every (size, format) pair made or dropped (a modern file larger than its base one;
    rows left without an original must have been removed by the sweeper)."""
    rows = await variant_rows(conn)
    have = {r["token"] for r in rows}
    return tokens <= have and all(
        (r["state"] == "dropped" or (r["state"] == "ready" and variant_file(storage, r).exists()))
        and any(variant_file(storage, r).parent.glob("original.*")) for r in rows)


async def test_postgres_restart_under_load():
    stack = OwnStack.start_new("pg-restart")
    postgres = stack.postgres()
    config = stack.config
    probes = {name: f"http://127.0.0.1:{config.ports[name]}/readyz"
              for name in ("upload", "resize", "gallery")}
    answers: list[Answer] = []
    created: dict[str, dict] = {}
    refused: list[Upload] = []
    readiness: dict[str, set[int]] = {name: set() for name in probes}
    numbers = itertools.count()
    done = asyncio.Event()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
            # One image before the outage, for the page views.
            status, first = await post_image(http, stack.url, unique_photo(next(numbers)))
            assert status == 201
            created[first["token"]] = first

            def note(what: str, response: aiohttp.ClientResponse) -> None:
                answers.append(Answer(time.monotonic(), what, response.status,
                                      response.headers.get("Retry-After")))

            async def uploader() -> None:
                while not done.is_set():
                    upload = unique_photo(next(numbers))
                    async with http.post(f"{stack.url}/api/images", data=upload.form()) as r:
                        note("upload", r)
                        if r.status == 201:
                            body = await r.json()
                            created[body["token"]] = body
                        else:
                            await r.read()
                            refused.append(upload)
                            await asyncio.sleep(0.05)

            async def viewer() -> None:
                pages = ["/", "/api/images?limit=5", first["page_url"],
                         f"/api/images/{first['token']}", first["variants"]["large"]["url"]]
                for path in itertools.cycle(pages):
                    if done.is_set():
                        return
                    async with http.get(stack.url + path) as r:
                        await r.read()
                        note(f"GET {path}", r)
                    await asyncio.sleep(0.02)

            async def prober() -> None:
                while not done.is_set():
                    for name, url in probes.items():
                        async with http.get(url) as r:
                            readiness[name].add(r.status)
                    await asyncio.sleep(0.1)

            load = [asyncio.create_task(uploader()) for _ in range(UPLOADERS)]
            load += [asyncio.create_task(viewer()) for _ in range(VIEWERS)]
            load.append(asyncio.create_task(prober()))

            await asyncio.sleep(BEFORE)
            stopping_at = time.monotonic()
            await asyncio.to_thread(postgres.stop, "fast")
            stopped_at = time.monotonic()
            # The first uploaders are likely waiting inside their resize call (which waits
            # for Postgres to record the variants); these meet the outage head on.
            load += [asyncio.create_task(uploader()) for _ in range(UPLOADERS)]
            await asyncio.sleep(OUTAGE)
            await asyncio.to_thread(postgres.start)
            started_at = time.monotonic()
            await asyncio.sleep(AFTER)
            done.set()
            await asyncio.gather(*load)

            statuses = {a.status for a in answers}
            assert statuses <= {200, 201, 503}, [a for a in answers
                                                 if a.status not in (200, 201, 503)]
            busy = [a for a in answers if a.status == 503]
            assert busy, "the outage was not noticed: no 503 at all"
            assert all(a.retry_after for a in busy)
            # 503 only from the moment the stop began until shortly after the start
            assert [a for a in busy if not stopping_at <= a.at <= started_at + 5] == []
            for name, seen in readiness.items():
                assert seen == {200, 503}, (name, seen)  # not ready during, ready again after

            uploads_after = [a for a in answers if a.what == "upload" and a.at > started_at]
            recovered = min(a.at for a in uploads_after if a.status == 201) - started_at
            pages_after = [a for a in answers if a.what != "upload" and a.at > started_at]
            page_recovered = min(a.at for a in pages_after if a.status == 200) - started_at

            conn = await asyncpg.connect(stack.database_url)
            try:
                # Every upload answered 201 is complete: row, original, three variants.
                finished = await wait_until(
                    lambda: every_image_complete(conn, stack.storage, set(created)), 180,
                    what="every 201 upload complete")
                committed_anyway = await conn.fetchval(
                    "SELECT count(*) FROM images WHERE NOT token = ANY($1::text[])",
                    list(created))

                # A client that retries its 503s (as Retry-After says) gets every image.
                gate = asyncio.Semaphore(4)

                async def retry(upload: Upload) -> tuple[int, dict]:
                    async with gate:
                        return await post_image(http, stack.url, upload)

                retried = await asyncio.gather(*(retry(upload) for upload in refused))
                assert {status for status, _ in retried} <= {200, 201}, retried
                tokens = set(created) | {body["token"] for _, body in retried}
                await wait_until(lambda: every_image_complete(conn, stack.storage, tokens),
                                 180, what="every retried upload complete")
                keys = {r["storage_key"]
                        for r in await conn.fetch("SELECT storage_key FROM images")}
            finally:
                await conn.close()
        assert len(keys) == len(tokens)
        # Nothing half-made stays: after a sweep (with the load over, nothing is in progress,
        # so no age threshold), every image directory has its row, and no temp file is left.
        sweep = stack.sweep("--max-age", "0")
        assert sweep.returncode == 0, sweep.stdout + sweep.stderr
        assert set(files_on_volume(stack.storage)) == keys
        assert not list((stack.storage / "tmp").iterdir())

        sweeps = [line.split("sweep: ", 1)[1] for line in
                  (stack.data_dir / "logs" / "resize.log").read_text().splitlines()
                  if "sweep: " in line]
        measured(
            f"postgres restart: {len(answers)} requests, {len(busy)} answered 503 + "
            f"Retry-After, no other 5xx; {len(created)} uploads got 201, all complete "
            f"{finished:.1f} s after the load ended; pg_ctl stop took "
            f"{stopped_at - stopping_at:.1f} s, down {OUTAGE:g} s, start took "
            f"{started_at - stopped_at - OUTAGE:.1f} s; first 201 upload "
            f"{recovered:.2f} s and first 200 page {page_recovered:.2f} s after Postgres was "
            f"back; {len(refused)} uploads refused with 503, {committed_anyway} of them "
            f"committed anyway; retried: "
            f"{sum(s == 200 for s, _ in retried)}×200, {sum(s == 201 for s, _ in retried)}×201; "
            f"resize's sweeps: {sweeps or 'none needed'}; final "
            f"{sweep.stdout.strip().splitlines()[-1]}")
    finally:
        done.set()
        assert stack.stop_and_remove() == 0
