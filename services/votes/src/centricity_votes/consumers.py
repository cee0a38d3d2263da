"""Kafka subscribers of the votes service: intake in batches, parked until their idea is known, and
the ideas service's facts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker, KafkaMessage
from opentelemetry.sdk.trace import TracerProvider

from centricity_contracts.topics import IDEAS_EVENTS, VOTES_EVENTS, VOTES_INTAKE
from centricity_contracts.votes import CustomerValued, VoteCast, VoteWithdrawn
from centricity_plumbing.audit import Cause, acting
from centricity_plumbing.broker import (
    RejectedEvent,
    consumer_options,
    dead_letter,
    document_dead_letters,
    document_facts,
    intake_description,
    parse_intake,
)
from centricity_plumbing.facts import dead_letter_all, decode_event, decode_records
from centricity_plumbing.idempotency import Origin
from centricity_plumbing.settings import ServiceSettings
from centricity_plumbing.telemetry import record_spans
from centricity_votes.domain import IdeaView, UnknownIdea, VoteRefused
from centricity_votes.service import INTAKE_BATCH, Cast, Command, VoteLedger, Withdraw
from centricity_votes.store import ParkedRecord

log = logging.getLogger(__name__)

PARK_SWEEP_S = 0.5


def command_of(event: VoteCast | VoteWithdrawn) -> Command:
    if isinstance(event, VoteCast):
        return Cast(event.data, event.businessunit, event.dedup_key())
    return Withdraw(event.data, event.businessunit, event.dedup_key())


class IntakeConsumer:
    """Handles a batch of intake records in order; runs of votes and withdrawals are written in bulk.

    A vote for an idea this service does not know yet is parked rather than held: the idea's
    creation may still be on its way, and waiting for it must not stall the votes behind it.
    Later records for the same vote are parked behind it, so each vote keeps its order.
    """

    def __init__(
        self, ledger: VoteLedger, broker: KafkaBroker, settings: ServiceSettings, grace_s: float
    ) -> None:
        self.ledger = ledger
        self.broker = broker
        self.settings = settings
        self.grace_s = grace_s
        self.idea_known = asyncio.Event()

    async def handle(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        events = await parse_intake(self.broker, records, self.settings)
        run: list[tuple[ConsumerRecord[Any, Any], Command]] = []
        for record, event in events:
            if isinstance(event, CustomerValued):
                await self._apply(*await self._set_aside(run))
                run = []
                with acting(Cause.of_intake(event.businessunit, event.dedup_key())):
                    await self.ledger.value_customer(event)
            elif isinstance(event, VoteCast | VoteWithdrawn):
                run.append((record, command_of(event)))
        await self._apply(*await self._set_aside(run))

    async def _set_aside(
        self, run: list[tuple[ConsumerRecord[Any, Any], Command]]
    ) -> tuple[list[tuple[ConsumerRecord[Any, Any], Command]], dict[str, IdeaView]]:
        """Park the commands whose idea is unknown, and those behind a parked one; return the rest
        with their ideas."""
        if not run:
            return run, {}
        store = self.ledger.store
        known = await store.idea_views(command.idea_id for _, command in run)
        waiting = await store.parked_vote_ids(command.vote_id for _, command in run)
        ready, parked = [], []
        for record, command in run:
            if command.idea_id in known and command.vote_id not in waiting:
                ready.append((record, command))
                continue
            waiting.add(command.vote_id)
            parked.append(ParkedRecord(record, command.idea_id, command.vote_id))
        await store.park(parked)
        return ready, known

    async def _apply(
        self, run: list[tuple[ConsumerRecord[Any, Any], Command]], ideas: dict[str, IdeaView] | None = None
    ) -> None:
        """Apply a run of commands in bulk and dead-letter the refused ones."""
        if not run:
            return
        outcomes = await self.ledger.apply([command for _, command in run], origin=Origin.KAFKA, ideas=ideas)
        for (record, _), outcome in zip(run, outcomes, strict=True):
            if isinstance(outcome, VoteRefused):
                rejected = RejectedEvent.for_rule(outcome)
                await dead_letter(self.broker, record, rejected, self.settings.service_name)

    async def release_parked(self) -> int:
        """Apply parked votes whose idea is known now, in the order they were sent; dead-letter
        those whose idea is still unknown after the grace period. Returns how many left."""
        parked = await self.ledger.store.parked_records(limit=INTAKE_BATCH)
        if not parked:
            return 0
        known = await self.ledger.store.idea_views(p.idea_id for p in parked)
        expired_before_ms = (time.time() - self.grace_s) * 1000
        ready: list[ParkedRecord] = []
        expired: list[ParkedRecord] = []
        blocked: set[str] = set()
        for item in parked:
            if item.vote_id in blocked:
                continue
            if item.idea_id in known:
                ready.append(item)
            elif item.record.timestamp < expired_before_ms:
                expired.append(item)
            else:
                blocked.add(item.vote_id)
        run = [(item.record, command_of(parsed(item))) for item in ready]
        await self._apply(run, known)
        for item in expired:
            rejected = RejectedEvent.for_rule(UnknownIdea(f"no idea {item.idea_id!r} is known"))
            await dead_letter(self.broker, item.record, rejected, self.settings.service_name)
        await self.ledger.store.unpark([*ready, *expired])
        return len(ready) + len(expired)

    async def keep_releasing(self) -> None:
        """Background job: release parked votes when an idea becomes known, or every so often."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idea_known.wait(), PARK_SWEEP_S)
            self.idea_known.clear()
            try:
                while await self.release_parked() >= INTAKE_BATCH:
                    pass
            except Exception:  # the records stay parked; the next round tries again
                log.exception("releasing parked votes failed")


