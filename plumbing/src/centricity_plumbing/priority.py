"""CPU priority for work that may wait: enrichment behind intake."""

from __future__ import annotations

import contextlib
import os
import threading

BACKGROUND_NICENESS = 19


def lower_thread_priority() -> None:
    """Make the calling thread yield the CPU to every other thread and process when CPU is short.

    On Linux a thread has its own nice value, so this leaves the event loop's thread as it was.
    Meant as a worker pool's initializer. Where the platform has no such call, nothing changes.
    """
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
