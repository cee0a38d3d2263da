"""What every benchmark shares: the results file, timing from Kafka record timestamps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

RESULTS = Path(__file__).resolve().parents[1] / "bench-results.json"


def record_results(entry: str, figures: dict[str, Any]) -> None:
    """Merge one benchmark's figures into bench-results.json and print them."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[entry] = figures
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"{entry}: {json.dumps(figures, sort_keys=True)}", flush=True)


async def produce_all(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", linger_ms=5, max_batch_size=1 << 20
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def timestamps(bootstrap: str, topic: str, *, wanted: int, timeout_s: float) -> list[int]:
    """CreateTime of the first `wanted` records on `topic`, read from the beginning."""
    import asyncio

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[int] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(found) < wanted:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"only {len(found)} of {wanted} records on {topic}")
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            found += [m.timestamp for messages in batch.values() for m in messages]
        return found
    finally:
        await consumer.stop()
