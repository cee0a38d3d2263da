"""A business unit posts an idea over HTTP and votes over Kafka; a dashboard reads the insight."""

from __future__ import annotations

import json
import signal
import time
import uuid
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient
from pymongo.collection import Collection

from centricity_contracts.topics import (
    IDEAS_EVENTS,
    IDEAS_INTAKE,
    IDEAS_INTAKE_DLQ,
    INSIGHTS_IDEAS,
    VOTES_EVENTS,
    VOTES_INTAKE,
    VOTES_INTAKE_DLQ,
)
from centricity_plumbing.localrun import DEV_BUSINESS_UNITS, LocalSystem
from centricity_plumbing.settings import ServiceSettings
from tests.e2e.kcat import Kcat, produce_signed_burst

TIMEOUT_S = 30.0


def vote_cast(idea_id: str, voter: str, value: int, businessunit: str = "wholesale") -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": f"/bu/{businessunit}/portal",
            "type": "centricity.vote.cast.v1",
            "time": "2026-11-23T10:00:00Z",
            "businessunit": businessunit,
            "data": {
                "idea_id": idea_id,
                "voter": {"customer_id": voter, "customer_type": "external"},
                "value": value,
            },
        }
    )


def wait_for(kcat: Kcat, topic: str, match: Any, what: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [m for m in kcat.consume_all(topic) if match(m)]
        if found:
            return found[-1]
        time.sleep(0.3)
    raise AssertionError(f"no {what} on {topic} within {timeout_s:.0f} s")


def submit_idea(system: LocalSystem, reference: str) -> str:
    answer = httpx.post(
        f"{system.url('ideas')}/ideas",
        json={
            "reference": reference,
            "title": "Pay invoices by card",
            "description": "Our finance team wants to settle invoices by company card.",
            "tags": ["billing"],
            "author": {"customer_id": "acme-finance", "customer_type": "external"},
        },
        headers={"X-API-Key": DEV_BUSINESS_UNITS["retail"]["api_key"]},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["idea_id"])


def test_an_idea_and_its_kafka_votes_show_up_in_the_insight_stream(system: LocalSystem, kcat: Kcat) -> None:
    idea_id = submit_idea(system, f"ERP-{uuid.uuid4().hex[:8]}")
    kcat.produce_signed(
        VOTES_INTAKE,
        [
            (idea_id, vote_cast(idea_id, "w-1", 1)),
            (idea_id, vote_cast(idea_id, "w-2", 1)),
            (idea_id, '{"this is": "not a vote"}'),
            (idea_id, vote_cast(idea_id, "w-3", 1)),
            (idea_id, vote_cast(idea_id, "w-3", -1)),
            (idea_id, vote_cast(idea_id, "r-1", -1, businessunit="retail")),
        ],
    )

    def final_snapshot(message: dict[str, Any]) -> bool:
        data = json.loads(message["payload"])["data"]
        return message["key"] == idea_id and (data["up"], data["down"]) == (2, 2)

    snapshot = json.loads(
        wait_for(kcat, INSIGHTS_IDEAS, final_snapshot, "snapshot with 2 up, 2 down")["payload"]
    )
    assert snapshot["type"] == "centricity.idea_insight.updated.v1"
    assert snapshot["businessunit"] == "retail"
    assert snapshot["data"]["title"] == "Pay invoices by card"
    assert snapshot["data"]["voters"] == 4

    dead = wait_for(kcat, VOTES_INTAKE_DLQ, lambda m: m["key"] == idea_id, "dead-lettered vote")
    assert dead["payload"] == '{"this is": "not a vote"}'
    assert dead["headers"]["dlq-reason"].startswith("invalid event")
    assert dead["headers"]["dlq-original-topic"] == VOTES_INTAKE

    top = httpx.get(
        f"{system.url('insights')}/ideas/top",
        params={"businessunit": "retail"},
        headers={"X-API-Key": DEV_BUSINESS_UNITS["retail"]["api_key"]},
        timeout=10,
    ).json()
    assert idea_id in [idea["idea_id"] for idea in top]
    assert_metrics_tell_what_happened(system)


def scraped(system: LocalSystem, service: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """A service's /metrics as an operator's Prometheus reads it: sample name, labels, value."""
    answer = httpx.get(f"{system.url(service)}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def total(samples: dict[str, dict[tuple[tuple[str, str], ...], float]], name: str, **labels: str) -> float:
    return sum(v for k, v in samples.get(name, {}).items() if set(labels.items()) <= set(k))


def assert_metrics_tell_what_happened(system: LocalSystem) -> None:
    """Scraped while the system runs: the submission, the votes taken in, the one refused."""
    ideas, votes, insights = (scraped(system, s) for s in ("ideas", "votes", "insights"))
    assert total(ideas, "http_requests_total", handler="/ideas", method="POST", status="201") >= 1
    assert total(votes, "faststream_received_messages_total", handler=VOTES_INTAKE) >= 6
    assert total(votes, "centricity_dead_letters_total", topic=VOTES_INTAKE, code="invalid-event") >= 1
    assert total(votes, "faststream_published_messages_total", destination=VOTES_EVENTS) >= 1
    assert total(insights, "centricity_snapshot_latency_seconds_count") >= 1
    for samples in (ideas, votes, insights):
        assert "centricity_backlog" in samples
        assert total(samples, "centricity_backlog_probe_failures_total") == 0


def crash_on_first_writes(system: LocalSystem, service: str, collection: str) -> int:
    """Start `service` on a burst waiting on its topic and SIGKILL it as soon as it stores anything.

    The count of the service's own collection is watched because it moves first: waiting for
    readiness, or re-reading the fact topic with kcat, let CI's machine finish a whole burst of
    5,000 ideas before the crash. Writes already sent still land, so the returned count of stored
    documents is often a few thousand.
    """
    client: MongoClient[dict[str, Any]]
    with MongoClient(system.infra.mongo_url) as client:
        # The services run with the default settings' database names (make run's too).
        database = ServiceSettings.model_construct(service_name=service).database_name()
        documents: Collection[dict[str, Any]] = client[database][collection]
        before = documents.count_documents({})
        system.restart_service(service, wait_until_ready=False)
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while documents.count_documents({}) == before:
                assert time.monotonic() < deadline, f"the {service} service did not start on the burst"
                time.sleep(0.01)
            system.kill_service(service)
        finally:
            if not system.is_running(service):
                system.restart_service(service)
        return documents.count_documents({}) - before


def test_votes_survive_a_crash_of_the_votes_service_mid_stream(system: LocalSystem, kcat: Kcat) -> None:
    idea_id = submit_idea(system, f"ERP-{uuid.uuid4().hex[:8]}")
    voters = 10_000
    # The burst waits on the topic, so the restarted service is surely in the middle of it below.
    system.kill_service("votes")
    burst = [(idea_id, vote_cast(idea_id, f"v-{n}", 1)) for n in range(voters)]
    produce_signed_burst(system.infra.kafka_bootstrap, VOTES_INTAKE, burst)
    stored_before_crash = crash_on_first_writes(system, "votes", "votes")
    assert stored_before_crash < voters, "the crash came after the burst: nothing was tested"

    def all_counted(message: dict[str, Any]) -> bool:
        return bool(message["key"] == idea_id and json.loads(message["payload"])["data"]["voters"] >= voters)

    counted = wait_for(kcat, INSIGHTS_IDEAS, all_counted, f"{voters} voters", timeout_s=180)
    snapshot = json.loads(counted["payload"])
    assert (snapshot["data"]["voters"], snapshot["data"]["up"]) == (voters, voters)
    facts = [json.loads(m["payload"]) for m in kcat.consume_all(VOTES_EVENTS) if m["key"] == idea_id]
    assert len({fact["id"] for fact in facts}) == voters, "one fact per vote; republished ones keep their id"
    print(f"crash after {stored_before_crash}/{voters} votes stored; {len(facts)} facts for {voters} votes")


def idea_submitted(reference: str, n: int) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"{reference}-event",
            "source": "/bu/retail/crm",
            "type": "centricity.idea.submitted.v1",
            "businessunit": "retail",
            "data": {
                "reference": reference,
                "title": f"Idea number {n} from the CRM import",
                "description": "Imported in bulk from the unit's CRM.",
                "author": {"customer_id": f"c-{n}", "customer_type": "external"},
            },
        }
    )


def is_created_fact_of(run: str, message: dict[str, Any]) -> bool:
    return run in message["payload"] and '"centricity.idea.created.v1"' in message["payload"]


def created_facts(kcat: Kcat, run: str) -> list[dict[str, Any]]:
    return [json.loads(m["payload"]) for m in kcat.consume_all(IDEAS_EVENTS) if is_created_fact_of(run, m)]


def test_ideas_survive_a_crash_of_the_ideas_service_mid_stream(system: LocalSystem, kcat: Kcat) -> None:
    run, count = f"IMPORT-{uuid.uuid4().hex[:8]}", 10_000
    submissions = [(f"{run}-{n}", idea_submitted(f"{run}-{n}", n)) for n in range(count)]
    system.kill_service("ideas")
    produce_signed_burst(system.infra.kafka_bootstrap, IDEAS_INTAKE, submissions)
    stored_before_crash = crash_on_first_writes(system, "ideas", "ideas")
    assert stored_before_crash < count, "the crash came after the burst: nothing was tested"

    deadline = time.monotonic() + 120
    while len({fact["id"] for fact in created_facts(kcat, run)}) < count:
        assert time.monotonic() < deadline, "not every idea was published after the restart"
        time.sleep(0.5)
    facts = created_facts(kcat, run)
    assert len({fact["data"]["idea_id"] for fact in facts}) == count
    assert len({fact["id"] for fact in facts}) == count, "one fact per idea; republished ones keep their id"
    assert not [m for m in kcat.consume_all(IDEAS_INTAKE_DLQ) if run in m["payload"]]
    listed = httpx.get(
        f"{system.url('ideas')}/ideas/{facts[-1]['data']['idea_id']}",
        headers={"X-API-Key": DEV_BUSINESS_UNITS["retail"]["api_key"]},
        timeout=10,
    )
    assert listed.status_code == 200
    print(f"crash after {stored_before_crash}/{count} ideas stored; {len(facts)} created facts")


def test_sigterm_stops_a_service_cleanly_and_it_resumes(system: LocalSystem, kcat: Kcat) -> None:
    idea_id = submit_idea(system, f"ERP-{uuid.uuid4().hex[:8]}")
    # Uvicorn re-raises SIGTERM once it has shut down gracefully, as a process should.
    assert system.terminate_service("insights") in (0, -signal.SIGTERM)
    assert "insights stopped" in system.log_path("insights").read_text()
    kcat.produce_signed(VOTES_INTAKE, [(idea_id, vote_cast(idea_id, "late-voter", 1))])
    system.restart_service("insights")

    def counted(message: dict[str, Any]) -> bool:
        return bool(message["key"] == idea_id and json.loads(message["payload"])["data"]["up"] == 1)

    wait_for(kcat, INSIGHTS_IDEAS, counted, "the vote cast while insights was down")


def test_merging_an_idea_moves_its_votes_and_a_voter_on_both_counts_once(
    system: LocalSystem, kcat: Kcat
) -> None:
    twin = submit_idea(system, f"ERP-{uuid.uuid4().hex[:8]}")
    survivor = submit_idea(system, f"ERP-{uuid.uuid4().hex[:8]}")
    votes = [(twin, vote_cast(twin, "only-twin", 1)), (twin, vote_cast(twin, "both", 1))]
    votes += [(survivor, vote_cast(survivor, "both", -1))]
    kcat.produce_signed(VOTES_INTAKE, votes)
    wait_for(kcat, VOTES_EVENTS, lambda m: m["key"] == twin and "both" in m["payload"], "the twin's votes")
    wait_for(kcat, VOTES_EVENTS, lambda m: m["key"] == survivor, "the survivor's vote")

    merged = httpx.post(
        f"{system.url('ideas')}/ideas/{twin}/merge",
        json={"into_idea_id": survivor, "by": {"actor_id": "pm-anna"}},
        headers={"X-API-Key": DEV_BUSINESS_UNITS["retail"]["api_key"]},
        timeout=10,
    )
    assert merged.status_code == 200, merged.text

    def moved(message: dict[str, Any]) -> bool:
        return message["key"] == survivor and '"centricity.vote.moved.v1"' in message["payload"]

    wait_for(kcat, VOTES_EVENTS, lambda m: moved(m) and "only-twin" in m["payload"], "the moved vote")
    moves = [json.loads(m["payload"])["data"] for m in kcat.consume_all(VOTES_EVENTS) if moved(m)]
    assert sorted((move["voter"]["customer_id"], move["outcome"]) for move in moves) == [
        ("both", "kept_target"),
        ("only-twin", "moved"),
    ]
    on_survivor = httpx.get(
        f"{system.url('votes')}/ideas/{survivor}/votes",
        headers={"X-API-Key": DEV_BUSINESS_UNITS["wholesale"]["api_key"]},
        timeout=10,
    ).json()
    assert sorted((v["voter"]["customer_id"], v["value"]) for v in on_survivor) == [
        ("both", -1),
        ("only-twin", 1),
    ]
