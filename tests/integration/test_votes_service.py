"""The votes service on the real local broker and store."""

from __future__ import annotations

import json
from typing import Any

import httpx

from centricity_contracts.topics import VOTES_EVENTS, VOTES_INTAKE, VOTES_INTAKE_DLQ
from centricity_plumbing.broker import SIGNATURE_HEADER, intake_signature
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_votes.domain import vote_id_for
from centricity_votes.main import VotesSettings, create_app
from tests.integration.conftest import API_KEYS, SettingsFactory, running, unique
from tests.support import Record, announce_ideas, bu_event, eventually, produce, read_topic, wait_for_records

RETAIL = {"X-API-Key": API_KEYS["retail"]}


def ballot(idea_id: str, voter: str, value: int) -> dict[str, Any]:
    return {"idea_id": idea_id, "voter": {"customer_id": voter, "customer_type": "internal"}, "value": value}


def cast_event(event_id: str, data: dict[str, Any], businessunit: str = "retail") -> dict[str, Any]:
    return bu_event("centricity.vote.cast.v1", event_id, data, businessunit)


async def cast_when_known(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """Cast over HTTP once the votes service has caught up with the idea's creation."""

    async def cast() -> httpx.Response | None:
        answer = await client.post("/votes", json=body, headers=headers)
        return None if answer.status_code == 404 else answer

    return await eventually(cast, what="the votes service to know the idea")


async def facts_for(infra: LocalInfrastructure, idea_id: str) -> list[Record]:
    """An idea's vote facts as a consumer sees them: a republished fact (same id) counts once."""
    unique_facts: dict[str, Record] = {}
    for record in await read_topic(infra.kafka_bootstrap, VOTES_EVENTS):
        if record.key == idea_id:
            fact_id = record.json()["id"]
            assert unique_facts.setdefault(fact_id, record).json() == record.json(), "one id, one fact"
    return list(unique_facts.values())


async def test_one_vote_per_voter_change_counts_and_repeat_does_not(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    idea = unique("idea")
    await announce_ideas(infra.kafka_bootstrap, idea)
    async with running(create_app(make_settings(VotesSettings))) as client:
        first = await cast_when_known(client, ballot(idea, "c-1", 1), RETAIL)
        repeat = await client.post("/votes", json=ballot(idea, "c-1", 1), headers=RETAIL)
        changed = await client.post("/votes", json=ballot(idea, "c-1", -1), headers=RETAIL)
    assert [a.json()["outcome"] for a in (first, repeat, changed)] == ["recorded", "unchanged", "recorded"]
    assert changed.json()["vote"]["value"] == -1
    facts = [r.json()["data"] for r in await facts_for(infra, idea)]
    assert [(f["value"], f["previous_value"], f["revision"]) for f in facts] == [(1, 0, 1), (-1, 1, 2)]


async def test_a_retried_request_cannot_undo_a_later_vote(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    idea = unique("idea")
    await announce_ideas(infra.kafka_bootstrap, idea)
    async with running(create_app(make_settings(VotesSettings))) as client:
        await cast_when_known(client, ballot(idea, "c-1", 1), {**RETAIL, "Idempotency-Key": "k1"})
        await client.post("/votes", json=ballot(idea, "c-1", -1), headers={**RETAIL, "Idempotency-Key": "k2"})
        retried = await client.post(
            "/votes", json=ballot(idea, "c-1", 1), headers={**RETAIL, "Idempotency-Key": "k1"}
        )
    assert retried.json()["outcome"] == "unchanged"
    assert retried.json()["vote"]["value"] == -1


async def test_an_invalid_vote_gets_422_problem(make_settings: SettingsFactory) -> None:
    async with running(create_app(make_settings(VotesSettings))) as client:
        answer = await client.post("/votes", json=ballot("i", "c", 5), headers=RETAIL)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["errors"][0]["loc"] == ["body", "value"]


async def test_kafka_votes_apply_once_in_order_and_bad_ones_are_dead_lettered(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    idea = unique("idea")
    await announce_ideas(infra.kafka_bootstrap, idea)
    run = unique("run")
    messages: list[tuple[str | None, bytes | dict[str, Any]]] = [
        (idea, cast_event(f"{run}-1", ballot(idea, "a", 1))),
        (idea, cast_event(f"{run}-2", ballot(idea, "b", 1))),
        (idea, b'{"specversion": "1.0"'),
        (idea, cast_event(f"{run}-3", ballot(idea, "a", -1))),
        (idea, cast_event(f"{run}-4", ballot(idea, "c", 1), businessunit="unknown-unit")),
        (idea, cast_event(f"{run}-1", ballot(idea, "a", 1))),  # a redelivery of the first
        (idea, cast_event(f"{run}-5", {**ballot(idea, "d", 1), "value": 0})),
        (idea, cast_event(f"{run}-6", ballot(idea, "b", 1))),  # a repeat: no change
    ]
    await produce(infra.kafka_bootstrap, VOTES_INTAKE, messages)
    settings = make_settings(VotesSettings)
    async with running(create_app(settings)):
        dead = await wait_for_records(
            infra.kafka_bootstrap, VOTES_INTAKE_DLQ, lambda r: r.key == idea, count=3
        )
        await eventually(lambda: _fact_count(infra, idea, 3), what="three vote facts")

    assert sorted(r.headers["dlq-reason"].split(":")[0] for r in dead) == [
        "invalid event",
        "not JSON",
        "unknown business unit 'unknown-unit'",
    ]
    facts = [r.json() for r in await facts_for(infra, idea)]
    assert [(f["data"]["voter"]["customer_id"], f["data"]["value"]) for f in facts] == [
        ("a", 1),
        ("b", 1),
        ("a", -1),
    ]
    assert len({f["id"] for f in facts}) == 3


async def _fact_count(infra: LocalInfrastructure, idea: str, count: int) -> bool:
    return len(await facts_for(infra, idea)) >= count


async def test_a_consumer_restart_mid_stream_loses_and_doubles_nothing(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    idea = unique("idea")
    await announce_ideas(infra.kafka_bootstrap, idea)
    run = unique("run")
    voters = 60
    first_half = [(idea, cast_event(f"{run}-{v}", ballot(idea, f"v{v}", 1))) for v in range(voters // 2)]
    second_half = [
        (idea, cast_event(f"{run}-{v}", ballot(idea, f"v{v}", 1))) for v in range(voters // 2, voters)
    ]
    flips = [(idea, cast_event(f"{run}-flip-{v}", ballot(idea, f"v{v}", -1))) for v in range(0, voters, 3)]
    settings = make_settings(VotesSettings)
    await produce(infra.kafka_bootstrap, VOTES_INTAKE, [*first_half])
    async with running(create_app(settings)):
        await eventually(lambda: _fact_count(infra, idea, 5), what="some votes handled")
    # The first run stopped part-way or after the first half; replay it all as a redelivery would.
    await produce(infra.kafka_bootstrap, VOTES_INTAKE, [*first_half, *second_half, *flips])
    async with running(create_app(settings)):
        await eventually(lambda: _fact_count(infra, idea, voters + len(flips)), what="every vote handled")

    facts = [r.json()["data"] for r in await facts_for(infra, idea)]
    assert len(facts) == voters + len(flips)
    latest = {f["vote_id"]: f["value"] for f in facts}
    assert sum(1 for v in latest.values() if v == -1) == len(flips)
    assert len(latest) == voters
    assert vote_id_for(idea, "retail", "v0") in latest


async def test_with_signatures_required_only_events_signed_with_their_units_key_count(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    idea, run = unique("idea"), unique("run")
    await announce_ideas(infra.kafka_bootstrap, idea)
    unsigned = json.dumps(cast_event(f"{run}-1", ballot(idea, "a", 1))).encode()
    forged = json.dumps(cast_event(f"{run}-2", ballot(idea, "b", 1))).encode()
    genuine = json.dumps(cast_event(f"{run}-3", ballot(idea, "c", 1))).encode()
    await produce(infra.kafka_bootstrap, VOTES_INTAKE, [(idea, unsigned)])
    # Signed by wholesale, while the event claims to come from retail.
    forged_by = {SIGNATURE_HEADER: intake_signature(forged, API_KEYS["wholesale"])}
    await produce(infra.kafka_bootstrap, VOTES_INTAKE, [(idea, forged)], headers=forged_by)
    signed = {SIGNATURE_HEADER: intake_signature(genuine, API_KEYS["retail"])}
    await produce(infra.kafka_bootstrap, VOTES_INTAKE, [(idea, genuine)], headers=signed)
    async with running(create_app(make_settings(VotesSettings, intake_signatures="required"))):
        dead = await wait_for_records(
            infra.kafka_bootstrap, VOTES_INTAKE_DLQ, lambda r: r.key == idea, count=2
        )
        await eventually(lambda: _fact_count(infra, idea, 1), what="the signed vote recorded")
    assert sorted(r.headers["dlq-reason"] for r in dead) == [
        "unauthorised: centricity-signature does not match business unit 'retail'",
        "unauthorised: no centricity-signature header",
    ]
    facts = [r.json()["data"]["voter"]["customer_id"] for r in await facts_for(infra, idea)]
    assert facts == ["c"]


async def test_votes_go_only_to_known_open_ideas(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    open_idea, closed_idea, never = unique("idea"), unique("idea"), unique("idea")
    await announce_ideas(infra.kafka_bootstrap, open_idea)
    await announce_ideas(infra.kafka_bootstrap, closed_idea, status="delivered")
    run = unique("run")
    settings = make_settings(VotesSettings, unknown_idea_grace_s=2.0)
    async with running(create_app(settings)) as client:
        # The ideas' facts sit on different partitions: wait for the service to know each one.
        await cast_when_known(client, ballot(open_idea, "first", 1), RETAIL)
        closed = await cast_when_known(client, ballot(closed_idea, "b", 1), RETAIL)
        unknown = await client.post("/votes", json=ballot(unique("idea"), "b", 1), headers=RETAIL)
        await produce(
            infra.kafka_bootstrap,
            VOTES_INTAKE,
            [
                (never, cast_event(f"{run}-1", ballot(never, "a", 1))),
                (closed_idea, cast_event(f"{run}-2", ballot(closed_idea, "a", 1))),
                (open_idea, cast_event(f"{run}-3", ballot(open_idea, "a", 1))),
            ],
        )
        dead = await wait_for_records(
            infra.kafka_bootstrap, VOTES_INTAKE_DLQ, lambda r: r.key in {never, closed_idea}, count=2
        )
        await eventually(lambda: _fact_count(infra, open_idea, 2), what="the Kafka vote on the open idea")
    assert (unknown.status_code, unknown.json()["type"]) == (404, "urn:centricity:problem:unknown-idea")
    assert (closed.status_code, closed.json()["type"]) == (409, "urn:centricity:problem:idea-closed")
    reasons = {r.key: r.headers["dlq-reason"].split(":")[0] for r in dead}
    assert reasons == {never: "unknown-idea", closed_idea: "idea-closed"}


async def test_votes_for_an_idea_not_known_yet_wait_aside_and_apply_in_order_once_it_is(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    early, known, run = unique("idea"), unique("idea"), unique("run")
    await announce_ideas(infra.kafka_bootstrap, known)
    # Both on one partition, the early idea's votes first: they must not hold up the other one.
    await produce(
        infra.kafka_bootstrap,
        VOTES_INTAKE,
        [
            (early, cast_event(f"{run}-1", ballot(early, "a", 1))),
            (early, cast_event(f"{run}-2", ballot(early, "a", -1))),
            (early, cast_event(f"{run}-3", ballot(known, "b", 1))),
        ],
    )
    settings = make_settings(VotesSettings, unknown_idea_grace_s=120.0)
    async with running(create_app(settings)):
        await eventually(lambda: _fact_count(infra, known, 1), what="the vote on the known idea, not held up")
        assert await facts_for(infra, early) == []
        await announce_ideas(infra.kafka_bootstrap, early)
        await eventually(
            lambda: _fact_count(infra, early, 2), what="the parked votes, once the idea is known"
        )
    facts = [r.json()["data"] for r in await facts_for(infra, early)]
    assert [(f["value"], f["previous_value"]) for f in facts] == [(1, 0), (-1, 1)]
