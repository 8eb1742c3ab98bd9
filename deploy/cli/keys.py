"""``kitteh keys create NAME [--admin]``, ``kitteh keys list``, ``kitteh keys revoke NAME``.

``create`` prints the new key once, as its last line (so ``| tail -1`` captures it); only
its hash is stored, so a lost key is revoked and made again, never recovered.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from deploy.installation import CommandError, Installation
from shared.config import ConfigError
from shared.upload_keys import KeyNameTaken, all_keys, create_key, revoke_key

MAX_NAME = 100


async def _create(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    try:
        key, secret = await create_key(conn, args.name, args.admin)
    except KeyNameTaken:
        print(f"kitteh keys: a key named {args.name!r} exists already "
              "(revoked names stay taken: pick another)", file=sys.stderr)
        return 1
    kind = "admin key" if key.admin else "upload key"
    print(f"Created {kind} {key.name!r}. It is shown only now; send it as "
          "'Authorization: Bearer <key>':")
    print(secret)
    return 0


async def _list(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    keys = await all_keys(conn)
    if not keys:
        print("No keys yet: kitteh keys create NAME [--admin]")
        return 0
    print(f"{'name':<30} {'admin':<6} {'created (UTC)':<17} revoked (UTC)")
    for key in keys:
        revoked = f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "-"
        print(f"{key.name:<30} {'yes' if key.admin else 'no':<6} "
              f"{key.created_at:%Y-%m-%d %H:%M} {revoked:<17}")
    return 0


async def _revoke(conn: asyncpg.Connection, args: argparse.Namespace) -> int:
    if not await revoke_key(conn, args.name):
        print(f"kitteh keys: no live key named {args.name!r}", file=sys.stderr)
        return 1
    print(f"Revoked {args.name!r}: uploads with it are refused from now on.")
    return 0


def _handler(action):
    def run(args: argparse.Namespace) -> int:
        try:
            with Installation.from_env().database() as url:
                return asyncio.run(_with_connection(url, action, args))
        except (CommandError, ConfigError) as error:
            print(f"kitteh keys: {error}", file=sys.stderr)
            return 2

    return run


async def _with_connection(url: str, action, args: argparse.Namespace) -> int:
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        print(f"kitteh keys: cannot reach the database ({error}); is Kitteh running, or "
              "DATABASE_URL set?", file=sys.stderr)
        return 1
    try:
        return await action(conn, args)
    except asyncpg.UndefinedTableError:
        print("kitteh keys: the database has no upload_keys table: run kitteh migrate",
              file=sys.stderr)
        return 1
    finally:
        await conn.close()


def _name(value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_NAME or not value.isprintable():
        raise argparse.ArgumentTypeError(f"a name is 1 to {MAX_NAME} printable characters")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    keys = subparsers.add_parser("keys", help="upload keys: create, list, revoke")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a key; prints it once, as the last line")
    create.add_argument("name", type=_name, help="who the key is for (unique)")
    create.add_argument("--admin", action="store_true",
                        help="the key may also delete any image (moderation)")
    create.set_defaults(handler=_handler(_create))
    actions.add_parser("list", help="every key's name, admin flag and dates (never the key)",
                       ).set_defaults(handler=_handler(_list))
    revoke = actions.add_parser("revoke", help="refuse the key from now on")
    revoke.add_argument("name", type=_name)
    revoke.set_defaults(handler=_handler(_revoke))
