"""Helpers for tests that talk to the real local broker and store."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
# Fields that say when or how often a document was written, not what it counts.
INSIGHT_BOOKKEEPING = {
    "_id",
    "seen",
    "revision",
    "pending_snapshot",
    "updated_ms",
    "updated_at",
    "effects",
    "applied",
    "guarded_ms",
}


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = DEFAULT_TIMEOUT_S, what: str = "condition"
) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


def bu_event(
    event_type: str, event_id: str, data: dict[str, Any], businessunit: str = "retail"
) -> dict[str, Any]:
    """A CloudEvent as a business unit's system would post it on an intake topic."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/bu/{businessunit}/system",
        "type": event_type,
        "businessunit": businessunit,
        "data": data,
    }


def idea_created_fact(
    idea_id: str, businessunit: str = "retail", status: str = "submitted", campaign_id: str | None = None
) -> dict[str, Any]:
    """The fact the ideas service publishes when it records an idea."""
    return {
        "specversion": "1.0",
        "id": f"{idea_id}:created",
        "source": "/centricity/ideas",
        "type": "centricity.idea.created.v1",
        "businessunit": businessunit,
        "subject": idea_id,
        "data": {
            "idea_id": idea_id,
            "businessunit": businessunit,
            "reference": idea_id,
            "title": f"Idea {idea_id}",
            "author": {"customer_id": "c", "customer_type": "external"},
            "created_at": "2026-11-23T09:00:00Z",
            "status": status,
            **({"campaign_id": campaign_id} if campaign_id else {}),
        },
    }


def campaign_created_fact(
    campaign_id: str, vote_budget: int | None, businessunit: str = "retail"
) -> dict[str, Any]:
    """The fact the ideas service publishes when a unit launches a campaign."""
    return {
        "specversion": "1.0",
        "id": f"{campaign_id}:created",
        "source": "/centricity/ideas",
        "type": "centricity.campaign.created.v1",
        "businessunit": businessunit,
        "subject": campaign_id,
        "data": {
            "campaign_id": campaign_id,
            "businessunit": businessunit,
            "reference": campaign_id,
            "title": f"Campaign {campaign_id}",
            "opens_at": "2026-11-01T00:00:00Z",
            "closes_at": "2027-11-01T00:00:00Z",
            "vote_budget": vote_budget,
            "created_at": "2026-11-01T00:00:00Z",
        },
    }


def status_changed_fact(
    idea_id: str,
    to_status: str,
    *,
    from_status: str = "submitted",
    revision: int = 2,
    reason: str | None = None,
    changed_at: str = "2026-11-23T10:00:00Z",
    businessunit: str = "retail",
) -> dict[str, Any]:
    """The fact the ideas service publishes when an idea's status moves (its `revision`th change)."""
    data: dict[str, Any] = {
        "idea_id": idea_id,
        "businessunit": businessunit,
        "from_status": from_status,
        "to_status": to_status,
        **({"reason": reason} if reason is not None else {}),
        "by": {"actor_id": "pm"},
        "changed_at": changed_at,
    }
    return {
        "specversion": "1.0",
        "id": f"{idea_id}:r{revision}",
        "source": "/centricity/ideas",
        "type": "centricity.idea.status_changed.v1",
        "businessunit": businessunit,
        "subject": idea_id,
        "data": data,
    }


def idea_merged_fact(idea_id: str, into_idea_id: str, businessunit: str = "retail") -> dict[str, Any]:
    """The fact the ideas service publishes when it merges a duplicate into another idea."""
    return {
        "specversion": "1.0",
        "id": f"{idea_id}:merged",
        "source": "/centricity/ideas",
        "type": "centricity.idea.merged.v1",
        "businessunit": businessunit,
        "subject": idea_id,
        "data": {
            "idea_id": idea_id,
            "into_idea_id": into_idea_id,
            "businessunit": businessunit,
            "by": {"actor_id": "pm"},
            "merged_at": "2026-11-23T10:00:00Z",
        },
    }


