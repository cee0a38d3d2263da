"""Per-business-unit limits on HTTP writes, answered with 429 and Retry-After.

Counts live in the process (a moving window from the `limits` library), so each replica
enforces the limit on its own share of the traffic; with N replicas a unit may write up to N
times the limit. Kafka intake is not limited here: the consumer's pace is its own back-pressure.
"""

from __future__ import annotations

import math
import time
from typing import Annotated

from fastapi import Depends, Request
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from centricity_plumbing.auth import authenticated_business_unit
from centricity_plumbing.problems import Problem
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
    """A moving-window limit per business unit; a unit may have its own limit in the settings."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.default = parse(settings.http_write_rate_limit)
        self.per_unit = {
            unit_id: parse(unit.write_rate_limit)
            for unit_id, unit in settings.business_units.items()
            if unit.write_rate_limit
        }
        self.strategy = MovingWindowRateLimiter(MemoryStorage())

    async def admit(self, businessunit: str) -> None:
        limit = self.per_unit.get(businessunit, self.default)
        if await self.strategy.hit(limit, "writes", businessunit):
            return
        stats = await self.strategy.get_window_stats(limit, "writes", businessunit)
        raise RateLimited(businessunit, limit, max(1, math.ceil(stats.reset_time - time.time())))


async def limited_business_unit(
    request: Request, businessunit: Annotated[str, Depends(authenticated_business_unit)]
) -> str:
    limiter: WriteLimiter = request.app.state.write_limiter
    await limiter.admit(businessunit)
    return businessunit


# A writing business unit, authenticated and within its rate limit.
WritingBusinessUnit = Annotated[str, Depends(limited_business_unit)]
