"""A private container engine for the compose test: Debian's podman behind a Docker API socket.

Users run Docker Engine; this kind of machine (Debian 12, root, no Docker daemon, no registry
but Debian's and PyPI) has podman 4.3, which serves the Docker API (version 1.41) with
`podman system service`. Everything the engine writes (its configuration, images, containers,
volumes, networks and socket) lives in one directory of the test run: the host's
/etc/containers and /var/lib/containers are neither read for storage nor changed, and removing
that directory removes it all.

What this machine needs and users never see, all of it here:

- containers.conf: runc (crun refuses this machine's hybrid cgroups), cgroupfs and a file for
  events (no systemd, no journald), ulimits high enough for PostgreSQL and nginx;
- healthchecks: podman 4.3 schedules them with systemd timers, which do not run here, so
  ``Chores`` runs ``podman healthcheck run`` as dockerd's own scheduler would;
- exits: conmon's exit command (``podman container cleanup``, which marks a container exited,
  applies its restart policy and removes a ``--rm`` one) was once seen not to run for a
  container that exited during `up`, leaving it "stopped": compose then waits forever for
  `migrate` to complete. ``Chores`` runs that cleanup for a container left so for a while.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from deploy.system import apt_install

# What the test installs with apt-get when missing: the engine, the OCI runtime the
# configuration names, its network stack (bridges, NAT, DNS between containers), and
# mmdebstrap for the base image. Running as root needs no uidmap, slirp4netns or fuse.
PACKAGES = ("podman", "runc", "netavark", "aardvark-dns", "iptables", "mmdebstrap")

START_TIMEOUT = 60
STOP_TIMEOUT = 30

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
tmp_dir = "{root}/tmp"
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{root}/events.log"

[network]
network_backend = "netavark"
network_config_dir = "{root}/networks"
"""

STORAGE_CONF = """\
[storage]
driver = "overlay"
graphroot = "{root}/storage"
runroot = "{root}/run"
"""

# Short names (debian:trixie-slim, as the Dockerfiles write it) mean Docker Hub, as in Docker.
REGISTRIES_CONF = """\
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"
"""


def installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                            capture_output=True, text=True)
    return result.stdout.endswith("installed")


def install_packages() -> None:
    missing = [package for package in PACKAGES if not installed(package)]
    if missing:
        apt_install(missing)


class Podman:
    """``podman system service`` on a socket in ``root``, with its own storage."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "podman.sock"
        self.log = root / "service.log"
        self.process: subprocess.Popen | None = None
        self.env = {**os.environ,
                    "CONTAINERS_CONF": str(root / "containers.conf"),
                    "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
                    "CONTAINERS_REGISTRIES_CONF": str(root / "registries.conf")}
        # podman reads credentials from DOCKER_CONFIG when it is set: not the CLI's here.
        self.env.pop("DOCKER_CONFIG", None)
        self.chores = Chores(self)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        if os.geteuid() != 0:
            # Rootless podman needs subordinate ids, slirp4netns and fuse-overlayfs set up
            # for the user, which a test should not do to someone's account.
            raise RuntimeError("the compose test runs podman as root (as CI does)")
        install_packages()
        self.root.mkdir(parents=True, exist_ok=True)
        for name, text in (("containers.conf", CONTAINERS_CONF), ("storage.conf", STORAGE_CONF),
                           ("registries.conf", REGISTRIES_CONF)):
            (self.root / name).write_text(text.format(root=self.root))
        with self.log.open("wb") as log:
            # A session of its own: Ctrl-C reaches pytest, which stops it in the teardown.
            self.process = subprocess.Popen(
                ["podman", "system", "service", "--time=0", self.docker_host],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not start:\n{self.log_tail()}")
            time.sleep(0.2)
        self.chores.start()

    def answers(self) -> bool:
        """The Docker API's ping answers on the socket."""
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(self.socket))
            client.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return client.recv(64).split(b" ")[1:2] == [b"200"]
        return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The service's last lines, less its complaints about systemd (which Chores stands
        in for): one per container start."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        useful = [line for line in text.splitlines() if "systemd" not in line]
        return "\n".join(useful[-lines:])

    def podman(self, *args: str, check: bool = True, timeout: float = 120,
               **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", *args], env=self.env, check=check, timeout=timeout,
                              capture_output=True, text=True, **kwargs)

    def inspect(self, container: str) -> dict:
        return json.loads(self.podman("inspect", "--type", "container", container).stdout)[0]

    def stop(self) -> None:
        """Removes every container, volume, network and image, then stops the service and
        removes its directory. Safe to call more than once, and after a failed start."""
        self.chores.stop()
        if self.root.exists():
            for args in (("rm", "--all", "--force", "--time", "10"),
                         ("volume", "rm", "--all", "--force"),
                         ("network", "prune", "--force"),
                         ("rmi", "--all", "--force")):
                self.podman(*args, check=False, timeout=180)
        if self.alive():
            assert self.process is not None
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        kill_leftovers(self.root)
        if self.root.exists():
            # Storage the service left mounted (overlay layers), then the files.
            self.podman("system", "reset", "--force", check=False, timeout=180)
            for mount in reversed(mounts_below(self.root)):
                subprocess.run(["umount", "--lazy", mount], check=False, capture_output=True)
            shutil.rmtree(self.root, ignore_errors=True)


