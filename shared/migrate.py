"""Apply the SQL migrations with yoyo: ``python -m shared.migrate`` (idempotent)."""

from __future__ import annotations

import sys
from pathlib import Path

from yoyo import get_backend, read_migrations

from shared.config import ConfigError, Env, database_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def yoyo_url(url: str) -> str:
    """asyncpg takes ``postgresql://``; yoyo wants the psycopg 3 driver named in the scheme."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgres", "postgresql") else url


def apply_migrations(url: str) -> int:
    backend = get_backend(yoyo_url(url))
    try:
        migrations = read_migrations(str(MIGRATIONS_DIR))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()  # yoyo leaves it open (kitteh restore runs this in-process)
    return len(pending)


def main() -> int:
    try:
        url = database_url(Env())
    except ConfigError as error:
        print(f"kitteh migrate: {error}", file=sys.stderr)
        return 2
    applied = apply_migrations(url)
    print(f"kitteh migrate: {applied} migration(s) applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
