"""``kitteh backup DIR`` and ``kitteh restore DIR`` (how and why: deploy/backups.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.installation import CommandError, Installation


def _backup(args: argparse.Namespace) -> int:
    from deploy.backups import backup

    try:
        manifest = backup(Installation.from_env(), args.directory)
    except CommandError as error:
        print(f"kitteh backup: {error}", file=sys.stderr)
        return 1
    files = manifest["files"]
    print(f"kitteh backup: {manifest['database']['images']} images in the database dump, "
          f"{files['files']} files ({files['bytes'] / 1e6:.1f} MB) of {files['images']} "
          f"images, in {manifest['seconds']} s, to {args.directory.resolve()}")
    if manifest["deleted_during_backup"]:
        print(f"kitteh backup: {len(manifest['deleted_during_backup'])} image(s) deleted "
              "during the backup will not be restored")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from deploy.backups import restore

    installation = Installation.from_env()
    try:
        done = restore(installation, args.directory)
    except CommandError as error:
        print(f"kitteh restore: {error}", file=sys.stderr)
        return 1
    where = "the database named by DATABASE_URL" if installation.database_url \
        else str(installation.data_dir)
    print(f"kitteh restore: {done['images']} images, {done['files']} files "
          f"({done['bytes'] / 1e6:.1f} MB) restored into {where}; start it with: "
          f"KITTEH_DATA_DIR={installation.data_dir} kitteh run")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    backup = subparsers.add_parser(
        "backup", help="back up the database and the files into a new directory, while "
                       "Kitteh runs or not")
    backup.add_argument("directory", type=Path, metavar="DIR",
                        help="a new or empty directory")
    backup.set_defaults(handler=_backup)
    restore = subparsers.add_parser(
        "restore", help="restore a backup into an empty data directory (KITTEH_DATA_DIR)")
    restore.add_argument("directory", type=Path, metavar="DIR", help="a kitteh backup")
    restore.set_defaults(handler=_restore)