async def announce_ideas(bootstrap: str, *idea_ids: str, status: str = "submitted") -> None:
    """Publish ideas' creation as the ideas service would, so other services know them."""
    facts = [(idea_id, idea_created_fact(idea_id, status=status)) for idea_id in idea_ids]
    await produce(bootstrap, "ideas.events.v1", facts)


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.value)


async def produce(
    bootstrap: str,
    topic: str,
    messages: Sequence[tuple[str | None, bytes | dict[str, Any]]],
    headers: dict[str, str] | None = None,
) -> None:
    """Produce messages in order, as a business unit's own system would (no Centricity code)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            payload = value if isinstance(value, bytes) else json.dumps(value).encode()
            await producer.send_and_wait(
                topic,
                payload,
                key=key.encode() if key else None,
                headers=[(k, v.encode()) for k, v in (headers or {}).items()],
            )
    finally:
        await producer.stop()


async def read_topic(bootstrap: str, topic: str) -> list[Record]:
    """Every record on `topic` now, read from the beginning without joining a group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Record] = []
        while True:
            batch = await consumer.getmany(timeout_ms=300)
            if not batch:
                return records
            for messages in batch.values():
                records.extend(
                    Record(
                        topic=m.topic,
                        partition=m.partition,
                        offset=m.offset,
                        key=m.key.decode() if m.key else None,
                        value=m.value or b"",
                        headers={k: v.decode() for k, v in (m.headers or ())},
                    )
                    for m in messages
                )
    finally:
        await consumer.stop()


async def topic_ends(bootstrap: str) -> dict[TopicPartition, int]:
    """Where every partition of every topic ends now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = await consumer.topics()
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in consumer.partitions_for_topic(topic) or ()
        ]
        return dict(await consumer.end_offsets(partitions)) if partitions else {}
    finally:
        await consumer.stop()


async def start_group_at(
    bootstrap: str, group_id: str, topics: Sequence[str], offsets: dict[TopicPartition, int]
) -> bool:
    """Commit `offsets` for a group that has committed nothing yet on `topics`; False if it had."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [tp for tp in offsets if tp.topic in topics]
        if not partitions:
            return False
        consumer.assign(partitions)
        for tp in partitions:
            if await consumer.committed(tp) is not None:
                return False
        await consumer.commit({tp: OffsetAndMetadata(offsets[tp], "") for tp in partitions})
        return True
    finally:
        await consumer.stop()


async def wait_for_records(
    bootstrap: str,
    topic: str,
    match: Callable[[Record], bool],
    *,
    count: int = 1,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> list[Record]:
    async def probe() -> list[Record] | None:
        found = [r for r in await read_topic(bootstrap, topic) if match(r)]
        return found if len(found) >= count else None

    return await eventually(probe, timeout=timeout, what=f"{count} matching records on {topic}")


def insight_figures(doc: dict[str, Any]) -> dict[str, Any]:
    """What a document counts, with sums of floats rounded: batches add them in another order."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return float(f"{value:.9g}") if math.isfinite(value) else value
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rounded(v) for v in value]
        return value

    return {k: rounded(v) for k, v in doc.items() if k not in INSIGHT_BOOKKEEPING}


def sign_in(issuer: str, subject: str, *, client_id: str = "centricity", client_secret: str = "s") -> str:
    """An ID token for `subject`, got as a browser would: the provider's authorization form, then
    the code exchanged at its token endpoint (no token is made here)."""
    redirect_uri = "http://127.0.0.1/callback"
    with httpx.Client(timeout=10) as client:
        discovery = client.get(f"{issuer}/.well-known/openid-configuration").json()
        params = {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "openid profile email",
            "state": "test",
        }
        chosen = client.post(discovery["authorization_endpoint"], params=params, data={"sub": subject})
        assert chosen.status_code == 302, chosen.text
        code = parse_qs(urlsplit(chosen.headers["location"]).query)["code"][0]
        tokens = client.post(
            discovery["token_endpoint"],
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            auth=(client_id, client_secret),
        )
        assert tokens.status_code == 200, tokens.text
        return str(tokens.json()["id_token"])
