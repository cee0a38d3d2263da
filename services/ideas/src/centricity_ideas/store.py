"""Ideas, campaigns, comments and known voters in MongoDB."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from centricity_contracts.campaigns import CampaignRecord
from centricity_contracts.ideas import Comment, DuplicateSuggestion, IdeaStatus
from centricity_ideas.domain import Idea
from centricity_ideas.similarity import embedding_text, stored_vector
from centricity_plumbing.idempotency import DUPLICATE_KEY, SEEN_FIELD, AppliedKeys
from centricity_plumbing.mongo import Document, update_versioned
from centricity_plumbing.outbox import OUTBOX_FIELD
from centricity_plumbing.rules import InvalidInput

DUPLICATE_KEY_ERROR = 11000
# The created fact of an idea taken in from Kafka, kept to republish on a redelivery.
CREATED_FIELD = "created_fact"
# An ISO 8601 string: a stored date comes back without its time zone.
DUPLICATES_CHECKED_AT = "duplicates_checked_at"
# When an idea last changed in what the similarity index holds; other replicas poll it.
INDEXED_MS = "indexed_ms"
# The idea's sentence embedding and a digest of the text it was made from: a restart or another
# replica reuses it rather than encoding again (seconds per hundred ideas), unless the text changed.
EMBEDDING = "embedding"
# Fields a change of the idea carries over from the stored document as they are.
CARRIED_FIELDS = (CREATED_FIELD, DUPLICATES_CHECKED_AT, EMBEDDING)
# How many recent intake keys each idea remembers, to drop redeliveries.
SEEN_KEYS_KEPT = 64

log = logging.getLogger(__name__)


class IdeaSort(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"
    RECENTLY_UPDATED = "recently_updated"
    MOST_COMMENTED = "most_commented"


# Times are paged on epoch milliseconds: nx-27017 compares stored dates wrongly in range queries.
SORTS: dict[IdeaSort, tuple[str, int]] = {
    IdeaSort.NEWEST: ("created_ms", DESCENDING),
    IdeaSort.OLDEST: ("created_ms", ASCENDING),
    IdeaSort.RECENTLY_UPDATED: ("updated_ms", DESCENDING),
    IdeaSort.MOST_COMMENTED: ("comment_count", DESCENDING),
}


@dataclass(frozen=True)
class IdeaFilter:
    businessunit: str | None = None
    campaign_id: str | None = None
    status: IdeaStatus | None = None
    tag: str | None = None
    customer_type: str | None = None
    with_internal_only: bool = True

    def query(self) -> Document:
        fields = {
            "businessunit": self.businessunit,
            "campaign_id": self.campaign_id,
            "status": self.status,
            "tags": self.tag,
            "author.customer_type": self.customer_type,
        }
        query: Document = {name: value for name, value in fields.items() if value is not None}
        if not self.with_internal_only:
            query["internal_only"] = {"$ne": True}
        return query


class InvalidCursor(InvalidInput):
    kind = "invalid-cursor"
    title = "Invalid cursor"

    pass


def encode_cursor(doc: Document, sort: IdeaSort) -> str:
    field, _ = SORTS[sort]
    payload = {"v": doc[field], "id": doc["_id"], "s": sort}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def decode_cursor(cursor: str, sort: IdeaSort) -> tuple[Any, str]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        value, last_id = payload["v"], str(payload["id"])
        if payload["s"] != sort:
            raise InvalidCursor("the cursor belongs to another sort order")
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidCursor(f"not a cursor from this API: {error}") from error
    if not isinstance(value, int):
        raise InvalidCursor("not a cursor from this API")
    return value, last_id


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def idea_document(idea: Idea, *, outbox: list[Document], seen: list[str]) -> Document:
    sort_keys = {"created_ms": epoch_ms(idea.created_at), "updated_ms": epoch_ms(idea.updated_at)}
    doc = {**idea.model_dump(), **sort_keys, "_id": idea.idea_id, OUTBOX_FIELD: outbox, SEEN_FIELD: seen}
    if idea.duplicates_checked:
        doc[INDEXED_MS] = sort_keys["updated_ms"]
    return doc


def carried_fields(doc: Document) -> Document:
    return {name: doc[name] for name in CARRIED_FIELDS if name in doc}


def has_current_embedding(doc: Document) -> bool:
    text = embedding_text(doc["title"], doc.get("description", ""))
    return stored_vector(doc.get(EMBEDDING), text) is not None


def stored_idea(doc: Document) -> Idea:
    return Idea.model_validate(doc)


class IdeaStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.ideas: AsyncCollection[Document] = db["ideas"]
        self.comments: AsyncCollection[Document] = db["comments"]
        self.campaigns: AsyncCollection[Document] = db["campaigns"]
        self.voters: AsyncCollection[Document] = db["idea_voters"]
        # Attestation links already answered with: each works once, later answers go the normal way.
        self.used_links: AsyncCollection[Document] = db["used_answer_links"]
        # Keys of the intake events and HTTP requests applied, beyond each idea's window of them.
        self.applied_requests = AppliedKeys(db["applied_requests"])

    async def ensure_indexes(self) -> None:
        # Sorts break ties on _id too; nx-27017 cannot index _id inside a compound index.
        for field, _ in SORTS.values():
            await self.ideas.create_index([(field, DESCENDING)])
        await self.ideas.create_index([("businessunit", ASCENDING), ("created_ms", DESCENDING)])
        await self.ideas.create_index([("status", ASCENDING)])
        await self.ideas.create_index([(INDEXED_MS, ASCENDING)])
        await self.comments.create_index([("idea_id", ASCENDING), ("commented_at", ASCENDING)])
        await self.applied_requests.ensure_indexes()

    async def insert_new(self, docs: list[Document]) -> tuple[list[Document], list[str]]:
        """Insert ideas in bulk; returns the stored documents and the ids that already existed."""
        if not docs:
            return [], []
        existed: list[str] = []
        try:
            await self.ideas.insert_many(docs, ordered=False)
        except BulkWriteError as error:
            failed = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY_ERROR for e in failed):
                raise
            existed = [docs[e["index"]]["_id"] for e in failed]
        if not existed:
            return docs, []
        found = {d["_id"]: d async for d in self.ideas.find({"_id": {"$in": existed}})}
        return [found.get(d["_id"], d) if d["_id"] in found else d for d in docs], existed

    async def documents(self, idea_ids: list[str]) -> dict[str, Document]:
        if not idea_ids:
            return {}
        return {doc["_id"]: doc async for doc in self.ideas.find({"_id": {"$in": idea_ids}})}

    async def change(
        self, idea_id: str, next_document: Callable[[Document | None], Document | None]
    ) -> Document | None:
        doc, _ = await update_versioned(self.ideas, idea_id, next_document)
        return doc

    async def save_embeddings(self, embeddings: dict[str, Document]) -> None:
        """Store embeddings made since the ideas were written (after an edit, or for old ideas)."""
        updates = [UpdateOne({"_id": i}, {"$set": {EMBEDDING: e}}) for i, e in embeddings.items()]
        if updates:
            await self.ideas.bulk_write(updates, ordered=False)

    async def record_duplicates(
        self, suggestions: list[DuplicateSuggestion], embeddings: dict[str, Document]
    ) -> bool:
        """Store each idea's likely duplicates once, in one bulk write; False if some ideas kept
        earlier ones.

        The revision moves on, so optimistic writers of the same ideas retry on top of it.
        """
        updates = [
            UpdateOne(
                {"_id": s.idea_id, "duplicates_checked": False},
                {
                    "$set": {
                        "likely_duplicates": [d.model_dump() for d in s.likely_duplicates],
                        "duplicates_checked": True,
                        DUPLICATES_CHECKED_AT: s.checked_at.isoformat(),
                        INDEXED_MS: epoch_ms(s.checked_at),
                        **({EMBEDDING: embeddings[s.idea_id]} if s.idea_id in embeddings else {}),
                    },
                    "$inc": {"revision": 1},
                },
            )
            for s in suggestions
        ]
        if not updates:
            return True
        result = await self.ideas.bulk_write(updates, ordered=False)
        return result.modified_count == len(updates)

    async def get(self, idea_id: str) -> Idea | None:
        doc = await self.ideas.find_one({"_id": idea_id})
        return stored_idea(doc) if doc else None

    async def page(
        self, *, where: IdeaFilter, sort: IdeaSort, limit: int, cursor: str | None
    ) -> tuple[list[Idea], str | None]:
        """One page of ideas, and the cursor of the next page (None at the end)."""
        field, direction = SORTS[sort]
        query = where.query()
        if cursor:
            value, last_id = decode_cursor(cursor, sort)
            beyond = "$lt" if direction == DESCENDING else "$gt"
            query = {
                "$and": [query, {"$or": [{field: {beyond: value}}, {field: value, "_id": {beyond: last_id}}]}]
            }
        found = self.ideas.find(query).sort([(field, direction), ("_id", direction)]).limit(limit + 1)
        docs = [doc async for doc in found]
        next_cursor = encode_cursor(docs[limit - 1], sort) if len(docs) > limit else None
        return [stored_idea(doc) for doc in docs[:limit]], next_cursor

    async def internal_only_among(self, idea_ids: Collection[str]) -> set[str]:
        if not idea_ids:
            return set()
        found = self.ideas.find({"_id": {"$in": list(idea_ids)}, "internal_only": True}, {"_id": 1})
        return {doc["_id"] async for doc in found}

    async def ideas_by_id(self, idea_ids: list[str]) -> dict[str, Idea]:
        return {idea_id: stored_idea(doc) for idea_id, doc in (await self.documents(idea_ids)).items()}

    async def add_comment(self, comment: Comment) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self.comments.insert_one(comment_document(comment))

    async def add_comments(self, comments: Sequence[Comment]) -> None:
        """Insert the comments not stored yet; those stored are left as they are."""
        if not comments:
            return
        try:
            await self.comments.insert_many([comment_document(c) for c in comments], ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise

    async def comment(self, comment_id: str) -> Comment | None:
        doc = await self.comments.find_one({"_id": comment_id})
        return Comment.model_validate(doc) if doc else None

    async def comments_of(self, idea_id: str, *, skip: int = 0, limit: int = 0) -> list[Comment]:
        """An idea's comments, oldest first; a page of them with `limit` (0: all)."""
        found = (
            self.comments.find({"idea_id": idea_id})
            .sort([("commented_at", ASCENDING), ("_id", ASCENDING)])
            .skip(skip)
            .limit(limit)
        )
        return [Comment.model_validate(doc) async for doc in found]

    async def add_campaign(self, campaign: CampaignRecord) -> tuple[CampaignRecord, bool]:
        try:
            await self.campaigns.insert_one({**campaign.model_dump(), "_id": campaign.campaign_id})
        except DuplicateKeyError:
            existing = await self.get_campaign(campaign.campaign_id)
            if existing is None:
                raise
            return existing, False
        return campaign, True

    async def get_campaign(self, campaign_id: str) -> CampaignRecord | None:
        doc = await self.campaigns.find_one({"_id": campaign_id})
        return CampaignRecord.model_validate(doc) if doc else None

    async def list_campaigns(
        self, businessunit: str | None, *, limit: int, offset: int = 0
    ) -> list[CampaignRecord]:
        query = {"$or": [{"businessunit": businessunit}, {"scope": "enterprise"}]} if businessunit else {}
        cursor = self.campaigns.find(query).sort([("opens_at", DESCENDING), ("_id", ASCENDING)])
        return [CampaignRecord.model_validate(doc) async for doc in cursor.skip(offset).limit(limit)]

    async def remember_voter(self, vote_id: str, idea_id: str) -> None:
        await self.voters.update_one({"_id": vote_id}, {"$set": {"idea_id": idea_id}}, upsert=True)

    async def link_used(self, link_id: str) -> bool:
        return await self.used_links.find_one({"_id": link_id}) is not None

    async def use_link(self, link_id: str, *, idea_id: str, at: str) -> None:
        await self.used_links.update_one(
            {"_id": link_id}, {"$setOnInsert": {"idea_id": idea_id, "used_at": at}}, upsert=True
        )

    async def has_voted(self, idea_id: str, voter_key: str) -> bool:
        return await self.voters.find_one({"_id": f"{idea_id}:{voter_key}"}) is not None

    async def searchable(self, since: datetime | None = None) -> list[Document]:
        """Every idea, or those changed since a time whose likely duplicates were looked for.

        Ideas still waiting for the duplicate finder are left to it: it indexes them itself, and
        other replicas see them once it has (a burst is not read twice).
        """
        query = {INDEXED_MS: {"$gt": epoch_ms(since)}} if since else {}
        projection = {"title": 1, "description": 1, "businessunit": 1, "status": 1, EMBEDDING: 1}
        return [doc async for doc in self.ideas.find(query, projection)]


def comment_document(comment: Comment) -> Document:
    return {**comment.model_dump(), "_id": comment.comment_id}
