"""A crash at any step of an insights batch's write leaves figures equal to applying it once (#13).

Each step a SIGKILL can interrupt is stopped here by raising from a store that is otherwise the
real one, on the real local store: the writes done before the step stay, as they would. A fresh
projection (the restarted service, or a second replica touching the same ideas) then gets the
same facts again, as Kafka redelivers them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from centricity_insights.domain import Counters, Fact, UnitCounters
from centricity_insights.projection import InsightProjection, parse_fact
from centricity_insights.store import IdeaWrite, InsightStore, UnitEffects
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_plumbing.mongo import Document, MongoStore
from tests.integration.conftest import unique
from tests.integration.test_insights_attestations import notified
from tests.integration.test_insights_units import Keyed, a_units_day, commented, created, voted
from tests.support import insight_figures

STEPS = ("begin", "ideas", "participants", "questions", "units", "series", "finish")


class Killed(BaseException):
    """Stands for the SIGKILL: nothing after it runs."""


class KilledAfter(InsightStore):
    """The real store, stopped right after one step of a batch's write."""

    def __init__(self, db: AsyncDatabase[Document], step: str) -> None:
        super().__init__(db)
        self.step = step

    def _maybe_die(self, step: str) -> None:
        if step == self.step:
            raise Killed(step)

    async def write_ideas(self, writes: list[IdeaWrite]) -> None:
        await super().write_ideas(writes)
        self._maybe_die("ideas")

    async def _claim_participants(
        self, tag: str, candidates: dict[tuple[str, str], int]
    ) -> list[tuple[str, int]]:
        claimed = await super()._claim_participants(tag, candidates)
        self._maybe_die("participants")
        return claimed

    async def _claim_questions(self, tag: str, effects: UnitEffects) -> list[tuple[UnitCounters, int]]:
        counted = await super()._claim_questions(tag, effects)
        self._maybe_die("questions")
        return counted

    async def _move_units(self, tag: str, units: UnitCounters, *, now_ms: int) -> None:
        # Half the units moved, as a kill in the middle of the bulk write leaves them.
        first = dict(list(units.items())[: len(units) // 2])
        if self.step == "units":
            await super()._move_units(tag, first, now_ms=now_ms)
            raise Killed("units")
        await super()._move_units(tag, units, now_ms=now_ms)

    async def _move_series(self, tag: str, series: dict[tuple[str, int], Counters], *, now_ms: int) -> None:
        await super()._move_series(tag, series, now_ms=now_ms)
        self._maybe_die("series")

    async def begin(self, tag: str, *, now_ms: int) -> None:
        await super().begin(tag, now_ms=now_ms)
        self._maybe_die("begin")

    async def _finish(self, tag: str) -> None:
        await super()._finish(tag)
        self._maybe_die("finish")


def a_day_of_facts() -> list[Fact]:
    idea_facts, vote_facts, ideas = a_units_day("retail", "wholesale", unique("campaign"))
    more: list[Keyed] = [created(unique("idea"), "wholesale", "c1", "external", None)]
    shared_voter = [voted(idea, "wholesale", "everywhere", "external", 1) for idea in ideas]
    # Asked whether the delivered idea helped: the author before its creation is seen, two voters
    # (one of whom answered, one reminded) after.
    early = notified(ideas[0], "retail", "retail", "c1", "external")
    asked = [
        notified(ideas[0], "retail", "wholesale", "v2", "partner"),
        notified(ideas[0], "retail", "retail", "v1", "external"),
        notified(ideas[0], "retail", "retail", "v1", "external", reminder=1, hours=72),
    ]
    keyed = [
        early,
        *idea_facts,
        *more,
        *vote_facts,
        *shared_voter,
        commented(ideas[1], "retail", "k9"),
        *asked,
    ]
    facts = [parse_fact(json.dumps(event).encode()) for _, event in keyed]
    return [fact for fact in facts if fact is not None]


async def everything(store: InsightStore) -> dict[str, dict[str, Any]]:
    """Every idea, unit and hourly document, by what it counts."""
    return {
        name: {doc["_id"]: insight_figures(doc) async for doc in collection.find()}
        for name, collection in (
            ("ideas", store.ideas),
            ("units", store.units),
            ("series", store.series),
        )
    }


@pytest.mark.parametrize("recovery", ["restart", "touch"])
@pytest.mark.parametrize("step", STEPS)
async def test_a_batch_killed_at_any_step_counts_once(
    infra: LocalInfrastructure, step: str, recovery: str
) -> None:
    facts = a_day_of_facts()
    mongo = MongoStore(infra.mongo_url, unique("t_insights_once"))
    reference_mongo = MongoStore(infra.mongo_url, unique("t_insights_ref"))
    try:
        reference = InsightStore(reference_mongo.db)
        await reference.ensure_indexes()
        await InsightProjection(reference).apply(facts)

        crashing = KilledAfter(mongo.db, step)
        await crashing.ensure_indexes()
        with pytest.raises(Killed):
            await InsightProjection(crashing).apply(facts)

        restarted = InsightProjection(InsightStore(mongo.db))
        if recovery == "restart":
            await restarted.recover_all()
        await restarted.apply(facts)  # Kafka redelivers the batch that was not committed
        await restarted.apply(facts[:3])  # and a few more times, for good measure

        assert await everything(InsightStore(mongo.db)) == await everything(reference)
        # A batch killed before it wrote any idea is left to the periodic sweep of stale ones.
        await restarted.recover_stale(now_ms=int(time.time() * 1000) + 10 * 60_000)
        assert await everything(InsightStore(mongo.db)) == await everything(reference)
        assert not await InsightStore(mongo.db).pending_tags()
    finally:
        await mongo.close()
        await reference_mongo.close()


async def test_old_batch_tags_are_forgotten_and_young_ones_kept(infra: LocalInfrastructure) -> None:
    mongo = MongoStore(infra.mongo_url, unique("t_insights_forget"))
    try:
        store = InsightStore(mongo.db)
        projection = InsightProjection(store)
        await projection.apply(a_day_of_facts())
        unit = await store.units.find_one({"_id": "enterprise"})
        assert unit is not None
        assert unit["applied"], "a batch leaves its tag on the units it moved"
        applied_at = max(unit["applied"].values())

        assert await store.forget_applied(now_ms=applied_at + 1000) == 0
        assert await store.forget_applied(now_ms=applied_at + 10 * 60_000) > 0
        unit = await store.units.find_one({"_id": "enterprise"})
        assert unit is not None
        assert not unit.get("applied")
        assert "guarded_ms" not in unit
    finally:
        await mongo.close()
