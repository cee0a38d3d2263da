"""The insights service on the real local broker and store."""

from __future__ import annotations

from typing import Any

from centricity_contracts.topics import IDEAS_EVENTS, INSIGHTS_IDEAS, VOTES_EVENTS, VOTES_EVENTS_DLQ
from centricity_insights.main import InsightsSettings, create_app
from centricity_plumbing.localinfra import LocalInfrastructure
from tests.integration.conftest import SettingsFactory, running, unique
from tests.support import (
    eventually,
    idea_created_fact,
    idea_merged_fact,
    produce,
    read_topic,
    status_changed_fact,
    wait_for_records,
)

CREATED_AT = "2026-11-23T09:00:00Z"


def vote_recorded(idea_id: str, voter: str, value: int, previous: int, revision: int) -> dict[str, Any]:
    vote_id = f"{idea_id}:retail:{voter}"
    return {
        "specversion": "1.0",
        "id": f"{vote_id}:r{revision}",
        "source": "/centricity/votes",
        "type": "centricity.vote.recorded.v1",
        "businessunit": "retail",
        "subject": idea_id,
        "data": {
            "vote_id": vote_id,
            "idea_id": idea_id,
            "voter": {"customer_id": voter, "customer_type": "internal"},
            "voter_businessunit": "retail",
            "value": value,
            "previous_value": previous,
            "revision": revision,
            "recorded_at": CREATED_AT,
        },
    }


async def latest_snapshot(infra: LocalInfrastructure, idea_id: str) -> dict[str, Any] | None:
    snapshots = [
        r.json() for r in await read_topic(infra.kafka_bootstrap, INSIGHTS_IDEAS) if r.key == idea_id
    ]
    return max(snapshots, key=lambda s: s["data"]["revision"]) if snapshots else None


