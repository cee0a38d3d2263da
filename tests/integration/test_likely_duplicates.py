"""Likely duplicates of ideas taken in over Kafka, with the real sentence encoder, broker and store."""

from __future__ import annotations

from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE
from centricity_ideas.domain import idea_id_for
from centricity_ideas.main import IdeasSettings, create_app
from centricity_ideas.store import has_current_embedding
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_plumbing.mongo import MongoStore
from tests.integration.conftest import SettingsFactory, running, unique
from tests.support import bu_event, produce, wait_for_records

AUTHOR = {"customer_id": "c-1", "customer_type": "external"}
SUGGESTED = "centricity.idea.duplicates_suggested.v1"


async def test_a_reworded_idea_from_another_unit_is_suggested_as_a_duplicate(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    run = unique("dups")
    ideas = {
        "original": (
            "retail",
            "Reserve a workstation before coming in",
            "I commute 90 minutes and sometimes there's nowhere to sit; let me book a seat the day before.",
        ),
        # The same request in other words, from another business unit.
        "reworded": (
            "wholesale",
            "Book a desk in advance",
            "Let staff pick an office desk for tomorrow, so people travelling in are sure to have a place.",
        ),
        "unrelated": (
            "retail",
            "Let shoppers pay with a gift card online",
            "Gift cards work in stores only.",
        ),
    }
    ids = {name: idea_id_for(unit, f"{run}-{name}") for name, (unit, _, _) in ideas.items()}
    submissions = [
        (
            f"{run}-{name}",
            bu_event(
                "centricity.idea.submitted.v1",
                f"{run}-{name}",
                {"reference": f"{run}-{name}", "title": title, "description": text, "author": AUTHOR},
                businessunit=unit,
            ),
        )
        for name, (unit, title, text) in ideas.items()
    ]
    settings = make_settings(IdeasSettings)
    async with running(create_app(settings)):
        # Facts of one burst may be checked in any order (they are keyed by idea, so spread
        # over partitions): the original and the unrelated idea are checked first.
        await produce(infra.kafka_bootstrap, IDEAS_INTAKE, [submissions[0], submissions[2]])
        await suggestions(infra, [ids["original"], ids["unrelated"]])
        await produce(infra.kafka_bootstrap, IDEAS_INTAKE, [submissions[1]])
        suggested = await suggestions(infra, list(ids.values()))
    # The topic also holds other tests' ideas, which this service indexes too.
    assert suggested[ids["reworded"]][:1] == [ids["original"]]
    assert ids["unrelated"] not in suggested[ids["reworded"]]
    assert not {ids["original"], ids["reworded"]} & set(suggested[ids["unrelated"]])
    # Each idea keeps its embedding, so a restart or another replica does not encode it again.
    store = MongoStore(settings.mongo_url, settings.database_name())
    try:
        stored = [doc async for doc in store.db["ideas"].find({"_id": {"$in": list(ids.values())}})]
    finally:
        await store.close()
    assert len(stored) == 3
    assert all(has_current_embedding(doc) for doc in stored)


async def suggestions(infra: LocalInfrastructure, idea_ids: list[str]) -> dict[str, list[str]]:
    facts = await wait_for_records(
        infra.kafka_bootstrap,
        IDEAS_EVENTS,
        lambda r: r.key in idea_ids and r.json()["type"] == SUGGESTED,
        count=len(idea_ids),
    )
    return {
        f.json()["data"]["idea_id"]: [d["idea_id"] for d in f.json()["data"]["likely_duplicates"]]
        for f in facts
    }
