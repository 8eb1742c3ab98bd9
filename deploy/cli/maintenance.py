"""``kitteh run``, ``kitteh migrate`` and ``kitteh sweep``: the existing entry points, by name.

migrate and sweep find the database and the volume as the runner does (deploy/installation.py):
``DATABASE_URL``, or else the embedded cluster of ``KITTEH_DATA_DIR``, started for the command
if it is not running; the volume is ``$KITTEH_DATA_DIR/images``.
"""

from __future__ import annotations

import argparse
import os
import sys

from deploy.installation import CommandError, Installation


def _run(_args: argparse.Namespace) -> int:
    from deploy.runner import main as run_stack

    return run_stack()


def _migrate(_args: argparse.Namespace) -> int:
    from shared.migrate import apply_migrations

    try:
        with Installation.from_env().database() as url:
            applied = apply_migrations(url)
    except CommandError as error:
        print(f"kitteh migrate: {error}", file=sys.stderr)
        return 1
    print(f"kitteh migrate: {applied} migration(s) applied")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from services.resize.sweep import main as sweep

    installation = Installation.from_env()
    try:
        with installation.database() as url:
            # The sweep reads its settings from the environment, as the service does.
            os.environ["DATABASE_URL"] = url
            os.environ["KITTEH_STORAGE_DIR"] = str(installation.storage_dir)
            return sweep([*(["--max-age", str(args.max_age)] if args.max_age is not None
                            else []), *(["--dry-run"] if args.dry_run else [])])
    except CommandError as error:
        print(f"kitteh sweep: {error}", file=sys.stderr)
        return 1


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser(
        "run", help="run the whole stack in the foreground, as make run does (Ctrl-C stops)",
    ).set_defaults(handler=_run)
    subparsers.add_parser(
        "migrate", help="apply the database migrations (idempotent)",
    ).set_defaults(handler=_migrate)
    # The sweep's own options, passed on to it (argparse's REMAINDER cannot take an argument
    # list that starts with an option, such as `kitteh sweep --dry-run`).
    sweep = subparsers.add_parser(
        "sweep", help="one sweep of the volume against the rows, now")
    sweep.add_argument("--max-age", type=float, default=None,
                       help="seconds (default: KITTEH_TEMP_MAX_AGE); younger temp files and "
                            "directories are left alone: they may belong to a running upload")
    sweep.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    sweep.set_defaults(handler=_sweep)
