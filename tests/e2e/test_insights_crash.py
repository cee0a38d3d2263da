"""Insights SIGKILLed mid-burst, twice, ends where a rebuild from the fact topics ends (#13).

The facts go straight onto the fact topics with kcat, as the ideas and votes services would
publish them; the insights service's own collections are watched so that each kill lands while
it is writing. The live figures are then compared, idea by idea and unit by unit, with what
`centricity_insights.rebuild` computes into a fresh database.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from typing import Any

from pymongo import MongoClient
from pymongo.database import Database

from centricity_contracts.topics import IDEAS_EVENTS, VOTES_EVENTS
from centricity_plumbing.localrun import LocalSystem
from centricity_plumbing.settings import ServiceSettings
from tests.e2e.kcat import Kcat
from tests.support import idea_created_fact, insight_figures

IDEAS = 200
VOTES_PER_IDEA = 25
TIMEOUT_S = 180.0


def vote_recorded(idea_id: str, voter: str, businessunit: str) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"{idea_id}:{voter}:1",
            "source": "/centricity/votes",
            "type": "centricity.vote.recorded.v1",
            "businessunit": businessunit,
            "subject": idea_id,
            "data": {
                "vote_id": f"{idea_id}:{businessunit}:{voter}",
                "idea_id": idea_id,
                "voter": {"customer_id": voter, "customer_type": "external"},
                "voter_businessunit": businessunit,
                "value": 1 if hash(voter) % 4 else -1,
                "previous_value": 0,
                "revision": 1,
                "recorded_at": "2026-11-23T10:00:00Z",
            },
        }
    )


def insights_db(client: MongoClient[dict[str, Any]], name: str | None = None) -> Database[dict[str, Any]]:
    default = ServiceSettings.model_construct(service_name="insights").database_name()
    return client[name or default]


def crash_when_written(system: LocalSystem, collection: str) -> int:
    """Start insights (stopped) on a waiting burst and SIGKILL it as soon as `collection` grows."""
    client: MongoClient[dict[str, Any]]
    with MongoClient(system.infra.mongo_url) as client:
        documents = insights_db(client)[collection]
        before = documents.count_documents({})
        system.restart_service("insights", wait_until_ready=False)
        deadline = time.monotonic() + TIMEOUT_S
        while documents.count_documents({}) == before:
            assert time.monotonic() < deadline, "insights did not start on the burst"
            time.sleep(0.005)
        system.kill_service("insights")
        return documents.count_documents({}) - before


def by_id(db: Database[dict[str, Any]], collection: str) -> dict[str, dict[str, Any]]:
    return {doc["_id"]: insight_figures(doc) for doc in db[collection].find()}


def series_totals(db: Database[dict[str, Any]]) -> dict[str, dict[str, float]]:
    totals: dict[str, dict[str, float]] = {}
    for doc in by_id(db, "unit_series").values():
        unit = totals.setdefault(doc["unit"], {})
        for name, value in doc.items():
            if name not in ("unit", "hour_ms"):
                unit[name] = round(unit.get(name, 0) + value, 6)
    return totals


def rebuild_into(system: LocalSystem, database: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "centricity_insights.rebuild", "--database", database],
        env=system.service_env("insights"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_insights_killed_twice_mid_burst_agrees_with_a_rebuild(system: LocalSystem, kcat: Kcat) -> None:
    run = uuid.uuid4().hex[:8]
    ideas = [f"{run}-{n}" for n in range(IDEAS)]
    units = ("retail", "wholesale")
    system.kill_service("insights")
    created = [
        (idea, json.dumps(idea_created_fact(idea, businessunit=units[n % 2]))) for n, idea in enumerate(ideas)
    ]
    votes = [
        (idea, vote_recorded(idea, f"{run}-voter-{n}-{v}", units[v % 2]))
        for n, idea in enumerate(ideas)
        for v in range(VOTES_PER_IDEA)
    ]
    kcat.produce_lines(IDEAS_EVENTS, created)
    kcat.produce_lines(VOTES_EVENTS, votes)

    try:
        first = crash_when_written(system, "idea_insights")
        second = crash_when_written(system, "unit_participants")
    finally:
        system.restart_service("insights", wait_until_ready=False)
    assert first < IDEAS or second < IDEAS * VOTES_PER_IDEA, "both crashes came after the burst"

    client: MongoClient[dict[str, Any]]
    with MongoClient(system.infra.mongo_url) as client:
        live = insights_db(client)
        deadline = time.monotonic() + TIMEOUT_S
        while live.idea_insights.count_documents({"_id": {"$in": ideas}, "voters": VOTES_PER_IDEA}) < IDEAS:
            assert time.monotonic() < deadline, "insights did not catch up after the crashes"
            time.sleep(0.5)
        # Snapshots and unit counters of the last batch land just after its ideas.
        time.sleep(2)
        rebuilt_name = f"insights_rebuilt_{run}"
        print(rebuild_into(system, rebuilt_name))
        rebuilt = insights_db(client, rebuilt_name)

        assert by_id(live, "unit_insights") == by_id(rebuilt, "unit_insights")
        # Which hour a vote lands in depends on whether its idea's creation was read first,
        # and a rebuild reads the two fact topics in another order: compare each unit's totals.
        assert series_totals(live) == series_totals(rebuilt)
        assert by_id(live, "idea_insights") == by_id(rebuilt, "idea_insights")
        enterprise = live.unit_insights.find_one({"_id": "enterprise"}) or {}
        assert enterprise.get("ideas") == IDEAS
    print(f"insights killed after {first} idea documents, then after {second} participants")
