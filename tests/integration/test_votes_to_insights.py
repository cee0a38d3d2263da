"""The votes service's facts, as the insights service counts them: retractions, re-weights and
moves change an idea's tally exactly as the votes themselves changed."""

from __future__ import annotations

from typing import Any

import httpx

from centricity_contracts.topics import IDEAS_EVENTS, VOTES_INTAKE
from centricity_insights.main import InsightsSettings
from centricity_insights.main import create_app as create_insights
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_votes.main import VotesSettings
from centricity_votes.main import create_app as create_votes
from tests.integration.conftest import SettingsFactory, running, unique
from tests.integration.test_votes_rules import valued_event
from tests.integration.test_votes_service import RETAIL, ballot, cast_when_known
from tests.support import announce_ideas, eventually, idea_merged_fact, produce


async def insight_when(client: httpx.AsyncClient, idea: str, expected: dict[str, Any]) -> dict[str, Any]:
    async def matches() -> dict[str, Any] | None:
        answer = await client.get(f"/ideas/{idea}")
        if answer.status_code != 200:
            return None
        insight: dict[str, Any] = answer.json()
        return insight if {k: insight.get(k) for k in expected} == expected else None

    try:
        return await eventually(matches, what=f"insight {expected}")
    except AssertionError:
        raise AssertionError(f"{idea}: {(await client.get(f'/ideas/{idea}')).json()} != {expected}") from None


async def test_withdrawn_reweighted_and_moved_votes_count_as_they_now_stand(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    twin, survivor, run = unique("idea"), unique("idea"), unique("run")
    gold, other, proxied = unique("gold"), unique("other"), unique("proxied")
    await announce_ideas(infra.kafka_bootstrap, twin, survivor)
    votes_app = create_votes(make_settings(VotesSettings))
    insights_app = create_insights(make_settings(InsightsSettings))
    async with running(votes_app) as votes, running(insights_app) as insights:
        await cast_when_known(votes, ballot(twin, gold, 1), RETAIL)
        await votes.post("/votes", json=ballot(twin, other, -1), headers=RETAIL)
        proxy_vote = {**ballot(twin, proxied, 1), "proxy": {"actor_id": "agent-1"}}
        await votes.post("/votes", json=proxy_vote, headers=RETAIL)
        await cast_when_known(votes, ballot(survivor, other, 1), RETAIL)
        await insight_when(insights, twin, {"up": 2, "down": 1, "voters": 3, "weighted_score": 1.0})

        withdrawal = {
            "idea_id": twin,
            "voter": ballot(twin, proxied, 1)["voter"],
            "proxy": {"actor_id": "agent-1"},
        }
        await votes.post("/votes/withdrawals", json=withdrawal, headers=RETAIL)
        valued = valued_event(f"{run}-gold", gold, "2026-11-01T00:00:00Z", tier="gold")
        await produce(infra.kafka_bootstrap, VOTES_INTAKE, [(gold, valued)])
        await insight_when(insights, twin, {"up": 1, "down": 1, "voters": 2, "weighted_score": 1.0})

        await produce(infra.kafka_bootstrap, IDEAS_EVENTS, [(twin, idea_merged_fact(twin, survivor))])
        moved_to = await insight_when(
            insights, survivor, {"up": 2, "down": 0, "voters": 2, "weighted_score": 3.0}
        )
        # The moved votes (votes.events.v1) and the merge (ideas.events.v1) may arrive in either order.
        left = await insight_when(
            insights, twin, {"up": 0, "down": 0, "voters": 0, "weighted_score": 0.0, "merged_into": survivor}
        )
    assert left["merged_into"] == survivor
    assert moved_to["score"] == 2
