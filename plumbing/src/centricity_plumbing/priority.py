"""CPU priority for work that may wait: enrichment behind intake."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator

BACKGROUND_NICENESS = 19


def lower_thread_priority() -> None:
    """Make the calling thread yield the CPU to every other thread and process when CPU is short.

    On Linux a thread has its own nice value, so this leaves the event loop's thread as it was.
    Meant as a worker pool's initializer. Where the platform has no such call, nothing changes.
    """
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)


class Foreground:
    """Whether the foreground work (intake) is busy, so that background work can wait for a lull.

    Background work that shares the store and the cores (likely-duplicate search) waits until the
    foreground has been idle for `quiet_s`, but never longer than `longest_wait_s`, so that under
    sustained load it still keeps up, only later.
    """

    def __init__(self, quiet_s: float = 0.5, longest_wait_s: float = 30.0) -> None:
        self.quiet_s = quiet_s
        self.longest_wait_s = longest_wait_s
        self._active = 0
        self._last_busy = -math.inf

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        self._active += 1
        try:
            yield
        finally:
            self._active -= 1
            self._last_busy = time.monotonic()

    async def lull(self) -> None:
        """Return once the foreground has been idle for a while, or after the longest wait."""
        deadline = time.monotonic() + self.longest_wait_s
        while (now := time.monotonic()) < deadline:
            idle_in = self.quiet_s if self._active else self._last_busy + self.quiet_s - now
            if idle_in <= 0:
                return
            await asyncio.sleep(min(idle_in, deadline - now))
