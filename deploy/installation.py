"""Where an installation keeps its things, found as the runner finds them, for the ``kitteh``
command: the database (``DATABASE_URL``, or else the embedded cluster of ``KITTEH_DATA_DIR``)
and the volume (``$KITTEH_DATA_DIR/images``).

The embedded cluster need not be running: a command that needs it starts it for its own
duration and stops it afterwards (unless a runner started meanwhile and now uses it), so
``kitteh migrate`` or ``kitteh backup`` work on a stopped installation too. When a runner is
up, the command simply uses the cluster that runner started.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.postgres import LocalPostgres, cluster_dir, log_file_for
from deploy.processes import is_runner
from deploy.system import find, require
from shared.config import Env, StoreConfig


class CommandError(RuntimeError):
    """A refusal or failure worded for the operator (printed as one message, exit 1)."""


@dataclass(frozen=True)
class Installation:
    data_dir: Path
    database_url: str | None  # given in the environment; else the embedded cluster
    storage_dir: Path
    store: StoreConfig | None = None  # the image store; None: the volume at storage_dir

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Installation:
        environ = os.environ if environ is None else environ
        env = Env(environ)
        data_dir = Path(env.raw("KITTEH_DATA_DIR")).expanduser().resolve()
        # The runner's layout: the volume is $KITTEH_DATA_DIR/images. Without a data
        # directory but with KITTEH_STORAGE_DIR (a container, services started by hand),
        # the volume is where the services were told it is.
        if not environ.get("KITTEH_DATA_DIR") and environ.get("KITTEH_STORAGE_DIR"):
            storage = env.directory("KITTEH_STORAGE_DIR")
        else:
            storage = data_dir / "images"
        store = StoreConfig.from_env(env)
        return cls(data_dir, environ.get("DATABASE_URL") or None, storage,
                   StoreConfig(storage, store.mode, store.s3))

    @property
    def store_config(self) -> StoreConfig:
        return self.store or StoreConfig(self.storage_dir)

    @property
    def cluster_dir(self) -> Path:
        return cluster_dir(self.data_dir)

    def local_postgres(self) -> LocalPostgres:
        return LocalPostgres(self.cluster_dir, log_file_for(self.data_dir, self.cluster_dir))

    def has_cluster(self) -> bool:
        return (self.cluster_dir / "data" / "PG_VERSION").exists()

    def client_program(self, name: str) -> Path:
        """pg_dump / pg_restore: beside the embedded cluster's server (the same major
        version, which pg_restore needs), or the newest installed for a DATABASE_URL."""
        if self.database_url is None:
            return self.local_postgres().bin / name
        found = find(name)
        return found if found is not None else require(name)[name]

    @contextlib.contextmanager
    def database(self, create: bool = False) -> Iterator[str]:
        """The database URL, with the embedded cluster running while the block runs.
        ``create``: make the cluster first if there is none (restore into a new install)."""
        if self.database_url is not None:
            yield self.database_url
            return
        if not create and not self.has_cluster():
            raise CommandError(
                f"no Kitteh database in {self.data_dir} (no PostgreSQL cluster at "
                f"{self.cluster_dir}): set KITTEH_DATA_DIR to the installation's data "
                "directory, or DATABASE_URL to its server")
        postgres = self.local_postgres()
        if postgres.postmaster_state() == "running":
            postgres.create_database()
            yield postgres.url
            return
        postgres.ensure_cluster()
        print(f"kitteh: starting PostgreSQL in {self.cluster_dir} for this command",
              flush=True)
        postgres.start()
        try:
            yield postgres.url
        finally:
            if self.runner_pid() is None:
                postgres.stop()
                print("kitteh: PostgreSQL stopped again", flush=True)

    def runner_pid(self) -> int | None:
        """The pid of a runner using this data directory now, if any."""
        try:
            pid = int((self.data_dir / "run" / "runner.lock").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if is_runner(pid) else None
