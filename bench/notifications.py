"""Notifications: telling one idea's delivery to all its voters, at 10,000 and at 100,000 voters.

For each size, in a fresh local system: the idea and its votes go onto the fact topics, the service
follows every voter, then the delivery fact arrives and the service tells every follower (a
notification fact each on notifications.v1, and an attestation question each). Measured:
- notifications per second on notifications.v1, from the records' CreateTime, against a baseline
  from the same run: the local broker's raw produce rate of records of the same size (aiokafka,
  acks=all), which no service could beat;
- the time from the delivery fact to the last notification fact;
- the service's peak RSS (VmHWM), which must not grow with the number of voters: the ratio of the
  large run's to the small one's.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection
from tests.e2e.test_insights_crash import vote_recorded
from tests.e2e.test_notifications_crash import delivered_fact
from tests.support import idea_created_fact

from bench.common import local_system, produce_all, rate_of, record_results, rss_mb, timestamps
from centricity_contracts.topics import IDEAS_EVENTS, NOTIFICATIONS, VOTES_EVENTS
from centricity_plumbing.settings import ServiceSettings

SIZES = (10_000, 100_000)
RAW_TOPIC = "bench.raw.produce"
TIMEOUT_S = 1800.0


def wait_for(what: str, done: Any, timeout_s: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


async def raw_produce_rate(bootstrap: str, sample: bytes, count: int) -> float:
    await produce_all(bootstrap, RAW_TOPIC, [(str(n).encode(), sample) for n in range(count)])
    return rate_of(await timestamps(bootstrap, RAW_TOPIC, wanted=count, timeout_s=600))


def one_size(voters: int) -> dict[str, float]:
    idea_id = f"bench-{voters}"
    with local_system("notifications") as system:
        bootstrap = system.infra.kafka_bootstrap
        facts = [(idea_id.encode(), json.dumps(idea_created_fact(idea_id)).encode())]
        votes = [
            (idea_id.encode(), vote_recorded(idea_id, f"v{n}", ("retail", "wholesale")[n % 2]).encode())
            for n in range(voters)
        ]
        asyncio.run(produce_all(bootstrap, IDEAS_EVENTS, facts))
        asyncio.run(produce_all(bootstrap, VOTES_EVENTS, votes))
        system.restart_service("notifications")
        database = ServiceSettings.model_construct(service_name="notifications").database_name()
        client: MongoClient[dict[str, Any]]
        with MongoClient(system.infra.mongo_url) as client:
            followers: Collection[dict[str, Any]] = client[database].subscriptions
            wait_for("followers", lambda: followers.count_documents({"idea_id": idea_id}) == voters + 1)
        delivered_at_ms = int(time.time() * 1000)
        asyncio.run(
            produce_all(bootstrap, IDEAS_EVENTS, [(idea_id.encode(), delivered_fact(idea_id).encode())])
        )
        stamps = asyncio.run(
            timestamps(
                bootstrap, NOTIFICATIONS, wanted=voters + 1, timeout_s=TIMEOUT_S, marker=idea_id.encode()
            )
        )
        peak_mb = rss_mb(system.pid("notifications"))
        sample = b"x" * 1400  # about the size of a notification fact with an answer link
        raw = asyncio.run(raw_produce_rate(bootstrap, sample, min(voters, 20_000)))
    rate = rate_of(stamps)
    return {
        "voters": voters,
        "notifications_per_s": round(rate, 1),
        "raw_produce_per_s": round(raw, 1),
        "ratio_to_raw_produce": round(rate / raw, 3),
        "delivery_to_last_notification_ms": max(stamps) - delivered_at_ms,
        "peak_rss_mb": round(peak_mb, 1),
    }


def main() -> None:
    runs = [one_size(size) for size in SIZES]
    small, large = runs
    record_results(
        "notifications",
        {
            "runs": runs,
            "rss_ratio_100k_to_10k": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3),
            "goal": "RSS does not grow with voters (ratio near 1)",
        },
    )


if __name__ == "__main__":
    main()
