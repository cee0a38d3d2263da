"""The insights service's use cases: what dashboards and BU systems read, and the audit trail.
The projection (projection.py) is what writes insights."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import ConsumerRecord

from centricity_contracts.insights import IdeaInsight, UnitInsight, UnitKind
from centricity_insights.audit import AuditPage, AuditQuery, cursor_after, entry_of, position_of, to_entry
from centricity_insights.domain import unit_key_range
from centricity_insights.projection import LiveHub, unit_of_document
from centricity_insights.series import Bucket, SeriesPoint, series_points
from centricity_insights.store import AuditStore, InsightStore, Ranking


class InsightQueries:
    def __init__(self, store: InsightStore, hub: LiveHub) -> None:
        self.store = store
        self.hub = hub

    async def top(
        self, *, ranking: Ranking, limit: int, businessunit: str | None, campaign_id: str | None
    ) -> list[IdeaInsight]:
        return await self.store.top(
            ranking=ranking, limit=limit, businessunit=businessunit, campaign_id=campaign_id
        )

    async def idea(self, idea_id: str) -> IdeaInsight | None:
        return await self.store.get(idea_id)

    async def all_units(self) -> list[UnitInsight]:
        """Every unit, by key: what a dashboard shows in its scope."""
        return sorted(
            (unit_of_document(doc) for doc in await self.store.unit_documents()), key=lambda u: u.unit
        )

    async def units(
        self, kind: UnitKind | None = None, *, after: str | None = None, limit: int = 500
    ) -> list[UnitInsight]:
        """A page of units by key, of one kind or all."""
        docs = await self.store.unit_page(None if kind is None else unit_key_range(kind), after, limit)
        return [unit_of_document(doc) for doc in docs]

    async def unit(self, unit: str) -> UnitInsight | None:
        docs = await self.store.unit_documents([unit])
        return unit_of_document(docs[0]) if docs else None

    async def series(self, unit: str, *, bucket: Bucket, days: int) -> list[SeriesPoint]:
        """A unit's points of the last `days`, from every hour it has (so ratios and totals count
        everything before them too)."""
        since = datetime.now(UTC) - timedelta(days=days)
        docs = await self.store.hourly(unit, 0)
        return series_points(docs, bucket=bucket, since_ms=int(since.timestamp() * 1000))

    @contextmanager
    def live_updates(self) -> Iterator[Any]:
        """A queue of every snapshot this process publishes from now on."""
        with self.hub.subscription() as queue:
            yield queue


class AuditTrail:
    """Records every fact as an audit entry, and pages through them for admins."""

    def __init__(self, store: AuditStore, *, retention: timedelta) -> None:
        self.store = store
        self.retention = retention

    async def record(self, records: Sequence[ConsumerRecord[Any, Any]]) -> int:
        entries = [e for r in records if (e := entry_of(r, retention=self.retention)) is not None]
        await self.store.record(entries)
        return len(entries)

    async def page(self, query: AuditQuery, *, cursor: str | None, limit: int) -> AuditPage:
        """Raises BadCursor for a cursor this service did not give."""
        after = position_of(cursor) if cursor else None
        docs = await self.store.page(query, after=after, limit=limit + 1)
        more = len(docs) > limit
        docs = docs[:limit]
        return AuditPage(
            entries=[to_entry(doc) for doc in docs], next_cursor=cursor_after(docs[-1]) if more else None
        )