async def test_facts_become_counts_a_snapshot_and_a_ranking(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    idea, other = unique("idea"), unique("idea")
    unit = unique("unit")  # a unit of this test's own, so the ranking holds only its ideas
    await produce(
        infra.kafka_bootstrap,
        IDEAS_EVENTS,
        [(idea, idea_created_fact(idea, unit)), (other, idea_created_fact(other, unit))],
    )
    await produce(
        infra.kafka_bootstrap,
        VOTES_EVENTS,
        [
            (idea, vote_recorded(idea, "a", 1, 0, 1)),
            (idea, vote_recorded(idea, "b", 1, 0, 1)),
            (idea, vote_recorded(idea, "c", 1, 0, 1)),
            (idea, vote_recorded(idea, "c", -1, 1, 2)),
            (other, vote_recorded(other, "a", -1, 0, 1)),
        ],
    )
    settings = make_settings(InsightsSettings)
    async with running(create_app(settings)) as client:

        async def counted() -> dict[str, Any] | None:
            answer = await client.get(f"/ideas/{idea}")
            body: dict[str, Any] = answer.json()
            return body if answer.status_code == 200 and body["revision"] == 5 else None

        insight = await eventually(counted, what="the idea and its four votes counted")
        assert (insight["up"], insight["down"], insight["score"], insight["title"]) == (
            2,
            1,
            1,
            f"Idea {idea}",
        )
        await eventually(lambda: _revision_at_least(client, other, 2), what="the other idea counted")

        async def ranked() -> list[dict[str, Any]] | None:
            # The unit's own document follows its ideas' (each is one write): until it is there the
            # unit is unknown (404).
            answer = await client.get("/ideas/top", params={"businessunit": unit})
            found: list[dict[str, Any]] = answer.json() if answer.status_code == 200 else []
            return found if len(found) == 2 else None

        top = await eventually(ranked, what="both ideas ranked")
        assert [i["idea_id"] for i in top] == [idea, other]

    snapshot = await eventually(lambda: latest_snapshot(infra, idea), what="a snapshot")
    assert snapshot["type"] == "centricity.idea_insight.updated.v1"
    assert snapshot["data"]["up"] == 2


async def _revision_at_least(client: Any, idea_id: str, revision: int) -> bool:
    answer = await client.get(f"/ideas/{idea_id}")
    return bool(answer.status_code == 200 and answer.json()["revision"] >= revision)


async def test_a_redelivered_fact_never_counts_twice_even_across_a_restart(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    idea = unique("idea")
    facts = [(idea, vote_recorded(idea, f"v{v}", 1, 0, 1)) for v in range(20)]
    settings = make_settings(InsightsSettings)
    await produce(infra.kafka_bootstrap, VOTES_EVENTS, facts)
    async with running(create_app(settings)) as client:
        await eventually(lambda: _revision_at_least(client, idea, 20), what="twenty votes counted")
    # Redelivered (same source and id) while the service was down, plus genuinely new ones.
    await produce(infra.kafka_bootstrap, VOTES_EVENTS, [*facts, (idea, vote_recorded(idea, "new", -1, 0, 1))])
    async with running(create_app(settings)) as client:
        await eventually(lambda: _revision_at_least(client, idea, 21), what="the new vote counted")
        insight = (await client.get(f"/ideas/{idea}")).json()
    assert (insight["up"], insight["down"], insight["voters"], insight["revision"]) == (20, 1, 21, 21)


async def test_unknown_fact_types_are_skipped_and_broken_facts_dead_lettered(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    idea = unique("idea")
    future_fact = {**vote_recorded(idea, "a", 1, 0, 1), "type": "centricity.vote.weighed.v9", "id": "future"}
    broken_fact = {**vote_recorded(idea, "b", 1, 0, 1), "data": {"idea_id": idea}}
    await produce(
        infra.kafka_bootstrap,
        VOTES_EVENTS,
        [(idea, future_fact), (idea, broken_fact), (idea, vote_recorded(idea, "c", 1, 0, 1))],
    )
    async with running(create_app(make_settings(InsightsSettings))) as client:
        await eventually(lambda: _revision_at_least(client, idea, 1), what="the valid fact counted")
        dead = await wait_for_records(infra.kafka_bootstrap, VOTES_EVENTS_DLQ, lambda r: r.key == idea)
        insight = (await client.get(f"/ideas/{idea}")).json()
    assert (insight["up"], insight["revision"]) == (1, 1)
    assert dead[0].headers["dlq-reason"].startswith("invalid event")


async def test_an_idea_never_created_stays_off_the_top_list(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    known, phantom = unique("idea"), unique("idea")
    await produce(infra.kafka_bootstrap, IDEAS_EVENTS, [(known, idea_created_fact(known))])
    await produce(
        infra.kafka_bootstrap,
        VOTES_EVENTS,
        [
            (known, vote_recorded(known, "a", 1, 0, 1)),
            *((phantom, vote_recorded(phantom, f"v{n}", 1, 0, 1)) for n in range(5)),
        ],
    )
    async with running(create_app(make_settings(InsightsSettings))) as client:
        await eventually(lambda: _revision_at_least(client, phantom, 5), what="the phantom's votes counted")
        await eventually(lambda: _revision_at_least(client, known, 2), what="the known idea counted")
        top = [i["idea_id"] for i in (await client.get("/ideas/top", params={"limit": 100})).json()]
    assert phantom not in top
    assert known in top


async def test_merged_and_withdrawn_ideas_leave_the_top_list(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    """A merged twin counts as its survivor, and a withdrawn idea is taken back: neither is one
    of the ideas customers want most."""
    survivor, twin, withdrawn = unique("idea"), unique("idea"), unique("idea")
    await produce(
        infra.kafka_bootstrap,
        IDEAS_EVENTS,
        [
            *((i, idea_created_fact(i)) for i in (survivor, twin, withdrawn)),
            (twin, idea_merged_fact(twin, survivor)),
            (withdrawn, status_changed_fact(withdrawn, "withdrawn", reason="Taken back by its author")),
        ],
    )
    await produce(
        infra.kafka_bootstrap,
        VOTES_EVENTS,
        [(i, vote_recorded(i, "a", 1, 0, 1)) for i in (survivor, withdrawn)],
    )
    async with running(create_app(make_settings(InsightsSettings))) as client:

        async def status_of(idea_id: str, status: str) -> bool | None:
            answer = await client.get(f"/ideas/{idea_id}")
            return True if answer.status_code == 200 and answer.json()["status"] == status else None

        await eventually(lambda: status_of(twin, "duplicate"), what="the twin merged")
        await eventually(lambda: status_of(withdrawn, "withdrawn"), what="the idea withdrawn")
        await eventually(lambda: _revision_at_least(client, survivor, 2), what="the survivor counted")
        top = [i["idea_id"] for i in (await client.get("/ideas/top", params={"limit": 100})).json()]
        retail = await client.get("/ideas/top", params={"limit": 100, "businessunit": "retail"})
    assert survivor in top
    assert twin not in top
    assert withdrawn not in top
    assert {twin, withdrawn}.isdisjoint(i["idea_id"] for i in retail.json())


async def test_units_are_read_a_page_at_a_time_in_key_order(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    units = sorted(unique("unit") for _ in range(3))
    await produce(
        infra.kafka_bootstrap,
        IDEAS_EVENTS,
        [(idea, idea_created_fact(idea, unit)) for unit in units for idea in [unique("idea")]],
    )
    async with running(create_app(make_settings(InsightsSettings))) as client:

        async def all_three() -> list[dict[str, Any]] | None:
            answer = await client.get("/units", params={"kind": "businessunit", "limit": 1000})
            found = [u for u in answer.json() if u["unit"].split(":", 1)[1] in units]
            return found if len(found) == 3 else None

        await eventually(all_three, what="the three units")
        everything = (await client.get("/units", params={"limit": 1000})).json()
        pages: list[list[dict[str, Any]]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {
                "kind": "businessunit",
                "limit": 2,
                **({"after": after} if after else {}),
            }
            page = (await client.get("/units", params=params)).json()
            if not page:
                break
            pages.append(page)
            after = page[-1]["unit"]
        enterprise = (await client.get("/units", params={"kind": "enterprise"})).json()
        too_many = await client.get("/units", params={"limit": 1001})
    keys = [u["unit"] for u in everything]
    assert keys == sorted(keys)
    paged = [u["unit"] for page in pages for u in page]
    assert paged == [k for k in keys if k.startswith("businessunit:")]
    assert {f"businessunit:{unit}" for unit in units} <= set(paged)
    assert all(len(page) <= 2 for page in pages)
    assert [u["unit"] for u in enterprise] == ["enterprise"]
    assert too_many.status_code == 422
