"""The services' link to the broker cut mid-burst and mended (#13, the fault suite).

Tansu advertises a relay (`centricity_plumbing.relay`) that every Kafka client goes through. A
unit's system posts a burst of signed votes; while the votes service is applying them, the
relay resets every connection and refuses new ones for a while. The services must say they are
not ready while cut, reconnect by themselves once mended, and end with every vote stored once,
published once (one fact id per vote) and counted once by insights: nothing lost, nothing twice.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from pymongo.collection import Collection

from centricity_contracts.topics import IDEAS_EVENTS, VOTES_EVENTS, VOTES_INTAKE
from centricity_plumbing.localinfra import LocalInfrastructure, free_port
from centricity_plumbing.localrun import LocalSystem
from centricity_plumbing.relay import Relay
from centricity_plumbing.settings import ServiceSettings
from tests.e2e.kcat import Kcat, librdkafka_dir, produce_signed_burst
from tests.support import idea_created_fact

pytestmark = pytest.mark.e2e

IDEAS = 20
VOTES = 6000
CUT_S = 12.0
TIMEOUT_S = 240.0


@pytest.fixture(scope="module")
def relay_and_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Relay, LocalSystem]]:
    data = tmp_path_factory.mktemp("cut")
    infra = LocalInfrastructure(
        kafka_port=free_port(),
        kafka_advertised_port=free_port(),
        mongo_port=free_port(),
        mongo_data_dir=data / "mongo",
        run_dir=data / "run",
    )
    assert infra.kafka_advertised_port is not None
    relay = Relay(infra.kafka_advertised_port, infra.kafka_port).start()
    system = LocalSystem(infra, services={"votes": free_port(), "insights": free_port()})
    try:
        system.start()
        yield relay, system
    finally:
        system.stop()
        relay.stop()


def wait(what: str, done: Any, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def ballot(idea_id: str, voter: str) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/bu/retail/crm",
            "type": "centricity.vote.cast.v1",
            "businessunit": "retail",
            "data": {
                "idea_id": idea_id,
                "voter": {"customer_id": voter, "customer_type": "external"},
                "value": 1,
            },
        }
    )


def ready(system: LocalSystem, service: str) -> int:
    try:
        return httpx.get(f"{system.url(service)}/ready", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def test_a_cut_broker_link_loses_and_doubles_nothing(
    relay_and_system: tuple[Relay, LocalSystem], tmp_path_factory: pytest.TempPathFactory
) -> None:
    relay, system = relay_and_system
    run = uuid.uuid4().hex[:8]
    ideas = [f"{run}-idea-{n}" for n in range(IDEAS)]
    kcat = Kcat(system.infra.kafka_bootstrap, librdkafka_dir(tmp_path_factory.mktemp("kcat")))
    kcat.produce_lines(IDEAS_EVENTS, [(i, json.dumps(idea_created_fact(i))) for i in ideas])
    votes_db = ServiceSettings.model_construct(service_name="votes").database_name()
    insights_db = ServiceSettings.model_construct(service_name="insights").database_name()
    client: MongoClient[dict[str, Any]]
    with MongoClient(system.infra.mongo_url) as client:
        stored: Collection[dict[str, Any]] = client[votes_db].votes
        ours = {"idea_id": {"$in": ideas}, "vote": {"$exists": True}}
        wait(
            "the ideas to be known",
            lambda: client[votes_db].ideas.count_documents({"_id": {"$in": ideas}}) == IDEAS,
        )
        produce_signed_burst(
            system.infra.kafka_bootstrap,
            VOTES_INTAKE,
            [(ideas[n % IDEAS], ballot(ideas[n % IDEAS], f"{run}-v{n}")) for n in range(VOTES)],
        )
        wait("the burst to be under way", lambda: stored.count_documents(ours) >= VOTES // 20)
        relay.cut()
        stored_at_cut = stored.count_documents(ours)
        wait("votes to say it is not ready", lambda: ready(system, "votes") == 503, timeout_s=CUT_S)
        time.sleep(CUT_S)
        stored_after_cut = stored.count_documents(ours)
        relay.mend()

        wait("every vote stored", lambda: stored.count_documents(ours) == VOTES)
        wait("votes ready again", lambda: ready(system, "votes") == 200, timeout_s=60)
        counted: Collection[dict[str, Any]] = client[insights_db].idea_insights

        def voters_counted() -> int:
            return sum(int(d.get("voters", 0)) for d in counted.find({"_id": {"$in": ideas}}))

        wait("insights to count every vote", lambda: voters_counted() == VOTES)
        time.sleep(2)  # anything counted twice would show by now
        assert voters_counted() == VOTES, "each vote counted once"
        assert ready(system, "insights") == 200

    facts = [
        json.loads(m["payload"])
        for m in kcat.consume_all(VOTES_EVENTS)
        if m["key"] in set(ideas) and "vote.recorded" in json.loads(m["payload"])["type"]
    ]
    ids_per_vote: dict[str, set[str]] = {}
    for fact in facts:
        ids_per_vote.setdefault(fact["data"]["vote_id"], set()).add(fact["id"])
    assert len(ids_per_vote) == VOTES, "every vote published"
    assert all(len(ids) == 1 for ids in ids_per_vote.values()), "one fact id per vote"
    republished = sum(Counter(f["id"] for f in facts).values()) - VOTES
    print(
        f"cut after {stored_at_cut} of {VOTES} votes stored ({stored_after_cut} when mended); "
        f"{republished} facts published again under their id"
    )
    assert stored_at_cut < VOTES, "the cut came while the burst was being applied"
