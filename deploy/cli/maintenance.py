"""``kitteh run``, ``kitteh migrate`` and ``kitteh sweep``: the existing entry points, by name."""

from __future__ import annotations

import argparse


def _run(_args: argparse.Namespace) -> int:
    from deploy.runner import main as run_stack

    return run_stack()


def _migrate(_args: argparse.Namespace) -> int:
    from shared.migrate import main as migrate

    return migrate()


def _sweep(args: argparse.Namespace) -> int:
    from services.resize.sweep import main as sweep

    return sweep(args.sweep_args)


def register(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser(
        "run", help="run the whole stack in the foreground, as make run does (Ctrl-C stops)",
    ).set_defaults(handler=_run)
    subparsers.add_parser(
        "migrate", help="apply the database migrations (idempotent)",
    ).set_defaults(handler=_migrate)
    sweep = subparsers.add_parser(
        "sweep", help="one sweep of the volume against the rows (see --help of the sweep)",
        add_help=False)
    sweep.add_argument("sweep_args", nargs=argparse.REMAINDER)
    sweep.set_defaults(handler=_sweep)
