"""The parent's side of ``shared.video.child``: run it, bound its time, read its answer.

A refusal the child reports keeps its status (415 not a video Kitteh reads or damaged, 422
over a limit) and its message. A child that crashes, is killed by its own limits or runs out
of time is a 415 for the client: the file could not be read, and nothing else happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shared.errors import ImageOverLimits, KittehError, UnsupportedImage
from shared.video.limits import DAMAGED

PREPARE_TIMEOUT_SECONDS = 120.0  # a remux is I/O (200 MB in a few seconds) plus one frame
RENDER_TIMEOUT_SECONDS = 3600.0
MODULE = "shared.video.child"


@dataclass(frozen=True)
class VideoInfo:
    width: int  # upright, as the poster shows it
    height: int
    duration: float
    rotation: int
    codec: str
    fps: float
    audio: bool


class RenderError(Exception):
    """A rendition could not be made (the child said why, crashed or ran out of time)."""


def prepare(source: Path, format_name: str, remuxed: Path, poster: Path, max_side: int,
            max_pixels: int, max_seconds: int) -> VideoInfo:
    """Blocking: check, remux and make the poster. Raises the client's 415 or 422."""
    command = [sys.executable, "-m", MODULE, "prepare", str(os.getpid()), str(source),
               format_name, str(remuxed), str(poster), str(max_side), str(max_pixels),
               str(max_seconds)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=PREPARE_TIMEOUT_SECONDS,
                              check=False)
    except subprocess.TimeoutExpired:  # run() has killed it
        raise UnsupportedImage("This video could not be read in time.") from None
    answer = _answer(done.returncode, done.stdout)
    if answer is None:
        raise UnsupportedImage(DAMAGED)
    if "error" in answer:
        raise _refusal(answer["error"])
    return VideoInfo(**answer)


def _answer(returncode: int, stdout: bytes) -> dict | None:
    if returncode != 0:
        return None
    try:
        answer = json.loads(stdout)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _refusal(error: dict) -> KittehError:
    if error.get("status") == 422:
        return ImageOverLimits(str(error.get("message")))
    return UnsupportedImage(str(error.get("message") or DAMAGED))


async def render(name: str, source: BinaryIO, target: Path, format_name: str) -> dict:
    """A rendition, made by a child at low priority; returns its width, height and bytes.
    ``source``: the original as the store opened it (the file itself, or an S3 object's
    scratch copy), handed to the child as a descriptor. ``name``: ``mp4``, ``av1`` or
    ``animation``. Cancelled (shutdown), the child is killed and waited for."""
    return await _run("render", name, source, target, format_name)


async def poster(source: BinaryIO, target: Path, format_name: str) -> dict:
    """A stored video's poster made again (its width and height); as ``render``."""
    return await _run("poster", None, source, target, format_name)


async def _run(command: str, name: str | None, source: BinaryIO, target: Path,
               format_name: str) -> dict:
    fd = source.fileno()
    args = [name] if name else []
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", MODULE, command, str(os.getpid()), *args, f"/dev/fd/{fd}",
        str(target), format_name, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, pass_fds=(fd,))
    try:
        async with asyncio.timeout(RENDER_TIMEOUT_SECONDS):
            stdout, stderr = await process.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    answer = _answer(process.returncode or 0, stdout)
    if answer is None:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise RenderError(f"the transcoder stopped (exit {process.returncode}): {tail[0]}")
    if "error" in answer:
        raise RenderError(answer["error"].get("message", "refused"))
    return answer
