"""Each service's Prometheus `/metrics` (#17), read with the Prometheus client's own parser, on
the real local broker and store."""

from __future__ import annotations

import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from centricity_contracts.topics import VOTES_INTAKE, dead_letter_topic
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_votes.main import VotesSettings, create_app
from tests.integration.conftest import SettingsFactory, running, unique
from tests.support import eventually, produce, wait_for_records

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    wanted = set(labels.items())
    found = [v for (n, got), v in samples.items() if n == name and wanted <= got]
    return sum(found) if found else None


async def test_a_poison_record_raises_the_dead_letter_counter_and_requests_are_counted(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    key = unique("poison")
    async with running(create_app(make_settings(VotesSettings))) as client:
        before = await scrape(client)
        dead = value(before, "centricity_dead_letters_total", topic=VOTES_INTAKE, code="not-json") or 0.0
        await produce(infra.kafka_bootstrap, VOTES_INTAKE, [(key, b"{ this is not JSON")])
        await wait_for_records(infra.kafka_bootstrap, dead_letter_topic(VOTES_INTAKE), lambda r: r.key == key)

        async def counted() -> Samples | None:
            samples = await scrape(client)
            now = value(samples, "centricity_dead_letters_total", topic=VOTES_INTAKE, code="not-json")
            return samples if now == dead + 1 else None

        samples = await eventually(counted, what="the dead letter counted")
        unsigned = await client.get(f"/ideas/{uuid.uuid4()}/votes", headers={"X-API-Key": "wrong"})
        assert unsigned.status_code == 401
        samples = await scrape(client)

    # FastStream's middleware counts what the intake consumer received.
    assert (value(samples, "faststream_received_messages_total", handler=VOTES_INTAKE) or 0) >= 1
    # Requests by route template, never by raw path, with their exact status.
    statuses = {
        dict(labels)["status"]
        for (name, labels), _ in samples.items()
        if name == "http_requests_total" and dict(labels).get("handler") == "/metrics"
    }
    assert not statuses, "scrapes are not counted as requests"
    assert value(samples, "http_requests_total", handler="/ideas/{idea_id}/votes", status="401") == 1
    assert value(samples, "http_request_duration_seconds_count", handler="/ideas/{idea_id}/votes") == 1
    # The store's backlogs, counted at the scrape.
    assert value(samples, "centricity_backlog", kind="parked_votes") is not None
    assert value(samples, "centricity_backlog", kind="outbox") == 0
    assert value(samples, "centricity_backlog", kind="quarantined") is not None
    assert value(samples, "centricity_backlog_probe_failures_total") is None


async def test_metrics_are_not_served_to_requests_that_came_through_the_ingress(
    make_settings: SettingsFactory,
) -> None:
    async with running(create_app(make_settings(VotesSettings)), reader=None) as client:
        unknown = await client.get(f"/no-such-path-{uuid.uuid4().hex}")
        proxied = [
            await client.get("/metrics", headers={header: "203.0.113.7"})
            for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded")
        ]
        direct = await client.get("/metrics")
    assert direct.status_code == 200
    for answer in proxied:
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"] == unknown.json()["type"]
        assert "centricity_backlog" not in answer.text
