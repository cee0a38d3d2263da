"""The time services stamp on what they record."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, in UTC, to the millisecond: the precision BSON stores, so what a service answers
    equals what it reads back later."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
