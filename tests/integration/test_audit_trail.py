"""The audit trail (#17): who changed what, when and from where, built from the facts, read by
admins with filters and paging, and kept from everyone else; on the real local broker, store and
OpenID provider."""

from __future__ import annotations

import re
from typing import Any

import httpx

from centricity_contracts.topics import VOTES_INTAKE
from centricity_ideas.main import IdeasSettings
from centricity_ideas.main import create_app as create_ideas
from centricity_insights.main import InsightsSettings
from centricity_insights.main import create_app as create_insights
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_votes.main import VotesSettings
from centricity_votes.main import create_app as create_votes
from tests.integration.conftest import API_KEYS, SettingsFactory, running, unique
from tests.integration.test_idea_management import RETAIL, WHOLESALE, submit
from tests.support import bu_event, eventually, produce, sign_in

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def bearer(infra: LocalInfrastructure, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, subject)}"}


async def trail(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> httpx.Response:
    return await client.get("/audit", params=params, headers=headers)


async def test_each_change_says_who_what_when_and_from_where(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    admin = bearer(infra, "retail-admin")
    async with (
        running(create_ideas(make_settings(IdeasSettings))) as ideas,
        running(create_votes(make_settings(VotesSettings))) as votes,
        running(create_insights(make_settings(InsightsSettings)), reader=None) as insights,
    ):
        created = await ideas.post(
            "/ideas",
            json={
                "reference": unique("AUD"),
                "title": "Audit me",
                "author": {"customer_id": "c-9", "customer_type": "external"},
            },
            headers={**RETAIL, "X-Request-ID": "crm-request-42"},
        )
        assert created.status_code == 201, created.text
        idea_id = created.json()["idea_id"]
        moved = await ideas.post(f"/ideas/{idea_id}/status", json={"status": "under_review"}, headers=admin)
        assert moved.status_code == 200, moved.text
        vote_event = bu_event(
            "centricity.vote.cast.v1",
            unique("vote"),
            {"idea_id": idea_id, "voter": {"customer_id": "c-7", "customer_type": "external"}, "value": 1},
        )
        await produce(infra.kafka_bootstrap, VOTES_INTAKE, [(idea_id, vote_event)])

        async def all_three() -> list[dict[str, Any]] | None:
            answer = await trail(insights, admin, idea_id=idea_id)
            entries = answer.json()["entries"] if answer.status_code == 200 else []
            return list(entries) if len(entries) >= 3 else None

        entries = await eventually(all_three, what="three audit entries of the idea")
        assert votes is not None
    by_type = {e["type"]: e for e in entries}
    creation = by_type["centricity.idea.created.v1"]
    assert (creation["principal"], creation["origin"], creation["causation_id"]) == (
        "system:retail",
        "http",
        "crm-request-42",
    )
    assert created.headers["X-Request-ID"] == "crm-request-42"
    assert creation["actor"] == "customer:c-9"
    assert TRACE_ID.match(creation["trace_id"] or "")
    change = by_type["centricity.idea.status_changed.v1"]
    assert change["principal"] == "staff:retail-admin"
    assert change["origin"] == "http"
    assert change["causation_id"] == moved.headers["X-Request-ID"]
    vote = by_type["centricity.vote.recorded.v1"]
    assert (vote["principal"], vote["origin"]) == ("system:retail", "kafka")
    assert vote["causation_id"] == f"{vote_event['source']} {vote_event['id']}"
    assert vote["actor"] == "customer:c-7"
    assert all(e["businessunit"] == "retail" and e["idea_id"] == idea_id for e in entries)
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True), "newest first"


async def test_only_admins_read_the_trail_and_a_unit_only_its_own(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    async with (
        running(create_ideas(make_settings(IdeasSettings))) as ideas,
        running(create_insights(make_settings(InsightsSettings)), reader=None) as insights,
    ):
        retail_idea = (await submit(ideas, RETAIL, reference=unique("R"), title="Retail's own idea"))[
            "idea_id"
        ]
        wholesale_idea = (await submit(ideas, WHOLESALE, reference=unique("W"), title="Wholesale's idea"))[
            "idea_id"
        ]
        enterprise = bearer(infra, "enterprise-admin")

        async def both_recorded() -> bool:
            for idea_id in (retail_idea, wholesale_idea):
                answer = await trail(insights, enterprise, idea_id=idea_id)
                if answer.status_code != 200 or not answer.json()["entries"]:
                    return False
            return True

        await eventually(both_recorded, what="both ideas in the trail")
        wholesale_system = {"X-API-Key": API_KEYS["wholesale"]}
        own = await trail(insights, wholesale_system)
        foreign = await trail(insights, wholesale_system, businessunit="retail")
        foreign_idea = await trail(insights, wholesale_system, idea_id=retail_idea)
        refused = {
            subject: await trail(insights, bearer(infra, subject))
            for subject in ("wholesale-moderator", "retail-viewer", "analyst", "alice")
        }
        anonymous = await trail(insights, {})
        retail_admin = await trail(insights, bearer(infra, "retail-admin"), idea_id=retail_idea)
    assert own.status_code == 200
    assert {e["businessunit"] for e in own.json()["entries"]} == {"wholesale"}
    assert (foreign.status_code, foreign.json()["type"]) == (
        403,
        "urn:centricity:problem:foreign-business-unit",
    )
    assert foreign_idea.json()["entries"] == [], "another unit's idea is not in a unit's trail"
    for subject, answer in refused.items():
        assert answer.status_code == 403, subject
        assert answer.json()["type"] == "urn:centricity:problem:not-permitted", subject
    assert anonymous.status_code == 401
    assert [e["idea_id"] for e in retail_admin.json()["entries"]] == [retail_idea]


async def test_pages_cover_every_entry_once_and_a_forged_cursor_is_refused(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    admin = bearer(infra, "retail-admin")
    async with (
        running(create_ideas(make_settings(IdeasSettings))) as ideas,
        running(create_insights(make_settings(InsightsSettings)), reader=None) as insights,
    ):
        idea_id = (await submit(ideas, RETAIL, reference=unique("P"), title="Paged through"))["idea_id"]
        for status in ("under_review", "planned", "in_progress"):
            moved = await ideas.post(f"/ideas/{idea_id}/status", json={"status": status}, headers=admin)
            assert moved.status_code == 200, moved.text

        async def four() -> list[dict[str, Any]] | None:
            entries = (await trail(insights, admin, idea_id=idea_id, limit=200)).json()["entries"]
            return list(entries) if len(entries) >= 4 else None

        everything = await eventually(four, what="four entries of the idea")
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {
                "idea_id": idea_id,
                "limit": 1,
                **({"cursor": cursor} if cursor else {}),
            }
            page = (await trail(insights, admin, **params)).json()
            seen += [e["event_id"] for e in page["entries"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        forged = await trail(insights, admin, cursor="bm90IGEgY3Vyc29y")
        later = await trail(insights, admin, idea_id=idea_id, since=everything[0]["time"])
    assert seen == [e["event_id"] for e in everything]
    assert len(set(seen)) == 4
    assert forged.status_code == 422
    assert forged.json()["type"] == "urn:centricity:problem:unknown-cursor"
    assert [e["event_id"] for e in later.json()["entries"]] == [everything[0]["event_id"]], (
        later.request.url,
        [e["time"] for e in everything],
    )