def kill_leftovers(root: Path) -> None:
    """SIGKILL to what still names the engine's directory once the service is gone: conmon
    of a healthcheck's exec session can outlive the container it ran in."""
    mark = str(root).encode()
    left = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if mark in (entry / "cmdline").read_bytes():
                    os.kill(int(entry.name), signal.SIGKILL)
                    left.append(entry)
    deadline = time.monotonic() + 10
    while any(entry.exists() for entry in left) and time.monotonic() < deadline:
        time.sleep(0.1)


def mounts_below(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    return [point for point in points if point.startswith(prefix)]


class Chores(threading.Thread):
    """What dockerd does by itself and podman 4.3 does not here, once a second: runs the
    healthchecks (every second for a container not yet healthy, as Docker's start_interval
    does, every PERIOD seconds once it is), and cleans up containers whose process exited but
    which nobody marked exited."""

    PERIOD = 10.0
    # Long after conmon's own cleanup should have run: running it first would skip the
    # removal of a `--rm` container (`compose run --rm` then waits for that forever).
    CLEANUP_AFTER = 20.0

    def __init__(self, engine: Podman) -> None:
        super().__init__(name="kitteh-engine-chores", daemon=True)
        self.engine = engine
        self.stopping = threading.Event()
        self.last: dict[str, float] = {}
        self.stopped_since: dict[str, float] = {}

    def run(self) -> None:
        while not self.stopping.wait(1.0):
            with contextlib.suppress(subprocess.SubprocessError, OSError, ValueError):
                self.once()

    def once(self) -> None:
        ids = self.engine.podman("ps", "--all", "--quiet", "--no-trunc", timeout=30).stdout.split()
        if not ids:
            return
        listing = self.engine.podman("inspect", "--type", "container", *ids, check=False,
                                     timeout=30).stdout
        for container in json.loads(listing or "[]"):
            if self.stopping.is_set():
                return
            state = container.get("State", {})
            if state.get("Status") == "stopped":  # exited, not cleaned up (yet)
                self.clean_up_if_forgotten(container)
                continue
            if state.get("Status") != "running":
                continue
            # "Healthcheck" in podman's own inspect of 4.x, "Health" in Docker's and later.
            health = (state.get("Health") or state.get("Healthcheck") or {}).get("Status", "")
            if not health:
                continue  # no healthcheck defined
            now = time.monotonic()
            if health != "healthy" or now - self.last.get(container["Id"], 0) >= self.PERIOD:
                self.last[container["Id"]] = now
                self.engine.podman("healthcheck", "run", container["Id"], check=False,
                                   timeout=30)

    def clean_up_if_forgotten(self, container: dict) -> None:
        since = self.stopped_since.setdefault(container["Id"], time.monotonic())
        if time.monotonic() - since < self.CLEANUP_AFTER:
            return
        remove = ["--rm"] if container.get("HostConfig", {}).get("AutoRemove") else []
        self.engine.podman("container", "cleanup", *remove, container["Id"], check=False,
                           timeout=60)

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(60)
