"""Background work waits for a lull in the foreground, but not for ever."""

from __future__ import annotations

import asyncio
import time

from centricity_plumbing.priority import Foreground


async def test_background_work_waits_until_the_foreground_has_been_idle() -> None:
    foreground = Foreground(quiet_s=0.2, longest_wait_s=5)
    with foreground.working():
        waiting = asyncio.create_task(foreground.lull())
        await asyncio.sleep(0.3)
        assert not waiting.done()
    ended = time.monotonic()
    await waiting
    assert time.monotonic() - ended >= 0.2


async def test_background_work_goes_ahead_after_the_longest_wait() -> None:
    foreground = Foreground(quiet_s=0.2, longest_wait_s=0.5)
    with foreground.working():
        started = time.monotonic()
        await foreground.lull()
        assert 0.5 <= time.monotonic() - started < 2


async def test_an_idle_foreground_holds_nothing_up() -> None:
    foreground = Foreground(quiet_s=10, longest_wait_s=30)
    started = time.monotonic()
    await foreground.lull()
    assert time.monotonic() - started < 0.1
