"""The local infrastructure runner that backs `make run` and these tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from pymongo import MongoClient

from centricity_contracts.topics import ALL_TOPICS, INSIGHTS_IDEAS
from centricity_plumbing.localinfra import LocalInfrastructure, free_port


async def test_every_topic_exists_with_its_partitions_and_policy(infra: LocalInfrastructure) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics([s.name for s in ALL_TOPICS])}
    finally:
        await admin.close()
    for spec in ALL_TOPICS:
        assert len(described[spec.name]["partitions"]) == spec.partitions, spec.name
    assert next(s for s in ALL_TOPICS if s.name == INSIGHTS_IDEAS).topic_config() == {
        "cleanup.policy": "compact"
    }


def mongo(url: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(url)


def test_stored_data_survives_a_restart_of_the_local_store(tmp_path: Path) -> None:
    def infrastructure() -> LocalInfrastructure:
        return LocalInfrastructure(
            kafka_port=free_port(),
            mongo_port=free_port(),
            mongo_data_dir=tmp_path / "mongo",
            run_dir=tmp_path / "run",
        )

    with infrastructure() as first, mongo(first.mongo_url) as client:
        client["centricity_ideas"]["ideas"].insert_one({"_id": "kept"})
    with infrastructure() as second, mongo(second.mongo_url) as client:
        assert client["centricity_ideas"]["ideas"].find_one({"_id": "kept"}) == {"_id": "kept"}
