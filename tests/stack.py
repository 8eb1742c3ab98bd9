"""The whole stack started by the local runner, as a user starts it, on free ports."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests import leaks
from tests.stored import StoredFiles
from tests.support import REPO

READY_LINE = "Kitteh is running at "
START_TIMEOUT = 240  # the first start may apt-get install nginx


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class RunningStack:
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen | None = None
    url: str = ""
    output: list[str] = field(default_factory=list)
    # Run the runner inside this command: ["ip", "netns", "exec", name] (a node of the
    # multi-node test), or ``isolated_network()``'s (a namespace where only loopback exists).
    command_prefix: list[str] = field(default_factory=list)

    @property
    def storage(self) -> Path:
        """The volume (local mode), and the scratch directory's parent in every mode."""
        return self.data_dir / "images"

    @property
    def files(self) -> StoredFiles:
        """The stored files, in either storage mode."""
        return StoredFiles({**self.env, "KITTEH_STORAGE_DIR": str(self.storage)})

    @property
    def storage_mode(self) -> str:
        return self.env.get("KITTEH_STORAGE") or "local"

    def start(self) -> None:
        leaks.started(self)  # stopped at the test's teardown if the test does not
        # A session of its own: its process group is what tests.leaks signals if it is left
        # behind, and Ctrl-C reaches pytest only, which stops it through the teardown.
        self.process = subprocess.Popen(
            [*self.command_prefix, sys.executable, "-m", "deploy.runner"], cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        lines: queue.Queue[str | None] = queue.Queue()

        def pump() -> None:
            assert self.process and self.process.stdout
            for line in self.process.stdout:
                self.output.append(line)
                lines.put(line)
            lines.put(None)

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            if READY_LINE in line:
                self.url = line.split(READY_LINE, 1)[1].split()[0].rstrip("/")
                return
        self.stop()
        raise RuntimeError("the runner did not come up:\n" + "".join(self.output))

    def child_pids(self) -> dict[str, int]:
        return {p.stem: int(p.read_text()) for p in (self.data_dir / "run").glob("*.pid")}

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int | None:
        leaks.stopped(self)
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._pump.join(5)
        if self.process.stdout:
            self.process.stdout.close()
        return self.process.returncode


def isolated_network() -> list[str]:
    """A wrapper for ``RunningStack``: the stack in a new network namespace with loopback only,
    so whatever it is made to fetch (a fuzzer's random links for upload from a link) goes
    nowhere off this machine, not even a DNS query. ``unshare`` execs the command in place,
    so the runner keeps the pid; ``in_network_of`` runs a client in the same namespace."""
    return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def in_network_of(stack: RunningStack) -> list[str]:
    assert stack.process is not None
    return ["nsenter", f"--net=/proc/{stack.process.pid}/ns/net", "--"]


def stack_env(data_dir: Path, **extra: str) -> dict[str, str]:
    gateway, upload, resize, gallery, assets, status = free_ports(6)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KITTEH_") or k == leaks.RUN_VARIABLE}
    env.pop("DATABASE_URL", None)  # the runner's own embedded cluster, as for a user
    env.update({
        "KITTEH_DATA_DIR": str(data_dir),
        "KITTEH_PORT": str(gateway),
        "KITTEH_UPLOAD_PORT": str(upload),
        "KITTEH_RESIZE_PORT": str(resize),
        "KITTEH_GALLERY_PORT": str(gallery),
        "KITTEH_ASSETS_PORT": str(assets),
        "KITTEH_GATEWAY_STATUS_PORT": str(status),
        "KITTEH_RECONCILE_INTERVAL": "1",
        **extra,
    })
    return env
