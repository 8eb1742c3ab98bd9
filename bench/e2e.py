"""End-to-end benchmark: many uploads of real photos at once, until every variant is ready.

    python -m bench.e2e [DIR ...] [--uploads 100] [--concurrency 8]

Starts the stack (upload rate limit raised: the default 120 a minute would answer 429 here),
then ``--concurrency`` clients POST ``--uploads`` photos from tests/data/photos (and any
directory given) to /api/images through the gateway, cycling through them. Identical bytes
would be deduplicated, so each upload gets a unique comment (a JPEG COM segment or a PNG tEXt
chunk: new bytes, same pixels). A poller asks GET /api/images/{token} until every variant of
every image says ``"ready": true``.

Baseline, same run: the image work alone, with no HTTP, database or files in between:
``inspect_header`` + ``check_decodes`` + ``PillowEngine.render`` of the same photos on as many
threads as the resize service has (one per core), timed before and after the stack runs (the
faster counts). The ratio shows what the services add on top of the pixels. Exit status 1 on
any answer other than 201, or an error in the service logs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

from bench.common import (
    median,
    percentile,
    photos,
    ratio,
    running_stack,
    say,
    stack_log_errors,
    table,
)

CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
POLL_SECONDS = 0.05


def unique(data: bytes, suffix: str, tag: str) -> bytes:
    """The same image with a comment added: a new upload, not a duplicate."""
    text = tag.encode()
    if suffix in (".jpg", ".jpeg"):
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + data[2:]
    # PNG: a tEXt chunk right after IHDR (8-byte signature + 25-byte IHDR chunk)
    chunk = b"tEXt" + b"Comment\0" + text
    return (data[:33] + struct.pack(">I", len(chunk) - 4) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + data[33:])


async def run_uploads(base: str, sources: list[tuple[Path, bytes]], count: int,
                      concurrency: int) -> tuple[list[dict], float, float]:
    """Per upload: status, latency, and seconds from the start until its variants were ready;
    also the time until the last answer and until the last variant."""
    results: list[dict] = []
    pending: dict[str, dict] = {}
    started = time.perf_counter()
    jobs: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        jobs.put_nowait(n)
    answered = asyncio.Event()

    async def client(session: aiohttp.ClientSession) -> None:
        while not jobs.empty():
            n = jobs.get_nowait()
            path, data = sources[n % len(sources)]
            form = aiohttp.FormData()
            form.add_field("file", unique(data, path.suffix.lower(), f"kitteh-bench {n} "
                                          f"{time.time_ns()}"),
                           filename=path.name, content_type=CONTENT_TYPES[path.suffix.lower()])
            sent = time.perf_counter()
            async with session.post(f"{base}/api/images", data=form) as response:
                body = await response.json(content_type=None)
                result = {"status": response.status, "latency": time.perf_counter() - sent,
                          "answered": time.perf_counter() - started, "ready": None,
                          "sent": sent - started, "photo": path.name}
            results.append(result)
            if response.status == 201:
                pending[body["token"]] = result
            else:
                say(f"upload {n} ({path.name}) answered {response.status}: {body}")

    async def poller(session: aiohttp.ClientSession) -> None:
        while pending or not answered.is_set():
            for token, result in list(pending.items()):
                async with session.get(f"{base}/api/images/{token}") as response:
                    image = await response.json()
                if all(v["ready"] for v in image["variants"].values()):
                    result["ready"] = time.perf_counter() - started
                    del pending[token]
            await asyncio.sleep(POLL_SECONDS)

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session, \
            aiohttp.ClientSession(timeout=timeout) as polling:
        poll = asyncio.create_task(poller(polling))
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        last_answer = time.perf_counter() - started
        answered.set()
        await asyncio.wait_for(poll, 120)
    last_ready = max((r["ready"] for r in results if r["ready"] is not None), default=0.0)
    return results, last_answer, last_ready


def image_work_alone(sources: list[tuple[Path, bytes]], count: int) -> float:
    """Seconds for ``count`` photos' image work (check + three variants), one thread a core."""
    from services.resize.engine import PillowEngine
    from shared.config import Env, Limits
    from shared.imaging import check_decodes, inspect_header
    from shared.variants import variant_specs

    limits = Limits.from_env(Env({}))
    engine = PillowEngine()

    def one(path: Path) -> None:
        info = inspect_header(path, limits)
        check_decodes(path, info, limits)
        engine.render(path, info.format, variant_specs(info.width, info.height))

    started = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(one, [sources[n % len(sources)][0] for n in range(count)]))
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", help="more directories of photos")
    parser.add_argument("--uploads", type=int, default=100, help="uploads in all (100)")
    parser.add_argument("--concurrency", type=int, default=8, help="clients at once (8)")
    args = parser.parse_args(argv)

    sources = [(p, p.read_bytes()) for p in photos(args.dirs)
               if p.suffix.lower() in CONTENT_TYPES]
    megapixels = 0.0
    say(f"{len(sources)} photos, {args.uploads} uploads at concurrency {args.concurrency}")
    ok = True
    # The baseline runs before and after the stack; the faster counts (the machine is shared,
    # and the image work is what it is: anything slower is someone else's load).
    alone = image_work_alone(sources, args.uploads)
    with running_stack(KITTEH_RATE_LIMIT="100000") as stack:
        results, last_answer, last_ready = asyncio.run(
            run_uploads(stack.url, sources, args.uploads, args.concurrency))
        log_errors = stack_log_errors(stack)
        if log_errors:
            ok = False
            say("errors in the service logs:\n" + "\n".join(log_errors[:20]))
    alone = min(alone, image_work_alone(sources, args.uploads))

    from PIL import Image
    for path, _ in sources:
        with Image.open(path) as img:
            megapixels += img.width * img.height / 1e6
    created = [r for r in results if r["status"] == 201]
    ok = ok and len(created) == args.uploads
    latencies = [r["latency"] for r in created]
    ready_after = [r["ready"] - r["sent"] for r in created if r["ready"] is not None]
    not_ready = sum(1 for r in created if r["ready"] is None)
    ok = ok and not_ready == 0
    rate = len(created) / last_answer
    alone_rate = args.uploads / alone
    rows = [
        [f"Kitteh through the gateway, {args.concurrency} clients", len(created),
         rate, ratio(rate, alone_rate), median(latencies), percentile(latencies, 95),
         median(ready_after), percentile(ready_after, 95), last_ready],
        [f"image work alone, {os.cpu_count()} threads (baseline)", args.uploads, alone_rate,
         "1.00×", "-", "-", "-", "-", alone],
    ]
    table(f"End to end: {args.uploads} uploads of {len(sources)} real photos "
          f"(avg {megapixels / len(sources):.1f} MP), concurrency {args.concurrency}",
          ["run", "uploads", "uploads/s", "vs image work alone", "p50 upload s",
           "p95 upload s", "p50 until ready s", "p95 until ready s", "all ready after s"],
          rows)
    statuses = sorted({r["status"] for r in results})
    print(f"\nanswers: {statuses}; uploads without all variants ready: {not_ready}")
    print(f"errors: {'none' if ok else 'SOME (see above)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
