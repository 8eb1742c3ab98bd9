"""The database a ``kitteh`` command talks to: ``DATABASE_URL`` when set, else the embedded
cluster the local runner keeps for ``KITTEH_DATA_DIR`` (it must be running: ``make run``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from deploy.postgres import cluster_dir, socket_url
from shared.config import Env, database_url


def cli_database_url(environ: Mapping[str, str] | None = None) -> str:
    """Raises ``shared.config.ConfigError`` for a malformed DATABASE_URL."""
    environ = os.environ if environ is None else environ
    env = Env(environ)
    if environ.get("DATABASE_URL"):
        return database_url(env)
    data_dir = Path(env.raw("KITTEH_DATA_DIR")).expanduser().resolve()
    return socket_url(cluster_dir(data_dir))
