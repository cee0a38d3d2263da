"""Changes to shared documents applied at most once per tag, without multi-document transactions.

A batch that moves many counter documents (a unit's totals, its hourly series) cannot rely on a
transaction to make the moves all-or-nothing: the local store keeps the writes of a transaction
whose client was killed, and the design must hold on any store. Instead, the change's inputs are
kept first where they cannot be lost (in the documents the batch changed), and then each shared
document is moved in one single-document write that also records the batch's tag under
`applied`. Running the same tagged change again, after a crash or by a second replica that
found it pending, leaves a document that already holds the tag as it is.

Tags are forgotten once they are old enough that no writer can still be applying them.
"""

from __future__ import annotations

from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from centricity_plumbing.mongo import Document

APPLIED = "applied"
GUARDED_MS = "guarded_ms"
DUPLICATE_KEY = 11000
# A writer that read a pending change more than this long ago and has still not applied it is
# assumed gone; its tags are forgotten after this.
FORGET_AFTER_MS = 120_000


def _guarded(doc_id: str, tag: str, update: Document, now_ms: int, *, upsert: bool) -> UpdateOne:
    marks = {f"{APPLIED}.{tag}": now_ms, GUARDED_MS: now_ms}
    return UpdateOne(
        {"_id": doc_id, f"{APPLIED}.{tag}": {"$exists": False}},
        {**update, "$set": {**update.get("$set", {}), **marks}},
        upsert=upsert,
    )


async def update_once(
    collection: AsyncCollection[Document], tag: str, updates: dict[str, Document], *, now_ms: int
) -> None:
    """Apply `updates` (document id to update operators), each at most once for `tag`.

    A document already holding the tag does not match the filter, so its upsert collides with it
    (duplicate key). A collision can also mean a concurrent writer created the document first;
    those updates are sent again without upsert, which applies them exactly when the tag is
    missing.
    """
    if not updates:
        return
    ids = list(updates)
    try:
        await collection.bulk_write(
            [_guarded(doc_id, tag, updates[doc_id], now_ms, upsert=True) for doc_id in ids], ordered=False
        )
        return
    except BulkWriteError as error:
        errors = error.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        collided = [ids[e["index"]] for e in errors]
    await collection.bulk_write(
        [_guarded(doc_id, tag, updates[doc_id], now_ms, upsert=False) for doc_id in collided], ordered=False
    )


async def forget_applied(
    collection: AsyncCollection[Document], *, now_ms: int, keep: set[str] | frozenset[str] = frozenset()
) -> int:
    """Drop tags older than FORGET_AFTER_MS from the documents that hold any, except those in
    `keep` (changes that may still be applied again); returns how many."""
    before = now_ms - FORGET_AFTER_MS
    forgotten = 0
    cursor = collection.find({GUARDED_MS: {"$gte": 0}}, projection={APPLIED: 1, GUARDED_MS: 1})
    async for doc in cursor:
        applied: dict[str, Any] = doc.get(APPLIED) or {}
        old = [tag for tag, at in applied.items() if at < before and tag not in keep]
        if not old:
            continue
        unset = {f"{APPLIED}.{tag}": "" for tag in old}
        if len(old) == len(applied) and doc[GUARDED_MS] < before:
            # Only if no writer has added a tag since this read.
            await collection.update_one(
                {"_id": doc["_id"], GUARDED_MS: doc[GUARDED_MS]}, {"$unset": {**unset, GUARDED_MS: ""}}
            )
        else:
            await collection.update_one({"_id": doc["_id"]}, {"$unset": unset})
        forgotten += len(old)
    return forgotten
