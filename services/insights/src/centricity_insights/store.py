"""Per-idea insights in MongoDB: one document per idea, with the fact keys already applied."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from centricity_contracts.insights import IdeaInsight
from centricity_insights.domain import IdeaTally
from centricity_plumbing.mongo import Document, update_versioned

# How many recent fact keys each idea remembers, to drop redeliveries. Kafka redelivers at most
# the records after the last commit, a few hundred at most per partition.
SEEN_KEYS_KEPT = 512


class Ranking(StrEnum):
    SCORE = "score"
    WILSON = "wilson"


RANKING_FIELDS = {
    Ranking.SCORE: [("score", DESCENDING), ("wilson_lower_bound", DESCENDING), ("_id", 1)],
    Ranking.WILSON: [("wilson_lower_bound", DESCENDING), ("score", DESCENDING), ("_id", 1)],
}


class InsightStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.ideas: AsyncCollection[Document] = db["idea_insights"]

    async def ensure_indexes(self) -> None:
        await self.ideas.create_index([("score", DESCENDING)])
        await self.ideas.create_index([("wilson_lower_bound", DESCENDING)])

    async def change(
        self, idea_id: str, next_document: Callable[[Document | None], Document | None]
    ) -> Document | None:
        doc, _ = await update_versioned(self.ideas, idea_id, next_document)
        return doc

    async def get(self, idea_id: str) -> IdeaInsight | None:
        doc = await self.ideas.find_one({"_id": idea_id})
        return IdeaInsight.model_validate(doc) if doc else None

    async def top(self, *, ranking: Ranking, limit: int, businessunit: str | None) -> list[IdeaInsight]:
        # Only ideas whose creation was seen: a vote for an unknown id must not make the list.
        query: Document = (
            {"businessunit": businessunit} if businessunit else {"businessunit": {"$type": "string"}}
        )
        cursor = self.ideas.find(query).sort(RANKING_FIELDS[ranking]).limit(limit)
        return [IdeaInsight.model_validate(doc) async for doc in cursor]


def stored_tally(idea_id: str, doc: Document | None) -> IdeaTally:
    if doc is None:
        return IdeaTally(idea_id=idea_id)
    return IdeaTally(
        idea_id=idea_id,
        businessunit=doc.get("businessunit"),
        title=doc.get("title"),
        up=doc["up"],
        down=doc["down"],
        voters=doc["voters"],
    )


def seen_keys(doc: Document | None) -> list[str]:
    return list((doc or {}).get("seen", []))
