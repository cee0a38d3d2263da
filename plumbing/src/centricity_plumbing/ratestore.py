"""A `limits` storage on PyMongo's AsyncMongoClient, so that every replica of a service shares its
rate-limit counters: the library's own MongoDB storage needs Motor, which is end-of-life.

It serves fixed windows: one document per key and window, `{count, expires_at_ms}`.
"""

from __future__ import annotations

import time

from limits.aio.storage import Storage
from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from centricity_plumbing.mongo import Document

WRITE_ATTEMPTS = 5


def now_ms() -> int:
    return int(time.time() * 1000)


class MongoCounterStorage(Storage):
    STORAGE_SCHEME = ["centricity-mongodb"]

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        super().__init__()
        self.collection = collection

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return PyMongoError

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        for _ in range(WRITE_ATTEMPTS):
            current = now_ms()
            live = await self.collection.find_one_and_update(
                {"_id": key, "expires_at_ms": {"$gt": current}},
                {"$inc": {"count": amount}},
                return_document=ReturnDocument.AFTER,
            )
            if live is not None:
                return int(live["count"])
            window = {"count": amount, "expires_at_ms": current + expiry * 1000}
            # No live window: start one, over an expired one if there is.
            renewed = await self.collection.update_one(
                {"_id": key, "expires_at_ms": {"$lte": current}}, {"$set": window}
            )
            if renewed.modified_count:
                return amount
            try:
                await self.collection.insert_one({"_id": key, **window})
            except DuplicateKeyError:
                continue  # another replica started the window first: count in it
            return amount
        raise RuntimeError(f"rate-limit window {key!r} kept changing")

    async def get(self, key: str) -> int:
        doc = await self.collection.find_one({"_id": key, "expires_at_ms": {"$gt": now_ms()}})
        return int(doc["count"]) if doc else 0

    async def get_expiry(self, key: str) -> float:
        doc = await self.collection.find_one({"_id": key})
        return (doc["expires_at_ms"] if doc else now_ms()) / 1000

    async def check(self) -> bool:
        await self.collection.database.command("ping")
        return True

    async def reset(self) -> int | None:
        return (await self.collection.delete_many({})).deleted_count

    async def clear(self, key: str) -> None:
        await self.collection.delete_one({"_id": key})

    def __repr__(self) -> str:
        return f"MongoCounterStorage({self.collection.full_name})"
