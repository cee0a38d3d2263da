"""Unit metrics (business unit, campaign) from real facts on the local broker and store:
their values, exactly-once effect across redelivery and restarts, and a rebuild that equals them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from centricity_contracts.topics import IDEAS_EVENTS, INSIGHTS_UNITS, VOTES_EVENTS
from centricity_insights.main import InsightsSettings, create_app
from centricity_insights.rebuild import NotFresh, rebuild
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_plumbing.mongo import MongoStore
from tests.integration.conftest import SettingsFactory, running, unique
from tests.support import eventually, produce, wait_for_records

NOW = datetime.now(UTC).isoformat()
Keyed = tuple[str, dict[str, Any]]


def fact(event_type: str, event_id: str, unit: str, subject: str, data: dict[str, Any]) -> dict[str, Any]:
    service = "votes" if ".vote." in event_type else "ideas"
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": f"/centricity/{service}",
        "type": event_type,
        "businessunit": unit,
        "subject": subject,
        "data": data,
    }


def created(idea: str, unit: str, author: str, author_type: str, campaign: str | None) -> Keyed:
    data = {
        "idea_id": idea,
        "businessunit": unit,
        "reference": idea,
        "title": f"Idea {idea}",
        "author": {"customer_id": author, "customer_type": author_type},
        "created_at": NOW,
        "campaign_id": campaign,
    }
    return idea, fact("centricity.idea.created.v1", f"{idea}:created", unit, idea, data)


def voted(idea: str, voter_unit: str, voter: str, voter_type: str, value: int, weight: float = 1.0) -> Keyed:
    vote_id = f"{idea}:{voter_unit}:{voter}"
    data = {
        "vote_id": vote_id,
        "idea_id": idea,
        "voter": {"customer_id": voter, "customer_type": voter_type},
        "voter_businessunit": voter_unit,
        "value": value,
        "previous_value": 0,
        "revision": 1,
        "recorded_at": NOW,
        "weight": weight,
    }
    return idea, fact("centricity.vote.recorded.v1", f"{vote_id}:r1", voter_unit, idea, data)


def status(idea: str, unit: str, before: str, after: str, first_response: float | None = None) -> Keyed:
    data = {
        "idea_id": idea,
        "businessunit": unit,
        "from_status": before,
        "to_status": after,
        "by": {"actor_id": "pm"},
        "changed_at": NOW,
        "first_response_seconds": first_response,
    }
    return idea, fact("centricity.idea.status_changed.v1", f"{idea}:{after}", unit, idea, data)


def commented(idea: str, unit: str, author: str) -> Keyed:
    data = {
        "comment_id": f"{idea}:{author}",
        "idea_id": idea,
        "businessunit": unit,
        "body": "We need this too",
        "author": {"customer_id": author, "customer_type": "partner"},
        "commented_at": NOW,
    }
    return idea, fact("centricity.idea.commented.v1", f"{idea}:c:{author}", unit, idea, data)


def attested(idea: str, unit: str, customer: str, customer_type: str, helped: bool) -> Keyed:
    data = {
        "idea_id": idea,
        "customer": {"customer_id": customer, "customer_type": customer_type},
        "customer_businessunit": unit,
        "helped": helped,
        "attested_at": NOW,
    }
    return idea, fact("centricity.idea.attested.v1", f"{idea}:a:{customer}", unit, idea, data)


def a_units_day(home: str, other: str, campaign: str) -> tuple[list[Keyed], list[Keyed], list[str]]:
    """Two ideas of `home`, votes and a comment from `other` too, a delivery and its attestations."""
    delivered, reviewed = unique("idea"), unique("idea")
    idea_facts = [
        created(delivered, home, "c1", "external", campaign),
        created(reviewed, home, "c2", "internal", None),
        status(delivered, home, "submitted", "planned", first_response=100.0),
        status(reviewed, home, "submitted", "under_review", first_response=300.0),
        commented(delivered, other, "k1"),
        status(delivered, home, "planned", "delivered"),
        attested(delivered, home, "c1", "external", True),
        attested(delivered, other, "v2", "partner", False),
    ]
    vote_facts = [
        voted(delivered, home, "v1", "external", 1, weight=2.0),
        voted(delivered, other, "v2", "partner", 1),
        voted(delivered, home, "v3", "external", -1),
        voted(reviewed, home, "v1", "external", 1),
    ]
    return idea_facts, vote_facts, [delivered, reviewed]


async def unit_metrics(client: httpx.AsyncClient, unit: str) -> dict[str, Any] | None:
    answer = await client.get(f"/units/{unit}")
    return answer.json() if answer.status_code == 200 else None


async def settled(client: httpx.AsyncClient, unit: str, **expected: Any) -> dict[str, Any]:
    last: list[dict[str, Any] | None] = [None]

    async def probe() -> dict[str, Any] | None:
        metrics = last[0] = await unit_metrics(client, unit)
        return metrics if metrics and all(metrics[k] == v for k, v in expected.items()) else None

    try:
        return await eventually(probe, what=f"{unit} to reach {expected}")
    except AssertionError as error:
        raise AssertionError(f"{error}; last seen {last[0]}") from None


EXPECTED_HOME = {
    "ideas": 2,
    "delivered": 1,
    "delivery_rate": 0.5,
    "votes": 4,
    "weighted_demand": 4.0,
    "covered_demand": 3.0,
    "coverage": 0.75,
    "first_responses": 2,
    "attested": 2,
    "helped": 1,
    "helpfulness": 0.5,
    "comments": 1,
    "engagement": 5,
    "cross_bu_engagement": 2,
    "cross_bu_share": 0.4,
    "participants": 6,
}


async def test_unit_metrics_count_each_fact_once_across_redelivery_restarts_and_a_rebuild(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    home, other, campaign = unique("bu"), unique("bu"), unique("camp")
    idea_facts, vote_facts, ideas = a_units_day(home, other, campaign)
    await produce(infra.kafka_bootstrap, IDEAS_EVENTS, idea_facts)
    await produce(infra.kafka_bootstrap, VOTES_EVENTS, vote_facts)
    settings = make_settings(InsightsSettings)
    home_unit, campaign_unit = f"businessunit:{home}", f"campaign:{campaign}"

    async with running(create_app(settings)) as client:
        metrics = await settled(client, home_unit, **EXPECTED_HOME)
        assert metrics["first_response_median_s"] == pytest.approx(100.0, rel=0.02)
        campaign_metrics = await settled(client, campaign_unit, ideas=1, votes=3)
        assert (campaign_metrics["coverage"], campaign_metrics["weighted_demand"]) == (1.0, 3.0)
        other_metrics = await unit_metrics(client, f"businessunit:{other}")
        assert other_metrics is None, "votes and comments count for the idea's unit, not the voter's"
        series = (await client.get(f"/units/{home_unit}/series", params={"bucket": "day"})).json()
        assert sum(point["changes"]["votes"] for point in series) == 4
        assert series[-1]["coverage"] == 0.75
        top = (await client.get("/ideas/top", params={"businessunit": home, "ranking": "trending"})).json()
        assert [idea["idea_id"] for idea in top] == ideas
    await wait_for_records(
        infra.kafka_bootstrap,
        INSIGHTS_UNITS,
        lambda r: r.key == home_unit and r.json()["data"].get("helpfulness") == 0.5,
    )

    # Everything again (same source and id), as a redelivery would bring it, plus one new vote;
    # the restarted service reads from the earliest offset with a group that committed nothing.
    await produce(infra.kafka_bootstrap, IDEAS_EVENTS, idea_facts)
    await produce(
        infra.kafka_bootstrap, VOTES_EVENTS, [*vote_facts, voted(ideas[1], other, "v9", "partner", 1)]
    )
    replayed = settings.model_copy(update={"kafka_group_id": unique("t-insights-replay")})
    async with running(create_app(replayed)) as client:
        expected = {**EXPECTED_HOME, "votes": 5, "weighted_demand": 5.0, "participants": 7, "coverage": 0.6}
        await settled(
            client,
            home_unit,
            **{**expected, "engagement": 6, "cross_bu_engagement": 3, "cross_bu_share": 0.5},
        )
        live_units = await unit_metrics(client, home_unit), await unit_metrics(client, campaign_unit)
        live_ideas = [(await client.get(f"/ideas/{idea}")).json() for idea in ideas]

    rebuilt = unique("t_insights_rebuilt")
    report = await rebuild(settings, database=rebuilt)
    assert report.facts >= len(idea_facts) + len(vote_facts) + 1
    with pytest.raises(NotFresh):
        await rebuild(settings, database=rebuilt)
    async with running(create_app(settings.model_copy(update={"mongo_database": rebuilt}))) as client:
        rebuilt_units = await unit_metrics(client, home_unit), await unit_metrics(client, campaign_unit)
        rebuilt_ideas = [(await client.get(f"/ideas/{idea}")).json() for idea in ideas]
    assert [comparable(u) for u in rebuilt_units] == [comparable(u) for u in live_units]
    assert [comparable(i) for i in rebuilt_ideas] == [comparable(i) for i in live_ideas]
    await drop(settings, rebuilt)


def comparable(insight: dict[str, Any] | None) -> dict[str, Any]:
    """An insight without what says when or in how many writes it was computed."""
    assert insight is not None
    return {
        key: round(value, 6) if isinstance(value, float) else value
        for key, value in insight.items()
        if key not in ("revision", "updated_at")
    }


async def drop(settings: InsightsSettings, database: str) -> None:
    mongo = MongoStore(settings.mongo_url, database)
    await mongo.client.drop_database(database)
    await mongo.close()
