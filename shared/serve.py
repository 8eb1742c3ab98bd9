"""Starting a service from the command line: config from the environment, logs, serving."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from shared.config import ConfigError
from shared.graceful import run_until_stopped
from shared.logs import configure_logging
from shared.storage import StoreError


def serve(name: str, load_config: Callable[[], Any], create_app: Callable[[Any], web.Application]):
    try:
        config = load_config()
    except ConfigError as error:
        print(f"kitteh {name}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(name, config.log_level)  # JSON lines with the request id
    # SIGINT and SIGTERM: stop accepting, let requests in progress finish (uploads still
    # receiving their bodies included, which run_app would cut off), then run the cleanup
    # contexts (pools, sessions, executors). See shared/graceful.py.
    try:
        run_until_stopped(create_app(config), host=config.host, port=config.port)
    except StoreError as error:  # the store checked at start: name the setting, no traceback
        print(f"kitteh {name}: storage error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
