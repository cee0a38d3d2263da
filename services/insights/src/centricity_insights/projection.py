"""The insights projection: each fact applied once to its ideas and units, and the snapshots of what
changed, coalesced to at most one per key per short window, for Kafka and the live dashboards."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from faststream.kafka import KafkaBroker
from opentelemetry import context as otel_context
from opentelemetry import propagate
from prometheus_client import Histogram

from centricity_contracts.campaigns import CampaignCreated
from centricity_contracts.insights import (
    IdeaInsight,
    IdeaInsightUpdated,
    UnitInsight,
    UnitInsightUpdated,
    UnitKind,
)
from centricity_contracts.topics import (
    IDEAS_EVENTS,
    INSIGHTS_IDEAS,
    INSIGHTS_UNITS,
    NOTIFICATIONS,
    VOTES_EVENTS,
)
from centricity_insights.domain import (
    FACT_CLASSES,
    Fact,
    IdeaState,
    Question,
    QuestionEvent,
    UnitCounters,
    contribution_change,
    fact_time,
    facts_about,
    hour_of,
    idea_snapshot,
    participants_of,
    question_id,
    remembered_by_idea,
    unit_insight,
    unit_key,
    unit_snapshot,
)
from centricity_insights.store import (
    EFFECTS,
    PENDING_SNAPSHOT,
    SEEN_KEYS_KEPT,
    IdeaWrite,
    InsightStore,
    UnitEffects,
)
from centricity_plumbing.broker import enqueue_payload
from centricity_plumbing.clock import utc_now
from centricity_plumbing.facts import decode_event
from centricity_plumbing.idempotency import SEEN_FIELD, remember, seen_keys
from centricity_plumbing.mongo import ConcurrentUpdateError, Document

log = logging.getLogger(__name__)

Carrier = dict[str, str]
COMMIT_ATTEMPTS = 20
FORGET_EVERY_S = 15.0
# A batch still unfinished this long after it began is applied by whoever notices.
STALE_BATCH_MS = 30_000
# Every topic of facts insights counts.
FACT_TOPICS = (IDEAS_EVENTS, VOTES_EVENTS, NOTIFICATIONS)


def parse_fact(raw: bytes | None) -> Fact | None:
    """The fact in a record, None for a type insights does not count; RejectedEvent if broken."""
    fact = decode_event(raw, *FACT_TOPICS)
    return fact if isinstance(fact, FACT_CLASSES) else None


@dataclass
class BatchOutcome:
    applied: int
    ideas: set[str]
    units: set[str]


def add_question(effects: UnitEffects, state: IdeaState, question: Question) -> None:
    """A question's candidate claim. Asked and reminded ones count for the idea's units and the
    customer's type (the idea's state keeps them until its units are known)."""
    asked = question_id(state.idea_id, question.customer_key)
    match question.event:
        case QuestionEvent.ASKED:
            effects.ask(asked, state.units_of(question), question.at_ms)
        case QuestionEvent.ANSWERED:
            effects.answer(asked, question.at_ms)
        case QuestionEvent.REMINDED:
            effects.remind(question.notification_id or asked, state.units_of(question), question.at_ms)


class InsightProjection:
    """Applies each fact once to its ideas, and moves their units by what the ideas' changes add."""

    def __init__(
        self,
        store: InsightStore,
        *,
        on_change: Callable[[BatchOutcome], None] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.on_change = on_change
        self.clock = clock

    async def apply(self, facts: Sequence[Fact]) -> BatchOutcome:
        for _ in range(COMMIT_ATTEMPTS):
            try:
                outcome = await self._apply_once(facts)
            except ConcurrentUpdateError as error:
                log.info("retrying a batch: %s", error)
                continue
            if self.on_change and (outcome.applied or outcome.units):
                self.on_change(outcome)
            return outcome
        raise ConcurrentUpdateError(f"a batch of {len(facts)} facts kept conflicting")

    async def _apply_once(self, facts: Sequence[Fact]) -> BatchOutcome:
        idea_ids = list(dict.fromkeys(idea_id for fact in facts for idea_id in facts_about(fact)))
        stored = await self.store.load_ideas(idea_ids)
        # Effects a crashed or concurrent writer left on these ideas go first: this batch's
        # redelivered facts are skipped by the ideas, so only those effects move their units.
        tags = {doc[EFFECTS]["tag"] for doc in stored.values() if doc.get(EFFECTS)}
        recovered = [await self.recover(tag) for tag in sorted(await self.store.unfinished(tags))]
        states = {idea_id: IdeaState.from_document(idea_id, stored.get(idea_id)) for idea_id in idea_ids}
        seen = {idea_id: seen_keys(stored.get(idea_id)) for idea_id in idea_ids}
        keys = [fact.dedup_key() for fact in facts if remembered_by_idea(fact)]
        applied_before = await self.store.applied_facts.among(keys)
        applied = {idea_id: 0 for idea_id in idea_ids}
        effects = {idea_id: UnitEffects() for idea_id in idea_ids}
        titles: dict[str, str] = {}
        contributions: dict[str, UnitCounters] = {}
        for fact in facts:
            if isinstance(fact, CampaignCreated):
                titles[unit_key(UnitKind.CAMPAIGN, fact.data.campaign_id)] = fact.data.title
                continue
            key, hour = fact.dedup_key(), hour_of(fact_time(fact))
            remembered = remembered_by_idea(fact)
            for idea_id in facts_about(fact):
                if key in seen[idea_id] or key in applied_before:
                    continue
                state = states[idea_id]
                before = contributions.get(idea_id) or state.contributions()
                outcome = state.apply(fact)
                after = contributions[idea_id] = state.contributions()
                effects[idea_id].add(contribution_change(before, after), hour)
                for pair in participants_of(state, outcome.participations):
                    effects[idea_id].participants.setdefault(pair, hour)
                for question in outcome.questions:
                    add_question(effects[idea_id], state, question)
                if remembered:
                    seen[idea_id] = remember(seen[idea_id], key, SEEN_KEYS_KEPT)
                applied[idea_id] += 1
        now = self.clock()
        now_ms = int(now.timestamp() * 1000)
        tag = uuid.uuid4().hex
        changed = [idea_id for idea_id, count in applied.items() if count]
        writes = [
            self._idea_write(states[i], stored.get(i), seen[i], applied[i], effects[i], tag, now)
            for i in changed
        ]
        if titles:
            await self.store.name_units(titles)
        if writes:
            await self.store.begin(tag, now_ms=now_ms)
        await self.store.write_ideas(writes)
        await self.store.applied_facts.add(keys)
        batch = UnitEffects()
        for idea_id in changed:
            batch.merge(effects[idea_id])
        # The units moved: by the ideas' changes, and by participants and questions counted.
        moved = await self.store.apply_effects(tag, batch, now_ms=now_ms) if writes else set()
        units = moved | set(titles) | {unit for done in recovered for unit in done}
        return BatchOutcome(sum(applied.values()), set(changed), units)

    @staticmethod
    def _idea_write(
        state: IdeaState,
        stored: Document | None,
        seen: list[str],
        applied: int,
        effects: UnitEffects,
        tag: str,
        now: datetime,
    ) -> IdeaWrite:
        revision = (stored or {}).get("revision", 0) + applied
        document = {
            **state.to_document(),
            **state.insight(revision=revision, now=now).model_dump(mode="json"),
            "_id": state.idea_id,
            SEEN_FIELD: seen,
            PENDING_SNAPSHOT: True,
        }
        if effects:
            # At most one batch's effects: this batch applied any others it found first.
            document[EFFECTS] = effects.to_document(tag)
        return IdeaWrite(document, stored["revision"] if stored else None)

    async def recover(self, tag: str) -> set[str]:
        """Apply the effects some writer left pending under `tag`; the units they moved."""
        ideas, effects = await self.store.pending_effects(tag)
        log.info("applying the unit effects of batch %s, left pending on %d ideas", tag, len(ideas))
        return await self.store.apply_effects(tag, effects, now_ms=int(self.clock().timestamp() * 1000))

    async def recover_all(self) -> None:
        """At start: apply every batch's effects that a previous run left pending."""
        units: set[str] = set()
        for tag in sorted(await self.store.pending_tags()):
            units |= await self.recover(tag)
        if units and self.on_change:
            self.on_change(BatchOutcome(0, set(), units))

    async def recover_stale(self, *, now_ms: int) -> None:
        """Apply batches a writer began long enough ago that it must have died (a replica that
        crashed and whose ideas nobody touched since)."""
        for tag in sorted(await self.store.stale_tags(started_before_ms=now_ms - STALE_BATCH_MS)):
            units = await self.recover(tag)
            if units and self.on_change:
                self.on_change(BatchOutcome(0, set(), units))

    async def tend(self) -> None:
        """Now and then: apply stale batches, and forget the tags of finished ones from units."""
        while True:
            await asyncio.sleep(FORGET_EVERY_S)
            now_ms = int(self.clock().timestamp() * 1000)
            try:
                await self.recover_stale(now_ms=now_ms)
                await self.store.forget_applied(now_ms=now_ms)
            except Exception:  # both are tried again; the counts are not affected meanwhile
                log.exception("tending batch tags failed; retrying")


class LiveHub:
    """Fans snapshots out to the dashboards connected to this process (server-sent events)."""

    QUEUE_SIZE = 1000

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[IdeaInsight | UnitInsight]] = set()

    @contextlib.contextmanager
    def subscription(self) -> Any:
        queue: asyncio.Queue[IdeaInsight | UnitInsight] = asyncio.Queue(self.QUEUE_SIZE)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    def publish(self, insights: Iterable[IdeaInsight | UnitInsight]) -> None:
        for insight in insights:
            for queue in self._queues:
                if queue.full():  # a slow dashboard loses its oldest update, never the newest
                    queue.get_nowait()
                queue.put_nowait(insight)


