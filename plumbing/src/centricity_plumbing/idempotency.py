"""The one way a service applies a change once per event key and keeps the facts it causes.

No multi-document transaction is needed (the local store keeps the writes of a transaction whose
client died): everything rides in the single-document write of the document that changes.

- `seen`: the keys of the last events applied to the document. A redelivered event finds its
  key and changes nothing.
- `AppliedKeys`: for documents that many events change (an idea's insights, counting every
  vote), the window in `seen` cannot hold all the keys a republish may still come for. A copy can
  come thousands of facts after the original: the upstream service republishes after its own
  crash, from its outbox or for redelivered records. The keys of applied events are kept in a
  collection as well, written after the documents, and looked up before applying. The window then
  covers only what a crash between the two writes leaves: one batch.
- `recent`: the facts the last events caused, by key. A redelivered event publishes its kept fact
  again, under the same id, instead of causing a new one.
- `outbox` (see `outbox.py`): facts not yet published. They are published, then cleared, and
  published again at start-up if a crash came in between.

Which of the last two keeps a fact depends on who asked (`Origin`). A change whose facts can be
derived again under the same ids (the notifications service's paged telling, the insights
projection's snapshots) needs neither: it stays open until done, and is done again after a crash.
Counters shared by many changes are moved once per change by `once.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from centricity_plumbing.mongo import Document
from centricity_plumbing.outbox import OUTBOX_FIELD, pending_entries

SEEN_FIELD = "seen"
RECENT_FIELD = "recent"


class Origin(StrEnum):
    """Who asked for a change, which decides how its facts survive a crash."""

    # Nobody asks again after a crash: the facts wait in the outbox until published.
    HTTP = "http"
    # The record is redelivered until its offset is committed: the redelivery publishes again.
    KAFKA = "kafka"

    @property
    def keeps_facts_pending(self) -> bool:
        return self is Origin.HTTP


def seen_keys(doc: Document | None) -> list[str]:
    return list((doc or {}).get(SEEN_FIELD, []))


def has_seen(doc: Document | None, key: str | None) -> bool:
    """Whether the event `key` was already applied to this document (an unkeyed event never is)."""
    return key is not None and key in (doc or {}).get(SEEN_FIELD, ())


def remember(seen: list[str], key: str | None, keep: int) -> list[str]:
    """`seen` with `key` appended, bounded to the last `keep` keys."""
    return [*seen, key][-keep:] if key else list(seen)


def recent_facts(doc: Document | None) -> list[Document]:
    return list((doc or {}).get(RECENT_FIELD, []))


def recent_fact(doc: Document | None, key: str | None) -> Document | None:
    """The fact that event `key` caused on this document, if it is still kept."""
    if key is None:
        return None
    return next((item["entry"] for item in recent_facts(doc) if item["key"] == key), None)


def kept_with_change(
    previous: Document | None,
    *,
    key: str | None,
    entry: Document | None,
    origin: Origin,
    keys_kept: int,
    facts_kept: int,
) -> dict[str, Any]:
    """The bookkeeping fields of a document after a change by event `key` that caused `entry`
    (an outbox entry, or None): the key remembered, the fact kept for a redelivery and, when
    nobody would ask again, pending in the outbox."""
    recent = recent_facts(previous)
    outbox = pending_entries(previous)
    if entry is not None:
        recent = [*recent, {"key": key or entry["id"], "entry": entry}][-facts_kept:]
        if origin.keeps_facts_pending:
            outbox.append(entry)
    return {
        SEEN_FIELD: remember(seen_keys(previous), key, keys_kept),
        RECENT_FIELD: recent,
        OUTBOX_FIELD: outbox,
    }


DUPLICATE_KEY = 11000
# How long the keys of applied events are kept. An upstream service that republishes later than
# this (one down for over a month, with facts in its outbox) would have them counted twice.
APPLIED_KEYS_RETENTION_S = 30 * 24 * 3600


class AppliedKeys:
    """The keys of the events applied to a collection's documents, each kept for a retention
    period (a TTL index), to skip copies that come too late for the documents' `seen` window."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def ensure_indexes(self) -> None:
        await self.collection.create_index(
            [("applied_at", ASCENDING)], expireAfterSeconds=APPLIED_KEYS_RETENTION_S
        )

    async def among(self, keys: Iterable[str]) -> set[str]:
        """Which of `keys` were applied."""
        wanted = list(set(keys))
        if not wanted:
            return set()
        return {doc["_id"] async for doc in self.collection.find({"_id": {"$in": wanted}}, {"_id": 1})}

    async def add(self, keys: Iterable[str]) -> None:
        """Record `keys` as applied; recording one again keeps its first time."""
        now = datetime.now(UTC)
        upserts = [
            UpdateOne({"_id": key}, {"$setOnInsert": {"applied_at": now}}, upsert=True) for key in set(keys)
        ]
        if not upserts:
            return
        try:
            await self.collection.bulk_write(upserts, ordered=False)
        except BulkWriteError as error:  # a concurrent writer recorded some first: that is the aim
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise
