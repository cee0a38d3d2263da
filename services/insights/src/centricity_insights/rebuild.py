"""`centricity-insights-rebuild`: recompute every insight from the earliest offsets of the fact
topics (ideas, votes, notifications) into a fresh database, with the same rules the live service
applies.

    python -m centricity_insights.rebuild --database centricity_insights_rebuilt

It reads without a consumer group (the live service's offsets stay as they are) and stops once
it has caught up. Point the service at the new database (CENTRICITY_MONGO_DATABASE) to switch.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from centricity_contracts.topics import IDEAS_EVENTS, NOTIFICATIONS, VOTES_EVENTS
from centricity_insights.domain import Fact
from centricity_insights.main import InsightsSettings, configured_titles
from centricity_insights.projection import FACT_TOPICS, InsightProjection, parse_fact
from centricity_insights.store import FACT_BATCH, InsightStore
from centricity_plumbing.broker import RejectedEvent
from centricity_plumbing.mongo import MongoStore

log = logging.getLogger(__name__)

# The ideas' and votes' facts first, then the notifications that follow from them: the rules
# give the same result in any order, and this one keeps few requests waiting for their idea.
REPLAY_ORDER = ((IDEAS_EVENTS, VOTES_EVENTS), (NOTIFICATIONS,))
assert {topic for topics in REPLAY_ORDER for topic in topics} == set(FACT_TOPICS)
IDLE_POLLS_TO_STOP = 3
POLL_MS = 500


class NotFresh(RuntimeError):
    """The target database already holds insights."""


@dataclass
class RebuildReport:
    records: int = 0
    facts: int = 0
    skipped: int = 0
    broken: int = 0


async def rebuild(settings: InsightsSettings, *, database: str) -> RebuildReport:
    """Replay every fact from the earliest offsets into `database`, which must be empty."""
    mongo = MongoStore(settings.mongo_url, database)
    store = InsightStore(mongo.db)
    try:
        if await store.ideas.find_one({}) or await store.units.find_one({}):
            raise NotFresh(f"database {database!r} already holds insights; rebuild into a fresh one")
        await store.ensure_indexes()
        await store.name_units(configured_titles(settings))
        return await _replay(settings, InsightProjection(store))
    finally:
        await mongo.close()


async def _replay(settings: InsightsSettings, projection: InsightProjection) -> RebuildReport:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        max_poll_records=FACT_BATCH,
        **client_security(settings),
    )
    await consumer.start()
    report = RebuildReport()
    try:
        # Every topic's partitions before the first assignment, which narrows the metadata kept.
        known = {
            t: [TopicPartition(t, p) for p in consumer.partitions_for_topic(t) or ()] for t in FACT_TOPICS
        }
        for topics in REPLAY_ORDER:
            partitions = [tp for topic in topics for tp in known[topic]]
            await _replay_partitions(consumer, partitions, projection, report)
    finally:
        await consumer.stop()
    return report


async def _replay_partitions(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    projection: InsightProjection,
    report: RebuildReport,
) -> None:
    if not partitions:
        return
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    idle = 0
    while idle < IDLE_POLLS_TO_STOP:
        batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=FACT_BATCH)
        records = [record for records in batch.values() for record in records]
        if not records:
            # The local broker's end offsets can lag a batch behind: stop only when idle too.
            ends = await consumer.end_offsets(partitions)
            positions = [await consumer.position(tp) for tp in partitions]
            caught_up = all(p >= ends[tp] for p, tp in zip(positions, partitions, strict=True))
            idle = idle + 1 if caught_up else 0
            continue
        idle = 0
        await _apply(projection, records, report)


def client_security(settings: InsightsSettings) -> dict[str, Any]:
    """The service's Kafka TLS and SASL settings, as aiokafka takes them."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.endswith("SSL"):
        options["ssl_context"] = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
    if protocol.startswith("SASL_"):
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return options


async def _apply(projection: InsightProjection, records: list[object], report: RebuildReport) -> None:
    facts: list[Fact] = []
    for record in records:
        report.records += 1
        try:
            fact = parse_fact(getattr(record, "value", None))
        except RejectedEvent:
            report.broken += 1  # the live service dead-lettered it already
            continue
        if fact is None:
            report.skipped += 1
            continue
        facts.append(fact)
    if facts:
        report.facts += (await projection.apply(facts)).applied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Recompute every insight from the fact topics.")
    parser.add_argument("--database", required=True, help="the fresh MongoDB database to fill")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        report = asyncio.run(rebuild(InsightsSettings(), database=args.database))
    except NotFresh as error:
        print(error, file=sys.stderr)
        return 2
    print(
        f"rebuilt {args.database}: {report.records} records read, {report.facts} fact applications, "
        f"{report.skipped} of other types skipped, {report.broken} broken"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
