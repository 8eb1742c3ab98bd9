"""What the benchmarks share: tables, programs from apt, CPU pinning, a running stack, wrk.

Benchmarks are not tests: they print numbers and ratios against a baseline measured in the
same run (so a noisy machine moves both), and they exit non-zero only when something *failed*
(an error, a 5xx, a wrong output), never because a number was slow.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The repository's test photos (tests/data/photos/README.md), or the folder KITTEH_PHOTOS names.
PHOTOS = Path(os.environ.get("KITTEH_PHOTOS") or REPO / "tests" / "data" / "photos")
# The photos the published numbers were measured on; the folder holds a few more small ones for
# the tests (greyscale, rotated, GPS-tagged, a screenshot) that would change the mix.
MEASURED_PHOTOS = ("j03_seeding.jpg", "j04_dragonfly.jpg", "j07_wine.jpg", "j10_fallenleaf.jpg",
                   "p01_chelsea.png", "p03_coffee.png", "adwaita_image_alpha.png")


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
    from shared.formats import FORMATS

    suffixes = {f".{e}" for f in FORMATS for e in f.extensions}
    measured = [PHOTOS / name for name in MEASURED_PHOTOS if (PHOTOS / name).is_file()]
    found = measured or [p for p in PHOTOS.rglob("*") if p.suffix.lower() in suffixes]
    return sorted([*found, *(p for d in dirs[1:] for p in d.rglob("*")
                             if p.suffix.lower() in suffixes)])


# -- the stack ---------------------------------------------------------------------------

@contextlib.contextmanager
def running_stack(**env: str) -> Iterator[object]:
    """The whole Kitteh stack (deploy.runner, as a user runs it) on free ports in a temp
    data dir, with ``env`` on top; stopped and removed afterwards."""
    sys.path.insert(0, str(REPO))
    from tests.stack import RunningStack, stack_env

    with tempfile.TemporaryDirectory(prefix="kitteh-bench-") as tmp:
        data_dir = Path(tmp)
        data_dir.chmod(0o755)  # as root, PostgreSQL runs as the postgres user and must get in
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
            if "Traceback" in line or '"level": "ERROR"' in line or " ERROR " in line \
                    or "[error]" in line \
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


def wrk(url: str, seconds: int = 5, connections: int = 16, threads: int = 2,
        headers: Sequence[str] = ()) -> dict[str, float]:
    """req/s, p50 and p99 (ms) and error counts of ``wrk`` against one URL on loopback
    (http or https: wrk does not check certificates); ``headers``: "Name: value" lines."""
    if not re.match(r"https?://(127\.0\.0\.1|localhost):", url):
        raise ValueError(f"benchmarks only load loopback addresses, not {url}")
    program = require("wrk")["wrk"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_LUA)
    try:
        out = subprocess.run([str(program), f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                              *(arg for h in headers for arg in ("-H", h)),
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


# -- processes and HTTP ------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {seconds} s")


@contextlib.contextmanager
def background(args: Sequence[str], port: int, log: Path) -> Iterator[subprocess.Popen]:
    """A baseline server as a child process, up once ``port`` accepts; stopped afterwards."""
    with log.open("w") as out:
        child = subprocess.Popen(list(args), cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        yield child
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextlib.contextmanager
def bare_nginx(root: Path) -> Iterator[tuple[str, int]]:
    """nginx serving ``root`` as static files with nothing else configured: no access log,
    no headers, the same worker count as the gateway (one per core). Yields its URL and the
    master's pid."""
    program = require("nginx")["nginx"]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kitteh-bench-nginx-") as tmp:
        work = Path(tmp)
        conf = work / "nginx.conf"
        conf.write_text(f"""worker_processes auto;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    types {{ image/jpeg jpg; image/png png; text/html html; }}
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
        with background([str(program), "-c", str(conf), "-p", str(work), "-g", "daemon off;"],
                        port, work / "stdout.log") as master:
            yield f"http://127.0.0.1:{port}", master.pid


def request(method: str, url: str, body: bytes | Iterator[bytes] | None = None,
         headers: dict[str, str] | None = None, timeout: float = 120) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""),
                     body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def multipart(data: bytes, filename: str, content_type: str = "image/jpeg") -> tuple[bytes, str]:
    boundary = f"kitteh-bench-{os.urandom(8).hex()}"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), \
        f"multipart/form-data; boundary={boundary}"


def upload(base: str, data: bytes, filename: str, content_type: str = "image/jpeg") -> dict:
    body, ctype = multipart(data, filename, content_type)
    status, answer = request("POST", f"{base}/api/images", body, {"Content-Type": ctype})
    if status not in (200, 201):
        raise RuntimeError(f"upload of {filename} answered {status}: {answer[:300]!r}")
    return json.loads(answer)


def variants_ready(base: str, token: str) -> bool:
    status, answer = request("GET", f"{base}/api/images/{token}")
    if status != 200:
        raise RuntimeError(f"GET /api/images/{token} answered {status}")
    return all(v.get("ready") for v in json.loads(answer)["variants"].values())


def wait_variants_ready(base: str, token: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not variants_ready(base, token):
        if time.monotonic() > deadline:
            raise RuntimeError(f"variants of {token} not ready after {seconds} s")
        time.sleep(0.05)


def service_env(stack, service: str) -> dict[str, str]:
    """The environment a running service was started with (its DATABASE_URL, its port)."""
    pid = stack.child_pids()[service]
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


# -- CPU per request -----------------------------------------------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # the name may hold spaces and parentheses
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def process_tree(roots: Sequence[int]) -> set[int]:
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append(int(entry.name))
    found, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(parents.get(pid, []))
    return found


class CpuMeter:
    """CPU seconds the server processes (``roots`` and all their descendants: nginx workers,
    PostgreSQL backends) spend over a span. Unlike req/s, CPU per request hardly moves when
    other work shares the machine, so it shows what a layer costs on a noisy box."""

    def __init__(self, roots: Sequence[int]):
        self.roots = list(roots)

    def _snapshot(self) -> dict[int, float]:
        return {pid: stat[1] for pid in process_tree(self.roots)
                if (stat := _stat(pid)) is not None}

    def __enter__(self) -> CpuMeter:
        self._before = self._snapshot()
        return self

    def __exit__(self, *_exc) -> None:
        after = self._snapshot()
        self.seconds = sum(cpu - self._before.get(pid, 0.0) for pid, cpu in after.items())
