"""A throwaway or long-lived PostgreSQL cluster inside a data directory.

It listens on a Unix socket in its own directory only (no TCP port to clash or to expose).
PostgreSQL refuses to run as root, so as root every server command runs as the ``postgres``
user, which owns the cluster's files.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

from deploy.system import is_root, require

DATABASE = "kitteh"
# Where a root-run cluster goes when the data directory sits under a directory the postgres
# user may not enter (a clone in /root, say): persistent, and outside any home directory.
FALLBACK_ROOT = Path("/var/lib/kitteh/postgres")


def cluster_dir(data_dir: Path) -> Path:
    """The cluster's directory for a data directory: inside it when the postgres user can
    reach it, else (running as root) a directory of its own under FALLBACK_ROOT, named by a
    hash of the data directory so each data directory keeps its own cluster."""
    preferred = data_dir / "postgres"
    if not is_root() or searchable_by_others(data_dir):
        return preferred
    return FALLBACK_ROOT / hashlib.sha256(str(data_dir).encode()).hexdigest()[:16]


def log_file_for(data_dir: Path, cluster: Path) -> Path:
    """The server log sits with the other logs, unless the postgres user cannot reach them
    (a cluster under FALLBACK_ROOT)."""
    inside = cluster.is_relative_to(data_dir)
    return (data_dir / "logs" if inside else cluster) / "postgres.log"


def searchable_by_others(path: Path) -> bool:
    """Whether every existing directory from ``path`` up to / lets other users pass through
    (what the postgres user needs); directories not made yet are made with mode 0755."""
    for directory in (path, *path.parents):
        try:
            mode = directory.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & stat.S_IXOTH:
            return False
    return True


def socket_url(base: Path) -> str:
    """The URL of the cluster kept in ``base`` (known before it runs)."""
    return f"postgresql://postgres@/{DATABASE}?host={base / 'run'}"


class LocalPostgres:
    def __init__(self, base: Path, log_file: Path, listen: str = "",
                 trusted_network: str = "", command_prefix: tuple[str, ...] = ()):
        """``listen``, ``trusted_network`` and ``command_prefix`` are for tests that run the
        database as a host of its own (several Kitteh nodes in network namespaces): a TCP
        address to listen on besides the socket, the network whose clients are trusted,
        and e.g. ``("ip", "netns", "exec", name)`` before every server command."""
        self.listen = listen
        self.trusted_network = trusted_network
        self.command_prefix = command_prefix
        self.base = base
        self.data = base / "data"
        self.socket_dir = base / "run"
        self.log_file = log_file
        self.programs = require("postgres", "initdb", "pg_ctl")
        self.bin = self.programs["pg_ctl"].resolve().parent  # psql and friends live beside it

    @property
    def url(self) -> str:
        return socket_url(self.base)

    @property
    def tcp_url(self) -> str:
        return f"postgresql://postgres@{self.listen}:5432/{DATABASE}"

    def _as_owner(self, *command: str | os.PathLike) -> list[str]:
        args = [str(c) for c in command]
        owned = ["runuser", "-u", "postgres", "--", *args] if is_root() else args
        return [*self.command_prefix, *owned]

    def _run(self, *command: str | os.PathLike, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self._as_owner(*command), check=check, capture_output=True,
                              text=True)

    def ensure_cluster(self) -> None:
        for directory in (self.base, self.socket_dir, self.log_file.parent):
            directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        self.log_file.touch()
        if is_root():
            owner = pwd.getpwnam("postgres")
            for path in (self.base, self.socket_dir, self.log_file):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            self._check_reachable()
        if not (self.data / "PG_VERSION").exists():
            if self.data.exists():
                shutil.rmtree(self.data)  # a half-made cluster from an interrupted first run
            self._run(self.programs["initdb"], "-D", self.data, "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--no-instructions")
            if self.trusted_network:
                with open(self.data / "pg_hba.conf", "a") as hba:
                    hba.write(f"host all all {self.trusted_network} trust\n")

    def _check_reachable(self) -> None:
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(self.base)],
                               capture_output=True)
        if probe.returncode != 0:
            raise RuntimeError(
                f"the postgres user cannot write {self.base}: a parent directory is not "
                "searchable by others; choose a KITTEH_DATA_DIR under a world-searchable path")

    def start(self) -> None:
        if self.running():  # left by a runner that crashed: same cluster, same data
            self.create_database()
            return
        options = (f"-c listen_addresses='{self.listen}' "
                   f"-c unix_socket_directories='{self.socket_dir}' "
                   "-c fsync=on -c max_connections=200 -c shared_buffers=128MB")
        # pg_ctl removes a stale postmaster.pid by itself when its process is gone.
        result = self._run(self.bin / "pg_ctl", "-D", self.data, "-l", self.log_file,
                           "-o", options, "-w", "-t", "60", "start", check=False)
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"PostgreSQL did not start:\n{result.stderr}\n{tail}")
        self.create_database()

    def running(self) -> bool:
        return self._run(self.bin / "pg_ctl", "-D", self.data, "status", check=False
                         ).returncode == 0

    def postmaster_state(self) -> str:
        """``running``; ``stopped`` (no postmaster.pid: a clean stop removes it); or
        ``crashed`` (the pid file is left but its process is gone). Cheap: no subprocess,
        so the runner can ask every fraction of a second."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except FileNotFoundError:
            return "stopped"
        except (OSError, ValueError):
            return "running"  # being written right now by a starting postmaster
        try:
            proc_stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return "crashed"
        return "crashed" if proc_stat.split(") ", 1)[-1].startswith("Z") else "running"

    def create_database(self) -> None:
        psql = self.bin / "psql"
        exists = self._run(psql, "-h", self.socket_dir, "-U", "postgres", "-d", "postgres",
                           "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")
        if exists.stdout.strip() != "1":
            self._run(psql, "-h", self.socket_dir, "-U", "postgres", "-d", "postgres",
                      "-c", f"CREATE DATABASE {DATABASE}")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop",
                      check=False)
