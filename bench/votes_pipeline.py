"""Votes pipeline: votes per second from votes.intake.v1 to recorded facts on votes.events.v1.

Baselines from the same run, on the same machine:
- (a) the local store's raw bulk upsert by `_id` of vote documents like the service's, in
  batches of the service's size;
- (b) FastStream's batch pass-through on the local broker: a batch subscriber that publishes
  every record it receives to another topic, with no work in between.
Then p50/p99 intake-to-fact latency at half the measured rate, and the service's peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker, KafkaMessage
from pymongo import AsyncMongoClient, ReplaceOne
from tests.support import idea_created_fact

from bench.common import local_system, produce_all, rate_of, record_results, rss_mb, signed, timestamps
from centricity_contracts.topics import IDEAS_EVENTS, VOTES_EVENTS, VOTES_INTAKE
from centricity_contracts.votes import Ballot
from centricity_plumbing.clock import utc_now
from centricity_plumbing.idempotency import Origin
from centricity_plumbing.outbox import outbox_entry
from centricity_votes import domain
from centricity_votes.domain import IdeaView
from centricity_votes.service import INTAKE_BATCH
from centricity_votes.store import vote_document

VOTES = 20_000
IDEAS = 200
LATENCY_WINDOW_S = 10.0
PASS_IN, PASS_OUT = "bench.passthrough.in", "bench.passthrough.out"


def idea_ids() -> list[str]:
    return [f"bench-idea-{n}" for n in range(IDEAS)]


def vote_event(idea_id: str, voter: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/bu/retail/bench",
        "type": "centricity.vote.cast.v1",
        "businessunit": "retail",
        "data": {
            "idea_id": idea_id,
            "voter": {"customer_id": voter, "customer_type": "external"},
            "value": 1 if hash(voter) % 4 else -1,
        },
    }


def vote_messages(prefix: str, count: int) -> list[tuple[bytes, bytes]]:
    ideas = idea_ids()
    messages = []
    for n in range(count):
        idea = ideas[n % IDEAS]
        messages.append((idea.encode(), json.dumps(vote_event(idea, f"{prefix}-{n}")).encode()))
    return messages


async def raw_upsert_rate(mongo_url: str) -> float:
    """Documents per second for bulk ReplaceOne(upsert) by `_id` of the very documents the
    service stores for these votes: the vote, its intake key and the fact it caused."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    collection = client["bench_raw"]["votes"]
    docs = [stored_document(json.loads(value)) for _, value in vote_messages("raw", VOTES)]
    started = time.perf_counter()
    for start in range(0, VOTES, INTAKE_BATCH):
        batch = docs[start : start + INTAKE_BATCH]
        await collection.bulk_write(
            [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in batch], ordered=False
        )
    elapsed = time.perf_counter() - started
    await client.close()
    return VOTES / elapsed


def stored_document(event: dict[str, Any]) -> dict[str, Any]:
    ballot = Ballot.model_validate(event["data"])
    idea = IdeaView(ballot.idea_id, "submitted")
    cast = domain.cast(
        ballot, voter_businessunit="retail", current=None, idea=idea, weight=1.0, now=utc_now()
    )
    assert cast is not None
    vote, record = cast
    entry = outbox_entry(
        domain.recorded_fact(record, source="/centricity/votes"), topic=VOTES_EVENTS, key=vote.idea_id
    )
    key = f"{event['source']} {event['id']}"
    return {**vote_document(vote, None, key=key, entry=entry, origin=Origin.KAFKA), "_id": vote.vote_id}


