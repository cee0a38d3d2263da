"""Idea management end to end on the real local broker and store: a business unit's day."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from centricity_contracts.ideas import Comment
from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE, IDEAS_INTAKE_DLQ, VOTES_EVENTS
from centricity_ideas.domain import idea_id_for
from centricity_ideas.main import IdeasSettings, create_app
from centricity_ideas.store import IdeaStore
from centricity_plumbing.clock import utc_now
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_plumbing.mongo import MongoStore
from tests.integration.conftest import API_KEYS, SettingsFactory, running, unique
from tests.support import bu_event, eventually, produce, read_topic, wait_for_records

RETAIL = {"X-API-Key": API_KEYS["retail"]}
WHOLESALE = {"X-API-Key": API_KEYS["wholesale"]}
STAFF = {"actor_id": "pm-anna"}
AUTHOR = {"customer_id": "c-1", "customer_type": "external"}


def idea_body(reference: str, title: str, description: str = "", **extra: Any) -> dict[str, Any]:
    return {"reference": reference, "title": title, "description": description, "author": AUTHOR, **extra}


async def submit(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    answer = await client.post("/ideas", json=idea_body(**body), headers=headers)
    assert answer.status_code in (200, 201), answer.text
    return dict(answer.json())


async def move(
    client: httpx.AsyncClient, idea_id: str, status: str, reason: str | None = None
) -> httpx.Response:
    body = {"status": status, "reason": reason, "by": STAFF}
    return await client.post(f"/ideas/{idea_id}/status", json=body, headers=RETAIL)


async def fact_types(infra: LocalInfrastructure, idea_id: str) -> list[str]:
    return [
        r.json()["type"] for r in await read_topic(infra.kafka_bootstrap, IDEAS_EVENTS) if r.key == idea_id
    ]


async def test_a_business_units_day_from_campaign_to_attestation(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    now = utc_now()
    async with running(create_app(make_settings(IdeasSettings))) as client:
        launched = await client.post(
            "/campaigns",
            json={
                "reference": unique("Q1"),
                "title": "Cut onboarding time",
                "opens_at": (now - timedelta(days=1)).isoformat(),
                "closes_at": (now + timedelta(days=30)).isoformat(),
            },
            headers=RETAIL,
        )
        assert launched.status_code == 201, launched.text
        campaign_id = launched.json()["campaign_id"]
        idea = await submit(
            client,
            RETAIL,
            reference=unique("CRM"),
            title="Open a business account online in one day",
            description="Onboarding takes ten days of paperwork; let new customers sign digitally.",
            campaign_id=campaign_id,
        )
        twin = await submit(
            client,
            WHOLESALE,
            reference=unique("WS"),
            title="Open business accounts online within a day",
            description="New corporate clients wait ten days for paperwork; allow digital signing.",
        )
        assert [d["idea_id"] for d in twin["likely_duplicates"]][:1] == [idea["idea_id"]]
        assert twin["likely_duplicates"][0]["similarity"] > 0.5

        idea_id = idea["idea_id"]
        assert (await move(client, idea_id, "under_review")).status_code == 200
        back = await move(client, idea_id, "submitted")
        assert back.status_code == 409
        assert back.headers["content-type"] == "application/problem+json"
        assert "allowed: planned, in_progress, delivered, declined" in back.json()["detail"]
        assert (await move(client, idea_id, "declined")).status_code == 422
        foreign = await client.post(
            f"/ideas/{idea_id}/status", json={"status": "planned", "by": STAFF}, headers=WHOLESALE
        )
        assert foreign.status_code == 403

        await client.post(
            f"/ideas/{idea_id}/comments",
            json={"body": "Yes please!", "author": {"customer_id": "w-2", "customer_type": "partner"}},
            headers=WHOLESALE,
        )
        await client.post(
            f"/ideas/{idea_id}/comments",
            json={"body": "Planned for Q1.", "staff": STAFF, "official": True},
            headers=RETAIL,
        )
        comments = (await client.get(f"/ideas/{idea_id}/comments")).json()
        assert [(c["body"], c["official"], c["businessunit"]) for c in comments] == [
            ("Yes please!", False, "wholesale"),
            ("Planned for Q1.", True, "retail"),
        ]
        second_page = (await client.get(f"/ideas/{idea_id}/comments?limit=1&offset=1")).json()
        assert [c["body"] for c in second_page] == ["Planned for Q1."]
        assert (await client.get(f"/ideas/{idea_id}/comments?limit=5000")).status_code == 422
        early = await client.put(
            f"/ideas/{idea_id}/attestation", json={"customer": AUTHOR, "helped": True}, headers=RETAIL
        )
        assert early.status_code == 409

        for status in ("planned", "in_progress", "delivered"):
            assert (await move(client, idea_id, status)).status_code == 200
        voter = {"customer_id": "w-9", "customer_type": "internal"}
        await produce(
            infra.kafka_bootstrap, VOTES_EVENTS, [(idea_id, vote_fact(idea_id, "wholesale", voter))]
        )
        outsider = await client.put(
            f"/ideas/{idea_id}/attestation",
            json={"customer": {"customer_id": "nobody", "customer_type": "external"}, "helped": True},
            headers=WHOLESALE,
        )
        assert outsider.status_code == 403

        async def voter_attests() -> httpx.Response | None:
            answer = await client.put(
                f"/ideas/{idea_id}/attestation",
                json={"customer": voter, "helped": False, "comment": "Still slow"},
                headers=WHOLESALE,
            )
            return answer if answer.status_code == 200 else None

        await eventually(voter_attests, what="the voter may attest once their vote is known")
        final = (
            await client.put(
                f"/ideas/{idea_id}/attestation", json={"customer": AUTHOR, "helped": True}, headers=RETAIL
            )
        ).json()

    assert final["status"] == "delivered"
    assert (final["helped"], final["did_not_help"], final["comment_count"]) == (1, 1, 2)
    assert [h["to_status"] for h in final["status_history"]] == [
        "under_review",
        "planned",
        "in_progress",
        "delivered",
    ]
    assert final["first_response_seconds"] is not None
    assert await fact_types(infra, idea_id) == [
        "centricity.idea.created.v1",
        "centricity.idea.status_changed.v1",
        "centricity.idea.commented.v1",
        "centricity.idea.commented.v1",
        "centricity.idea.status_changed.v1",
        "centricity.idea.status_changed.v1",
        "centricity.idea.status_changed.v1",
        "centricity.idea.attested.v1",
        "centricity.idea.attested.v1",
    ]


def vote_fact(idea_id: str, unit: str, voter: dict[str, str]) -> dict[str, Any]:
    vote_id = f"{idea_id}:{unit}:{voter['customer_id']}"
    return {
        "specversion": "1.0",
        "id": f"{vote_id}:r1",
        "source": "/centricity/votes",
        "type": "centricity.vote.recorded.v1",
        "businessunit": unit,
        "data": {
            "vote_id": vote_id,
            "idea_id": idea_id,
            "voter": voter,
            "voter_businessunit": unit,
            "value": 1,
            "previous_value": 0,
            "revision": 1,
            "recorded_at": utc_now().isoformat(),
        },
    }


async def test_edits_keep_history_and_merges_link_both_ideas(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    async with running(create_app(make_settings(IdeasSettings))) as client:
        a = await submit(client, RETAIL, reference=unique("A"), title="Dark mode in the app")
        b = await submit(client, RETAIL, reference=unique("B"), title="Night theme for mobile banking")
        edited = await client.patch(
            f"/ideas/{a['idea_id']}",
            json={"title": "Dark mode in the mobile app", "by": STAFF},
            headers=RETAIL,
        )
        foreign_edit = await client.patch(
            f"/ideas/{a['idea_id']}", json={"title": "Ours", "by": STAFF}, headers=WHOLESALE
        )
        merged = await client.post(
            f"/ideas/{a['idea_id']}/merge", json={"into_idea_id": b["idea_id"], "by": STAFF}, headers=RETAIL
        )
        into_self = await client.post(
            f"/ideas/{b['idea_id']}/merge", json={"into_idea_id": b["idea_id"], "by": STAFF}, headers=RETAIL
        )
        target = (await client.get(f"/ideas/{b['idea_id']}")).json()
    assert edited.json()["edits"][0]["changes"]["title"] == {
        "before": "Dark mode in the app",
        "after": "Dark mode in the mobile app",
    }
    assert foreign_edit.status_code == 403
    assert (merged.json()["status"], merged.json()["duplicate_of"]) == ("duplicate", b["idea_id"])
    assert target["merged_from"] == [a["idea_id"]]
    assert into_self.status_code == 409
    merge_facts = [
        r.json() for r in await read_topic(infra.kafka_bootstrap, IDEAS_EVENTS) if r.key == a["idea_id"]
    ]
    assert merge_facts[-1]["type"] == "centricity.idea.merged.v1"
    assert merge_facts[-1]["data"]["into_idea_id"] == b["idea_id"]


async def test_campaign_rules_are_enforced(make_settings: SettingsFactory) -> None:
    now = utc_now()
    window = {
        "opens_at": (now - timedelta(days=10)).isoformat(),
        "closes_at": (now - timedelta(days=1)).isoformat(),
    }
    async with running(create_app(make_settings(IdeasSettings))) as client:
        closed = (
            await client.post(
                "/campaigns",
                json={"reference": unique("old"), "title": "Last year", **window},
                headers=RETAIL,
            )
        ).json()
        late = await client.post(
            "/ideas",
            json=idea_body(unique("r"), "Too late", campaign_id=closed["campaign_id"]),
            headers=RETAIL,
        )
        unknown = await client.post(
            "/ideas", json=idea_body(unique("r"), "Nowhere", campaign_id="no-such"), headers=RETAIL
        )
        enterprise = await client.post(
            "/campaigns",
            json={"reference": unique("e"), "title": "Everyone", "scope": "enterprise", **window},
            headers=RETAIL,
        )
    assert (late.status_code, late.json()["type"]) == (409, "urn:centricity:problem:campaign-closed")
    assert (unknown.status_code, unknown.json()["type"]) == (404, "urn:centricity:problem:unknown-campaign")
    assert enterprise.status_code == 403


async def test_listing_filters_sorts_and_pages_with_cursors(make_settings: SettingsFactory) -> None:
    tag = unique("t").lower()
    async with running(create_app(make_settings(IdeasSettings))) as client:
        made = [
            await submit(client, RETAIL, reference=unique("L"), title=f"Listed idea {n}", tags=[tag])
            for n in range(5)
        ]
        await submit(client, WHOLESALE, reference=unique("L"), title="Other unit", tags=[tag])
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"tag": tag, "businessunit": "retail", "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = (await client.get("/ideas", params=params)).json()
            seen += [i["idea_id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        oldest_first = (
            await client.get("/ideas", params={"tag": tag, "sort": "oldest", "limit": 100})
        ).json()["items"]
        bad_cursor = await client.get("/ideas", params={"cursor": "garbage"})
        found = (await client.get("/ideas/search", params={"q": "listed idea 3"})).json()
    assert seen == [i["idea_id"] for i in reversed(made)]
    assert [i["title"] for i in oldest_first][:5] == [f"Listed idea {n}" for n in range(5)]
    assert bad_cursor.status_code == 400
    assert found[0]["idea"]["title"] == "Listed idea 3"


async def test_kafka_intake_applies_each_operation_once_and_dead_letters_broken_rules(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    reference, run = unique("CRM"), unique("run")
    idea_id = idea_id_for("retail", reference)
    by_ref = {"reference": reference}

    def event(
        n: str, event_type: str, data: dict[str, Any], unit: str = "retail"
    ) -> tuple[str, dict[str, Any]]:
        return reference, bu_event(event_type, f"{run}-{n}", data, unit)

    messages = [
        event("1", "centricity.idea.submitted.v1", idea_body(reference, "Paperless onboarding")),
        event("2", "centricity.idea.status_set.v1", {**by_ref, "status": "under_review", "by": STAFF}),
        event("2", "centricity.idea.status_set.v1", {**by_ref, "status": "under_review", "by": STAFF}),
        event("3", "centricity.idea.status_set.v1", {**by_ref, "status": "submitted", "by": STAFF}),
        event("4", "centricity.attestation.given.v1", {**by_ref, "customer": AUTHOR, "helped": True}),
        event(
            "5",
            "centricity.idea.status_set.v1",
            {"idea_id": idea_id, "status": "planned", "by": STAFF},
            unit="wholesale",
        ),
        event(
            "6", "centricity.comment.posted.v1", {**by_ref, "body": "On it", "staff": STAFF, "official": True}
        ),
        event(
            "6", "centricity.comment.posted.v1", {**by_ref, "body": "On it", "staff": STAFF, "official": True}
        ),
        event(
            "7", "centricity.idea.revised.v1", {**by_ref, "description": "No more paper forms.", "by": STAFF}
        ),
        event(
            "8",
            "centricity.idea.status_set.v1",
            {"reference": "no-such-ref", "status": "planned", "by": STAFF},
        ),
        event("9", "centricity.idea.status_set.v1", {**by_ref, "status": "planned", "by": STAFF}),
    ]
    await produce(infra.kafka_bootstrap, IDEAS_INTAKE, messages)
    async with running(create_app(make_settings(IdeasSettings))) as client:

        async def planned() -> dict[str, Any] | None:
            answer = await client.get(f"/ideas/{idea_id}")
            return (
                answer.json() if answer.status_code == 200 and answer.json()["status"] == "planned" else None
            )

        idea = await eventually(planned, what="the idea planned")
        dead = await wait_for_records(
            infra.kafka_bootstrap, IDEAS_INTAKE_DLQ, lambda r: r.key == reference, count=4
        )
    assert [h["to_status"] for h in idea["status_history"]] == ["under_review", "planned"]
    assert (idea["comment_count"], idea["description"]) == (1, "No more paper forms.")
    suggested = await wait_for_records(
        infra.kafka_bootstrap,
        IDEAS_EVENTS,
        lambda r: r.key == idea_id and r.json()["type"] == "centricity.idea.duplicates_suggested.v1",
    )
    assert suggested[0].json()["data"]["idea_id"] == idea_id
    reasons = sorted(r.headers["dlq-reason"].split(":")[0] for r in dead)
    assert reasons == ["foreign-business-unit", "illegal-transition", "not-delivered", "unknown-idea"]
    assert sorted(r.headers["dlq-code"] for r in dead) == reasons


async def test_a_burst_of_comments_on_one_idea_delivered_again_is_applied_once(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    """A BU's import of comments on one idea, which Kafka delivers again after a crash (#13)."""
    reference, run, count = unique("CRM"), unique("run"), 150
    idea_id = idea_id_for("retail", reference)
    by_ref = {"reference": reference}
    comments = [
        (
            reference,
            bu_event(
                "centricity.comment.posted.v1", f"{run}-c{n}", {**by_ref, "body": f"Note {n}", "staff": STAFF}
            ),
        )
        for n in range(count)
    ]
    submitted = bu_event("centricity.idea.submitted.v1", f"{run}-s", idea_body(reference, "Paperless"))
    await produce(infra.kafka_bootstrap, IDEAS_INTAKE, [(reference, submitted), *comments])
    async with running(create_app(make_settings(IdeasSettings))) as client:

        async def commented(expected: int) -> dict[str, Any] | None:
            answer = await client.get(f"/ideas/{idea_id}", headers=RETAIL)
            done = answer.status_code == 200 and answer.json()["comment_count"] >= expected
            return answer.json() if done else None

        await eventually(lambda: commented(count), what="every comment")
        marker = bu_event(
            "centricity.comment.posted.v1", f"{run}-last", {**by_ref, "body": "The last", "staff": STAFF}
        )
        await produce(infra.kafka_bootstrap, IDEAS_INTAKE, [*comments, (reference, marker)])
        idea = await eventually(lambda: commented(count + 1), what="the last comment")
        listed = await client.get(f"/ideas/{idea_id}/comments", params={"limit": 1000}, headers=RETAIL)
    assert idea["comment_count"] == count + 1
    assert len(listed.json()) == count + 1


