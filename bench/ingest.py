"""Ingest benchmark: one large upload through the gateway, against a bare streaming handler.

    python -m bench.ingest [--mb 100] [--repeat 3]

Makes a valid JPEG of about ``--mb`` MB (noise at quality 100, 4:4:4: about 4 bytes a pixel,
so 100 MB is ~24 MP, inside the default pixel and side limits), starts the stack with
KITTEH_MAX_UPLOAD_BYTES raised to fit it, and in rounds, alternating:

- POSTs it as multipart to /api/images through the gateway (each round with a unique JPEG
  comment, so it is a new image, not a duplicate), while watching the upload process's memory:
  its peak RSS is reset (``/proc/<pid>/clear_refs``) before and read (VmHWM) after;
- POSTs the same body to a bare aiohttp handler that streams it to a file in 64 KiB chunks;
- copies the file with ``cp`` on the same filesystem, for scale.

"Body" is the time until the client has handed the last byte to the socket (the server has
read all but what the loopback buffers hold); "answer" until the response, which for Kitteh
includes checking the image (a 1/8-scale decode), rewriting its metadata, the database, and
the three variants (the upload waits for resize). Exit status 1 on any non-2xx answer or an
error in the service logs.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

from bench.common import (
    background,
    free_port,
    median,
    multipart,
    ratio,
    running_stack,
    say,
    stack_log_errors,
    table,
    wait_variants_ready,
)

BYTES_PER_PIXEL = 4.1  # noise, JPEG q100 4:4:4
TARGET_RATIO = 0.50
TARGET_RSS_MB = 20.0
MB = 1_000_000


def make_jpeg(megabytes: float) -> bytes:
    pixels = megabytes * MB / BYTES_PER_PIXEL
    width = int(math.sqrt(pixels * 4 / 3))
    height = int(pixels / width)
    noise = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    noise.save(out, "JPEG", quality=100, subsampling=0)
    say(f"made a {width}×{height} JPEG of {out.tell() / MB:.1f} MB")
    return out.getvalue()


def unique(jpeg: bytes, tag: str) -> bytes:
    """The same image with a JPEG comment (COM segment) after SOI: new bytes, same pixels."""
    text = tag.encode()
    return jpeg[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + jpeg[2:]


def post(url: str, body: bytes, content_type: str) -> tuple[int, bytes, float, float]:
    """Status, answer, seconds until the body was sent, seconds until the answer."""
    host, port = url.removeprefix("http://").split("/", 1)[0].split(":")
    path = "/" + url.removeprefix("http://").split("/", 1)[1]
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    try:
        started = time.perf_counter()
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        sent = time.perf_counter() - started
        response = conn.getresponse()
        answer = response.read()
        return response.status, answer, sent, time.perf_counter() - started
    finally:
        conn.close()


class MemoryWatch:
    """Peak RSS of a process over a span: the kernel's own peak (reset at the start) and a
    10 ms sampler as a cross-check."""

    def __init__(self, pid: int):
        self.pid = pid

    def status(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def __enter__(self) -> MemoryWatch:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # resets VmHWM to VmRSS
        self.before = self.status("VmRSS")
        self.sampled = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.sampled = max(self.sampled, self.status("VmRSS"))

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.status("VmHWM"), self.sampled)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.before) / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=100, help="upload size in MB (100)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds (3)")
    args = parser.parse_args(argv)

    jpeg = make_jpeg(args.mb)
    limit = len(jpeg) + 16 * 2**20
    ok = True
    runs: dict[str, list[tuple[float, float]]] = {"kitteh": [], "bare": [], "cp": []}
    growth: list[float] = []
    with running_stack(KITTEH_MAX_UPLOAD_BYTES=str(limit)) as stack, \
            tempfile.TemporaryDirectory(prefix="kitteh-bench-ingest-",
                                        dir=stack.data_dir) as tmp:
        work = Path(tmp)
        source = work / "upload.jpg"
        source.write_bytes(jpeg)
        bare_port = free_port()
        upload_pid = int((stack.data_dir / "run" / "upload.pid").read_text())
        with background([sys.executable, "-m", "bench.baselines", "upload", str(bare_port),
                         str(work)], bare_port, work / "bare.log"):
            for round_ in range(args.repeat):
                say(f"round {round_ + 1} of {args.repeat}")
                body, ctype = multipart(unique(jpeg, f"kitteh-bench {time.time_ns()}"),
                                        "big.jpg")
                with MemoryWatch(upload_pid) as memory:
                    status, answer, sent, done = post(f"{stack.url}/api/images", body, ctype)
                if status != 201:
                    ok = False
                    say(f"kitteh answered {status}: {answer[:300]!r}")
                else:
                    wait_variants_ready(stack.url, json.loads(answer)["token"])
                runs["kitteh"].append((sent, done))
                growth.append(memory.growth_mb)

                status, answer, sent, done = post(f"http://127.0.0.1:{bare_port}/", body, ctype)
                if status != 200 or json.loads(answer)["bytes"] != len(body):
                    ok = False
                    say(f"the bare handler answered {status}: {answer[:300]!r}")
                runs["bare"].append((sent, done))

                copy = work / "copy.jpg"
                started = time.perf_counter()
                subprocess.run(["cp", str(source), str(copy)], check=True)
                elapsed = time.perf_counter() - started
                copy.unlink()
                runs["cp"].append((elapsed, elapsed))
        log_errors = stack_log_errors(stack)
        if log_errors:
            ok = False
            say("errors in the service logs:\n" + "\n".join(log_errors[:20]))

    size = len(body) / MB
    rate = {name: (size / median([s for s, _ in r]), size / median([d for _, d in r]))
            for name, r in runs.items()}
    rows = [
        ["Kitteh: gateway → upload (+ checks, variants)", size,
         median([s for s, _ in runs["kitteh"]]), rate["kitteh"][0],
         median([d for _, d in runs["kitteh"]]), rate["kitteh"][1],
         ratio(rate["kitteh"][0], rate["bare"][0]), ratio(rate["kitteh"][1], rate["bare"][1]),
         f"{max(growth):.1f}"],
        ["bare aiohttp handler, 64 KiB chunks to disk", size,
         median([s for s, _ in runs["bare"]]), rate["bare"][0],
         median([d for _, d in runs["bare"]]), rate["bare"][1], "1.00×", "1.00×", "-"],
        ["cp of the file (same filesystem)", len(jpeg) / MB, median([s for s, _ in runs["cp"]]),
         rate["cp"][0], "-", "-", "-", "-", "-"],
    ]
    table(f"Ingest of a {size:.0f} MB upload (median of {args.repeat} rounds)",
          ["path", "MB", "body s", "body MB/s", "answer s", "answer MB/s",
           "body vs bare", "answer vs bare", "upload RSS growth MB (max)"], rows)
    body_ratio = rate["kitteh"][0] / rate["bare"][0]
    print(f"\ntarget: ingest >= {TARGET_RATIO:.0%} of the bare streaming handler: body "
          f"{body_ratio:.0%} ({'holds' if body_ratio >= TARGET_RATIO else 'MISSES'}), "
          f"to the answer {rate['kitteh'][1] / rate['bare'][1]:.0%}")
    print(f"target: upload RSS growth < {TARGET_RSS_MB:.0f} MB for {size:.0f} MB: "
          f"{max(growth):.1f} MB ({'holds' if max(growth) < TARGET_RSS_MB else 'MISSES'})")
    print(f"\nwhere the answer time goes (measured here, one core, same file): "
          f"{explain(jpeg)}")
    print(f"errors: {'none' if ok else 'SOME (see above)'}")
    return 0 if ok else 1


def explain(jpeg: bytes) -> str:
    """The big pieces of Kitteh's work after the body is in: hashing, the decode check at
    1/8 scale, and the resize engine (each also reads the file once from the page cache)."""
    from services.resize.engine import PillowEngine
    from shared.formats import BY_PILLOW_NAME
    from shared.variants import variant_specs

    with tempfile.NamedTemporaryFile(suffix=".jpg") as tmp:
        tmp.write(jpeg)
        tmp.flush()
        started = time.perf_counter()
        hashlib.sha256(jpeg).digest()
        hashed = time.perf_counter() - started
        started = time.perf_counter()
        with Image.open(tmp.name) as img:
            img.draft(img.mode, (img.width // 8, img.height // 8))
            img.load()
            size = img.size
        checked = time.perf_counter() - started
        started = time.perf_counter()
        with Image.open(tmp.name) as img:
            specs = variant_specs(*img.size)
        PillowEngine().render(Path(tmp.name), BY_PILLOW_NAME["JPEG"], specs)
        rendered = time.perf_counter() - started
    return (f"sha256 {hashed:.2f} s, decode check at 1/8 ({size[0]}×{size[1]}) {checked:.2f} s, "
            f"three variants {rendered:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
