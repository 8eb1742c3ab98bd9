"""The ``kitteh`` command for operators: one subcommand per module in this package.

Each subcommand module exposes ``register(subparsers)``, which adds its parser and sets
``handler`` (a function of the parsed arguments returning the exit status). The list below is
the whole command; a new subcommand is a new module plus one line here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from deploy.cli import backup, keys, maintenance

SUBCOMMAND_MODULES = (maintenance, backup, keys)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kitteh", description="Run and look after a Kitteh installation.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in SUBCOMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
