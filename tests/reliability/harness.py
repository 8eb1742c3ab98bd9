"""What the reliability tests share: a stack of their own in a temp dir, extra service
processes started beside it, unique real photos, uploads through the gateway, and waiting
for a state with a deadline."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from deploy.postgres import LocalPostgres
from deploy.processes import Child
from deploy.runner import Stack
from deploy.runner_config import RunnerConfig
from shared.encoding import extension_for
from shared.formats import BY_CONTENT_TYPE
from tests import leaks
from tests.stack import RunningStack, stack_env
from tests.support import file_form, open_dir, photo

PHOTOS = ("j03_seeding.jpg", "j04_dragonfly.jpg", "j07_wine.jpg", "j10_fallenleaf.jpg",
          "p01_chelsea.png", "p03_coffee.png", "adwaita_image_alpha.png")
KINDS = ("tiny", "large", "monstrous")


# -- stacks -----------------------------------------------------------------------------


def _ports_free(config: RunnerConfig) -> bool:
    for _, port in config.all_ports():
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def own_stack_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """stack_env, re-drawn until the replicas' ports (service port + 10·n) are free too."""
    for _ in range(50):
        env = stack_env(data_dir, KITTEH_RATE_LIMIT="100000", **extra)
        if _ports_free(RunnerConfig.from_env(env)):
            return env
    raise RuntimeError("no free set of ports")


def database_url_of(stack: RunningStack) -> str:
    """The database the runner's services use (its embedded cluster, or DATABASE_URL)."""
    return Stack(RunnerConfig.from_env(stack.env)).database_url


