"""An HTTP vote waits for an idea created a moment ago, but not for one that does not exist."""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from centricity_contracts.topics import IDEAS_EVENTS
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_votes.main import VotesSettings, create_app
from tests.integration.conftest import API_KEYS, SettingsFactory, running, unique
from tests.support import announce_ideas, eventually

RETAIL = {"X-API-Key": API_KEYS["retail"]}


def ballot(idea_id: str, voter: str) -> dict[str, Any]:
    return {"idea_id": idea_id, "voter": {"customer_id": voter, "customer_type": "internal"}, "value": 1}


async def group_has_read_every_idea_fact(bootstrap: str, group: str) -> bool:
    """Whether the group's committed offsets reach the end of every partition of the idea facts."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        await consumer.topics()  # loads the metadata that names the partitions
        numbers = consumer.partitions_for_topic(IDEAS_EVENTS) or set()
        partitions = [TopicPartition(IDEAS_EVENTS, p) for p in numbers]
        ends = await consumer.end_offsets(partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
        await consumer.stop()
    return bool(partitions) and all(tp in committed and committed[tp].offset >= ends[tp] for tp in partitions)


async def test_a_vote_on_an_unknown_idea_is_answered_at_once_when_every_idea_fact_is_read(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    # A wait far longer than any answer on a loaded machine: a 404 that came before it did not wait.
    settings = make_settings(VotesSettings, new_idea_wait_s=120.0)
    await announce_ideas(infra.kafka_bootstrap, unique("idea"))
    async with running(create_app(settings)) as client:

        async def caught_up() -> bool:
            return await group_has_read_every_idea_fact(
                infra.kafka_bootstrap, f"{settings.consumer_group()}-ideas"
            )

        await eventually(caught_up, what="the votes service to read every idea fact")
        started = time.monotonic()
        unknown = await client.post("/votes", json=ballot(unique("idea"), "c-1"), headers=RETAIL)
        answered_in = time.monotonic() - started

        # Sent right after the idea's creation, before the service can have read it.
        idea = unique("idea")
        await announce_ideas(infra.kafka_bootstrap, idea)
        just_created = await client.post("/votes", json=ballot(idea, "c-1"), headers=RETAIL)

    assert unknown.status_code == 404, unknown.text
    assert answered_in < settings.new_idea_wait_s / 2, f"404 after {answered_in:.2f} s: it waited"
    assert just_created.status_code == 200, just_created.text
    assert just_created.json()["outcome"] == "recorded"
