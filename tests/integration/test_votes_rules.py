"""Weighted, proxy, budgeted and moved votes on the real local broker and store."""

from __future__ import annotations

from typing import Any

import httpx

from centricity_contracts.topics import IDEAS_EVENTS, VOTES_INTAKE, VOTES_INTAKE_DLQ
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_votes.main import VotesSettings, create_app
from tests.integration.conftest import API_KEYS, BUSINESS_UNITS, SettingsFactory, running, unique
from tests.integration.test_votes_service import RETAIL, ballot, cast_event, cast_when_known, facts_for
from tests.support import (
    announce_ideas,
    bu_event,
    campaign_created_fact,
    eventually,
    idea_created_fact,
    idea_merged_fact,
    produce,
    wait_for_records,
)

AGENT = {"actor_id": "agent-12", "display_name": "Support agent"}


def valued_event(event_id: str, customer_id: str, valued_at: str, **value: Any) -> dict[str, Any]:
    customer = {"customer_id": customer_id, "customer_type": "external"}
    return bu_event(
        "centricity.customer.valued.v1", event_id, {"customer": customer, "valued_at": valued_at, **value}
    )


async def fact_types(infra: LocalInfrastructure, idea: str) -> list[tuple[str, dict[str, Any]]]:
    return [(r.json()["type"].split(".")[2], r.json()["data"]) for r in await facts_for(infra, idea)]


