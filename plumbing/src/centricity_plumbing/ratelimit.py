"""Per-business-unit limits on HTTP writes, answered with 429 and Retry-After.

Counts live in the service's database (fixed windows of the `limits` library, on a storage of
our own over PyMongo), so every replica of a service counts against the same limit: two replicas
do not double it. Kafka intake is not limited here: the consumer's pace is its own back-pressure.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from pymongo.asynchronous.collection import AsyncCollection

from centricity_plumbing.mongo import Document
from centricity_plumbing.problems import Problem
from centricity_plumbing.ratestore import MongoCounterStorage
from centricity_plumbing.settings import ServiceSettings


class RateLimited(Problem):
    def __init__(self, businessunit: str, limit: RateLimitItem, retry_after_s: int) -> None:
        super().__init__(
            "Too many requests",
            type_="rate-limited",
            detail=f"Business unit {businessunit!r} may write {limit} to this service; "
            f"retry in {retry_after_s} s.",
            status=429,
            headers={"Retry-After": str(retry_after_s)},
        )


class WriteLimiter:
    """A fixed-window limit per business unit, shared by the service's replicas; a unit may have its
    own limit in the settings."""

    def __init__(self, settings: ServiceSettings, counters: AsyncCollection[Document]) -> None:
        self.default = parse(settings.http_write_rate_limit)
        self.per_unit = {
            unit_id: parse(unit.write_rate_limit)
            for unit_id, unit in settings.business_units.items()
            if unit.write_rate_limit
        }
        self.strategy = FixedWindowRateLimiter(MongoCounterStorage(counters))

    async def admit(self, businessunit: str) -> None:
        limit = self.per_unit.get(businessunit, self.default)
        if await self.strategy.hit(limit, "writes", businessunit):
            return
        stats = await self.strategy.get_window_stats(limit, "writes", businessunit)
        raise RateLimited(businessunit, limit, max(1, math.ceil(stats.reset_time - time.time())))
