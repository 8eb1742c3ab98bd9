"""Starting a service from the command line: config from the environment, logs, run_app."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from shared.config import ConfigError


def serve(name: str, load_config: Callable[[], Any], create_app: Callable[[Any], web.Application]):
    try:
        config = load_config()
    except ConfigError as error:
        print(f"kitteh {name}: configuration error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=config.log_level,
        format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
    )
    # run_app handles SIGINT and SIGTERM: stop accepting, let in-flight requests finish
    # within shutdown_timeout, then run the cleanup contexts (pools, sessions, executors).
    web.run_app(create_app(config), host=config.host, port=config.port,
                shutdown_timeout=30, access_log=None, print=None)
