"""Insights: facts per second from the fact topics into snapshots, against baselines of the same run.

- `rate`: idea and vote facts per second applied and published as snapshots by the insights
  service (its own process, as in `make run`). Facts reflected in snapshots at time t are the sum
  over ideas of the latest snapshot revision at t (one revision per applied fact); the rate is
  the slope of that from the first snapshot to the last.
- `ratio_broker`: rate / the rate of a FastStream batch subscriber that does nothing with the
  same records (1000 per batch).
- `ratio_store`: rate / the local store's raw bulk upsert rate of idea documents by _id.
- `cost_ratio_500k_10k`: in-process time per fact with 500,000 ideas stored / with 10,000, on the
  same file-backed store as `make run`; `store_cost_ratio_500k_10k` is the same ratio for the store
  alone reading and replacing ideas by _id, the floor the store sets.
- `p99_ms`: 99th percentile of fact-to-snapshot latency (Kafka CreateTimes) while facts arrive
  at half of `rate`, each on an idea of its own.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from pymongo import AsyncMongoClient, InsertOne, ReplaceOne

from bench.common import local_system, produce_all, record_results
from centricity_contracts.topics import IDEAS_EVENTS, INSIGHTS_IDEAS, VOTES_EVENTS
from centricity_insights.domain import Fact, IdeaState
from centricity_insights.projection import InsightProjection, parse_fact
from centricity_insights.store import FACT_BATCH, InsightStore

IDEAS = 2_000
VOTES_PER_IDEA = 9
COST_FACTS = 10_000
SMALL, LARGE = 10_000, 500_000
VOTERS = 5_000
LATENCY_SECONDS = 10
UNITS = ["retail", "wholesale", "support", "hq"]
TYPES = ["external", "internal", "partner"]
NOW = datetime.now(UTC).isoformat()


def created_fact(idea_id: str, n: int) -> dict[str, Any]:
    unit = UNITS[n % len(UNITS)]
    return {
        "specversion": "1.0",
        "id": f"{idea_id}:created",
        "source": "/centricity/ideas",
        "type": "centricity.idea.created.v1",
        "businessunit": unit,
        "subject": idea_id,
        "data": {
            "idea_id": idea_id,
            "businessunit": unit,
            "reference": idea_id,
            "title": f"Bench idea {n}",
            "author": {"customer_id": f"a-{n}", "customer_type": TYPES[n % 3]},
            "created_at": NOW,
            "campaign_id": f"camp-{n % 5}",
        },
    }


def vote_fact(idea_id: str, voter: int, rng: random.Random) -> dict[str, Any]:
    unit = rng.choice(UNITS)
    vote_id = f"{idea_id}:{unit}:v{voter}"
    return {
        "specversion": "1.0",
        "id": f"{vote_id}:r1:{uuid.uuid4().hex[:6]}",
        "source": "/centricity/votes",
        "type": "centricity.vote.recorded.v1",
        "businessunit": unit,
        "subject": idea_id,
        "data": {
            "vote_id": vote_id,
            "idea_id": idea_id,
            "voter": {"customer_id": f"v{voter}", "customer_type": rng.choice(TYPES)},
            "voter_businessunit": unit,
            "value": 1 if rng.random() < 0.8 else -1,
            "previous_value": 0,
            "revision": 1,
            "recorded_at": NOW,
            "weight": rng.choice([1.0, 1.5, 2.0]),
        },
    }


def encode(fact: dict[str, Any]) -> tuple[bytes, bytes]:
    return fact["subject"].encode(), json.dumps(fact).encode()


def workload(seed: int = 1) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
    rng = random.Random(seed)
    ids = [f"bench-{n}" for n in range(IDEAS)]
    ideas = [encode(created_fact(idea_id, n)) for n, idea_id in enumerate(ids)]
    votes = [encode(vote_fact(idea_id, v, rng)) for v in range(VOTES_PER_IDEA) for idea_id in ids]
    return ideas, votes


async def passthrough_rate(bootstrap: str, expected: int) -> float:
    """Records per second through a FastStream batch subscriber that does nothing."""
    broker = KafkaBroker(bootstrap, enable_idempotence=False)
    stamps: list[tuple[float, int]] = []
    done = asyncio.Event()

    @broker.subscriber(
        IDEAS_EVENTS,
        VOTES_EVENTS,
        batch=True,
        max_records=FACT_BATCH,
        group_id=f"bench-passthrough-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        session_timeout_ms=2000,
        heartbeat_interval_ms=500,
        max_poll_records=FACT_BATCH,
    )
    async def passthrough(msg: KafkaMessage) -> None:
        stamps.append((time.perf_counter(), len(msg.raw_message)))
        if sum(count for _, count in stamps) >= expected:
            done.set()

    async with broker:
        await broker.start()
        await asyncio.wait_for(done.wait(), timeout=300)
    return slope(stamps)


def slope(stamps: list[tuple[float, int]]) -> float:
    """Items per second after the first stamp: (all but the first batch) / (last - first)."""
    (first, first_count), (last, _) = stamps[0], stamps[-1]
    total = sum(count for _, count in stamps)
    return (total - first_count) / max(last - first, 1e-9)


async def raw_store_rate(mongo_url: str, documents: list[dict[str, Any]]) -> float:
    """Idea documents per second upserted by _id in bulk, in batches like the service's."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    collection = client["bench_raw"]["ideas"]
    started = time.perf_counter()
    for start in range(0, len(documents), FACT_BATCH):
        batch = documents[start : start + FACT_BATCH]
        await collection.bulk_write(
            [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in batch], ordered=False
        )
    elapsed = time.perf_counter() - started
    await client.drop_database("bench_raw")
    await client.close()
    return len(documents) / elapsed