class OwnStack(RunningStack):
    """A RunningStack in its own temp dir, with the pieces a fault test needs."""

    @classmethod
    def start_new(cls, label: str, **extra: str) -> OwnStack:
        data_dir = open_dir(f"kitteh-{label}-") / "var"
        stack = cls(data_dir, own_stack_env(data_dir, **extra))
        stack.start()
        return stack

    @property
    def config(self) -> RunnerConfig:
        return RunnerConfig.from_env(self.env)

    @property
    def database_url(self) -> str:
        return database_url_of(self)

    def postgres(self) -> LocalPostgres:
        return LocalPostgres(self.data_dir / "postgres", self.data_dir / "logs" / "postgres.log")

    def service(self, service: str, index: int = 0) -> ServiceProcess:
        """A service process started by the test, with the environment the runner gives its
        own replica ``index`` (the runner was told to start fewer)."""
        config = self.config
        replica = config.replica(service, index)
        child = Child(f"test-{replica.name}", [sys.executable, "-m", f"services.{service}"],
                      self.data_dir / "logs" / f"test-{replica.name}.log",
                      self.data_dir / f"test-{replica.name}.pid",
                      Stack(config).service_env(replica))
        return ServiceProcess(child, replica.port)

    def sweep(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        """``python -m services.resize.sweep`` against this stack's database and volume."""
        base = Stack(self.config).child_env()
        return subprocess.run([sys.executable, "-m", "services.resize.sweep", *args],
                              env={**base, **env}, capture_output=True, text=True, timeout=60)

    def stop_and_remove(self) -> int | None:
        """Stop; remove the data dir unless KEEP_TEST_STACKS is set (to read the logs)."""
        status = self.stop()
        if os.environ.get("KEEP_TEST_STACKS"):
            print(f"kept {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)
        return status


@dataclass
class ServiceProcess:
    child: Child
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> ServiceProcess:
        leaks.started(self)  # stopped at the test's teardown if the test does not
        self.child.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.child.exited() is not None:
                raise RuntimeError(f"{self.child.name} exited:\n{self.child.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise RuntimeError(f"{self.child.name} did not become healthy:\n{self.child.log_tail()}")

    def signal(self, sig: int) -> None:
        assert self.child.process is not None
        self.child.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.child.process is not None
        return self.child.process.wait(timeout)

    def stop(self) -> None:
        leaks.stopped(self)
        self.child.stop(timeout=20)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait(10)


# -- images -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str
    content_type: str

    @property
    def storage_key(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:32]

    def variant_urls(self) -> list[str]:
        """Known before the upload answers: the key is the first 128 bits of the sha256."""
        key, ext = self.storage_key, "jpg" if self.content_type == "image/jpeg" else "png"
        return [f"/i/{key[:2]}/{key}/{kind}.{ext}" for kind in KINDS]

    def form(self) -> aiohttp.FormData:
        return file_form(self.data, self.filename, self.content_type)


@functools.cache
def _base_image(name: str) -> Image.Image:
    """The photo, decoded once; big JPEGs at half size (still 1500-2700 px) to keep the
    tests quick. Shrink-on-load, so this is cheap."""
    with Image.open(photo(name)) as img:
        if img.format == "JPEG":
            img.draft("RGB", (img.width // 2, img.height // 2))
        img.load()
        return img.copy()


def unique_photo(index: int) -> Upload:
    """A real photo made unique (identical bytes would be deduplicated to one image): a small
    corner block in a colour that encodes ``index``, and the index in a comment chunk, since
    JPEG quantisation could in principle swallow a small pixel change."""
    name = PHOTOS[index % len(PHOTOS)]
    img = _base_image(name).copy()
    stamp = (index * 37 % 256, index * 91 % 256, index // 256 % 256)
    img.paste(stamp + ((255,) if img.mode == "RGBA" else ()), (0, 0, 16, 16))
    out = io.BytesIO()
    if name.endswith(".jpg"):
        img.save(out, "JPEG", quality=88, comment=f"kitteh test {index}")
        return Upload(out.getvalue(), f"{index:03d}-{name}", "image/jpeg")
    info = PngInfo()
    info.add_text("Comment", f"kitteh test {index}")
    img.save(out, "PNG", compress_level=1, pnginfo=info)
    return Upload(out.getvalue(), f"{index:03d}-{name}", "image/png")


# -- talking to the stack ---------------------------------------------------------------


async def post_image(http: aiohttp.ClientSession, base_url: str,
                     upload: Upload) -> tuple[int, dict]:
    async with http.post(f"{base_url}/api/images", data=upload.form()) as response:
        body = await response.json(content_type=None)
        return response.status, body


async def get_image(http: aiohttp.ClientSession, url: str) -> tuple[int, str, bytes]:
    """Status, Cache-Control and body of an image URL; the body must decode as an image."""
    async with http.get(url) as response:
        data = await response.read()
        return response.status, response.headers.get("Cache-Control", ""), data


def image_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        img.load()  # the whole file decodes, not only its header
        return img.size


async def wait_until(check: Callable[[], Awaitable[bool]], within: float,
                     step: float = 0.2, what: str = "condition") -> float:
    """Poll ``check`` until it holds; returns the seconds it took."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"{what} did not hold within {within} s")
        await asyncio.sleep(step)


async def variant_rows(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch("""
        SELECT i.token, i.storage_key, i.content_type, i.frames, v.kind, v.format, v.state,
               v.renders, v.width, v.height, v.error
          FROM variants v JOIN images i ON i.id = v.image_id ORDER BY i.id, v.kind, v.format""")


def variant_file(storage: Path, row: asyncpg.Record) -> Path:
    ext = extension_for(BY_CONTENT_TYPE[row["content_type"]], row["format"], row["frames"] > 1)
    key = row["storage_key"]
    return storage / key[:2] / key / f"{row['kind']}.{ext}"


def files_on_volume(storage: Path) -> dict[str, set[str]]:
    """Image directories on the volume: storage key -> file names."""
    return {d.name: {f.name for f in d.iterdir()}
            for shard in storage.iterdir() if shard.is_dir() and len(shard.name) == 2
            for d in shard.iterdir() if d.is_dir()}


def measured(text: str) -> None:
    """A number for the report (shown with pytest -s or -rP)."""
    print(f"MEASURED: {text}", flush=True)


async def every_pair_finished(stack: RunningStack) -> bool:
    """Every (size, format) of every image made or dropped: the background (AVIF, WebP, the
    display widths) is done, so pages and JSON no longer change by themselves."""
    conn = await asyncpg.connect(database_url_of(stack))
    try:
        return not await conn.fetchval(
            "SELECT count(*) FROM variants WHERE state NOT IN ('ready', 'dropped')")
    finally:
        await conn.close()
