"""A BU developer with only contracts/EVENTS.md (issue #18): a client no one here wrote
(confluent-kafka, with the standard library for the id and the signature) posts a signed idea and
a vote on it, naming the idea by the id the document says how to compute, and reads the facts."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from centricity_ideas.main import IdeasSettings
from centricity_ideas.main import create_app as create_ideas
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_votes.main import VotesSettings
from centricity_votes.main import create_app as create_votes
from tests.integration.conftest import API_KEYS, SettingsFactory, running, unique
from tests.support import eventually

EVENTS_MD = Path(__file__).resolve().parents[2] / "contracts" / "EVENTS.md"


def documented(pattern: str) -> str:
    found = re.search(pattern, EVENTS_MD.read_text())
    assert found, f"EVENTS.md does not document {pattern!r}"
    return found.group(1)


def signed(producer: Producer, topic: str, key: str, event: dict[str, Any], api_key: str) -> None:
    value = json.dumps(event).encode()
    header = documented(r"header `([a-z-]+): sha256=<hex>`")
    signature = "sha256=" + hmac.new(api_key.encode(), value, hashlib.sha256).hexdigest()
    producer.produce(topic, value=value, key=key.encode(), headers=[(header, signature.encode())])


def facts_about(bootstrap: str, topic: str, idea_id: str) -> list[dict[str, Any]]:
    """Every fact about an idea on a topic, read from the beginning without a consumer group."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    facts: list[dict[str, Any]] = []
    try:
        while (message := consumer.poll(2.0)) is not None:
            value = message.value()
            if message.error() is None and message.key() == idea_id.encode() and value:
                facts.append(json.loads(value))
    finally:
        consumer.close()
    return facts


async def test_a_stranger_posts_and_reads_with_only_the_published_document(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    namespace = uuid.UUID(documented(r"in the namespace\s+`([0-9a-f-]{36})`"))
    reference = unique("STRANGER")
    idea_id = str(uuid.uuid5(namespace, f"retail\x1f{reference}"))
    source = "/bu/retail/stranger"
    submission = {
        "specversion": "1.0",
        "id": unique("s"),
        "source": source,
        "type": "centricity.idea.submitted.v1",
        "businessunit": "retail",
        "data": {
            "reference": reference,
            "title": "Posted by a stranger",
            "author": {"customer_id": "s-1", "customer_type": "external"},
        },
    }
    vote = {
        "specversion": "1.0",
        "id": unique("v"),
        "source": source,
        "type": "centricity.vote.cast.v1",
        "businessunit": "retail",
        "data": {"idea_id": idea_id, "voter": {"customer_id": "s-2", "customer_type": "partner"}, "value": 1},
    }
    required = {"intake_signatures": "required"}
    ideas_app = create_ideas(make_settings(IdeasSettings, **required))
    votes_app = create_votes(make_settings(VotesSettings, **required))
    async with running(ideas_app), running(votes_app):
        producer = Producer({"bootstrap.servers": infra.kafka_bootstrap})
        signed(producer, "ideas.intake.v1", reference, submission, API_KEYS["retail"])
        signed(producer, "votes.intake.v1", idea_id, vote, API_KEYS["retail"])
        assert producer.flush(10) == 0

        async def vote_recorded() -> list[dict[str, Any]] | None:
            facts = await asyncio.to_thread(facts_about, infra.kafka_bootstrap, "votes.events.v1", idea_id)
            return [f for f in facts if f["type"] == "centricity.vote.recorded.v1"] or None

        (recorded,) = await eventually(vote_recorded, timeout=60, what="the stranger's vote")
    (created,) = [
        f
        for f in facts_about(infra.kafka_bootstrap, "ideas.events.v1", idea_id)
        if f["type"] == "centricity.idea.created.v1"
    ]
    assert created["data"]["idea_id"] == idea_id
    assert recorded["data"]["voter"]["customer_id"] == "s-2"
