"""Insights in MongoDB: one document per idea, per unit, per unit and hour, per unit and participant.

A batch of facts lands in one transaction: the ideas it changed (each with the fact keys it has
applied), the unit counters those changes moved, the hourly series and the new participants. A
crash either keeps all of it or none of it, so a redelivered fact is skipped by its idea and
moves no unit twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, DESCENDING, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from centricity_contracts.insights import IdeaInsight
from centricity_insights.domain import Counters, UnitCounters
from centricity_plumbing.mongo import ConcurrentUpdateError, Document

# How many recent fact keys each idea remembers, to drop redeliveries. Kafka redelivers at most
# the records after the last commit, a few hundred at most per partition.
SEEN_KEYS_KEPT = 512
PENDING_SNAPSHOT = "pending_snapshot"
HOUR_MS = 3_600_000


class Ranking(StrEnum):
    SCORE = "score"
    WILSON = "wilson"
    TRENDING = "trending"
    WEIGHTED = "weighted"


RANKING_FIELDS = {
    Ranking.SCORE: [("score", DESCENDING), ("wilson_lower_bound", DESCENDING), ("_id", ASCENDING)],
    Ranking.WILSON: [("wilson_lower_bound", DESCENDING), ("score", DESCENDING), ("_id", ASCENDING)],
    Ranking.TRENDING: [("trending", DESCENDING), ("score", DESCENDING), ("_id", ASCENDING)],
    Ranking.WEIGHTED: [("weighted_score", DESCENDING), ("score", DESCENDING), ("_id", ASCENDING)],
}


@dataclass
class IdeaWrite:
    """An idea's next document, written only if the stored one is still at `stored_revision`."""

    document: Document
    stored_revision: int | None


@dataclass
class BatchChanges:
    ideas: list[IdeaWrite] = field(default_factory=list)
    units: UnitCounters = field(default_factory=dict)
    series: dict[tuple[str, int], Counters] = field(default_factory=dict)
    participants: list[tuple[str, str]] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)


def participant_id(unit: str, customer_key: str) -> str:
    return f"{unit}|{customer_key}"


class InsightStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.ideas: AsyncCollection[Document] = db["idea_insights"]
        self.units: AsyncCollection[Document] = db["unit_insights"]
        self.series: AsyncCollection[Document] = db["unit_series"]
        self.participants: AsyncCollection[Document] = db["unit_participants"]

    async def ensure_indexes(self) -> None:
        # Only the rankings are indexed: every index is rewritten with each idea's change, and the
        # per-fact cost must not grow with the number of ideas. Pending snapshots of ideas are
        # looked for once, at start.
        for name in ("score", "wilson_lower_bound", "trending", "weighted_score"):
            await self.ideas.create_index([(name, DESCENDING)])
        await self.units.create_index([(PENDING_SNAPSHOT, ASCENDING)])
        await self.series.create_index([("unit", ASCENDING), ("hour_ms", ASCENDING)])

    # --- writes --------------------------------------------------------------------------------

    async def load_ideas(self, idea_ids: Iterable[str]) -> dict[str, Document]:
        ids = list(idea_ids)
        return {doc["_id"]: doc async for doc in self.ideas.find({"_id": {"$in": ids}})}

    async def known_participants(self, ids: Iterable[str]) -> set[str]:
        wanted = list(ids)
        if not wanted:
            return set()
        cursor = self.participants.find({"_id": {"$in": wanted}}, projection={"_id": 1})
        return {doc["_id"] async for doc in cursor}

    async def commit(self, changes: BatchChanges, *, now_ms: int) -> None:
        """Write a batch's changes atomically; ConcurrentUpdateError if an idea changed meanwhile."""
        async with self.db.client.start_session() as session, await session.start_transaction():
            try:
                await self._write_ideas(changes.ideas, session)
                if changes.participants:
                    await self.participants.insert_many(
                        [
                            {"_id": participant_id(unit, key), "unit": unit}
                            for unit, key in changes.participants
                        ],
                        ordered=False,
                        session=session,
                    )
            except (BulkWriteError, DuplicateKeyError) as error:
                raise ConcurrentUpdateError(f"another writer got there first: {error}") from error
            if changes.units:
                await self.units.bulk_write(
                    [
                        UpdateOne(
                            {"_id": unit},
                            {
                                "$inc": {**counters, "revision": 1},
                                "$set": {PENDING_SNAPSHOT: True, "updated_ms": now_ms},
                            },
                            upsert=True,
                        )
                        for unit, counters in changes.units.items()
                    ],
                    ordered=False,
                    session=session,
                )
            if changes.titles:
                await self.name_units(changes.titles, session=session)
            if changes.series:
                await self.series.bulk_write(
                    [
                        UpdateOne(
                            {"_id": f"{unit}|{hour_ms}"},
                            {"$inc": counters, "$set": {"unit": unit, "hour_ms": hour_ms}},
                            upsert=True,
                        )
                        for (unit, hour_ms), counters in changes.series.items()
                    ],
                    ordered=False,
                    session=session,
                )

    async def name_units(self, titles: dict[str, str], *, session: Any = None) -> None:
        """Give units their titles (a unit named before its first counter exists with zeros)."""
        await self.units.bulk_write(
            [
                UpdateOne({"_id": unit}, {"$set": {"title": title, PENDING_SNAPSHOT: True}}, upsert=True)
                for unit, title in titles.items()
            ],
            ordered=False,
            session=session,
        )

    async def _write_ideas(self, writes: list[IdeaWrite], session: Any) -> None:
        if not writes:
            return
        operations: list[InsertOne[Document] | ReplaceOne[Document]] = [
            InsertOne(write.document)
            if write.stored_revision is None
            # The replacement names its _id: nx-27017 does not take it from the filter.
            else ReplaceOne({"_id": write.document["_id"], "revision": write.stored_revision}, write.document)
            for write in writes
        ]
        result = await self.ideas.bulk_write(operations, ordered=False, session=session)
        replaced = sum(write.stored_revision is not None for write in writes)
        if result.matched_count != replaced:
            raise ConcurrentUpdateError(f"{replaced - result.matched_count} ideas changed under the batch")

    async def clear_pending(self, collection: AsyncCollection[Document], revisions: dict[str, int]) -> None:
        """Mark snapshots as published, unless the document moved on since (it is then still due)."""
        if revisions:
            await collection.bulk_write(
                [
                    UpdateOne({"_id": doc_id, "revision": revision}, {"$set": {PENDING_SNAPSHOT: False}})
                    for doc_id, revision in revisions.items()
                ],
                ordered=False,
            )

    async def pending(self, collection: AsyncCollection[Document]) -> list[str]:
        return [doc["_id"] async for doc in collection.find({PENDING_SNAPSHOT: True}, projection={"_id": 1})]

    # --- reads ---------------------------------------------------------------------------------

    async def idea_documents(self, idea_ids: Iterable[str]) -> list[Document]:
        return [doc async for doc in self.ideas.find({"_id": {"$in": list(idea_ids)}})]

    async def unit_documents(self, units: Iterable[str] | None = None) -> list[Document]:
        query: Document = {} if units is None else {"_id": {"$in": list(units)}}
        return [doc async for doc in self.units.find(query)]

    async def get(self, idea_id: str) -> IdeaInsight | None:
        doc = await self.ideas.find_one({"_id": idea_id})
        return IdeaInsight.model_validate(doc) if doc else None

    async def top(
        self,
        *,
        ranking: Ranking,
        limit: int,
        businessunit: str | None = None,
        campaign_id: str | None = None,
    ) -> list[IdeaInsight]:
        # Only ideas whose creation was seen: a vote for an unknown id must not make the list.
        query: Document = (
            {"businessunit": businessunit} if businessunit else {"businessunit": {"$type": "string"}}
        )
        if campaign_id:
            query["campaign_id"] = campaign_id
        if ranking is Ranking.TRENDING:
            query["trending"] = {"$type": "double"}
        cursor = self.ideas.find(query).sort(RANKING_FIELDS[ranking]).limit(limit)
        return [IdeaInsight.model_validate(doc) async for doc in cursor]

    async def hourly(self, unit: str, since_ms: int) -> list[Document]:
        cursor = self.series.find({"unit": unit, "hour_ms": {"$gte": since_ms}}).sort("hour_ms", ASCENDING)
        return [doc async for doc in cursor]


def seen_keys(doc: Document | None) -> list[str]:
    return list((doc or {}).get("seen", []))
