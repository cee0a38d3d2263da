"""Write lanes: one batch split so that our work on one part overlaps the store's on another."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

WRITE_LANES = 4


def lanes_by_key(keys: Sequence[str], count: int = WRITE_LANES) -> list[list[int]]:
    """The positions of `keys` in `count` lanes by a stable hash; one key's positions share a lane,
    in order. Empty lanes are left out."""
    lanes: list[list[int]] = [[] for _ in range(count)]
    for position, key in enumerate(keys):
        lanes[zlib.crc32(key.encode()) % count].append(position)
    return [lane for lane in lanes if lane]