async def test_a_consumer_restart_mid_stream_stores_each_idea_once(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    run, count = unique("burst"), 400
    submissions = [
        (
            run,
            bu_event(
                "centricity.idea.submitted.v1",
                f"{run}-{n}",
                idea_body(f"{run}-{n}", f"Burst idea number {n}"),
            ),
        )
        for n in range(count)
    ]
    settings = make_settings(IdeasSettings)
    await produce(infra.kafka_bootstrap, IDEAS_INTAKE, submissions)
    store = MongoStore(settings.mongo_url, settings.database_name())
    try:
        async with running(create_app(settings)):
            await eventually(lambda: _stored_at_least(store, 1), what="the first ideas stored")
        # Redelivered as after a crash before the commit, then the rest.
        await produce(infra.kafka_bootstrap, IDEAS_INTAKE, submissions)
        async with running(create_app(settings)):
            await eventually(lambda: _stored_at_least(store, count), what="every idea stored")
            facts = await wait_for_records(
                infra.kafka_bootstrap,
                IDEAS_EVENTS,
                lambda r: r.json()["data"].get("reference", "").startswith(run),
                count=count,
            )
        # The topic also holds other tests' submissions, which this fresh consumer group reads too.
        references = [
            doc["reference"]
            async for doc in store.db["ideas"].find({}, {"reference": 1})
            if doc["reference"].startswith(run)
        ]
        assert sorted(references) == sorted(f"{run}-{n}" for n in range(count))
        assert len({f.json()["id"] for f in facts}) == count
    finally:
        await store.close()


async def _stored_at_least(store: MongoStore, count: int) -> bool:
    return await store.db["ideas"].count_documents({}) >= count


async def test_edge_cases_found_by_a_newcomer_are_answered_properly(make_settings: SettingsFactory) -> None:
    async with running(create_app(make_settings(IdeasSettings))) as client:
        a = await submit(
            client,
            WHOLESALE,
            reference=unique("A"),
            title="Improve warehouse handheld devices",
            description="The old scanners are slow: replace them with zebra barcode scanners.",
        )
        b = await submit(client, RETAIL, reference=unique("B"), title="Faster scanners in the warehouse")
        merged = await client.post(
            f"/ideas/{a['idea_id']}/merge",
            json={"into_idea_id": b["idea_id"], "by": STAFF},
            headers=WHOLESALE,
        )
        foreign_repeat = await client.post(
            f"/ideas/{a['idea_id']}/merge", json={"into_idea_id": b["idea_id"], "by": STAFF}, headers=RETAIL
        )
        blank_title = await client.patch(
            f"/ideas/{b['idea_id']}", json={"title": "   a   ", "by": STAFF}, headers=RETAIL
        )
        empty_target = await client.post(
            f"/ideas/{b['idea_id']}/merge", json={"into_idea_id": "", "by": STAFF}, headers=RETAIL
        )
        key = {**RETAIL, "Idempotency-Key": "same-key"}
        await client.post(
            f"/ideas/{b['idea_id']}/comments", json={"body": "Looking at it", "staff": STAFF}, headers=key
        )
        moved = await client.post(
            f"/ideas/{b['idea_id']}/status", json={"status": "planned", "by": STAFF}, headers=key
        )
        back = await move(client, b["idea_id"], "submitted")
        found = (await client.get("/ideas/search", params={"q": "barcode"})).json()
    assert merged.status_code == 200
    assert foreign_repeat.status_code == 403
    assert (blank_title.status_code, blank_title.json()["errors"][0]["loc"]) == (422, ["body", "title"])
    assert empty_target.status_code == 422
    assert moved.json()["status"] == "planned"
    assert back.json()["allowed"] == ["in_progress", "delivered", "declined"]
    assert [hit["idea"]["idea_id"] for hit in found][:1] == [a["idea_id"]]


async def test_campaigns_are_listed_a_page_at_a_time_newest_first(make_settings: SettingsFactory) -> None:
    # Opening far ahead, these are the newest campaigns of the shared test database.
    opens = [datetime(2090 + n, 1, 1, tzinfo=UTC) for n in range(3)]
    async with running(create_app(make_settings(IdeasSettings))) as client:
        made = [
            (
                await client.post(
                    "/campaigns",
                    json={
                        "reference": unique("page"),
                        "title": f"Campaign {n}",
                        "opens_at": at.isoformat(),
                        "closes_at": (at + timedelta(days=30)).isoformat(),
                    },
                    headers=RETAIL,
                )
            ).json()["campaign_id"]
            for n, at in enumerate(opens)
        ]
        first = (await client.get("/campaigns", params={"limit": 2}, headers=RETAIL)).json()
        second = (await client.get("/campaigns", params={"limit": 2, "offset": 2}, headers=RETAIL)).json()
        too_many = await client.get("/campaigns", params={"limit": 501}, headers=RETAIL)
    assert [c["campaign_id"] for c in first] == made[:0:-1]
    assert second[0]["campaign_id"] == made[0]
    assert too_many.status_code == 422


async def test_a_crash_between_counting_a_comment_and_storing_it_loses_nothing(
    make_settings: SettingsFactory, infra: LocalInfrastructure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The idea (with its count and fact) and the comment are two writes; a crash between them
    left a counted comment that was never listed, and its redelivery was dead-lettered (#13)."""
    reference, run = unique("CRASH"), unique("run")
    idea_id = idea_id_for("retail", reference)
    submitted = bu_event(
        "centricity.idea.submitted.v1", f"{run}-s", idea_body(reference, "Crash-proof notes")
    )
    posted = bu_event(
        "centricity.comment.posted.v1", f"{run}-c", {"reference": reference, "body": "Kept", "staff": STAFF}
    )
    store_comment = IdeaStore.add_comment
    crashes = {"kafka": 1, "http": 1}

    async def crash_once(self: IdeaStore, comment: Comment) -> None:
        origin = "http" if comment.body == "Kept too" else "kafka"
        if crashes[origin]:
            crashes[origin] -= 1
            raise RuntimeError("the process died here")
        await store_comment(self, comment)

    monkeypatch.setattr(IdeaStore, "add_comment", crash_once)
    async with running(create_app(make_settings(IdeasSettings))) as client:
        await produce(infra.kafka_bootstrap, IDEAS_INTAKE, [(reference, submitted), (reference, posted)])

        async def listed(expected: int) -> list[dict[str, Any]] | None:
            answer = await client.get(f"/ideas/{idea_id}/comments", headers=RETAIL)
            found = answer.json() if answer.status_code == 200 else []
            return list(found) if len(found) >= expected else None

        await eventually(lambda: listed(1), what="the comment taken from Kafka")
        again = {"Idempotency-Key": unique("k"), **RETAIL}
        body = {"body": "Kept too", "staff": STAFF}
        with contextlib.suppress(RuntimeError):
            await client.post(f"/ideas/{idea_id}/comments", json=body, headers=again)

        async def retried() -> httpx.Response | None:
            answer = await client.post(f"/ideas/{idea_id}/comments", json=body, headers=again)
            return answer if answer.status_code in (200, 201) else None

        answer = await eventually(retried, what="the retried comment")
        comments = await eventually(lambda: listed(2), what="both comments")
        idea = (await client.get(f"/ideas/{idea_id}", headers=RETAIL)).json()
    dead = [r for r in await read_topic(infra.kafka_bootstrap, IDEAS_INTAKE_DLQ) if r.key == reference]
    assert dead == []
    assert [c["body"] for c in comments] == ["Kept", "Kept too"]
    assert answer.json()["body"] == "Kept too"
    assert idea["comment_count"] == 2
