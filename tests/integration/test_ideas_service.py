"""The ideas service on the real local broker and store."""

from __future__ import annotations

import json
from typing import Any

from centricity_contracts.ideas import IdeaSubmission
from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE, IDEAS_INTAKE_DLQ
from centricity_ideas import domain
from centricity_ideas.domain import idea_id_for
from centricity_ideas.main import IdeasSettings, create_app
from centricity_ideas.store import CREATED_FIELD, idea_document
from centricity_plumbing.clock import utc_now
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_plumbing.mongo import MongoStore
from centricity_plumbing.outbox import outbox_entry
from tests.integration.conftest import API_KEYS, SettingsFactory, running, unique
from tests.support import bu_event, eventually, produce, read_topic, wait_for_records


def submission_body(reference: str, title: str = "Save my basket for later") -> dict[str, Any]:
    return {
        "reference": reference,
        "title": title,
        "description": "So I can finish on my laptop.",
        "tags": ["checkout"],
        "author": {"customer_id": "c-1", "customer_type": "external"},
    }


def intake_event(event_id: str, data: dict[str, Any], businessunit: str = "retail") -> dict[str, Any]:
    return bu_event("centricity.idea.submitted.v1", event_id, data, businessunit)


async def test_an_idea_posted_over_http_is_stored_and_its_fact_published(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    reference = unique("CRM")
    async with running(create_app(make_settings(IdeasSettings))) as client:
        answer = await client.post(
            "/ideas", json=submission_body(reference), headers={"X-API-Key": API_KEYS["retail"]}
        )
        assert answer.status_code == 201, answer.text
        idea = answer.json()
        assert idea["businessunit"] == "retail"
        assert answer.headers["location"].endswith(f"/ideas/{idea['idea_id']}")
        fetched = await client.get(f"/ideas/{idea['idea_id']}")
        assert fetched.json() == idea

    facts = await wait_for_records(infra.kafka_bootstrap, IDEAS_EVENTS, lambda r: r.key == idea["idea_id"])
    fact = facts[0].json()
    assert fact["type"] == "centricity.idea.created.v1"
    assert fact["data"]["title"] == "Save my basket for later"
    assert facts[0].headers["content-type"].startswith("application/cloudevents+json")


async def test_the_same_reference_posted_twice_is_one_idea_and_one_fact(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    reference = unique("CRM")
    headers = {"X-API-Key": API_KEYS["retail"]}
    async with running(create_app(make_settings(IdeasSettings))) as client:
        first = await client.post("/ideas", json=submission_body(reference), headers=headers)
        second = await client.post(
            "/ideas", json=submission_body(reference, title="Edited title"), headers=headers
        )
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    # Facts are published before the answer is sent, so a second one would be there now.
    facts = [
        r for r in await read_topic(infra.kafka_bootstrap, IDEAS_EVENTS) if r.key == first.json()["idea_id"]
    ]
    assert len(facts) == 1


async def test_the_business_unit_comes_from_the_key_not_the_body(make_settings: SettingsFactory) -> None:
    body = submission_body(unique("CRM"))
    async with running(create_app(make_settings(IdeasSettings))) as client:
        answer = await client.post("/ideas", json=body, headers={"X-API-Key": API_KEYS["wholesale"]})
        # Input is as strict as its schema (issue #18): a body cannot even name a unit.
        claimed = await client.post(
            "/ideas", json={**body, "businessunit": "retail"}, headers={"X-API-Key": API_KEYS["wholesale"]}
        )
    assert answer.json()["businessunit"] == "wholesale"
    assert claimed.status_code == 422
    assert "businessunit" in claimed.text


async def test_a_write_without_a_valid_key_gets_401_problem(make_settings: SettingsFactory) -> None:
    async with running(create_app(make_settings(IdeasSettings))) as client:
        missing = await client.post("/ideas", json=submission_body("r"))
        wrong = await client.post("/ideas", json=submission_body("r"), headers={"X-API-Key": "nope"})
    for answer in (missing, wrong):
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] in ("Missing or invalid API key", "Missing or invalid credentials")


async def test_an_invalid_body_gets_422_problem_naming_the_field(make_settings: SettingsFactory) -> None:
    async with running(create_app(make_settings(IdeasSettings))) as client:
        answer = await client.post(
            "/ideas", json=submission_body("r", title="x" * 500), headers={"X-API-Key": API_KEYS["retail"]}
        )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 422
    assert [e["loc"] for e in problem["errors"]] == [["body", "title"]]


async def test_an_unknown_idea_gets_404_problem(make_settings: SettingsFactory) -> None:
    async with running(create_app(make_settings(IdeasSettings))) as client:
        unknown = "00000000-0000-4000-8000-000000000001"
        answer = await client.get(f"/ideas/{unknown}")
        not_an_id = await client.get("/ideas/no-such-idea")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert unknown in answer.json()["detail"]
    # Ideas' ids are UUIDs: anything else names no idea either.
    assert not_an_id.status_code == 404
    assert not_an_id.headers["content-type"] == "application/problem+json"


async def test_kafka_intake_stores_valid_ideas_once_and_dead_letters_the_rest(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    good_one, good_two = unique("CRM"), unique("CRM")
    batch = unique("batch")
    messages: list[tuple[str | None, bytes | dict[str, Any]]] = [
        (good_one, intake_event(f"{batch}-1", submission_body(good_one))),
        (batch, b"{not json"),
        (batch, intake_event(f"{batch}-3", submission_body(unique("CRM"), title="x"))),
        (batch, intake_event(f"{batch}-4", submission_body(unique("CRM")), businessunit="pirates")),
        (good_two, intake_event(f"{batch}-5", submission_body(good_two))),
        (good_one, intake_event(f"{batch}-1", submission_body(good_one))),
    ]
    await produce(infra.kafka_bootstrap, IDEAS_INTAKE, messages)
    settings = make_settings(IdeasSettings)
    ids = {idea_id_for("retail", good_one), idea_id_for("retail", good_two)}
    async with running(create_app(settings)) as client:

        async def both_stored() -> bool:
            answers = [await client.get(f"/ideas/{idea_id}") for idea_id in ids]
            return all(a.status_code == 200 for a in answers)

        await eventually(both_stored, what="both valid ideas stored")
        dead = await wait_for_records(
            infra.kafka_bootstrap, IDEAS_INTAKE_DLQ, lambda r: r.key == batch, count=3
        )

    reasons = sorted(r.headers["dlq-reason"] for r in dead)
    codes = sorted(r.headers["dlq-code"] for r in dead)
    assert codes == ["invalid-event", "not-json", "unknown-businessunit"]
    assert reasons[0] == (
        "invalid event: centricity.idea.submitted.v1.data.title: String should have at least 3 characters"
    )
    assert reasons[1].startswith("not JSON: ")
    assert reasons[2] == "unknown business unit 'pirates'"
    assert {r.value for r in dead} >= {b"{not json"}
    assert all(r.headers["dlq-original-topic"] == IDEAS_INTAKE for r in dead)
    store = MongoStore(settings.mongo_url, settings.database_name())
    batch_references = [m[1]["data"]["reference"] for m in messages if isinstance(m[1], dict)]
    try:
        found = store.db["ideas"].find({"reference": {"$in": batch_references}}, {"reference": 1})
        assert sorted([doc["reference"] async for doc in found]) == sorted([good_one, good_two])
    finally:
        await store.close()
    created = "centricity.idea.created.v1"
    records = await read_topic(infra.kafka_bootstrap, IDEAS_EVENTS)
    facts = [r for r in records if r.key in ids and r.json()["type"] == created]
    assert sorted(r.key or "" for r in facts) == sorted(ids)


async def test_facts_left_unpublished_by_a_crash_are_published_at_start(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    settings = make_settings(IdeasSettings)
    submission = IdeaSubmission.model_validate(submission_body(unique("CRM")))
    idea = domain.new_idea(submission, businessunit="retail", now=utc_now(), likely_duplicates=[])
    fact = domain.created_fact(idea, source=settings.fact_source())
    # What a crash between the write and the publish leaves behind.
    doc = {
        **idea_document(idea, outbox=[outbox_entry(fact, topic=IDEAS_EVENTS, key=idea.idea_id)], seen=[]),
        "revision": 1,
    }
    store = MongoStore(settings.mongo_url, settings.database_name())
    try:
        await store.db["ideas"].insert_one(doc)
        async with running(create_app(settings)):
            published = await wait_for_records(
                infra.kafka_bootstrap, IDEAS_EVENTS, lambda r: r.key == idea.idea_id
            )
            left = await store.db["ideas"].find_one({"_id": idea.idea_id})
        assert published[0].json()["id"] == fact.id
        assert left is not None
        assert left["outbox"] == []
    finally:
        await store.close()


async def test_a_submission_redelivered_after_a_crash_publishes_the_fact_it_stored(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    settings = make_settings(IdeasSettings)
    reference, event_id = unique("CRM"), unique("evt")
    event = intake_event(event_id, submission_body(reference, title="Keep my basket"))
    submission = IdeaSubmission.model_validate(event["data"])
    # What Kafka intake stored before a crash that came before the publish and the offset commit.
    idea = domain.new_idea(submission, businessunit="retail", now=utc_now(), likely_duplicates=None)
    kept = domain.created_fact(idea, source=settings.fact_source())
    doc = {
        **idea_document(idea, outbox=[], seen=[f"{event['source']} {event_id}"]),
        CREATED_FIELD: outbox_entry(kept, topic=IDEAS_EVENTS, key=idea.idea_id),
        "revision": 1,
    }
    store = MongoStore(settings.mongo_url, settings.database_name())
    try:
        await store.db["ideas"].insert_one(doc)
        # The same reference from another event is a resubmission, not this event's redelivery.
        other = intake_event(unique("evt"), submission_body(reference, title="Keep my basket please"))
        await produce(infra.kafka_bootstrap, IDEAS_INTAKE, [(reference, other), (reference, event)])
        async with running(create_app(settings)):
            published = await wait_for_records(
                infra.kafka_bootstrap,
                IDEAS_EVENTS,
                lambda r: r.key == idea.idea_id and r.json()["type"] == "centricity.idea.created.v1",
            )
            await eventually(
                lambda: _duplicates_checked(store, idea.idea_id), what="the finder done with the idea"
            )
        everything = await read_topic(infra.kafka_bootstrap, IDEAS_EVENTS)
    finally:
        await store.close()
    assert published[0].json() == json.loads(kept.to_json_bytes())
    created = [r for r in everything if r.key == idea.idea_id and r.json()["type"].endswith("created.v1")]
    assert len(created) == 1


async def _duplicates_checked(store: MongoStore, idea_id: str) -> bool:
    doc = await store.db["ideas"].find_one({"_id": idea_id})
    return bool(doc and doc["duplicates_checked"])
