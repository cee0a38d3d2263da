"""Poison records of any size never stall intake (issue #13): an oversized one is dead-lettered as a
truncated copy, and the valid records around it are stored, on the real local broker and store."""

from __future__ import annotations

import base64
import json

import pytest
from aiokafka import AIOKafkaProducer

from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE, IDEAS_INTAKE_DLQ
from centricity_ideas.domain import idea_id_for
from centricity_ideas.main import IdeasSettings, create_app
from centricity_plumbing import broker
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_plumbing.mongo import MongoStore
from centricity_plumbing.quarantine import QUARANTINE_COLLECTION
from tests.integration.conftest import SettingsFactory, running, unique
from tests.support import bu_event, wait_for_records

AUTHOR = {"customer_id": "c-1", "customer_type": "external"}
OVERSIZED_BYTES = 2_000_000


def submitted(reference: str, **extra: object) -> bytes:
    data = {"reference": reference, "title": f"Idea {reference}", "author": AUTHOR, **extra}
    return json.dumps(bu_event("centricity.idea.submitted.v1", unique("e"), data)).encode()


async def test_a_2_mb_record_is_dead_lettered_truncated_and_the_records_around_it_are_stored(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    run = unique("poison")
    before = [f"{run}-b{n}" for n in range(20)]
    after = [f"{run}-a{n}" for n in range(20)]
    poison = submitted(f"{run}-huge", padding="x" * OVERSIZED_BYTES)
    # A BU's own producer, allowed to send what the services' producers could not forward.
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, enable_idempotence=False, max_request_size=4_000_000
    )
    await producer.start()
    try:
        # One key: the poison record sits between the valid ones on a single partition.
        for value in [*map(submitted, before), poison, *map(submitted, after)]:
            await producer.send_and_wait(IDEAS_INTAKE, value, key=run.encode())
    finally:
        await producer.stop()
    async with running(create_app(make_settings(IdeasSettings))):
        ids = {idea_id_for("retail", reference) for reference in [*before, *after]}
        stored = await wait_for_records(
            infra.kafka_bootstrap, IDEAS_EVENTS, lambda r: r.key in ids, count=len(ids), timeout=90
        )
        (dead,) = await wait_for_records(
            infra.kafka_bootstrap,
            IDEAS_INTAKE_DLQ,
            lambda r: r.headers.get("dlq-original-offset") is not None and r.key == run,
            timeout=60,
        )
    assert {r.key for r in stored} == ids
    assert dead.headers["dlq-code"] == "invalid-event"
    assert dead.headers["dlq-truncated"] == "true"
    assert int(dead.headers["dlq-original-size"]) == len(poison)
    assert len(dead.value) < 1_000_000
    assert poison.startswith(dead.value)


async def test_a_dead_letter_that_cannot_be_published_is_quarantined_and_ready_says_degraded(
    make_settings: SettingsFactory, infra: LocalInfrastructure, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Forward oversized records whole, as the services did before truncation: the producer then
    # refuses every dead-letter publish (MessageSizeTooLargeError), a failure that never heals.
    monkeypatch.setattr(broker, "DEAD_LETTER_VALUE_MAX", 4 * OVERSIZED_BYTES)
    run = unique("quarantine")
    before, after = [f"{run}-b{n}" for n in range(5)], [f"{run}-a{n}" for n in range(5)]
    poison = submitted(f"{run}-huge", padding="x" * OVERSIZED_BYTES)
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka_bootstrap, enable_idempotence=False, max_request_size=4_000_000
    )
    await producer.start()
    try:
        for value in [*map(submitted, before), poison, *map(submitted, after)]:
            await producer.send_and_wait(IDEAS_INTAKE, value, key=run.encode())
    finally:
        await producer.stop()
    settings = make_settings(IdeasSettings)
    async with running(create_app(settings)) as client:
        ready = await client.get("/ready")
        assert ready.json()["status"] == "ready"
        ids = {idea_id_for("retail", reference) for reference in [*before, *after]}
        stored = await wait_for_records(
            infra.kafka_bootstrap, IDEAS_EVENTS, lambda r: r.key in ids, count=len(ids), timeout=90
        )
        ready = await client.get("/ready")
    assert {r.key for r in stored} == ids
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    mongo = MongoStore(infra.mongo_url, settings.database_name())
    try:
        # A new consumer group reads the topic from its start, so earlier tests' oversized
        # records are quarantined too; this run's poison must be there exactly once.
        every = [doc async for doc in mongo.db[QUARANTINE_COLLECTION].find()]
    finally:
        await mongo.close()
    assert ready.json()["quarantined"] == len(every)
    (kept,) = [doc for doc in every if doc["key"] == run]
    assert kept["topic"] == IDEAS_INTAKE
    assert kept["size"] == len(poison)
    assert kept["headers"]["dlq-code"] == "invalid-event"
    assert "MessageSizeTooLarge" in kept["publish_error"]
    assert poison.startswith(base64.b64decode(kept["value_base64"]))
