"""Giving freed memory back to the system."""

from __future__ import annotations

import platform

import pytest

from centricity_plumbing.memory import release_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_memory_is_released_where_the_c_library_is_glibc() -> None:
    assert release_freed_memory() is True
