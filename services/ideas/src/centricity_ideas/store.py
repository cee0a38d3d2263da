"""Ideas in MongoDB: one document per idea, `_id` derived from its business unit and reference."""

from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from centricity_contracts.ideas import IdeaRecord
from centricity_plumbing.mongo import Document
from centricity_plumbing.outbox import OUTBOX_FIELD


class IdeaStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.ideas: AsyncCollection[Document] = db["ideas"]

    async def insert_new(self, record: IdeaRecord, outbox: list[Document]) -> tuple[Document, bool]:
        """Store `record` with its pending facts; if it already exists, return what is stored."""
        doc = {"_id": record.idea_id, **record.model_dump(), OUTBOX_FIELD: outbox}
        try:
            await self.ideas.insert_one(doc)
        except DuplicateKeyError:
            existing = await self.ideas.find_one({"_id": record.idea_id})
            if existing is None:  # deleted between the two calls: nothing to return but ours
                raise
            return existing, False
        return doc, True

    async def get(self, idea_id: str) -> IdeaRecord | None:
        doc = await self.ideas.find_one({"_id": idea_id})
        return to_record(doc) if doc else None


def to_record(doc: Document) -> IdeaRecord:
    return IdeaRecord.model_validate(doc)
