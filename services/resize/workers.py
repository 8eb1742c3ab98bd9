"""A bounded pool for Pillow work: threads sized to the cores, a short queue, then 503.

Pillow releases the GIL while it decodes, resizes and encodes, so threads use every core.
Jobs beyond ``threads + queue`` are refused at once with ``Busy`` (503 + Retry-After) rather
than piling up in memory.

The resize service has two pools: one for the work an upload or a page waits for, one for the
background (the display widths and AVIF/WebP of a new upload, the reconciler's backlog), whose
threads run at a lower CPU priority (``nice``), so an upload never queues behind an AVIF
encode and the background takes only the CPU left over. A lower priority is not enough on
its own (two hyperthreads of one core slow each other down whatever their priority), so
background renders also pause between encodes while the first pool has work
(``wait_until_idle``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from shared.errors import Busy

T = TypeVar("T")
IDLE_PATIENCE_SECONDS = 5.0


class Workers:
    def __init__(self, threads: int, queue: int, nice: int = 0, name: str = "resize"):
        self.threads = threads
        self.capacity = threads + queue
        self.nice = nice
        self.name = name
        self._in_system = 0
        self._idle = threading.Event()  # no job in the system; waited on from other threads
        self._idle.set()
        self._executor: ThreadPoolExecutor | None = None

    async def lifetime(self, _app) -> AsyncIterator[None]:
        """Cleanup context: the executor lives exactly as long as the app."""
        self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name,
                                            initializer=self._lower_priority)
        try:
            yield
        finally:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def _lower_priority(self) -> None:
        """On Linux a thread has its own nice value (setpriority on its thread id)."""
        if self.nice:
            with contextlib.suppress(OSError, AttributeError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)

    @property
    def busy(self) -> int:
        return self._in_system

    async def run(self, fn: Callable[..., T], *args, wait_for_room: bool = False) -> T:
        while self._in_system >= self.capacity:
            if not wait_for_room:
                raise Busy("The resize service is busy; try again shortly.", retry_after=2)
            await asyncio.sleep(0.05)
        self._in_system += 1
        self._idle.clear()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._in_system -= 1
            if not self._in_system:
                self._idle.set()

    def wait_until_idle(self, at_most: float = IDLE_PATIENCE_SECONDS) -> None:
        """Blocking (for another pool's threads): until no job is in this pool, or at most
        ``at_most`` seconds, so that work waiting on this never starves."""
        self._idle.wait(at_most)