async def test_a_proxy_vote_is_replaced_by_the_customer_but_cannot_replace_them(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    idea, other = unique("idea"), unique("idea")
    await announce_ideas(infra.kafka_bootstrap, idea, other)
    async with running(create_app(make_settings(VotesSettings))) as client:
        by_proxy = await cast_when_known(client, {**ballot(idea, "c-1", 1), "proxy": AGENT}, RETAIL)
        own = await client.post("/votes", json=ballot(idea, "c-1", -1), headers=RETAIL)
        await cast_when_known(client, ballot(other, "c-1", 1), RETAIL)
        proxy_over_own = await client.post(
            "/votes", json={**ballot(other, "c-1", -1), "proxy": AGENT}, headers=RETAIL
        )
    assert by_proxy.json()["vote"]["proxy"] == AGENT
    assert (own.json()["outcome"], own.json()["vote"]["proxy"]) == ("recorded", None)
    assert proxy_over_own.status_code == 409
    assert proxy_over_own.json()["type"] == "urn:centricity:problem:customer-voted"
    facts = [data for _, data in await fact_types(infra, idea)]
    assert [(f["value"], f.get("proxy")) for f in facts] == [(1, AGENT), (-1, None)]


async def test_a_withdrawn_vote_is_retracted_once_and_may_be_cast_again(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    idea, run = unique("idea"), unique("run")
    await announce_ideas(infra.kafka_bootstrap, idea)
    async with running(create_app(make_settings(VotesSettings))) as client:
        await cast_when_known(client, ballot(idea, "c-1", 1), RETAIL)
        withdrawal = {"idea_id": idea, "voter": {"customer_id": "c-1", "customer_type": "internal"}}
        first = await client.post("/votes/withdrawals", json=withdrawal, headers=RETAIL)
        again = await client.post("/votes/withdrawals", json=withdrawal, headers=RETAIL)
        withdrawn = bu_event("centricity.vote.withdrawn.v1", f"{run}-w", withdrawal)
        await produce(
            infra.kafka_bootstrap,
            VOTES_INTAKE,
            [(idea, cast_event(f"{run}-1", ballot(idea, "c-1", -1))), (idea, withdrawn), (idea, withdrawn)],
        )
        await eventually(lambda: _has_facts(infra, idea, 4), what="four vote facts")
        current = await client.get(f"/ideas/{idea}/votes", headers=RETAIL)
    assert (first.json()["outcome"], again.json()["outcome"]) == ("retracted", "unchanged")
    facts = await fact_types(infra, idea)
    assert [(kind, d.get("value", d.get("previous_value"))) for kind, d in facts] == [
        ("recorded", 1),
        ("retracted", 1),
        ("recorded", -1),
        ("retracted", -1),
    ]
    assert current.json() == []


async def _has_facts(infra: LocalInfrastructure, idea: str, count: int) -> bool:
    return len(await facts_for(infra, idea)) >= count


async def test_customer_value_weighs_new_votes_and_reweighs_open_ones_only(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    open_idea, closed_idea, run = unique("idea"), unique("idea"), unique("run")
    await announce_ideas(infra.kafka_bootstrap, open_idea, closed_idea)
    customer = unique("cust")
    async with running(create_app(make_settings(VotesSettings))) as client:
        await cast_when_known(client, ballot(open_idea, customer, 1), RETAIL)
        await cast_when_known(client, ballot(closed_idea, customer, 1), RETAIL)
        await announce_ideas(infra.kafka_bootstrap, closed_idea, status="delivered")
        await eventually(lambda: _refused(client, closed_idea), what="the idea closed")
        gold = valued_event(f"{run}-v1", customer, "2026-11-01T00:00:00Z", tier="gold")
        stale = valued_event(f"{run}-v0", customer, "2026-10-01T00:00:00Z", tier="strategic")
        await produce(
            infra.kafka_bootstrap, VOTES_INTAKE, [(customer, gold), (customer, stale), (customer, gold)]
        )
        await eventually(lambda: _has_facts(infra, open_idea, 2), what="the open vote re-weighted")
        other_idea = unique("idea")
        await announce_ideas(infra.kafka_bootstrap, other_idea)
        later = await cast_when_known(client, ballot(other_idea, customer, -1), RETAIL)
    assert later.json()["vote"]["weight"] == 2.0
    open_facts = await fact_types(infra, open_idea)
    assert [(kind, d["weight"]) for kind, d in open_facts] == [("recorded", 1.0), ("reweighted", 2.0)]
    assert open_facts[1][1]["previous_weight"] == 1.0
    closed_facts = await fact_types(infra, closed_idea)
    assert [kind for kind, d in closed_facts if d["voter"]["customer_id"] == customer] == ["recorded"]


async def _refused(client: httpx.AsyncClient, idea: str) -> bool:
    answer = await client.post("/votes", json=ballot(idea, unique("probe"), 1), headers=RETAIL)
    return answer.status_code == 409


async def test_a_campaign_budget_limits_points_over_http_and_kafka(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    campaign, run = unique("camp"), unique("run")
    ideas = [unique("idea") for _ in range(3)]
    outside = unique("idea")
    await produce(infra.kafka_bootstrap, IDEAS_EVENTS, [(campaign, campaign_created_fact(campaign, 10))])
    await produce(
        infra.kafka_bootstrap,
        IDEAS_EVENTS,
        [(idea, idea_created_fact(idea, campaign_id=campaign)) for idea in ideas]
        + [(outside, idea_created_fact(outside))],
    )
    async with running(create_app(make_settings(VotesSettings))) as client:
        six = await cast_when_known(client, {**ballot(ideas[0], "c-1", 1), "points": 6}, RETAIL)
        too_many = await cast_when_known(client, {**ballot(ideas[1], "c-1", 1), "points": 5}, RETAIL)
        four = await client.post("/votes", json={**ballot(ideas[1], "c-1", 1), "points": 4}, headers=RETAIL)
        lowered = await client.post(
            "/votes", json={**ballot(ideas[0], "c-1", 1), "points": 2}, headers=RETAIL
        )
        no_budget = await cast_when_known(client, {**ballot(outside, "c-1", 1), "points": 2}, RETAIL)
        await produce(
            infra.kafka_bootstrap,
            VOTES_INTAKE,
            [
                (ideas[2], cast_event(f"{run}-1", {**ballot(ideas[2], "c-1", 1), "points": 5})),
                (ideas[2], cast_event(f"{run}-2", {**ballot(ideas[2], "c-1", 1), "points": 4})),
            ],
        )
        dead = await wait_for_records(infra.kafka_bootstrap, VOTES_INTAKE_DLQ, lambda r: r.key == ideas[2])
        await eventually(lambda: _has_facts(infra, ideas[2], 1), what="the 4-point Kafka vote")
        allocation = await client.get(
            "/customers/c-1/allocation", params={"campaign_id": campaign}, headers=RETAIL
        )
    assert six.status_code == 200
    assert (too_many.status_code, too_many.json()["type"]) == (409, "urn:centricity:problem:over-budget")
    assert "only 4 of the campaign's 10 are left" in too_many.json()["detail"]
    assert (four.status_code, lowered.status_code) == (200, 200)
    assert (no_budget.status_code, no_budget.json()["type"]) == (
        422,
        "urn:centricity:problem:points-without-budget",
    )
    assert dead[0].headers["dlq-reason"].startswith("over-budget: 5 points asked but only 4")
    assert allocation.json() == {
        "campaign_id": campaign,
        "budget": 10,
        "allocated": {ideas[0]: 2, ideas[1]: 4, ideas[2]: 4},
        "remaining": 0,
    }


async def test_a_merge_moves_votes_and_a_voter_on_both_counts_once(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    duplicate, survivor = unique("idea"), unique("idea")
    await announce_ideas(infra.kafka_bootstrap, duplicate, survivor)
    async with running(create_app(make_settings(VotesSettings))) as client:
        for voter, value in (("only-dup", 1), ("both", -1), ("gone", 1)):
            await cast_when_known(client, ballot(duplicate, voter, value), RETAIL)
        await cast_when_known(client, ballot(survivor, "both", 1), RETAIL)
        withdrawal = {"idea_id": duplicate, "voter": {"customer_id": "gone", "customer_type": "internal"}}
        await client.post("/votes/withdrawals", json=withdrawal, headers=RETAIL)
        merged = idea_merged_fact(duplicate, survivor)
        await produce(infra.kafka_bootstrap, IDEAS_EVENTS, [(duplicate, merged), (duplicate, merged)])
        await eventually(lambda: _has_facts(infra, survivor, 3), what="the vote and two moves")
        on_survivor = (await client.get(f"/ideas/{survivor}/votes", headers=RETAIL)).json()
        on_duplicate = (await client.get(f"/ideas/{duplicate}/votes", headers=RETAIL)).json()
        closed = await client.post("/votes", json=ballot(duplicate, "late", 1), headers=RETAIL)
    moves = {d["voter"]["customer_id"]: d for kind, d in await fact_types(infra, survivor) if kind == "moved"}
    assert {voter: d["outcome"] for voter, d in moves.items()} == {"only-dup": "moved", "both": "kept_target"}
    assert sorted((v["voter"]["customer_id"], v["value"]) for v in on_survivor) == [
        ("both", 1),
        ("only-dup", 1),
    ]
    assert on_duplicate == []
    assert closed.status_code == 409


async def test_http_writes_over_the_units_rate_limit_get_429_with_retry_after(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    idea = unique("idea")
    await announce_ideas(infra.kafka_bootstrap, idea)
    units = {
        **BUSINESS_UNITS,
        "retail": BUSINESS_UNITS["retail"].model_copy(update={"write_rate_limit": "3/minute"}),
    }
    async with running(create_app(make_settings(VotesSettings, business_units=units))) as client:
        wholesale = {"X-API-Key": API_KEYS["wholesale"]}
        await cast_when_known(client, ballot(idea, "w", 1), wholesale)
        answers = [await client.post("/votes", json=ballot(idea, "a", 1), headers=RETAIL) for _ in range(4)]
        other_unit = await client.post("/votes", json=ballot(idea, "w", -1), headers=wholesale)
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert limited.headers["content-type"] == "application/problem+json"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json()["type"] == "urn:centricity:problem:rate-limited"
    assert other_unit.status_code == 200


async def test_points_follow_a_vote_moved_by_a_merge(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    campaign = unique("camp")
    duplicate, survivor = unique("idea"), unique("idea")
    await produce(infra.kafka_bootstrap, IDEAS_EVENTS, [(campaign, campaign_created_fact(campaign, 10))])
    facts = [(idea, idea_created_fact(idea, campaign_id=campaign)) for idea in (duplicate, survivor)]
    await produce(infra.kafka_bootstrap, IDEAS_EVENTS, facts)
    async with running(create_app(make_settings(VotesSettings))) as client:
        await cast_when_known(client, {**ballot(duplicate, "c-1", 1), "points": 6}, RETAIL)
        await cast_when_known(client, {**ballot(survivor, "c-2", 1), "points": 1}, RETAIL)
        await produce(
            infra.kafka_bootstrap, IDEAS_EVENTS, [(duplicate, idea_merged_fact(duplicate, survivor))]
        )
        await eventually(lambda: _has_facts(infra, survivor, 2), what="the moved vote")

        async def allocation() -> dict[str, Any] | None:
            params = {"campaign_id": campaign}
            answer = await client.get("/customers/c-1/allocation", params=params, headers=RETAIL)
            return answer.json() if answer.json()["allocated"] == {survivor: 6} else None

        moved = await eventually(allocation, what="the points moved with the vote")
    assert moved["remaining"] == 4


async def test_a_merge_into_an_idea_not_known_yet_moves_the_votes_once_it_is(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    duplicate, survivor = unique("idea"), unique("idea")
    await announce_ideas(infra.kafka_bootstrap, duplicate)
    async with running(create_app(make_settings(VotesSettings))) as client:
        await cast_when_known(client, ballot(duplicate, "early", 1), RETAIL)
        await produce(
            infra.kafka_bootstrap, IDEAS_EVENTS, [(duplicate, idea_merged_fact(duplicate, survivor))]
        )
        await eventually(lambda: _refused(client, duplicate), what="the duplicate closed")
        await announce_ideas(infra.kafka_bootstrap, survivor)
        await eventually(
            lambda: _has_facts(infra, survivor, 1), what="the vote moved once the target is known"
        )
        on_survivor = (await client.get(f"/ideas/{survivor}/votes", headers=RETAIL)).json()
    moved = [
        (v["voter"]["customer_id"], v["value"])
        for v in on_survivor
        if not v["voter"]["customer_id"].startswith("probe")
    ]
    assert moved == [("early", 1)]