class IdeaFactsProgress:
    """Whether this service has stored every idea fact published so far, on whichever replica.

    The replicas share one consumer group and commit an offset only once its facts are stored,
    so when the group's committed offsets reach the end of every partition, an idea missing from
    the store was not created before the check. The local broker's end offset can be a batch
    short (the first offset of the last batch, plus one); a committed offset at or past it still
    means that last batch was read, unless a consumer batch ended inside it.
    """

    def __init__(self) -> None:
        self._consumer: Callable[[], AIOKafkaConsumer | None] = lambda: None

    def follow(self, subscriber: Any) -> None:
        """Ask through the Kafka consumer of the ideas facts' subscriber, once it has started."""
        self._consumer = lambda: subscriber.consumer

    async def caught_up(self) -> bool:
        consumer = self._consumer()
        if consumer is None:
            return False
        partitions = consumer.partitions_for_topic(IDEAS_EVENTS)
        if not partitions:
            return False
        topic_partitions = [TopicPartition(IDEAS_EVENTS, p) for p in sorted(partitions)]
        try:
            ends = await consumer.end_offsets(topic_partitions)
            committed = await asyncio.gather(*(consumer.committed(tp) for tp in topic_partitions))
        except KafkaError as error:  # then the request waits its bounded time, as when lagging
            log.warning("could not tell whether idea facts are caught up: %r", error)
            return False
        return all((done or 0) >= ends[tp] for tp, done in zip(topic_partitions, committed, strict=True))


def parsed(item: ParkedRecord) -> VoteCast | VoteWithdrawn:
    event = decode_event(item.record.value, VOTES_INTAKE, strict=True)
    assert isinstance(event, VoteCast | VoteWithdrawn), "only votes are parked"
    return event


def register_subscribers(
    broker: KafkaBroker,
    ledger: VoteLedger,
    settings: ServiceSettings,
    tracer_provider: TracerProvider,
    *,
    unknown_idea_grace_s: float,
    idea_facts: IdeaFactsProgress,
) -> IntakeConsumer:
    document_dead_letters(broker, VOTES_INTAKE)
    document_facts(broker, VOTES_EVENTS)
    intake = IntakeConsumer(ledger, broker, settings, unknown_idea_grace_s)

    ideas_subscriber = broker.subscriber(
        IDEAS_EVENTS,
        title=f"{IDEAS_EVENTS}:consume",
        description="Idea and campaign facts: which ideas exist, their campaign and its vote budget, "
        "whether voting is still open, and merges, whose votes move to the surviving idea.",
        batch=True,
        max_records=INTAKE_BATCH,
        **{**consumer_options(settings, "ideas"), "max_poll_records": INTAKE_BATCH},
    )
    idea_facts.follow(ideas_subscriber)

    @ideas_subscriber
    async def on_idea_facts(msg: KafkaMessage) -> None:
        facts, broken = decode_records(msg.raw_message)
        await dead_letter_all(broker, broken, settings)
        with record_spans(msg.raw_message, tracer_provider):
            created = await ledger.record_idea_facts([fact for _, fact in facts])
        if created:
            intake.idea_known.set()

    @broker.subscriber(
        VOTES_INTAKE,
        batch=True,
        max_records=INTAKE_BATCH,
        title=f"{VOTES_INTAKE}:consume",
        description=intake_description(
            VOTES_INTAKE,
            "Key votes and withdrawals by idea id to keep their order, customer values by customer id.",
        ),
        **{**consumer_options(settings), "max_poll_records": INTAKE_BATCH},
    )
    async def on_intake(msg: KafkaMessage) -> None:
        await intake.handle(msg.raw_message)

    return intake