def idea_documents(count: int, offset: int = 0) -> list[dict[str, Any]]:
    """Stored ideas as the service keeps them after creation and a few votes."""
    docs = []
    for n in range(offset, offset + count):
        state = IdeaState(
            f"stored-{n}",
            businessunit=UNITS[n % 4],
            title=f"Stored idea {n}",
            campaign_id=f"camp-{n % 5}",
            author_type=TYPES[n % 3],
            status="submitted",
            created=True,
            up=3,
            voters=3,
            weighted_score=3.0,
            votes_by={"external|retail": 3},
            demand_by_type={"external": 3.0},
        )
        insight = state.insight(revision=4, now=datetime.now(UTC)).model_dump(mode="json")
        docs.append(
            {**state.to_document(), **insight, "_id": state.idea_id, "seen": [f"k{n}-{i}" for i in range(4)]}
        )
    return docs


async def cost_per_fact(store: InsightStore, stored: int, rng: random.Random) -> float:
    """Seconds per fact applied in-process, on ideas picked at random among `stored`."""
    facts: list[Fact] = []
    for _ in range(COST_FACTS):
        # Voters come from a fixed population, as customers do, whatever the number of ideas.
        _, raw = encode(vote_fact(f"stored-{rng.randrange(stored)}", rng.randrange(VOTERS), rng))
        fact = parse_fact(raw)
        assert fact is not None
        facts.append(fact)
    projection = InsightProjection(store)
    started = time.perf_counter()
    for start in range(0, len(facts), FACT_BATCH):
        await projection.apply(facts[start : start + FACT_BATCH])
    return (time.perf_counter() - started) / len(facts)


async def cost_ratio(mongo_url: str) -> dict[str, float]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url)
    store = InsightStore(client["bench_cost"])
    await store.ensure_indexes()
    rng = random.Random(7)
    await insert_ideas(store, 0, SMALL)
    small = min([await cost_per_fact(store, SMALL, rng) for _ in range(2)])
    raw_small = min([await raw_cost_per_idea(store, SMALL, rng) for _ in range(2)])
    await insert_ideas(store, SMALL, LARGE - SMALL)
    large = min([await cost_per_fact(store, LARGE, rng) for _ in range(2)])
    raw_large = min([await raw_cost_per_idea(store, LARGE, rng) for _ in range(2)])
    await client.drop_database("bench_cost")
    await client.close()
    return {
        "us_per_fact_10k": small * 1e6,
        "us_per_fact_500k": large * 1e6,
        "ratio": large / small,
        "store_ratio": raw_large / raw_small,
    }


async def raw_cost_per_idea(store: InsightStore, stored: int, rng: random.Random) -> float:
    """Seconds per idea to read and replace random stored ideas by _id in bulk: the store alone."""
    ids = [f"stored-{rng.randrange(stored)}" for _ in range(COST_FACTS)]
    started = time.perf_counter()
    for start in range(0, len(ids), FACT_BATCH):
        docs = await store.load_ideas(ids[start : start + FACT_BATCH])
        await store.ideas.bulk_write([ReplaceOne({"_id": k}, d) for k, d in docs.items()], ordered=False)
    return (time.perf_counter() - started) / len(ids)


async def insert_ideas(store: InsightStore, offset: int, count: int) -> None:
    for start in range(offset, offset + count, 10_000):
        docs = idea_documents(min(10_000, offset + count - start), start)
        await store.ideas.bulk_write([InsertOne(d) for d in docs], ordered=False)