async def passthrough_rate(bootstrap: str) -> float:
    """Records per second through a FastStream batch subscriber that republishes each record."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(PASS_IN, 3, 1), NewTopic(PASS_OUT, 3, 1)])
    await admin.close()
    await produce_all(bootstrap, PASS_IN, vote_messages("pass", VOTES))
    broker = KafkaBroker(bootstrap, enable_idempotence=False, acks="all", max_batch_size=8 << 20)

    @broker.subscriber(
        PASS_IN,
        batch=True,
        max_records=INTAKE_BATCH,
        group_id="bench-pass",
        auto_offset_reset="earliest",
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
        max_poll_records=INTAKE_BATCH,
    )
    async def forward(msg: KafkaMessage) -> None:
        await broker.publish_batch(*(record.value for record in msg.raw_message), topic=PASS_OUT)

    await broker.start()
    try:
        stamps = await timestamps(bootstrap, PASS_OUT, wanted=VOTES, timeout_s=600)
    finally:
        await broker.stop()
    return rate_of(stamps)


async def announce_ideas(bootstrap: str) -> None:
    facts = [(idea.encode(), json.dumps(idea_created_fact(idea)).encode()) for idea in idea_ids()]
    await produce_all(bootstrap, IDEAS_EVENTS, facts)


async def fact_times(bootstrap: str, *, wanted: int, timeout_s: float) -> dict[str, int]:
    """CreateTime of each vote's first recorded fact, by vote id."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    found: dict[str, int] = {}
    try:
        partitions = [
            TopicPartition(VOTES_EVENTS, p) for p in consumer.partitions_for_topic(VOTES_EVENTS) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while len(found) < wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(found)} of {wanted} facts")
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for message in (m for messages in batch.values() for m in messages):
                found.setdefault(json.loads(message.value)["data"]["vote_id"], message.timestamp)
        return found
    finally:
        await consumer.stop()


async def paced_votes(bootstrap: str, rate: float, seconds: float) -> dict[str, int]:
    """Send votes at `rate` per second for `seconds`; returns each vote id's send time (ms)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", linger_ms=1
    )
    await producer.start()
    sent: dict[str, int] = {}
    try:
        started = time.monotonic()
        n = 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate)
            for key, value in vote_messages(f"paced-{n}", due - n)[: due - n]:
                event = json.loads(value)
                voter = event["data"]["voter"]["customer_id"]
                idea = event["data"]["idea_id"]
                sent[f"{idea}:retail:{voter}"] = int(time.time() * 1000)
                await producer.send(VOTES_INTAKE, value, key=key, headers=signed(value))
            n = max(n, due)
            await asyncio.sleep(0.005)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def main() -> None:
    with local_system("votes") as system:
        infra = system.infra
        store_rate = asyncio.run(raw_upsert_rate(infra.mongo_url))
        broker_rate = asyncio.run(passthrough_rate(infra.kafka_bootstrap))
        asyncio.run(announce_ideas(infra.kafka_bootstrap))
        burst = vote_messages("burst", VOTES)
        asyncio.run(produce_all(infra.kafka_bootstrap, VOTES_INTAKE, burst, sign=True))
        system.restart_service("votes")
        stamps = asyncio.run(timestamps(infra.kafka_bootstrap, VOTES_EVENTS, wanted=VOTES, timeout_s=900))
        rate = rate_of(stamps)
        rss_after_burst = rss_mb(system.pid("votes"), "VmRSS")
        sent = asyncio.run(paced_votes(infra.kafka_bootstrap, rate / 2, LATENCY_WINDOW_S))
        facts = asyncio.run(fact_times(infra.kafka_bootstrap, wanted=VOTES + len(sent), timeout_s=600))
        latencies = sorted(facts[vote_id] - sent_ms for vote_id, sent_ms in sent.items())
        peak_rss = rss_mb(system.pid("votes"))
        rss_end = rss_mb(system.pid("votes"), "VmRSS")
    percentiles = statistics.quantiles(latencies, n=100)
    record_results(
        "votes_pipeline",
        {
            "votes": VOTES,
            "rate": round(rate, 1),
            "store_bulk_upsert_rate": round(store_rate, 1),
            "broker_batch_passthrough_rate": round(broker_rate, 1),
            "ratio_store": round(rate / store_rate, 3),
            "ratio_broker": round(rate / broker_rate, 3),
            "latency_rate": round(rate / 2, 1),
            "latency_votes": len(latencies),
            "p50_ms": round(percentiles[49], 1),
            "p99_ms": round(percentiles[98], 1),
            "rss_mb": round(peak_rss, 1),
            "rss_mb_after_burst": round(rss_after_burst, 1),
            "rss_mb_at_end": round(rss_end, 1),
        },
    )


if __name__ == "__main__":
    main()
