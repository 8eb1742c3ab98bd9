"""Resize down: uploads still answer 201, variant URLs show the original (never cached as
the variant), and once a resize process runs the reconciler finishes every variant."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import aiohttp
import asyncpg
import pytest

from tests.reliability.harness import (
    KINDS,
    OwnStack,
    get_image,
    image_size,
    measured,
    post_image,
    unique_photo,
    variant_file,
    variant_rows,
    wait_until,
)
from tests.support import REPO

pytestmark = pytest.mark.e2e

UPLOADS = 10
# Seconds for every size and format of 10 photos on 2 cores (AVIF and WebP on one background
# thread), with margin for a loaded machine.
FINISH_WITHIN = 150


async def test_uploads_survive_resize_down_and_variants_follow():
    stack = OwnStack.start_new("resize-down", KITTEH_RESIZE_REPLICAS="0")
    resize = stack.service("resize")
    try:
        async with aiohttp.ClientSession() as http:
            answers = await asyncio.gather(*(post_image(http, stack.url, unique_photo(i))
                                             for i in range(UPLOADS)))
            assert [status for status, _ in answers] == [201] * UPLOADS, answers
            bodies = [body for _, body in answers]
            assert not any(v["ready"] for b in bodies for v in b["variants"].values())

            # Nothing makes variants now: every variant URL shows its original, uncached.
            for body in bodies:
                _, _, original = await get_image(http, stack.url + body["original"]["url"])
                for kind in KINDS:
                    status, cache, data = await get_image(
                        http, stack.url + body["variants"][kind]["url"])
                    assert status == 200 and data == original, (kind, status)
                    assert cache == "no-store"

            resize.start()
            started = time.monotonic()
            shown = {"original": 0, "variant": 0}

            async def every_url_shows_an_image() -> None:
                for body in bodies:
                    for kind in KINDS:
                        status, cache, data = await get_image(
                            http, stack.url + body["variants"][kind]["url"])
                        assert status == 200, (body["name"], kind, status)
                        image_size(data)  # decodes: never a broken image
                        shown["variant" if "immutable" in cache else "original"] += 1

            conn = await asyncpg.connect(stack.database_url)
            try:
                async def all_ready() -> bool:
                    await every_url_shows_an_image()
                    rows = await variant_rows(conn)
                    # Every (size, format) pair: made, or dropped (a modern file larger
                    # than its base one, never written).
                    return len(rows) >= UPLOADS * 9 and all(
                        (r["state"] == "ready" and variant_file(stack.storage, r).exists())
                        or r["state"] == "dropped" for r in rows)

                await wait_until(all_ready, FINISH_WITHIN, step=0.1,
                                 what="all variants ready after resize came back")
                finished = time.monotonic() - started
                rows = await variant_rows(conn)
            finally:
                await conn.close()
            assert [r["renders"] for r in rows] == [1] * len(rows)

            # Now the variants themselves, cacheable for good, at their sizes.
            for body in bodies:
                for kind in KINDS:
                    variant = body["variants"][kind]
                    status, cache, data = await get_image(http, stack.url + variant["url"])
                    assert status == 200 and "immutable" in cache
                    assert image_size(data) == (variant["width"], variant["height"])
        measured(f"resize down: {UPLOADS} uploads all 201; {len(rows)} variants finished "
                 f"{finished:.1f} s after resize started; variant URLs polled during recovery "
                 f"showed {shown['original']} originals and {shown['variant']} variants, "
                 "no errors")
    finally:
        resize.stop()
        assert stack.stop_and_remove() == 0


def _on_demand_is_bounded() -> bool:
    """Whether the gateway gives up on a silent resize before its general 120 s timeout."""
    template = (REPO / "deploy" / "nginx" / "gateway.conf.template").read_text()
    block = template.split("location @variant_on_demand", 1)[1].split("}", 1)[0]
    return "proxy_read_timeout" in block


async def test_a_frozen_resize_delays_nothing_for_long():
    """SIGSTOP: the process is there but silent. Uploads answer 201 after the resize timeout;
    once it runs again the variants are made."""
    stack = OwnStack.start_new("resize-frozen", KITTEH_RESIZE_TIMEOUT="2")
    resize_pid = stack.child_pids()["resize"]
    try:
        os.kill(resize_pid, signal.SIGSTOP)
        async with aiohttp.ClientSession() as http:
            started = time.monotonic()
            status, body = await post_image(http, stack.url, unique_photo(200))
            waited = time.monotonic() - started
            assert status == 201 and waited < 10, (status, waited)
            shown_after = None
            if _on_demand_is_bounded():
                started = time.monotonic()
                status, cache, _ = await asyncio.wait_for(
                    get_image(http, stack.url + body["variants"]["large"]["url"]), 30)
                assert status == 200 and cache == "no-store"
                shown_after = time.monotonic() - started
            os.kill(resize_pid, signal.SIGCONT)
            conn = await asyncpg.connect(stack.database_url)
            try:
                async def made() -> bool:
                    rows = await variant_rows(conn)
                    return len(rows) >= 9 and all(r["state"] in ("ready", "dropped")
                                                  for r in rows)

                await wait_until(made, 90, what="variants made after SIGCONT")
            finally:
                await conn.close()
        shown = "(not bounded by the gateway)" if shown_after is None else f"{shown_after:.1f} s"
        measured(f"resize frozen: upload answered 201 in {waited:.1f} s (KITTEH_RESIZE_TIMEOUT"
                 f"=2); a variant URL showed the original after {shown}")
    finally:
        os.kill(resize_pid, signal.SIGCONT)
        assert stack.stop_and_remove() == 0
