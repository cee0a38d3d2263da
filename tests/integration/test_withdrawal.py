"""An idea withdrawn by its author or its unit, over HTTP and Kafka: voting closes, insights count it
apart (issue #12's proof of the shape), on the real local broker and store."""

from __future__ import annotations

from typing import Any

from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE
from centricity_ideas.domain import idea_id_for
from centricity_ideas.main import IdeasSettings, create_app
from centricity_insights.main import InsightsSettings
from centricity_insights.main import create_app as create_insights
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_votes.main import VotesSettings
from centricity_votes.main import create_app as create_votes
from tests.integration.conftest import SettingsFactory, running, unique
from tests.integration.test_idea_management import AUTHOR, RETAIL, STAFF, WHOLESALE, submit
from tests.support import bu_event, eventually, produce, wait_for_records

OTHER_CUSTOMER = {"customer_id": "c-2", "customer_type": "external"}


async def test_an_author_or_the_unit_withdraws_an_idea_and_voting_closes(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    ideas_app = create_app(make_settings(IdeasSettings))
    votes_app = create_votes(make_settings(VotesSettings))
    insights_app = create_insights(make_settings(InsightsSettings))
    async with running(ideas_app) as ideas, running(votes_app) as votes, running(insights_app) as insights:
        mine = await submit(ideas, RETAIL, reference=unique("W"), title="Withdraw me later please")
        idea_id = mine["idea_id"]
        foreign = await ideas.post(
            f"/ideas/{idea_id}/withdrawal", json={"by": STAFF, "reason": "not yours"}, headers=WHOLESALE
        )
        not_author = await ideas.post(
            f"/ideas/{idea_id}/withdrawal", json={"by": STAFF, "author": OTHER_CUSTOMER}, headers=RETAIL
        )
        withdrawn = await ideas.post(
            f"/ideas/{idea_id}/withdrawal",
            json={"by": STAFF, "author": AUTHOR, "reason": "Solved another way"},
            headers=RETAIL,
        )
        again = await ideas.post(f"/ideas/{idea_id}/withdrawal", json={"by": STAFF}, headers=RETAIL)
        by_status = await ideas.post(
            f"/ideas/{withdrawn.json()['idea_id']}/status",
            json={"status": "planned", "by": STAFF},
            headers=RETAIL,
        )

        async def vote_refused() -> dict[str, Any] | None:
            answer = await votes.post(
                "/votes", json={"idea_id": idea_id, "voter": OTHER_CUSTOMER, "value": 1}, headers=RETAIL
            )
            return dict(answer.json()) if answer.status_code == 409 else None

        refusal = await eventually(vote_refused, what="voting on the withdrawn idea to close")

        async def withdrawn_counted() -> dict[str, Any] | None:
            answer = await insights.get("/units/businessunit:retail")
            unit = answer.json() if answer.status_code == 200 else {}
            return dict(unit) if unit.get("withdrawn", 0) >= 1 else None

        unit = await eventually(withdrawn_counted, what="insights to count the withdrawn idea")
    assert (foreign.status_code, foreign.json()["type"]) == (
        403,
        "urn:centricity:problem:foreign-business-unit",
    )
    assert (not_author.status_code, not_author.json()["type"]) == (
        403,
        "urn:centricity:problem:not-the-author",
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["status_history"][-1]["reason"] == "Solved another way"
    assert (again.status_code, again.json()["type"]) == (409, "urn:centricity:problem:illegal-transition")
    assert by_status.status_code == 409
    assert refusal["type"] == "urn:centricity:problem:idea-closed"
    assert unit["withdrawn"] >= 1
    changes = await wait_for_records(
        infra.kafka_bootstrap,
        IDEAS_EVENTS,
        lambda r: r.key == idea_id and r.json()["type"] == "centricity.idea.status_changed.v1",
    )
    assert changes[-1].json()["data"]["to_status"] == "withdrawn"


async def test_a_withdrawal_over_kafka_applies_once(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    reference = unique("KW")
    idea_id = idea_id_for("retail", reference)
    submitted = bu_event(
        "centricity.idea.submitted.v1",
        unique("e"),
        {"reference": reference, "title": "Withdrawn over Kafka", "author": AUTHOR},
    )
    withdrawal = bu_event(
        "centricity.idea.withdrawn.v1",
        unique("e"),
        {"reference": reference, "by": STAFF, "reason": "Duplicate of a request by phone"},
    )
    async with running(create_app(make_settings(IdeasSettings))) as ideas:
        await produce(
            infra.kafka_bootstrap,
            IDEAS_INTAKE,
            [(reference, submitted), (reference, withdrawal), (reference, withdrawal)],
        )

        async def is_withdrawn() -> dict[str, Any] | None:
            answer = await ideas.get(f"/ideas/{idea_id}")
            return (
                dict(answer.json())
                if answer.status_code == 200 and answer.json()["status"] == "withdrawn"
                else None
            )

        idea = await eventually(is_withdrawn, timeout=60, what="the Kafka withdrawal")
    assert [entry["to_status"] for entry in idea["status_history"]] == ["withdrawn"]
