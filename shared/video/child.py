"""The child process every FFmpeg call on an upload runs in: ``python -m shared.video.child``.

Two commands, one JSON answer on stdout each (``{"error": {"status", "message"}}`` for a
file refused):

- ``prepare SOURCE FORMAT REMUXED POSTER MAX_SIDE MAX_PIXELS MAX_SECONDS``: the upload's
  checks, its remux without metadata and its poster (``upload`` waits for this);
- ``render NAME SOURCE TARGET FORMAT``: a rendition (``mp4``, ``av1``; ``animation``: an
  animated image's MP4), for the resize service's background;
- ``poster SOURCE TARGET FORMAT``: the poster again, from a stored original, for a resize
  that finds it lost (``services.resize.posters``).

Before anything is parsed the child bounds itself: address space, CPU seconds, the size of
files it writes, and it dies with its parent (``PR_SET_PDEATHSIG``), so a killed service
leaves no transcode running. ``render`` also lowers its own priority: renditions take only
the CPU that uploads and pages leave.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import sys
from dataclasses import asdict
from pathlib import Path

MEMORY_BYTES = 4 * 1024 ** 3  # FFmpeg decoding 4K HEVC stays far below; a bomb hits this
PREPARE_CPU_SECONDS = 120
RENDER_CPU_SECONDS = 3600  # 300 s of 4K in software AV1 on one slow core, generously
MAX_WRITE_BYTES = 4 * 1024 ** 3
RENDER_NICE = 15
PR_SET_PDEATHSIG = 1


def _bound_self(cpu_seconds: int, parent: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_WRITE_BYTES, MAX_WRITE_BYTES))
    # The signal comes when the *thread* that started us ends: upload starts us from an
    # executor thread and resize from its event loop's, both alive as long as the process.
    # Not Linux: no prctl, and the parent's timeout still ends us.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the prctl took effect
        os._exit(1)
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only on stderr


def _prepare(source: str, format_name: str, remuxed: str, poster: str, max_side: str,
             max_pixels: str, max_seconds: str) -> dict:
    from shared.video.limits import VideoLimits, check_frame_size
    from shared.video.poster import make_poster
    from shared.video.remux import remux

    limits = VideoLimits(int(max_side), int(max_pixels), int(max_seconds))
    copied = remux(Path(source), Path(remuxed), format_name, limits)
    # The poster comes from the remuxed file: what is stored is what was decoded.
    shown = make_poster(Path(remuxed), format_name, Path(poster))
    check_frame_size(shown.width, shown.height, limits)
    return {"width": shown.width, "height": shown.height, "rotation": shown.rotation,
            "duration": copied.duration, "codec": copied.codec, "fps": copied.fps,
            "audio": copied.audio}


def _render(name: str, source: str, target: str, format_name: str) -> dict:
    os.nice(RENDER_NICE)
    from shared.video import transcode

    if name == "animation":
        made = transcode.animation_from_file(Path(source), format_name, Path(target))
    else:
        made = transcode.transcode_video(Path(source), Path(target),
                                         transcode.RENDITIONS[name], format_name=format_name)
    return asdict(made)


def _poster(source: str, target: str, format_name: str) -> dict:
    from shared.video.poster import make_poster

    made = make_poster(Path(source), format_name, Path(target))
    return {"width": made.width, "height": made.height}


def main(argv: list[str]) -> int:
    from shared.video.limits import Refused

    command, parent, *args = argv
    _bound_self(RENDER_CPU_SECONDS if command == "render" else PREPARE_CPU_SECONDS,
                int(parent))
    try:
        work = {"render": _render, "poster": _poster, "prepare": _prepare}[command]
        answer = work(*args)
    except Refused as refused:
        answer = {"error": {"status": refused.status, "message": refused.message}}
    except MemoryError:
        answer = {"error": {"status": 422, "message": "This file needs too much memory to "
                                                     "read."}}
    print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