class SnapshotPublisher:
    """Publishes the snapshots of changed ideas and units, at most one per key per window.

    Changed documents carry `pending_snapshot` from the same write that changed them, so
    snapshots a crash kept from going out are published at the next start.
    """

    def __init__(
        self,
        store: InsightStore,
        broker: KafkaBroker,
        *,
        source: str,
        window_s: float,
        latency: Histogram | None = None,
    ) -> None:
        self.store = store
        # Seconds from the first change since the last flush to the broker's acknowledgement of
        # its snapshot: how far behind the facts the dashboards and the snapshot topics are.
        self.latency = latency
        self._changed_since: float | None = None
        self.broker = broker
        self.source = source
        self.window_s = window_s
        self._ideas: set[str] = set()
        self._units: set[str] = set()
        self._due = asyncio.Event()
        # The trace of the first fact about each key since its last snapshot: the snapshot joins
        # the trace that made it due (say, the request that created the idea).
        self._traces: dict[str, Carrier] = {}

    def remember_traces(self, traces: dict[str, Carrier]) -> None:
        for key, carrier in traces.items():
            self._traces.setdefault(key, carrier)

    def mark(self, outcome: BatchOutcome) -> None:
        if self._changed_since is None:
            self._changed_since = time.monotonic()
        self._ideas |= outcome.ideas
        self._units |= outcome.units
        self._due.set()

    async def recover(self) -> None:
        self._ideas |= set(await self.store.pending(self.store.ideas))
        self._units |= set(await self.store.pending(self.store.units))
        if self._ideas or self._units:
            log.info("publishing %d idea and %d unit snapshots left over", len(self._ideas), len(self._units))
            self._due.set()

    async def run(self) -> None:
        try:
            while True:
                await self._due.wait()
                try:
                    await self.flush()
                except Exception:  # the documents stay pending; try again next window
                    log.exception("publishing snapshots failed; retrying")
                await asyncio.sleep(self.window_s)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.flush())

    async def flush(self) -> int:
        self._due.clear()
        ideas, units = self._ideas, self._units
        changed_since, self._changed_since = self._changed_since, None
        self._ideas, self._units = set(), set()
        try:
            idea_docs = await self.store.idea_documents(ideas) if ideas else []
            unit_docs = await self.store.unit_documents(units) if units else []
            idea_insights = [IdeaInsight.model_validate(doc) for doc in idea_docs]
            unit_insights = [unit_of_document(doc) for doc in unit_docs]
            queued = [
                *[
                    await self._enqueue(idea_snapshot(i, source=self.source), INSIGHTS_IDEAS, i.idea_id)
                    for i in idea_insights
                ],
                *[
                    await self._enqueue(unit_snapshot(u, source=self.source), INSIGHTS_UNITS, u.unit)
                    for u in unit_insights
                ],
            ]
            await asyncio.gather(*queued)
        except BaseException:
            self._ideas |= ideas
            self._units |= units
            self._changed_since = changed_since
            raise
        if self.latency is not None and changed_since is not None:
            self.latency.observe(time.monotonic() - changed_since)
        await self.store.clear_pending(self.store.ideas, {d["_id"]: d.get("revision", 0) for d in idea_docs})
        await self.store.clear_pending(self.store.units, {d["_id"]: d.get("revision", 0) for d in unit_docs})
        return len(queued)

    async def _enqueue(
        self, event: IdeaInsightUpdated | UnitInsightUpdated, topic: str, key: str
    ) -> asyncio.Future[Any]:
        carrier = self._traces.pop(key, None)
        token = otel_context.attach(propagate.extract(carrier)) if carrier else None
        try:
            return await enqueue_payload(self.broker, event.to_json_bytes(), topic=topic, key=key)
        finally:
            if token is not None:
                otel_context.detach(token)


def unit_of_document(doc: Document) -> UnitInsight:
    updated = datetime.fromtimestamp(doc.get("updated_ms", 0) / 1000, tz=utc_now().tzinfo)
    return unit_insight(doc["_id"], doc, revision=int(doc.get("revision", 0)), now=updated)
