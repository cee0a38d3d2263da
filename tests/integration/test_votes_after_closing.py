"""Votes that slip in after an idea closed, before the votes service heard of it (issue #18), are
taken back with a fact when the closing fact arrives; votes from before stand. Real broker and store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from centricity_contracts.topics import IDEAS_EVENTS, VOTES_EVENTS
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_votes.main import VotesSettings, create_app
from tests.integration.conftest import SettingsFactory, running, unique
from tests.integration.test_votes_service import RETAIL, ballot, cast_when_known
from tests.support import announce_ideas, eventually, produce, status_changed_fact, wait_for_records


async def test_a_vote_recorded_after_delivery_is_retracted_and_one_before_stands(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    idea = unique("idea")
    await announce_ideas(infra.kafka_bootstrap, idea)
    async with running(create_app(make_settings(VotesSettings))) as client:
        await cast_when_known(client, ballot(idea, "early", 1), RETAIL)
        await asyncio.sleep(0.05)
        delivered_at = datetime.now(UTC)
        await asyncio.sleep(0.05)
        late = await client.post("/votes", json=ballot(idea, "late", 1), headers=RETAIL)
        # The closing fact arrives after the late vote, as it can when the topics race; twice.
        closing = status_changed_fact(
            idea, "delivered", from_status="in_progress", revision=9, changed_at=delivered_at.isoformat()
        )
        await produce(infra.kafka_bootstrap, IDEAS_EVENTS, [(idea, closing), (idea, closing)])

        async def only_the_early_vote() -> list[dict[str, Any]] | None:
            votes = (await client.get(f"/ideas/{idea}/votes", headers=RETAIL)).json()
            return votes if [v["voter"]["customer_id"] for v in votes] == ["early"] else None

        await eventually(only_the_early_vote, what="the late vote to be taken back")
        refused = await client.post("/votes", json=ballot(idea, "later", 1), headers=RETAIL)
    assert late.json()["outcome"] == "recorded"
    assert refused.status_code == 409
    retractions = await wait_for_records(
        infra.kafka_bootstrap,
        VOTES_EVENTS,
        lambda r: r.key == idea and r.json()["type"] == "centricity.vote.retracted.v1",
    )
    # A repeated closing fact republishes the same retraction (same id), which readers drop.
    assert {(r.json()["id"], r.json()["data"]["voter"]["customer_id"]) for r in retractions} == {
        (retractions[0].json()["id"], "late")
    }
