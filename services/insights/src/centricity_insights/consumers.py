"""Kafka subscribers of the insights service: idea, vote and notification facts in batches, into
the projection."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage

from centricity_contracts.insights import IdeaInsight, IdeaInsightUpdated, UnitInsight, UnitInsightUpdated
from centricity_contracts.topics import INSIGHTS_IDEAS, INSIGHTS_UNITS
from centricity_insights.domain import Fact, facts_about
from centricity_insights.projection import (
    FACT_TOPICS,
    Carrier,
    InsightProjection,
    LiveHub,
    SnapshotPublisher,
    parse_fact,
)
from centricity_insights.service import AuditTrail
from centricity_insights.store import FACT_BATCH
from centricity_plumbing.broker import RejectedEvent, consumer_options, dead_letter, document_dead_letters
from centricity_plumbing.facts import decode_event
from centricity_plumbing.settings import ServiceSettings

log = logging.getLogger(__name__)

TRACE_HEADERS = ("traceparent", "tracestate")


class FactConsumer:
    """Reads a batch of fact records: unknown types are skipped, broken ones dead-lettered."""

    def __init__(
        self, projection: InsightProjection, broker: KafkaBroker, service: str, publisher: SnapshotPublisher
    ) -> None:
        self.projection = projection
        self.broker = broker
        self.service = service
        self.publisher = publisher

    async def handle(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        facts: list[Fact] = []
        traces: dict[str, Carrier] = {}
        for record in records:
            try:
                fact = parse_fact(record.value)
            except RejectedEvent as rejection:
                await dead_letter(self.broker, record, rejection, self.service)
                continue
            if fact is not None:
                facts.append(fact)
                carrier = trace_carrier(record)
                for key in facts_about(fact) if carrier else ():
                    traces.setdefault(key, carrier)
        if facts:
            self.publisher.remember_traces(traces)
            outcome = await self.projection.apply(facts)
            log.info(
                "%d facts applied to %d ideas and %d units",
                outcome.applied,
                len(outcome.ideas),
                len(outcome.units),
            )


def trace_carrier(record: ConsumerRecord[Any, Any]) -> Carrier:
    return {k: v.decode("utf-8", "replace") for k, v in record.headers or () if k in TRACE_HEADERS}


def follow_snapshots(hub: LiveHub) -> Callable[[Sequence[ConsumerRecord[Any, Any]]], None]:
    """Feed this replica's live streams from the snapshot topics, which carry every replica's."""

    def on_snapshots(records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        insights: list[IdeaInsight | UnitInsight] = []
        for record in records:
            try:
                snapshot = decode_event(record.value, INSIGHTS_IDEAS, INSIGHTS_UNITS)
            except RejectedEvent:
                continue  # not ours to dead-letter: only this service writes these topics
            if isinstance(snapshot, IdeaInsightUpdated | UnitInsightUpdated):
                insights.append(snapshot.data)
        hub.publish(insights)

    return on_snapshots


def register_subscribers(
    broker: KafkaBroker, consumer: FactConsumer, hub: LiveHub, trail: AuditTrail, settings: ServiceSettings
) -> None:
    document_dead_letters(broker, *FACT_TOPICS)
    broker.publisher(
        INSIGHTS_IDEAS,
        title=f"{INSIGHTS_IDEAS}:publish",
        schema=IdeaInsightUpdated,
        description="The latest insight per idea, keyed by idea id (compacted).",
    )
    broker.publisher(
        INSIGHTS_UNITS,
        title=f"{INSIGHTS_UNITS}:publish",
        schema=UnitInsightUpdated,
        description="The latest metrics per unit, keyed by `enterprise`, `businessunit:<id>`, "
        "`campaign:<id>` or `customer_type:<type>` (compacted).",
    )

    @broker.subscriber(
        *FACT_TOPICS,
        batch=True,
        max_records=FACT_BATCH,
        title="facts:consume",
        description="Idea, vote and notification facts, in batches (of notifications, the requests to "
        "attest a delivered idea and their reminders count); types this version does not know are "
        "skipped, broken ones go to <topic>.dlq with the reason.",
        **{**consumer_options(settings), "max_poll_records": FACT_BATCH},
    )
    async def on_facts(msg: KafkaMessage) -> None:
        await consumer.handle(msg.raw_message)

    # A group of its own: the trail keeps up on its own, and a slow projection does not hold it.
    @broker.subscriber(
        *FACT_TOPICS,
        batch=True,
        max_records=FACT_BATCH,
        title="facts:audit",
        description="Every fact of every type, as an entry of the audit trail (GET /audit): who, what, "
        "when, from where, in which request and trace.",
        **{**consumer_options(settings, "audit"), "max_poll_records": FACT_BATCH},
    )
    async def on_facts_audited(msg: KafkaMessage) -> None:
        await trail.record(msg.raw_message)

    on_snapshots = follow_snapshots(hub)

    # No consumer group: every replica reads every partition, from now on, so each replica's
    # /stream shows every idea's changes whichever replica applied them.
    @broker.subscriber(
        INSIGHTS_IDEAS,
        INSIGHTS_UNITS,
        batch=True,
        max_records=FACT_BATCH,
        auto_offset_reset="latest",
        ack_policy=AckPolicy.MANUAL,  # never acknowledged: nothing to commit without a group
        title="snapshots:follow",
        description="Every replica's snapshots, read by each replica without a consumer group, for "
        "its live streams (/stream, the dashboard).",
    )
    async def on_snapshot_records(msg: KafkaMessage) -> None:
        on_snapshots(msg.raw_message)
