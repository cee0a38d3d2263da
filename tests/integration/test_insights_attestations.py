"""Asking customers whether a delivered idea helped them, counted per unit from real notification
and attestation facts on the local broker: requests, reminders, answers, the response rate and the
median time to answer, exactly once across redelivery, a restart and a rebuild."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from centricity_contracts.topics import IDEAS_EVENTS, NOTIFICATIONS, dead_letter_topic
from centricity_insights.main import InsightsSettings, create_app
from centricity_insights.rebuild import rebuild
from centricity_plumbing.localinfra import LocalInfrastructure
from tests.integration.conftest import SettingsFactory, running, unique
from tests.integration.test_insights_units import (
    Keyed,
    comparable,
    created,
    drop,
    fact,
    settled,
    status,
    unit_metrics,
)
from tests.support import produce, wait_for_records

ASKED_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


def at(hours: float) -> str:
    return (ASKED_AT + timedelta(hours=hours)).isoformat()


def attested(idea: str, unit: str, customer: str, customer_type: str, hours: float, **more: Any) -> Keyed:
    data = {
        "idea_id": idea,
        "customer": {"customer_id": customer, "customer_type": customer_type},
        "customer_businessunit": unit,
        "helped": more.get("helped", True),
        "previous_helped": more.get("previous_helped"),
        "attested_at": at(hours),
    }
    event_id = f"{idea}:a:{unit}:{customer}:{data['helped']}"
    return idea, fact("centricity.idea.attested.v1", event_id, unit, idea, data)


def notified(
    idea: str, home: str, unit: str, customer: str, customer_type: str, *, reminder: int = 0, hours: float = 0
) -> Keyed:
    """What the notifications service publishes: keyed by customer, one id per customer and change."""
    key = f"{unit}:{customer}"
    notification_id = f"{idea}|{key}|{reminder}"
    data = {
        "notification_id": notification_id,
        "customer": {"customer_id": customer, "customer_type": customer_type},
        "customer_businessunit": unit,
        "idea_id": idea,
        "idea_businessunit": home,
        "idea_title": f"Idea {idea}",
        "kind": "attestation_reminder" if reminder else "delivered",
        "cause": f"/centricity/ideas {idea}:delivered",
        "to_status": "delivered",
        "attestation": {
            "url": f"https://centricity.example/answer/{notification_id}",
            "expires_at": at(1440),
        },
        "requested_at": at(hours),
    }
    event = {
        "specversion": "1.0",
        "id": notification_id,
        "source": "/centricity/notifications",
        "type": "centricity.notification.requested.v1",
        "businessunit": unit,
        "subject": key,
        "time": at(hours),
        "data": data,
    }
    return key, event


def told(idea: str, home: str, unit: str, customer: str) -> Keyed:
    """A notification that asks nothing: a follower told of a status change."""
    key, event = notified(idea, home, unit, customer, "partner")
    data = {**event["data"], "kind": "status_changed", "notification_id": f"{idea}|{key}|told"}
    del data["attestation"]
    return key, {**event, "id": data["notification_id"], "data": data}


EXPECTED = {
    "attestation_requests": 4,
    "attestation_reminders": 2,
    "attestation_answers": 3,
    "response_rate": 0.75,
    "attested": 4,
    "helped": 3,
    "helpfulness": 0.75,
}


async def test_requests_answers_and_the_time_to_answer_count_once_per_idea_and_customer(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    home, other, campaign = unique("bu"), unique("bu"), unique("camp")
    idea = unique("idea")
    # v1 answers before the request reaches insights (its attestation is on another topic);
    # the author answers 2 h after being asked, v2 after 1 h, v3 never; x9 was never asked.
    idea_facts = [
        created(idea, home, "c1", "external", campaign),
        status(idea, home, "planned", "delivered"),
        attested(idea, other, "v1", "partner", -1),
        attested(idea, home, "c1", "external", 2),
        attested(idea, other, "v2", "partner", 1),
        attested(idea, other, "x9", "partner", 3, helped=False),
    ]
    notifications = [
        notified(idea, home, home, "c1", "external"),
        notified(idea, home, other, "v1", "partner"),
        notified(idea, home, other, "v2", "partner"),
        notified(idea, home, other, "v3", "partner"),
        notified(idea, home, other, "v3", "partner", reminder=1, hours=72),
        notified(idea, home, other, "v3", "partner", reminder=2, hours=168),
        told(idea, home, other, "k1"),
    ]
    broken = (f"{other}:broken", {**notifications[0][1], "id": unique("broken"), "data": {"idea_id": idea}})
    # The requests go out before the facts of the idea reach the topic: the order insights reads
    # them in must not matter.
    await produce(infra.kafka_bootstrap, NOTIFICATIONS, [*notifications, broken])
    await produce(infra.kafka_bootstrap, IDEAS_EVENTS, idea_facts)
    settings = make_settings(InsightsSettings)
    home_unit, campaign_unit = f"businessunit:{home}", f"campaign:{campaign}"

    async with running(create_app(settings)) as client:
        metrics = await settled(client, home_unit, **EXPECTED)
        # The answers took about 0 s, 1 h and 2 h: the median is 1 h (DDSketch, ±1 %).
        assert metrics["answer_time_median_s"] == pytest.approx(3600.0, rel=0.02)
        assert (await settled(client, campaign_unit, **EXPECTED))["answer_time_median_s"] == pytest.approx(
            3600.0, rel=0.02
        )
        assert await unit_metrics(client, f"businessunit:{other}") is None, "they count for the idea's unit"
        series = (await client.get(f"/units/{home_unit}/series", params={"bucket": "day"})).json()
        assert sum(point["changes"]["attestation_requests"] for point in series) == 4
        assert series[-1]["response_rate"] == 0.75
        dead = await wait_for_records(
            infra.kafka_bootstrap, dead_letter_topic(NOTIFICATIONS), lambda r: r.key == broken[0]
        )
        assert dead[0].headers["dlq-reason"].startswith("invalid event")

        # The notifications service republishes after a crash (the same ids), and the ideas
        # service's facts come again: nothing more is asked or answered.
        await produce(infra.kafka_bootstrap, NOTIFICATIONS, notifications[:2])
        await produce(infra.kafka_bootstrap, IDEAS_EVENTS, idea_facts[2:4])
        newcomer = notified(idea, home, other, "v4", "partner", hours=5)
        await produce(infra.kafka_bootstrap, NOTIFICATIONS, [newcomer])
        await settled(client, home_unit, **{**EXPECTED, "attestation_requests": 5, "response_rate": 0.6})

    # Every fact again from the earliest offsets (a group that committed nothing), and the
    # question v3 was reminded of is answered now.
    await produce(infra.kafka_bootstrap, IDEAS_EVENTS, [attested(idea, other, "v3", "partner", 170)])
    expected = {
        **EXPECTED,
        "attestation_requests": 5,
        "attestation_answers": 4,
        "response_rate": 0.8,
        "attested": 5,
        "helped": 4,
        "helpfulness": 0.8,
    }
    replayed = settings.model_copy(update={"kafka_group_id": unique("t-insights-replay")})
    async with running(create_app(replayed)) as client:
        await settled(client, home_unit, **expected)
        await settled(client, campaign_unit, **expected)
        live = [await unit_metrics(client, unit) for unit in (home_unit, campaign_unit)]

    rebuilt = unique("t_insights_rebuilt")
    await rebuild(settings, database=rebuilt)
    async with running(create_app(settings.model_copy(update={"mongo_database": rebuilt}))) as client:
        again = [await unit_metrics(client, unit) for unit in (home_unit, campaign_unit)]
    assert [comparable(u) for u in again] == [comparable(u) for u in live]
    await drop(settings, rebuilt)
