"""Votes in MongoDB: one document per voter and idea, plus what the service knows of ideas,
campaigns, customers and budgets.

A vote document keeps the facts of its latest changes (`recent`), keyed by what caused them, so
that a redelivered intake record republishes the very fact it caused, under the same id.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import ConsumerRecord
from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from centricity_plumbing.idempotency import Origin, kept_with_change
from centricity_plumbing.mongo import Document, update_versioned
from centricity_votes.domain import IdeaView, StoredVote

# How many recent intake keys each vote remembers, to drop redeliveries. Kafka redelivers at
# most the records after the last commit, and one voter rarely has this many in flight.
SEEN_KEYS_KEPT = 64
# Facts kept for republishing on redelivery: only the latest changes can still be unpublished.
RECENT_FACTS_KEPT = 8


class VoteStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.votes: AsyncCollection[Document] = db["votes"]
        self.ideas: AsyncCollection[Document] = db["ideas"]
        self.campaigns: AsyncCollection[Document] = db["campaigns"]
        self.customers: AsyncCollection[Document] = db["customers"]
        self.budgets: AsyncCollection[Document] = db["budgets"]
        # Intake records for ideas not known yet, set aside until the idea is, or the grace ends.
        self.parked: AsyncCollection[Document] = db["parked"]

    async def create_indexes(self) -> None:
        await self.votes.create_index("idea_id")
        await self.votes.create_index("voter_key")
        await self.ideas.create_index("merged_into")
        await self.parked.create_index("vote_id")
        await self.parked.create_index("sent_ms")

    async def idea_views(self, idea_ids: Iterable[str]) -> dict[str, IdeaView]:
        ideas = [doc async for doc in self.ideas.find({"_id": {"$in": list(set(idea_ids))}})]
        campaign_ids = {doc["campaign_id"] for doc in ideas if doc.get("campaign_id")}
        budgets: dict[str, int | None] = {}
        if campaign_ids:
            async for doc in self.campaigns.find({"_id": {"$in": list(campaign_ids)}}):
                budgets[doc["_id"]] = doc.get("vote_budget")
        # An idea whose campaign has not arrived yet is not known yet: its vote budget may matter.
        return {
            doc["_id"]: IdeaView(
                idea_id=doc["_id"],
                status=str(doc["status"]),
                campaign_id=doc.get("campaign_id"),
                vote_budget=budgets.get(doc.get("campaign_id") or ""),
                internal_only=bool(doc.get("internal_only")),
            )
            for doc in ideas
            if "status" in doc and (not doc.get("campaign_id") or doc["campaign_id"] in budgets)
        }

    async def idea_view(self, idea_id: str) -> IdeaView | None:
        return (await self.idea_views([idea_id])).get(idea_id)

    async def record(self, ideas: dict[str, Document], campaigns: dict[str, int | None]) -> None:
        """Store what a run of idea facts changed; facts of one idea arrive in order, so the last wins."""
        if ideas:
            updates = [UpdateOne({"_id": i}, {"$set": fields}, upsert=True) for i, fields in ideas.items()]
            await self.ideas.bulk_write(updates, ordered=False)
        if campaigns:
            budgets = [
                UpdateOne({"_id": c}, {"$set": {"vote_budget": budget}}, upsert=True)
                for c, budget in campaigns.items()
            ]
            await self.campaigns.bulk_write(budgets, ordered=False)

    async def merges_waiting_for(self, idea_ids: list[str]) -> list[tuple[str, str, str]]:
        """(merged idea, target, merge key) for merges into these ideas made before they were known."""
        if not idea_ids:
            return []
        query = {"merged_into": {"$in": idea_ids}, "merge_pending": {"$type": "string"}}
        return [
            (doc["_id"], doc["merged_into"], doc["merge_pending"]) async for doc in self.ideas.find(query)
        ]

    async def campaign_budget(self, campaign_id: str) -> int | None:
        doc = await self.campaigns.find_one({"_id": campaign_id})
        return doc.get("vote_budget") if doc else None

    async def allocations(self, campaign_id: str, voter_key: str) -> dict[str, int]:
        doc = await self.budgets.find_one({"_id": budget_id(campaign_id, voter_key)})
        return dict(doc["allocations"]) if doc else {}

    async def weights(self, voter_keys: Iterable[str]) -> dict[str, float]:
        cursor = self.customers.find({"_id": {"$in": list(set(voter_keys))}}, {"weight": 1})
        return {doc["_id"]: float(doc["weight"]) async for doc in cursor}

    async def load(self, vote_ids: Iterable[str]) -> dict[str, Document]:
        return {doc["_id"]: doc async for doc in self.votes.find({"_id": {"$in": list(set(vote_ids))}})}

    async def votes_on(self, idea_id: str, *, skip: int = 0, limit: int = 0) -> list[Document]:
        """An idea's votes by vote id; a page of them with `limit` (0: all, for the rules)."""
        cursor = self.votes.find({"idea_id": idea_id}).sort("_id", 1).skip(skip).limit(limit)
        return [doc async for doc in cursor]

    async def votes_of(self, voter_key: str) -> list[Document]:
        return [doc async for doc in self.votes.find({"voter_key": voter_key})]

    async def change(
        self,
        collection: AsyncCollection[Document],
        doc_id: str,
        next_document: Callable[[Document | None], Document | None],
    ) -> Document | None:
        doc, _ = await update_versioned(collection, doc_id, next_document)
        return doc

    async def write_many(self, writes: list[VersionedWrite]) -> set[str]:
        """Write many vote documents at once, each only if unchanged since read.

        Returns the ids of documents someone else changed meanwhile; the caller applies those again.
        """
        if not writes:
            return set()
        token = uuid.uuid4().hex
        operations: list[InsertOne[Document] | ReplaceOne[Document]] = []
        for write in writes:
            doc = {
                **write.document,
                "_id": write.doc_id,
                "revision": write.read_revision + 1,
                "writer": token,
            }
            if write.read_revision == 0:
                operations.append(InsertOne(doc))
            else:
                operations.append(ReplaceOne({"_id": write.doc_id, "revision": write.read_revision}, doc))
        try:
            result = await self.votes.bulk_write(operations, ordered=False)
            if result.inserted_count + result.matched_count == len(writes):
                return set()
        except BulkWriteError:
            pass
        ids = [write.doc_id for write in writes]
        ours = {
            doc["_id"] async for doc in self.votes.find({"_id": {"$in": ids}, "writer": token}, {"_id": 1})
        }
        return set(ids) - ours

    async def park(self, records: list[ParkedRecord]) -> None:
        """Set records aside; a redelivered record is parked once (its coordinates are its id)."""
        if not records:
            return
        try:
            await self.parked.insert_many([record.document() for record in records], ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise

    async def parked_count(self) -> int:
        return await self.parked.count_documents({})

    async def parked_vote_ids(self, vote_ids: Iterable[str]) -> set[str]:
        cursor = self.parked.find({"vote_id": {"$in": list(set(vote_ids))}}, {"vote_id": 1})
        return {doc["vote_id"] async for doc in cursor}

    async def parked_records(self, limit: int) -> list[ParkedRecord]:
        """The oldest parked records, in the order they were sent."""
        cursor = self.parked.find().sort([("sent_ms", 1), ("partition", 1), ("offset", 1)]).limit(limit)
        return [ParkedRecord.from_document(doc) async for doc in cursor]

    async def unpark(self, records: list[ParkedRecord]) -> None:
        await self.parked.delete_many({"_id": {"$in": [record.record_id for record in records]}})


DUPLICATE_KEY = 11000


@dataclass(frozen=True)
class ParkedRecord:
    """An intake record waiting for its idea, kept whole so it can still be dead-lettered."""

    record: ConsumerRecord[bytes, bytes]
    idea_id: str
    vote_id: str

    @property
    def record_id(self) -> str:
        return f"{self.record.topic}:{self.record.partition}:{self.record.offset}"

    def document(self) -> Document:
        record = self.record
        return {
            "_id": self.record_id,
            "idea_id": self.idea_id,
            "vote_id": self.vote_id,
            "sent_ms": record.timestamp,
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "key": record.key,
            "value": record.value,
            "headers": [[name, value] for name, value in record.headers or ()],
        }

    @classmethod
    def from_document(cls, doc: Document) -> ParkedRecord:
        value: bytes = doc["value"]
        record = ConsumerRecord(
            topic=doc["topic"],
            partition=doc["partition"],
            offset=doc["offset"],
            timestamp=doc["sent_ms"],
            timestamp_type=0,
            key=doc.get("key"),
            value=value,
            checksum=None,
            serialized_key_size=len(doc.get("key") or b""),
            serialized_value_size=len(value),
            headers=[(name, bytes(header)) for name, header in doc.get("headers", [])],
        )
        return cls(record, doc["idea_id"], doc["vote_id"])


@dataclass(frozen=True)
class VersionedWrite:
    doc_id: str
    read_revision: int
    document: Document


def budget_id(campaign_id: str | None, voter_key: str) -> str:
    return f"{campaign_id}|{voter_key}"


def stored_vote(doc: Document | None) -> StoredVote | None:
    return StoredVote.model_validate(doc["vote"]) if doc and doc.get("vote") else None


def vote_document(
    vote: StoredVote | None,
    previous: Document | None,
    *,
    key: str | None,
    entry: Document | None,
    origin: Origin,
) -> Document:
    """The next state of a vote document: `vote` (None keeps the stored one), `key` remembered,
    and `entry` (the fact) kept as the origin needs."""
    current = vote if vote is not None else stored_vote(previous)
    doc = kept_with_change(
        previous, key=key, entry=entry, origin=origin, keys_kept=SEEN_KEYS_KEPT, facts_kept=RECENT_FACTS_KEPT
    )
    if current is not None:
        doc |= {
            "idea_id": current.idea_id,
            "voter_key": current.voter_key,
            "value": current.value,
            "vote": current.model_dump(mode="json"),
        }
    return doc
