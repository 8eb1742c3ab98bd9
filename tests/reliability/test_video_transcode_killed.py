"""Resize killed (SIGKILL, as the OOM killer does) while it transcodes a video: its
transcoder dies with it, the runner restarts resize, and the renditions are finished after:
the claim goes stale, the new process claims it again and makes it. Nothing is lost."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import aiohttp
import asyncpg
import av
import pytest

from tests.reliability.harness import OwnStack, wait_until
from tests.support import file_form
from tests.video_files import make_video

pytestmark = pytest.mark.e2e


def transcoders(data_dir: Path) -> list[int]:
    """Pids of rendition children working for this stack (their target is in its scratch)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"shared.video.child" in command and b"render" in command and \
                any(str(data_dir).encode() in part for part in command):
            found.append(int(entry.name))
    return found


async def test_renditions_are_finished_after_resize_is_killed_mid_transcode():
    # Long enough to be caught mid-transcode on a busy 2-core machine, small enough to send:
    # 8 s of 1280×720 at 30 fps, a few hundred KiB of simple pictures.
    video = make_video("mp4", "libx264", (1280, 720), 8, 30, "aac",
                       video_options={"preset": "ultrafast"})
    stack = OwnStack.start_new("video-kill")
    try:
        async with aiohttp.ClientSession() as http, http.post(
                f"{stack.url}/api/images",
                data=file_form(video, "long.mp4", "video/mp4")) as response:
            assert response.status == 201, await response.text()
            body = await response.json()
        conn = await asyncpg.connect(stack.database_url)
        try:
            async def transcoding() -> bool:
                working = await conn.fetchval(
                    "SELECT count(*) FROM renditions WHERE state = 'working'")
                return working > 0 and bool(transcoders(stack.data_dir))

            await wait_until(transcoding, 120, what="a rendition being transcoded")
            killed = await conn.fetch("SELECT name, attempts FROM renditions"
                                      " WHERE state = 'working'")
            children = transcoders(stack.data_dir)
            resize = stack.child_pids()["resize"]
            os.kill(resize, signal.SIGKILL)

            async def orphans_gone() -> bool:
                return not (set(children) & set(transcoders(stack.data_dir)))

            # PR_SET_PDEATHSIG: no transcode goes on for a process that is gone.
            await wait_until(orphans_gone, 10, what="the killed resize's transcoder gone")

            async def all_ready() -> bool:
                states = await conn.fetch("SELECT state FROM renditions")
                return len(states) == 2 and all(r["state"] == "ready" for r in states)

            # The runner restarts resize; the stale claim (20 s) is taken again and finished.
            await wait_until(all_ready, 600, step=1, what="every rendition made")
            rows = {r["name"]: r for r in await conn.fetch("SELECT * FROM renditions")}
        finally:
            await conn.close()
        assert resize != stack.child_pids()["resize"], "a new resize process did it"
        for row in killed:
            assert rows[row["name"]]["attempts"] > row["attempts"], "claimed again"
        async with aiohttp.ClientSession() as http:
            for name, rendition in body["renditions"].items():
                async with http.get(f"{stack.url}{rendition['url']}") as response:
                    assert response.status == 200, name
                    data = await response.read()
                with av.open(io.BytesIO(data)) as played:  # the whole video, to its end
                    assert played.duration / av.time_base == pytest.approx(8, abs=0.2), name
                    frames = sum(1 for p in played.demux(video=0) if p.dts is not None)
                    assert frames == 8 * 30, name
    finally:
        stack.stop_and_remove()