async def snapshot_records(
    bootstrap: str, match: Callable[[str], bool], wanted: int, timeout_s: float
) -> list[Any]:
    """Snapshot records whose key matches, read from the beginning until `wanted` distinct keys are final."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(INSIGHTS_IDEAS, p) for p in consumer.partitions_for_topic(INSIGHTS_IDEAS) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[Any] = []
        keys: set[str] = set()
        deadline = time.monotonic() + timeout_s
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(keys)} of {wanted} ideas snapshotted")
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            if not batch and len(keys) >= wanted:
                return found  # every wanted key seen, and caught up with the topic
            for records in batch.values():
                for record in records:
                    key = (record.key or b"").decode()
                    if match(key):
                        found.append(record)
                        keys.add(key)
    finally:
        await consumer.stop()


async def service_rate(bootstrap: str, total_facts: int) -> float:
    """Facts per second reflected in snapshots: the slope of Σ latest revisions over time."""

    async def final() -> list[Any]:
        while True:
            records = await snapshot_records(
                bootstrap, lambda k: k.startswith("bench-"), IDEAS, timeout_s=600
            )
            latest: dict[str, int] = {}
            for record in records:
                key = record.key.decode()
                latest[key] = max(latest.get(key, 0), json.loads(record.value)["data"]["revision"])
            if sum(latest.values()) >= total_facts:
                return records
            await asyncio.sleep(1)

    records = sorted(await final(), key=lambda r: r.timestamp)
    latest: dict[str, int] = {}
    curve: list[tuple[float, int]] = []
    for record in records:
        key = record.key.decode()
        latest[key] = max(latest.get(key, 0), json.loads(record.value)["data"]["revision"])
        curve.append((record.timestamp / 1000, sum(latest.values())))
    first_time = curve[0][0]
    at_first = max(count for stamp, count in curve if stamp == first_time)
    return (curve[-1][1] - at_first) / max(curve[-1][0] - first_time, 1e-3)


async def latency_p99(bootstrap: str, rate: float) -> tuple[float, int]:
    """p99 of snapshot CreateTime - fact CreateTime, for facts sent at `rate` per second."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", linger_ms=2
    )
    await producer.start()
    rng = random.Random(3)
    run = uuid.uuid4().hex[:6]
    sent: dict[str, int] = {}
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    try:
        started = time.perf_counter()
        n = 0
        while time.perf_counter() - started < LATENCY_SECONDS:
            futures = []
            for _ in range(per_tick):
                idea_id = f"lat-{run}-{n}"
                key, value = encode(vote_fact(idea_id, n, rng))
                futures.append((idea_id, await producer.send(VOTES_EVENTS, value, key=key)))
                n += 1
            for idea_id, future in futures:
                sent[idea_id] = (await future).timestamp
            await asyncio.sleep(max(0.0, started + n / (per_tick / tick) - time.perf_counter()))
    finally:
        await producer.stop()
    records = await snapshot_records(bootstrap, lambda k: k in sent, len(sent), timeout_s=300)
    first: dict[str, int] = {}
    for record in records:
        key = record.key.decode()
        first[key] = min(first.get(key, record.timestamp), record.timestamp)
    latencies = sorted(first[k] - sent[k] for k in sent)
    return float(latencies[int(0.99 * (len(latencies) - 1))]), len(latencies)


def main() -> None:
    ideas, votes = workload()
    total = len(ideas) + len(votes)
    with local_system("insights") as system:
        infra = system.infra
        asyncio.run(produce_all(infra.kafka_bootstrap, IDEAS_EVENTS, ideas))
        asyncio.run(produce_all(infra.kafka_bootstrap, VOTES_EVENTS, votes))
        broker_rate = asyncio.run(passthrough_rate(infra.kafka_bootstrap, total))
        store_rate = asyncio.run(raw_store_rate(infra.mongo_url, idea_documents(total, 10**7)))
        system._start_service("insights")
        rate = asyncio.run(service_rate(infra.kafka_bootstrap, total))
        p99, measured = asyncio.run(latency_p99(infra.kafka_bootstrap, rate / 2))
        system.terminate_service("insights")  # the in-process measurement gets the cores alone
        cost = asyncio.run(cost_ratio(infra.mongo_url))
    record_results(
        "insights",
        {
            "facts": total,
            "rate": round(rate, 1),
            "broker_batch_passthrough_rate": round(broker_rate, 1),
            "ratio_broker": round(rate / broker_rate, 4),
            "store_upsert_rate": round(store_rate, 1),
            "ratio_store": round(rate / store_rate, 3),
            "us_per_fact_10k": round(cost["us_per_fact_10k"], 1),
            "us_per_fact_500k": round(cost["us_per_fact_500k"], 1),
            "cost_ratio_500k_10k": round(cost["ratio"], 3),
            "store_cost_ratio_500k_10k": round(cost["store_ratio"], 3),
            "p99_ms": round(p99, 1),
            "latency_facts": measured,
            "latency_rate": round(rate / 2, 1),
        },
    )


if __name__ == "__main__":
    main()
