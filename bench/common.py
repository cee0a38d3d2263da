"""What every benchmark shares: the results file, timing from Kafka record timestamps."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from centricity_plumbing.broker import SIGNATURE_HEADER, intake_signature
from centricity_plumbing.localinfra import LocalInfrastructure, free_port
from centricity_plumbing.localrun import DEV_BUSINESS_UNITS, LocalSystem

RESULTS = Path(__file__).resolve().parents[1] / "bench-results.json"


def record_results(entry: str, figures: dict[str, Any]) -> None:
    """Merge one benchmark's figures into bench-results.json and print them."""
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[entry] = figures
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"{entry}: {json.dumps(figures, sort_keys=True)}", flush=True)


def signed(value: bytes) -> list[tuple[str, bytes]]:
    """The signature header a unit's system puts on an intake event: the local run, like
    production, refuses unsigned intake, and checking it is part of the path measured."""
    unit = json.loads(value)["businessunit"]
    return [(SIGNATURE_HEADER, intake_signature(value, DEV_BUSINESS_UNITS[unit]["api_key"]).encode())]


async def produce_all(
    bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]], *, sign: bool = False
) -> None:
    """Produce `messages` as fast as the producer batches them; `sign` for intake topics."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=False, acks="all", linger_ms=5, max_batch_size=1 << 20
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, headers=signed(value) if sign else None)
            for key, value in messages
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def timestamps(
    bootstrap: str, topic: str, *, wanted: int, timeout_s: float, marker: bytes = b""
) -> list[int]:
    """CreateTime of the first `wanted` records on `topic` whose value holds `marker`, read from
    the beginning."""
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
            found += [
                m.timestamp for records in batch.values() for m in records if marker in (m.value or b"")
            ]
        return found
    finally:
        await consumer.stop()


def rate_of(stamps: list[int]) -> float:
    """Records per second between the first and the last of these CreateTimes (ms)."""
    return (len(stamps) - 1) / ((max(stamps) - min(stamps)) / 1000)


@contextlib.contextmanager
def local_system(service: str) -> Iterator[LocalSystem]:
    """Kafka and MongoDB started on free ports in a scratch folder, with `service` ready to be
    started as its own process; everything stops on exit."""
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        infra = LocalInfrastructure(
            kafka_port=free_port(),
            mongo_port=free_port(),
            mongo_data_dir=data / "mongo",
            run_dir=data / "run",
        )
        system = LocalSystem(infra, services={service: free_port()})
        infra.start()
        try:
            yield system
        finally:
            system.stop()


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")
