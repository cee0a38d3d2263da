"""Insights in MongoDB: one document per idea, per unit, per unit and hour, per unit and participant,
per attestation question (idea and customer) and per reminder of one.

A batch of facts is written in two steps, neither of which needs a multi-document transaction:

1. Each changed idea is written in one single-document write (checked against its revision)
   with the fact keys it has applied and the batch's effects on its units, under a tag.
2. The effects of the tag are then applied to the units, their hourly series and the
   participants, each document at most once per tag (`centricity_plumbing.once`).

Participants, questions and reminders are claimed: the first tag to set a field of their
document counts them, and a run again of the same tag (a recovery) reads the same claims back.
A question counts as asked for the tag that first sets `asked_tag`, and as answered for the tag
that first sets `answer_tag`, which needs both `asked_tag` and `answered_tag` set: each tag tries
it after its own claims, so whichever of the two facts comes second (or a recovery) counts it.

A small document per batch (`unapplied_batches`) is written before step 1 and deleted after
step 2. A crash between or within the steps leaves it, and the effects in the ideas; whoever
touches one of those ideas next, or the service at start, applies them again, and documents that
already hold the tag stay as they are. So a redelivered fact is skipped by its idea and still moves every
unit exactly once.
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

from centricity_contracts.ideas import IdeaStatus
from centricity_contracts.insights import IdeaInsight
from centricity_insights.audit import AuditQuery, epoch_ms
from centricity_insights.domain import (
    Counters,
    UnitCounters,
    add_into,
    question_counts,
    reminded_counters,
    series_counters,
)
from centricity_plumbing.idempotency import AppliedKeys
from centricity_plumbing.mongo import ConcurrentUpdateError, Document
from centricity_plumbing.once import DUPLICATE_KEY, forget_applied, update_once

FACT_BATCH = 1000
# How many recent fact keys each idea remembers, to drop redeliveries: all of one batch, which a
# crash after the ideas' write and before the keys' (`AppliedKeys`) leaves to be skipped here.
# Copies that come later are found among the applied keys.
SEEN_KEYS_KEPT = FACT_BATCH
PENDING_SNAPSHOT = "pending_snapshot"
EFFECTS = "effects"
HOUR_MS = 3_600_000


class Ranking(StrEnum):
    SCORE = "score"
    WILSON = "wilson"
    TRENDING = "trending"
    WEIGHTED = "weighted"


# A merged twin counts as its survivor, and a withdrawn idea was taken back: neither ranks.
OFF_THE_RANKING = (IdeaStatus.DUPLICATE, IdeaStatus.WITHDRAWN)
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
class UnitEffects:
    """What one idea's changes in a batch do to units: counters, hourly series, participants.

    Participants are candidates: a customer counts for a unit only in the batch whose tag first
    claims the participant document.
    """

    units: UnitCounters = field(default_factory=dict)
    series: dict[tuple[str, int], Counters] = field(default_factory=dict)
    participants: dict[tuple[str, str], int] = field(default_factory=dict)
    # Candidate attestation questions, by question id: asked (its units and when), answered
    # (when), and reminders by notification id (the question's units and when).
    asks: dict[str, tuple[list[str], int]] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)
    reminders: dict[str, tuple[list[str], int]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(
            self.units or self.series or self.participants or self.asks or self.answers or self.reminders
        )

    def add(self, change: UnitCounters, hour: int) -> None:
        add_into(self.units, change)
        for unit, counters in change.items():
            add_into(self.series, {(unit, hour): series_counters(counters)})

    def ask(self, question: str, units: list[str], at_ms: int) -> None:
        """The earliest request of a question in the batch is its candidate."""
        if question not in self.asks or at_ms < self.asks[question][1]:
            self.asks[question] = (units, at_ms)

    def answer(self, question: str, at_ms: int) -> None:
        self.answers[question] = min(at_ms, self.answers.get(question, at_ms))

    def remind(self, notification_id: str, units: list[str], at_ms: int) -> None:
        self.reminders.setdefault(notification_id, (units, at_ms))

    def merge(self, other: UnitEffects) -> None:
        add_into(self.units, other.units)
        add_into(self.series, other.series)
        for pair, hour in other.participants.items():
            self.participants[pair] = min(hour, self.participants.get(pair, hour))
        for question, (units, at_ms) in other.asks.items():
            self.ask(question, units, at_ms)
        for question, at_ms in other.answers.items():
            self.answer(question, at_ms)
        for notification_id, (units, at_ms) in other.reminders.items():
            self.remind(notification_id, units, at_ms)

    def to_document(self, tag: str) -> Document:
        return {
            "tag": tag,
            "units": [[unit, counters] for unit, counters in self.units.items()],
            "series": [[unit, hour, counters] for (unit, hour), counters in self.series.items()],
            "participants": [[unit, key, hour] for (unit, key), hour in self.participants.items()],
            "asks": [[question, units, at_ms] for question, (units, at_ms) in self.asks.items()],
            "answers": [[question, at_ms] for question, at_ms in self.answers.items()],
            "reminders": [[nid, units, at_ms] for nid, (units, at_ms) in self.reminders.items()],
        }

    @classmethod
    def from_document(cls, doc: Document) -> UnitEffects:
        return cls(
            units={unit: counters for unit, counters in doc.get("units", [])},
            series={(unit, hour): counters for unit, hour, counters in doc.get("series", [])},
            participants={(unit, key): hour for unit, key, hour in doc.get("participants", [])},
            asks={question: (list(units), at_ms) for question, units, at_ms in doc.get("asks", [])},
            answers={question: at_ms for question, at_ms in doc.get("answers", [])},
            reminders={nid: (list(units), at_ms) for nid, units, at_ms in doc.get("reminders", [])},
        )


def participant_id(unit: str, customer_key: str) -> str:
    return f"{unit}|{customer_key}"


class InsightStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.ideas: AsyncCollection[Document] = db["idea_insights"]
        self.units: AsyncCollection[Document] = db["unit_insights"]
        self.series: AsyncCollection[Document] = db["unit_series"]
        self.participants: AsyncCollection[Document] = db["unit_participants"]
        # One document per attestation question (idea and customer), and per reminder of one.
        self.questions: AsyncCollection[Document] = db["attestation_questions"]
        self.reminders: AsyncCollection[Document] = db["attestation_reminders"]
        # One small document per batch whose effects are not yet applied everywhere.
        self.batches: AsyncCollection[Document] = db["unapplied_batches"]
        self.applied_facts = AppliedKeys(db["applied_facts"])

    async def ensure_indexes(self) -> None:
        # Only the rankings are indexed, and the tag of effects not yet applied: every index is
        # rewritten with each idea's change, and the per-fact cost must not grow with the number
        # of ideas. Pending snapshots of ideas are looked for once, at start. (An idea carries at
        # most one tag, never a list: nx-27017 answers lookups on multikey indexes wrongly.)
        for name in ("score", "wilson_lower_bound", "trending", "weighted_score"):
            await self.ideas.create_index([(name, DESCENDING)])
        await self.ideas.create_index([(f"{EFFECTS}.tag", ASCENDING)])
        await self.units.create_index([(PENDING_SNAPSHOT, ASCENDING)])
        await self.series.create_index([("unit", ASCENDING), ("hour_ms", ASCENDING)])
        await self.applied_facts.ensure_indexes()

    async def batches_unapplied(self) -> int:
        """Batches whose effects on the units are not applied everywhere yet."""
        return await self.batches.count_documents({})

    async def snapshots_waiting(self) -> int:
        """Units whose snapshot is not yet published (indexed; ideas' are looked for at start)."""
        return await self.units.count_documents({PENDING_SNAPSHOT: True})

    # --- writes --------------------------------------------------------------------------------

    async def load_ideas(self, idea_ids: Iterable[str]) -> dict[str, Document]:
        ids = list(idea_ids)
        return {doc["_id"]: doc async for doc in self.ideas.find({"_id": {"$in": ids}})}

    async def write_ideas(self, writes: list[IdeaWrite]) -> None:
        """Write ideas, each only if unchanged since read; ConcurrentUpdateError if any had changed.

        The ideas that were unchanged are written even then: their effects are applied by the
        retry, which finds them pending.
        """
        if not writes:
            return
        operations: list[InsertOne[Document] | ReplaceOne[Document]] = [
            InsertOne(write.document)
            if write.stored_revision is None
            # The replacement names its _id: nx-27017 does not take it from the filter.
            else ReplaceOne({"_id": write.document["_id"], "revision": write.stored_revision}, write.document)
            for write in writes
        ]
        try:
            result = await self.ideas.bulk_write(operations, ordered=False)
        except (BulkWriteError, DuplicateKeyError) as error:
            raise ConcurrentUpdateError(f"another writer created an idea first: {error}") from error
        replaced = sum(write.stored_revision is not None for write in writes)
        if result.matched_count != replaced:
            raise ConcurrentUpdateError(f"{replaced - result.matched_count} ideas changed under the batch")

    async def pending_effects(self, tag: str) -> tuple[list[str], UnitEffects]:
        """The ideas that still carry `tag`'s effects, and those effects together."""
        ideas: list[str] = []
        effects = UnitEffects()
        async for doc in self.ideas.find({f"{EFFECTS}.tag": tag}, projection={EFFECTS: 1}):
            ideas.append(doc["_id"])
            effects.merge(UnitEffects.from_document(doc[EFFECTS]))
        return ideas, effects

    async def pending_tags(self) -> set[str]:
        """Every batch whose effects may not have been applied everywhere yet."""
        return {doc["_id"] async for doc in self.batches.find({}, projection={"_id": 1})}

    async def unfinished(self, tags: Iterable[str]) -> set[str]:
        """Which of these batches have not finished applying their effects."""
        wanted = list(tags)
        if not wanted:
            return set()
        cursor = self.batches.find({"_id": {"$in": wanted}}, projection={"_id": 1})
        return {doc["_id"] async for doc in cursor}

    async def begin(self, tag: str, *, now_ms: int) -> None:
        """Note a batch before its ideas are written: until it finishes, its effects are pending."""
        await self.batches.insert_one({"_id": tag, "started_ms": now_ms})

    async def apply_effects(self, tag: str, effects: UnitEffects, *, now_ms: int) -> set[str]:
        """Move units, series and participants by `effects`, once for `tag`; then the batch is done.
        Returns the units moved (for their snapshots)."""
        totals = UnitEffects()
        totals.merge(effects)
        for unit, hour in await self._claim_participants(tag, effects.participants):
            totals.add({unit: {"participants": 1}}, hour)
        for change, hour in await self._claim_questions(tag, effects):
            totals.add(change, hour)
        await self._move_units(tag, totals.units, now_ms=now_ms)
        await self._move_series(tag, totals.series, now_ms=now_ms)
        await self._finish(tag)
        return set(totals.units)

    async def _move_units(self, tag: str, units: UnitCounters, *, now_ms: int) -> None:
        await update_once(
            self.units,
            tag,
            {
                unit: {
                    "$inc": {**counters, "revision": 1},
                    "$set": {PENDING_SNAPSHOT: True, "updated_ms": now_ms},
                }
                for unit, counters in units.items()
            },
            now_ms=now_ms,
        )

    async def _move_series(self, tag: str, series: dict[tuple[str, int], Counters], *, now_ms: int) -> None:
        await update_once(
            self.series,
            tag,
            {
                f"{unit}|{hour_ms}": {"$inc": counters, "$set": {"unit": unit, "hour_ms": hour_ms}}
                for (unit, hour_ms), counters in series.items()
            },
            now_ms=now_ms,
        )

    async def _finish(self, tag: str) -> None:
        # The ideas keep the effects (a next change of each replaces them): without the batch's
        # document they are known to be applied, and rewriting every idea again would double
        # the cost of a batch.
        await self.batches.delete_one({"_id": tag})

    async def _claim_participants(
        self, tag: str, candidates: dict[tuple[str, str], int]
    ) -> list[tuple[str, int]]:
        """Each candidate participant's unit and hour, for those this tag is the first to claim."""
        if not candidates:
            return []
        documents = [
            {"_id": participant_id(unit, key), "unit": unit, "tag": tag, "hour_ms": hour}
            for (unit, key), hour in candidates.items()
        ]
        try:
            await self.participants.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise
        claimed = self.participants.find({"_id": {"$in": [d["_id"] for d in documents]}, "tag": tag})
        return [(doc["unit"], doc["hour_ms"]) async for doc in claimed]

    async def _claim_questions(self, tag: str, effects: UnitEffects) -> list[tuple[UnitCounters, int]]:
        """What the questions and reminders this tag is the first to claim add to units, by hour."""
        counted = await self._claim_reminders(tag, effects.reminders)
        questions = list(effects.asks.keys() | effects.answers.keys())
        if not questions:
            return counted
        await self._claim_field(
            tag,
            "asked",
            {q: {"asked_ms": at_ms, "units": units} for q, (units, at_ms) in effects.asks.items()},
        )
        await self._claim_field(
            tag, "answered", {q: {"answered_ms": at_ms} for q, at_ms in effects.answers.items()}
        )
        # Answered once both are known: by this tag if the other fact's tag has claimed its
        # field already, else by that tag, which tries after its own claim.
        await self.questions.bulk_write(
            [
                UpdateOne(
                    {
                        "_id": question,
                        "asked_tag": {"$exists": True},
                        "answered_tag": {"$exists": True},
                        "answer_tag": {"$exists": False},
                    },
                    {"$set": {"answer_tag": tag}},
                )
                for question in questions
            ],
            ordered=False,
        )
        async for doc in self.questions.find({"_id": {"$in": questions}}):
            counted += question_counts(doc, tag)
        return counted

    async def _claim_field(self, tag: str, name: str, values: dict[str, Document]) -> None:
        """Set `<name>_tag` (and `values`) on each question that has none yet."""
        if not values:
            return
        guard = f"{name}_tag"

        def claim(question: str, upsert: bool) -> UpdateOne:
            return UpdateOne(
                {"_id": question, guard: {"$exists": False}},
                {"$set": {guard: tag, **values[question]}},
                upsert=upsert,
            )

        ids = list(values)
        try:
            await self.questions.bulk_write([claim(q, True) for q in ids], ordered=False)
            return
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            collided = [ids[e["index"]] for e in errors]
        # A collision: the question exists with the field claimed (nothing to do), or another
        # writer created it meanwhile (claim it now, if still unclaimed).
        await self.questions.bulk_write([claim(q, False) for q in collided], ordered=False)

    async def _claim_reminders(
        self, tag: str, reminders: dict[str, tuple[list[str], int]]
    ) -> list[tuple[UnitCounters, int]]:
        if not reminders:
            return []
        try:
            await self.reminders.insert_many([{"_id": nid, "tag": tag} for nid in reminders], ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise
        claimed = self.reminders.find({"_id": {"$in": list(reminders)}, "tag": tag})
        return [reminded_counters(*reminders[doc["_id"]]) async for doc in claimed]

    async def forget_applied(self, *, now_ms: int) -> int:
        """Forget the tags of finished batches: an unfinished one may still be applied again."""
        keep = await self.pending_tags()
        units = await forget_applied(self.units, now_ms=now_ms, keep=keep)
        return units + await forget_applied(self.series, now_ms=now_ms, keep=keep)

    async def stale_tags(self, *, started_before_ms: int) -> set[str]:
        cursor = self.batches.find({"started_ms": {"$lt": started_before_ms}}, projection={"_id": 1})
        return {doc["_id"] async for doc in cursor}

    async def name_units(self, titles: dict[str, str], *, session: Any = None) -> None:
        """Give units their titles (a unit named before its first counter exists with zeros)."""
        await self.units.bulk_write(
            [
                UpdateOne(
                    {"_id": unit},
                    {"$set": {"title": title, PENDING_SNAPSHOT: True}, "$setOnInsert": {"revision": 0}},
                    upsert=True,
                )
                for unit, title in titles.items()
            ],
            ordered=False,
            session=session,
        )

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

    async def unit_page(self, keys: tuple[str, str] | None, after: str | None, limit: int) -> list[Document]:
        """Units by key within `keys` (from, to exclusive), after `after`, at most `limit`."""
        bounds: Document = {}
        if keys is not None:
            bounds["$gte"], bounds["$lt"] = keys
        if after is not None and (keys is None or after >= keys[0]):
            bounds.pop("$gte", None)
            bounds["$gt"] = after
        query: Document = {"_id": bounds} if bounds else {}
        return [doc async for doc in self.units.find(query).sort("_id", ASCENDING).limit(limit)]

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
        query["status"] = {"$nin": list(OFF_THE_RANKING)}
        if ranking is Ranking.TRENDING:
            query["trending"] = {"$type": "double"}
        cursor = self.ideas.find(query).sort(RANKING_FIELDS[ranking]).limit(limit)
        return [IdeaInsight.model_validate(doc) async for doc in cursor]

    async def hourly(self, unit: str, since_ms: int) -> list[Document]:
        cursor = self.series.find({"unit": unit, "hour_ms": {"$gte": since_ms}}).sort("hour_ms", ASCENDING)
        return [doc async for doc in cursor]


class AuditStore:
    """The audit trail's entries, one per fact (by its CloudEvents identity), each kept until
    its `expires_at` (a TTL index), newest first."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.entries: AsyncCollection[Document] = db["audit_trail"]

    async def ensure_indexes(self) -> None:
        # Epoch milliseconds and `event_id` (a copy of `_id`): nx-27017 ranges over dates
        # unreliably and cannot put `_id` in a compound index.
        newest_first = [("time_ms", DESCENDING), ("event_id", DESCENDING)]
        await self.entries.create_index(newest_first)
        for field_name in ("businessunit", "principal", "idea_id"):
            await self.entries.create_index([(field_name, ASCENDING), *newest_first])
        await self.entries.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)

    async def record(self, entries: list[Document]) -> None:
        """Add entries; one recorded before (a redelivered fact) is kept as it was."""
        writes = [
            UpdateOne(
                {"_id": e["_id"]}, {"$setOnInsert": {k: v for k, v in e.items() if k != "_id"}}, upsert=True
            )
            for e in entries
        ]
        if not writes:
            return
        try:
            await self.entries.bulk_write(writes, ordered=False)
        except BulkWriteError as error:  # a concurrent replica recorded some first
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise

    async def page(self, query: AuditQuery, *, after: tuple[int, str] | None, limit: int) -> list[Document]:
        """Entries matching `query`, newest first, older than the position `after`."""
        conditions: list[Document] = [
            {name: value}
            for name, value in (
                ("principal", query.principal),
                ("idea_id", query.idea_id),
                ("businessunit", query.businessunit),
            )
            if value is not None
        ]
        if query.since is not None:
            conditions.append({"time_ms": {"$gte": epoch_ms(query.since)}})
        if query.until is not None:
            conditions.append({"time_ms": {"$lt": epoch_ms(query.until)}})
        if after is not None:
            at_ms, event_id = after
            conditions.append(
                {"$or": [{"time_ms": {"$lt": at_ms}}, {"time_ms": at_ms, "event_id": {"$lt": event_id}}]}
            )
        cursor = (
            self.entries.find({"$and": conditions} if conditions else {})
            .sort([("time_ms", DESCENDING), ("event_id", DESCENDING)])
            .limit(limit)
        )
        return [doc async for doc in cursor]
