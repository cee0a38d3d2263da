"""A transactional outbox embedded in the document that changes.

The facts a change causes are written in the same single-document write as the change, then
published, then removed. A crash in between leaves them in the document, and they are
published again on the next touch or at start-up, under the same event ids, so consumers that
de-duplicate by `source` + `id` see each fact once.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.exceptions import IncorrectState
from faststream.kafka import KafkaBroker
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from pymongo.asynchronous.collection import AsyncCollection

from centricity_contracts.envelope import CloudEvent
from centricity_plumbing.audit import Cause, current_cause
from centricity_plumbing.broker import CLOUDEVENTS_CONTENT_TYPE, enqueue_payload, publish_payload
from centricity_plumbing.mongo import Document

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

# Below this many entries, publish through FastStream, with a span per record.
BULK_PUBLISH_MIN = 16


def raw_producer(broker: KafkaBroker) -> AIOKafkaProducer | None:
    """The broker's connected aiokafka producer, if FastStream's internals are as expected."""
    try:
        producer = broker.config.producer._producer.producer  # type: ignore[attr-defined]
    except (AttributeError, IncorrectState):
        return None
    return producer if isinstance(producer, AIOKafkaProducer) else None


OUTBOX_FIELD = "outbox"
PENDING_QUERY = {OUTBOX_FIELD: {"$elemMatch": {"id": {"$exists": True}}}}


def current_trace() -> dict[str, str]:
    """The current trace context as headers; take it once for many entries of one batch."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def outbox_entry(
    event: CloudEvent[Any],
    *,
    topic: str,
    key: str,
    trace: dict[str, str] | None = None,
    cause: Cause | None = None,
) -> Document:
    """A pending publication, carrying the trace it belongs to so a late publish joins it, and
    stamped with its cause (`cause`, else the current one) for the audit trail."""
    trace = current_trace() if trace is None else trace
    if (cause := cause or current_cause()) is not None:
        event = event.model_copy(update=cause.attributes(trace))
    return {
        "id": event.id,
        "topic": topic,
        "key": key,
        "payload": event.to_json_bytes().decode(),
        "trace": trace,
    }


def pending_entries(doc: Document | None) -> list[Document]:
    return list((doc or {}).get(OUTBOX_FIELD, []))


class Outbox:
    """Publishes and clears the pending entries of documents in one collection."""

    def __init__(self, collection: AsyncCollection[Document], broker: KafkaBroker) -> None:
        self.collection = collection
        self.broker = broker

    async def deliver(self, doc: Document | None) -> int:
        entries = pending_entries(doc)
        if not entries or doc is None:
            return 0
        for entry in entries:
            await self._publish(entry)
        await self.clear([doc["_id"]], [entry["id"] for entry in entries])
        return len(entries)

    async def clear(self, doc_ids: list[Any], fact_ids: list[str]) -> None:
        """Remove published entries from the documents that kept them."""
        if not doc_ids or not fact_ids:
            return
        await self.collection.update_many(
            {"_id": {"$in": doc_ids}}, {"$pull": {OUTBOX_FIELD: {"id": {"$in": fact_ids}}}}
        )

    async def publish_now(self, event: CloudEvent[Any], *, topic: str, key: str) -> None:
        """Publish a fact whose state is stored and can be re-derived, without an outbox entry."""
        await self._publish(outbox_entry(event, topic=topic, key=key))

    async def deliver_many(self, docs: list[Document]) -> int:
        """Publish the pending entries of many documents at once, then clear them in one write."""
        unique = list({doc["_id"]: doc for doc in docs}.values())
        entries = [entry for doc in unique for entry in pending_entries(doc)]
        if not entries:
            return 0
        await self.publish_entries(entries)
        await self.clear(
            [doc["_id"] for doc in unique if pending_entries(doc)], [entry["id"] for entry in entries]
        )
        return len(entries)

    async def publish_entries(self, entries: list[Document]) -> None:
        """Publish stored entries in order, letting the producer batch them; returns once all are acked."""
        producer = raw_producer(self.broker)
        if len(entries) < BULK_PUBLISH_MIN or producer is None:
            queued = [await self._enqueue(entry) for entry in entries]
            await asyncio.gather(*queued)
            return
        await self._publish_bulk(producer, entries)

    async def _publish_bulk(self, producer: AIOKafkaProducer, entries: list[Document]) -> None:
        """Many entries under one producer span, sent straight to the Kafka client.

        FastStream's per-message publish path (middlewares, a span per record) costs several
        times what the client's own send does; for a batch of hundreds of facts one span says
        as much. Each record still carries the trace context in its headers.
        """
        token = otel_context.attach(propagate.extract(entries[0].get("trace") or {}))
        try:
            topics = sorted({entry["topic"] for entry in entries})
            with _tracer.start_as_current_span(
                f"{' '.join(topics)} publish",
                kind=SpanKind.PRODUCER,
                attributes={"messaging.system": "kafka", "messaging.batch.message_count": len(entries)},
            ):
                carrier: dict[str, str] = {}
                propagate.inject(carrier)
                headers = [("content-type", CLOUDEVENTS_CONTENT_TYPE.encode())]
                headers += [(name, value.encode()) for name, value in carrier.items()]
                sends = [
                    await producer.send(
                        entry["topic"], entry["payload"].encode(), key=entry["key"].encode(), headers=headers
                    )
                    for entry in entries
                ]
                await asyncio.gather(*sends)
        finally:
            otel_context.detach(token)

    async def waiting(self) -> int:
        """How many documents hold facts not yet published (a backlog that grows while the broker
        refuses them, or that a crash left)."""
        return await self.collection.count_documents(PENDING_QUERY)

    async def deliver_all_pending(self) -> int:
        """Publish what a previous run stored but did not get to publish."""
        delivered = 0
        async for doc in self.collection.find(PENDING_QUERY):
            delivered += await self.deliver(doc)
        if delivered:
            log.info("published %d pending facts from %s", delivered, self.collection.name)
        return delivered

    async def _enqueue(self, entry: Document) -> asyncio.Future[Any]:
        token = otel_context.attach(propagate.extract(entry.get("trace") or {}))
        try:
            return await enqueue_payload(
                self.broker, entry["payload"].encode(), topic=entry["topic"], key=entry["key"]
            )
        finally:
            otel_context.detach(token)

    async def _publish(self, entry: Document) -> None:
        token = otel_context.attach(propagate.extract(entry.get("trace") or {}))
        try:
            await publish_payload(
                self.broker, entry["payload"].encode(), topic=entry["topic"], key=entry["key"]
            )
        finally:
            otel_context.detach(token)
