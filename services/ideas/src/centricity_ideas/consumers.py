"""Kafka subscribers of the ideas service: decode, call a use case, dead-letter what is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker, KafkaMessage

from centricity_contracts.ideas import IdeaCommented, IdeaCreated, IdeaSubmitted
from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE, VOTES_EVENTS
from centricity_contracts.votes import VoteMoved, VoteRecorded
from centricity_ideas.domain import Idea
from centricity_ideas.service import INTAKE_BATCH, IdeaOperations, Submission
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
from centricity_plumbing.lanes import lanes_by_key
from centricity_plumbing.rules import RuleViolation
from centricity_plumbing.settings import ServiceSettings


class IntakeConsumer:
    """Handles a batch of intake records in order; consecutive submissions are stored in bulk."""

    def __init__(self, ops: IdeaOperations, broker: KafkaBroker) -> None:
        self.ops = ops
        self.broker = broker

    async def handle(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        with self.ops.intake.working():
            await self._handle(records)

    async def _handle(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        events = await parse_intake(self.broker, records, self.ops.settings)
        pending: list[tuple[ConsumerRecord[Any, Any], IdeaSubmitted]] = []
        for record, event in events:
            if isinstance(event, IdeaSubmitted):
                pending.append((record, event))
                continue
            await self._submit(pending)
            pending = []
            try:
                with acting(Cause.of_intake(event.businessunit, event.dedup_key())):
                    await self.ops.apply_intake(event)
            except RuleViolation as error:
                await self._reject(record, RejectedEvent.for_rule(error))
        await self._submit(pending)

    async def _submit(self, pending: list[tuple[ConsumerRecord[Any, Any], IdeaSubmitted]]) -> None:
        if not pending:
            return
        submissions = [Submission(e.data, e.businessunit, Origin.KAFKA, e.dedup_key()) for _, e in pending]
        outcomes: list[tuple[Idea, bool] | RuleViolation | None] = [None] * len(pending)

        async def submit_lane(lane: list[int]) -> None:
            lane_outcomes = await self.ops.submit_many([submissions[i] for i in lane])
            for position, outcome in zip(lane, lane_outcomes, strict=True):
                outcomes[position] = outcome

        # One idea's submissions share a lane.
        await asyncio.gather(*(submit_lane(lane) for lane in lanes_by_key([s.idea_id for s in submissions])))
        for (record, _), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, RuleViolation):
                await self._reject(record, RejectedEvent.for_rule(outcome))

    async def _reject(self, record: ConsumerRecord[Any, Any], rejected: RejectedEvent) -> None:
        await dead_letter(self.broker, record, rejected, self.ops.settings.service_name)


def register_subscribers(broker: KafkaBroker, ops: IdeaOperations, settings: ServiceSettings) -> None:
    document_dead_letters(broker, IDEAS_INTAKE)
    document_facts(broker, IDEAS_EVENTS)
    intake = IntakeConsumer(ops, broker)
    options = {**consumer_options(settings), "max_poll_records": INTAKE_BATCH}

    @broker.subscriber(
        IDEAS_INTAKE,
        batch=True,
        max_records=INTAKE_BATCH,
        title=f"{IDEAS_INTAKE}:consume",
        description=intake_description(IDEAS_INTAKE, "Key them by the unit's reference."),
        **options,
    )
    async def on_intake(msg: KafkaMessage) -> None:
        await intake.handle(msg.raw_message)

    @broker.subscriber(
        IDEAS_EVENTS,
        batch=True,
        max_records=INTAKE_BATCH,
        title=f"{IDEAS_EVENTS}:find-duplicates",
        description="The service's own facts: idea.created, to find likely duplicates of ideas taken "
        "in from Kafka and publish centricity.idea.duplicates_suggested.v1; idea.commented, to store "
        "a comment a crash kept from being stored with its count.",
        **{**consumer_options(settings, "duplicates"), "max_poll_records": INTAKE_BATCH},
    )
    async def on_ideas_created(msg: KafkaMessage) -> None:
        # Even reading the facts waits: a burst's intake comes first.
        await ops.intake.lull()
        facts, broken = decode_records(msg.raw_message)
        await dead_letter_all(broker, broken, settings)
        await ops.keep_comments([fact.data for _, fact in facts if isinstance(fact, IdeaCommented)])
        created = [fact.data for _, fact in facts if isinstance(fact, IdeaCreated)]
        if created:
            await ops.suggest_duplicates(created)

    @broker.subscriber(
        VOTES_EVENTS,
        title=f"{VOTES_EVENTS}:consume",
        description="Who voted on which idea, so that voters may attest delivered ideas.",
        **consumer_options(settings, "voters"),
    )
    async def on_vote_recorded(msg: KafkaMessage) -> None:
        record = msg.raw_message
        assert isinstance(record, ConsumerRecord)
        fact = decode_event(record.value, VOTES_EVENTS)
        if isinstance(fact, VoteRecorded):
            await ops.remember_voter(fact.data.vote_id, fact.data.idea_id)
        elif isinstance(fact, VoteMoved):
            # A voter whose vote moved with a merge voted on the surviving idea too.
            await ops.remember_voter(fact.data.to_vote_id, fact.data.to_idea_id)
