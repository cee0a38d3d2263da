"""A fact counted once however late it comes again (#13).

Upstream services publish a fact again, under the same id, after a crash: the votes service when
Kafka redelivers the intake records whose offsets it had not committed, or when votes parked for
an unknown idea are released meanwhile, and any service from its outbox at the next start. So the
copy can reach insights thousands of facts about the same idea after the original. And insights
itself gets a whole uncommitted batch again after its own crash, which may be about one idea.
"""

from __future__ import annotations

import json

from centricity_insights.domain import Fact
from centricity_insights.projection import InsightProjection, parse_fact
from centricity_insights.store import FACT_BATCH, InsightStore
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_plumbing.mongo import MongoStore
from tests.integration.conftest import unique
from tests.integration.test_insights_units import Keyed, created, voted


def parsed(keyed: list[Keyed]) -> list[Fact]:
    facts = [parse_fact(json.dumps(event).encode()) for _, event in keyed]
    return [fact for fact in facts if fact is not None]


async def voters_of(store: InsightStore, idea: str) -> int:
    doc = await store.ideas.find_one({"_id": idea})
    assert doc is not None
    return int(doc["voters"])


async def test_a_vote_published_again_after_thousands_of_others_counts_once(
    infra: LocalInfrastructure,
) -> None:
    mongo = MongoStore(infra.mongo_url, unique("t_insights_late_copy"))
    idea = unique("idea")
    try:
        store = InsightStore(mongo.db)
        await store.ensure_indexes()
        projection = InsightProjection(store)
        first = parsed([voted(idea, "retail", "first", "external", 1)])
        await projection.apply([*parsed([created(idea, "retail", "a", "external", None)]), *first])
        others = parsed([voted(idea, "retail", f"v{n}", "external", 1) for n in range(3000)])
        for start in range(0, len(others), 500):
            await projection.apply(others[start : start + 500])
        await projection.apply(first)  # the votes service's republish after its crash

        assert await voters_of(store, idea) == 1 + len(others)
    finally:
        await mongo.close()


async def test_a_full_batch_about_one_idea_delivered_again_counts_once(infra: LocalInfrastructure) -> None:
    mongo = MongoStore(infra.mongo_url, unique("t_insights_batch_again"))
    idea = unique("idea")
    try:
        store = InsightStore(mongo.db)
        await store.ensure_indexes()
        projection = InsightProjection(store)
        await projection.apply(parsed([created(idea, "retail", "a", "external", None)]))
        batch = parsed([voted(idea, "retail", f"v{n}", "external", 1) for n in range(FACT_BATCH)])
        await projection.apply(batch)
        # Insights was killed before committing the batch's offsets: Kafka delivers it again.
        await InsightProjection(InsightStore(mongo.db)).apply(batch)

        assert await voters_of(store, idea) == FACT_BATCH
    finally:
        await mongo.close()
