"""Votes in MongoDB: one document per voter and idea, changed only through optimistic updates."""

from __future__ import annotations

from collections.abc import Callable

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from centricity_contracts.votes import VoteRecord
from centricity_plumbing.mongo import Document, update_versioned
from centricity_plumbing.outbox import OUTBOX_FIELD

# How many recent intake keys each vote remembers, to drop redeliveries. Kafka redelivers at
# most the records after the last commit, and one voter rarely has this many in flight.
SEEN_KEYS_KEPT = 64


class VoteStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.votes: AsyncCollection[Document] = db["votes"]
        self.ideas: AsyncCollection[Document] = db["ideas"]

    async def idea_status(self, idea_id: str) -> str | None:
        doc = await self.ideas.find_one({"_id": idea_id})
        return str(doc["status"]) if doc else None

    async def set_idea_status(self, idea_id: str, status: str) -> None:
        """Facts of one idea arrive in order (keyed by idea id), so the last one wins."""
        await self.ideas.update_one({"_id": idea_id}, {"$set": {"status": status}}, upsert=True)

    async def change(
        self, vote_id: str, next_document: Callable[[Document | None], Document | None]
    ) -> Document | None:
        doc, _ = await update_versioned(self.votes, vote_id, next_document)
        return doc


def stored_vote(doc: Document | None) -> VoteRecord | None:
    return VoteRecord.model_validate(doc["vote"]) if doc else None


def seen_keys(doc: Document | None) -> list[str]:
    return list((doc or {}).get("seen", []))


def vote_document(record: VoteRecord, *, seen: list[str], outbox: list[Document]) -> Document:
    return {"idea_id": record.idea_id, "vote": record.model_dump(), "seen": seen, OUTBOX_FIELD: outbox}
