"""What the background work (display widths, AVIF and WebP made after the answer) costs the
next upload: upload answer times with the background busy, against the same uploads with it
idle, interleaved in one stack.

    python -m bench.background [DIR ...] [--uploads 24]

One client uploads the photos of tests/data/photos (or $KITTEH_PHOTOS), each made unique.
Uploads alternate between two cases: *idle* waits until the previous image's AVIF and WebP
files are all made (or 20 s) before sending, which is what an upload cost before the
background existed (the upload waits for the same three base variants as before); *busy*
sends at once, while the previous upload's background work runs. The ratio of the medians is
the slowdown the background causes; the issue's budget is 20 %.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp

from bench.common import median, percentile, photos, ratio, running_stack, say, table
from bench.e2e import CONTENT_TYPES, unique

PLAIN = {"Accept-Encoding": "identity"}


async def upload(http: aiohttp.ClientSession, base: str, path: Path, data: bytes,
                 n: int) -> tuple[float, str]:
    form = aiohttp.FormData()
    form.add_field("file", unique(data, path.suffix.lower(), f"kitteh-bg {n} {time.time_ns()}"),
                   filename=path.name, content_type=CONTENT_TYPES[path.suffix.lower()])
    sent = time.perf_counter()
    async with http.post(f"{base}/api/images", data=form, headers=PLAIN) as response:
        body = await response.json()
        if response.status != 201:
            raise SystemExit(f"bench: upload answered {response.status}: {body}")
    return time.perf_counter() - sent, body["token"]


async def background_done(http: aiohttp.ClientSession, base: str, token: str,
                          seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        async with http.get(f"{base}/api/images/{token}", headers=PLAIN) as response:
            image = await response.json()
        if all(len(v["formats"]) >= 3 for v in image["variants"].values()):
            return
        await asyncio.sleep(0.1)


async def run(base: str, sources: list[tuple[Path, bytes]], count: int) -> dict[str, list]:
    times: dict[str, list[float]] = {"idle": [], "busy": []}
    async with aiohttp.ClientSession() as http:
        token = None
        for n in range(count):
            case = "idle" if n % 2 == 0 else "busy"
            if case == "idle" and token is not None:
                await background_done(http, base, token)
            path, data = sources[n % len(sources)]
            latency, token = await upload(http, base, path, data, n)
            times[case].append(latency)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.background", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", help="more directories of photos")
    parser.add_argument("--uploads", type=int, default=24, help="uploads in all (24)")
    args = parser.parse_args(argv)
    sources = [(p, p.read_bytes()) for p in photos(args.dirs)
               if p.suffix.lower() in CONTENT_TYPES]
    # Photos in pairs: each idle upload and the busy one after it send the same photo.
    sources = [s for s in sources for _ in range(2)]
    with running_stack(KITTEH_RATE_LIMIT="100000") as stack:
        times = asyncio.run(run(stack.url, sources, args.uploads))
    idle = median(times["idle"])
    rows = [[f"background {case}", len(values), median(values), percentile(values, 95),
             ratio(median(values), idle)] for case, values in times.items()]
    table(f"Upload answer with the background idle or busy ({args.uploads} uploads, one "
          "client, interleaved)", ["case", "uploads", "p50 s", "p95 s", "p50 vs idle"], rows)
    slowdown = median(times["busy"]) / idle - 1
    print(f"\ntarget: the answer at most 20 % slower: {slowdown * 100:+.0f}% "
          f"({'holds' if slowdown <= 0.20 else 'MISSES'})")
    say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
