"""What the benchmarks share: tables, programs from apt, CPU pinning, a running stack, wrk.

Benchmarks are not tests: they print numbers and ratios against a baseline measured in the
same run (so a noisy machine moves both), and they exit non-zero only when something *failed*
(an error, a 5xx, a wrong output), never because a number was slow.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHOTOS = Path(os.environ.get("KITTEH_PHOTOS", REPO.parent / "shared" / "photos"))


# -- output -----------------------------------------------------------------------------

def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (readable in a terminal, pasteable into docs), numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(r[i]) for r in cells[1:]) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(v.rjust(w) if num else v.ljust(w)
                                 for v, w, num in zip(row, widths, numeric, strict=True)) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2))
                          for w, num in zip(widths, numeric, strict=True)) + "|"
    text = "\n".join([f"\n### {title}\n", line(cells[0]), rule, *(line(r) for r in cells[1:])])
    print(text, flush=True)
    return text


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _is_number(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,]*\.?\d+(e[-+]?\d+)?[×x%]?", text)) or text in ("", "-")


def say(*parts: object) -> None:
    print("bench:", *parts, file=sys.stderr, flush=True)


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}×" if baseline else "-"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (what load tools report)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# -- the machine ------------------------------------------------------------------------

def require(*programs: str) -> dict[str, Path]:
    """Paths of system programs (wrk, convert, nginx), apt-get installing them when missing."""
    sys.path.insert(0, str(REPO))
    from deploy.system import require as system_require

    return system_require(*programs)


def pin_one_core() -> int:
    """Run this process, and every child it starts, on one CPU: single-core figures that
    do not depend on what else the machine is doing on the other core."""
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def photos(extra_dirs: Sequence[str] = ()) -> list[Path]:
    dirs = [PHOTOS, *map(Path, extra_dirs)]
    missing = [d for d in dirs if not d.is_dir()]
    if missing:
        raise SystemExit(f"bench: photo directory {missing[0]} is missing (set KITTEH_PHOTOS "
                         "or pass directories)")
    suffixes = {".jpg", ".jpeg", ".png", ".webp", ".gif"}
    return sorted(p for d in dirs for p in d.rglob("*") if p.suffix.lower() in suffixes)


# -- the stack ---------------------------------------------------------------------------

@contextlib.contextmanager
def running_stack(**env: str) -> Iterator[object]:
    """The whole Kitteh stack (deploy.runner, as a user runs it) on free ports in a temp
    data dir, with ``env`` on top; stopped and removed afterwards."""
    sys.path.insert(0, str(REPO))
    from tests.stack import RunningStack, stack_env

    with tempfile.TemporaryDirectory(prefix="kitteh-bench-") as tmp:
        data_dir = Path(tmp)
        stack = RunningStack(data_dir, stack_env(data_dir, **env))
        say("starting the stack in", data_dir)
        started = time.monotonic()
        stack.start()
        say(f"stack up at {stack.url} in {time.monotonic() - started:.1f} s")
        try:
            yield stack
        finally:
            stack.stop()
            errors = _log_errors(data_dir / "logs")
            if errors:
                say("errors in the service logs:\n" + "\n".join(errors[:20]))


def _log_errors(logs: Path) -> list[str]:
    found = []
    for log in sorted(logs.glob("*.log")):
        if log.stem in ("postgres", "gateway-access", "assets-access"):
            continue
        for line in log.read_text(errors="replace").splitlines():
            if "Traceback" in line or " ERROR " in line or "[error]" in line \
                    or "[crit]" in line or "[alert]" in line:
                found.append(f"{log.name}: {line}")
    return found


def stack_log_errors(stack) -> list[str]:
    return _log_errors(stack.data_dir / "logs")


# -- wrk ---------------------------------------------------------------------------------

WRK_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("KITTEH %d %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def wrk(url: str, seconds: int = 5, connections: int = 16, threads: int = 2) -> dict[str, float]:
    """req/s, p50 and p99 (ms) and error counts of ``wrk`` against one URL on loopback."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"benchmarks only load loopback addresses, not {url}")
    program = require("wrk")["wrk"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_LUA)
    try:
        out = subprocess.run([str(program), f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                              "--latency", "-s", script.name, url],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"^KITTEH (.*)$", out, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    requests, duration_us, *errors, p50_us, p99_us = (int(v) for v in match.group(1).split())
    return {
        "rps": requests / (duration_us / 1e6),
        "p50_ms": p50_us / 1000,
        "p99_ms": p99_us / 1000,
        "requests": requests,
        "socket_errors": sum(errors[:3]) + errors[4],  # connect, read, write, timeout
        "bad_status": errors[3],  # responses that were not 2xx or 3xx
    }
