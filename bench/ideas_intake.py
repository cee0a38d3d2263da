"""Ideas intake: ideas per second from ideas.intake.v1 to stored and published, against the
local store's raw bulk insert rate measured in the same run on the same kind of documents."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from pymongo import AsyncMongoClient

from bench.common import local_system, produce_all, rate_of, record_results, rss_mb, timestamps
from centricity_contracts.ideas import IdeaCreated, IdeaDuplicatesSuggested, IdeaSubmission
from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE
from centricity_ideas import domain
from centricity_ideas.store import CREATED_FIELD, idea_document
from centricity_plumbing.clock import utc_now
from centricity_plumbing.localrun import LocalSystem
from centricity_plumbing.outbox import outbox_entry

IDEAS = 20_000
# Likely-duplicate suggestions timed after the burst (the finder encodes about 100 ideas/s).
SUGGESTIONS = 4_000
BATCH = 500
WORDS = [
    "basket",
    "card",
    "invoice",
    "onboarding",
    "payroll",
    "shipment",
    "claim",
    "refund",
    "portal",
    "branch",
    "loan",
    "savings",
]


def submission(n: int) -> dict[str, object]:
    topic = " ".join(WORDS[(n * k) % len(WORDS)] for k in (1, 3, 7))
    return {
        "reference": f"bench-{n}",
        "title": f"Improve the {topic} experience ({n})",
        "description": f"Customers ask for a simpler {topic} flow; today it takes several steps and calls.",
        "tags": [WORDS[n % len(WORDS)]],
        "author": {"customer_id": f"c-{n % 997}", "customer_type": "external"},
    }


async def raw_insert_rate(mongo_url: str) -> float:
    """Documents per second for insert_many of the documents the service stores, in its batch size."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    collection = client["bench_raw"]["ideas"]
    now = utc_now()
    ideas = [
        domain.new_idea(
            IdeaSubmission.model_validate(submission(n)), businessunit="retail", now=now, likely_duplicates=[]
        )
        for n in range(IDEAS)
    ]
    # The very documents the service stores for ideas from Kafka, their created fact kept.
    docs = [
        {
            **idea_document(idea, outbox=[], seen=[f"/bu/retail/bench {uuid.uuid4()}"]),
            CREATED_FIELD: outbox_entry(
                domain.created_fact(idea, source="/centricity/ideas"), topic=IDEAS_EVENTS, key=idea.idea_id
            ),
            "revision": 1,
        }
        for idea in ideas
    ]
    started = time.perf_counter()
    for start in range(0, IDEAS, BATCH):
        await collection.insert_many(docs[start : start + BATCH], ordered=False)
    elapsed = time.perf_counter() - started
    await client.close()
    return IDEAS / elapsed


def intake_events() -> list[tuple[bytes, bytes]]:
    events = []
    for n in range(IDEAS):
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/bu/retail/bench",
            "type": "centricity.idea.submitted.v1",
            "businessunit": "retail",
            "data": submission(n),
        }
        events.append((f"bench-{n}".encode(), json.dumps(event).encode()))
    return events


async def service_rates(system: LocalSystem) -> tuple[float, float, float]:
    """Ideas per second from the publish times of the first and last created facts; then the
    duplicate finder's pace over its first suggestions after the last created fact, and how long
    after it its first suggestions came."""
    bootstrap = system.infra.kafka_bootstrap
    # The topic also carries the likely duplicates found after intake.
    created = f'"type":"{IdeaCreated.event_type()}"'.encode()
    stamps = await timestamps(bootstrap, IDEAS_EVENTS, wanted=IDEAS, timeout_s=600, marker=created)
    suggested = f'"type":"{IdeaDuplicatesSuggested.event_type()}"'.encode()
    found = await timestamps(bootstrap, IDEAS_EVENTS, wanted=SUGGESTIONS, timeout_s=600, marker=suggested)
    # The finder publishes a whole batch at once: its pace is counted from the end of intake.
    return (
        rate_of(stamps),
        len(found) / ((max(found) - max(stamps)) / 1000),
        (min(found) - max(stamps)) / 1000,
    )


def main() -> None:
    with local_system("ideas") as system:
        infra = system.infra
        store_rate = asyncio.run(raw_insert_rate(infra.mongo_url))
        asyncio.run(produce_all(infra.kafka_bootstrap, IDEAS_INTAKE, intake_events(), sign=True))
        system.restart_service("ideas")
        rate, suggestion_rate, suggestions_after_s = asyncio.run(service_rates(system))
        peak_rss, rss_after = rss_mb(system.pid("ideas")), rss_mb(system.pid("ideas"), "VmRSS")
    record_results(
        "ideas_intake",
        {
            "ideas": IDEAS,
            "rate": round(rate, 1),
            "store_insert_many_rate": round(store_rate, 1),
            "ratio_store": round(rate / store_rate, 3),
            "suggestion_rate": round(suggestion_rate, 1),
            "suggestions_start_after_intake_s": round(suggestions_after_s, 2),
            "peak_rss_mb": round(peak_rss),
            "rss_mb_when_suggestions_timed": round(rss_after),
        },
    )


if __name__ == "__main__":
    main()
