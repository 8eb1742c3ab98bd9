"""``python -m services.resize.sweep``: one sweep of the volume against the rows, now.

The resize service runs the same sweep every ``KITTEH_SWEEP_INTERVAL`` seconds; this is for
after a crash, or with the periodic sweep turned off. It reads ``DATABASE_URL``, the store
settings (``KITTEH_STORAGE``, ``KITTEH_STORAGE_DIR``, ``KITTEH_S3_*``) and
``KITTEH_TEMP_MAX_AGE`` like the service, prints what it found and did, and exits 0 (1 if
it refused to change rows because the volume looks wrong).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from services.resize.config import SweepConfig
from services.resize.sweeper import SweepReport, sweep
from shared.config import ConfigError, Env, StoreConfig, database_url
from shared.storage import StoreError, open_store, scratch_for


async def run(url: str, store_config: StoreConfig, max_age: float,
              dry_run: bool) -> SweepReport:
    storage = open_store(store_config)
    try:
        await storage.check()
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            return await sweep(pool, storage, scratch_for(store_config.storage_dir), max_age,
                               dry_run=dry_run)
        finally:
            await pool.close()
    finally:
        await storage.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.resize.sweep",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-age", type=float, default=None,
                        help="seconds (default: KITTEH_TEMP_MAX_AGE); younger temp files and "
                             "directories are left alone: they may belong to a running upload")
    parser.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    args = parser.parse_args(argv)
    try:
        env = Env()
        url = database_url(env)
        store_config = StoreConfig.from_env(env)
        max_age = SweepConfig.from_env().temp_max_age if args.max_age is None else args.max_age
    except ConfigError as error:
        print(f"kitteh sweep: configuration error: {error}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(run(url, store_config, max_age, args.dry_run))
    except StoreError as error:
        print(f"kitteh sweep: {error}", file=sys.stderr)
        return 2
    for label, items in (("temp file", report.temp_files), ("orphan dir", report.orphan_dirs),
                         ("missing original", report.lost_originals),
                         ("lost variant", report.lost_variants)):
        for item in items:
            print(f"{label}: {item}")
    print(f"kitteh sweep{' (dry run)' if args.dry_run else ''}: {report.summary()}")
    return 1 if report.refused else 0


if __name__ == "__main__":
    sys.exit(main())
