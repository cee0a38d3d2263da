"""Input is as strict as the published schemas (issue #18), over HTTP and Kafka, on the real servers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE, IDEAS_INTAKE_DLQ
from centricity_ideas.domain import idea_id_for
from centricity_ideas.main import IdeasSettings, create_app
from centricity_insights.main import InsightsSettings
from centricity_insights.main import create_app as create_insights
from centricity_plumbing.clock import utc_now
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_votes.main import VotesSettings
from centricity_votes.main import create_app as create_votes
from tests.integration.conftest import API_KEYS, SettingsFactory, running, unique
from tests.support import bu_event, produce, wait_for_records

RETAIL = {"X-API-Key": API_KEYS["retail"]}
AUTHOR = {"customer_id": "c-1", "customer_type": "external"}


def submission(reference: str, **fields: Any) -> dict[str, Any]:
    return {"reference": reference, "title": "Let me save my basket", "author": AUTHOR, **fields}


async def test_http_refuses_unknown_fields_instead_of_dropping_them(make_settings: SettingsFactory) -> None:
    async with running(create_app(make_settings(IdeasSettings))) as client:
        misspelt = await client.post(
            "/ideas", json=submission(unique("CRM"), descripton="My words"), headers=RETAIL
        )
        nested = await client.post(
            "/ideas",
            json=submission(unique("CRM"), author={**AUTHOR, "emial": "ada@example.com"}),
            headers=RETAIL,
        )
        kept = await client.post(
            "/ideas", json=submission(unique("CRM"), description="My words"), headers=RETAIL
        )
    for answer in (misspelt, nested):
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert "descripton" in misspelt.text
    assert "emial" in nested.text
    assert (kept.status_code, kept.json()["description"]) == (201, "My words")


async def test_votes_refuse_unknown_fields_too(make_settings: SettingsFactory) -> None:
    async with running(create_votes(make_settings(VotesSettings))) as client:
        answer = await client.post(
            "/votes", json={"idea_id": "x", "voter": AUTHOR, "value": 1, "weigth": 3}, headers=RETAIL
        )
    assert answer.status_code == 422, answer.text
    assert "weigth" in answer.text


async def test_bodies_over_the_limit_and_of_the_wrong_type_are_refused_before_parsing(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(IdeasSettings, http_max_body_bytes=100_000)
    async with running(create_app(settings)) as client:
        huge = await client.post(
            "/ideas",
            content=b'{"padding": "' + b"x" * 5_000_000 + b'"}',
            headers={**RETAIL, "content-type": "application/json"},
        )
        form = await client.post(
            "/ideas", content=b"title=hello", headers={**RETAIL, "content-type": "text/plain"}
        )
        blank = await client.post("/ideas", json=submission(unique("CRM"), title="     "), headers=RETAIL)
        short = await client.post("/ideas", json=submission(unique("CRM"), title="  ab  "), headers=RETAIL)
    assert (huge.status_code, huge.json()["type"]) == (413, "urn:centricity:problem:body-too-large")
    assert (form.status_code, form.json()["type"]) == (415, "urn:centricity:problem:unsupported-media-type")
    assert (blank.status_code, short.status_code) == (422, 422)


async def test_campaign_dates_must_be_timestamps_not_numbers(make_settings: SettingsFactory) -> None:
    now = utc_now()
    async with running(create_app(make_settings(IdeasSettings))) as client:
        epoch = await client.post(
            "/campaigns",
            json={"reference": unique("Q"), "title": "Epoch", "opens_at": 0, "closes_at": now.isoformat()},
            headers=RETAIL,
        )
        dated = await client.post(
            "/campaigns",
            json={
                "reference": unique("Q"),
                "title": "Dated",
                "opens_at": now.isoformat(),
                "closes_at": (now + timedelta(days=3)).isoformat(),
            },
            headers=RETAIL,
        )
    assert epoch.status_code == 422, epoch.text
    assert dated.status_code == 201, dated.text


async def test_kafka_intake_dead_letters_unknown_fields_and_keeps_the_records_around_them(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    before, typo, after = unique("BEFORE"), unique("TYPO"), unique("AFTER")
    events = [
        (before, bu_event("centricity.idea.submitted.v1", unique("e"), submission(before))),
        (typo, bu_event("centricity.idea.submitted.v1", unique("e"), submission(typo, descripton="x"))),
        (after, bu_event("centricity.idea.submitted.v1", unique("e"), submission(after))),
    ]
    async with running(create_app(make_settings(IdeasSettings))):
        await produce(infra.kafka_bootstrap, IDEAS_INTAKE, events)
        stored = {idea_id_for("retail", r) for r in (before, after)}
        await wait_for_records(
            infra.kafka_bootstrap, IDEAS_EVENTS, lambda r: r.key in stored, count=2, timeout=60
        )
        (dead,) = await wait_for_records(
            infra.kafka_bootstrap, IDEAS_INTAKE_DLQ, lambda r: typo.encode() in r.value
        )
    assert dead.headers["dlq-code"] == "invalid-event"
    assert "descripton" in dead.headers["dlq-reason"]


async def test_stream_and_top_refuse_two_scopes_and_unknown_units_before_streaming(
    make_settings: SettingsFactory,
) -> None:
    async with running(create_insights(make_settings(InsightsSettings))) as client:
        both = await client.get("/stream", params={"businessunit": "retail", "campaign_id": "c"})
        unknown = await client.get("/stream", params={"businessunit": "nowhere"})
        top_both = await client.get("/ideas/top", params={"businessunit": "retail", "campaign_id": "c"})
        top_unknown = await client.get("/ideas/top", params={"businessunit": "nowhere"})
    for answer, status in ((both, 422), (unknown, 404), (top_both, 422), (top_unknown, 404)):
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
