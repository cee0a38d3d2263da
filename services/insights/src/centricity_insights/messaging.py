"""Kafka side of the insights service: it reads idea and vote facts, and streams snapshots."""

from __future__ import annotations

import logging
from typing import Any

from faststream.kafka import KafkaBroker

from centricity_contracts.ideas import IdeaCreated
from centricity_contracts.insights import IdeaInsight, IdeaInsightUpdated
from centricity_contracts.topics import IDEAS_EVENTS, INSIGHTS_IDEAS, VOTES_EVENTS
from centricity_contracts.votes import VoteRecorded
from centricity_insights.domain import IdeaTally, snapshot_event
from centricity_insights.store import SEEN_KEYS_KEPT, InsightStore, seen_keys, stored_tally
from centricity_plumbing.broker import consumer_options, document_dead_letters, publish_event
from centricity_plumbing.clock import utc_now
from centricity_plumbing.mongo import Document, remember
from centricity_plumbing.settings import ServiceSettings

log = logging.getLogger(__name__)

Fact = IdeaCreated | VoteRecorded
FACT_TYPES: dict[str, type[IdeaCreated] | type[VoteRecorded]] = {
    IdeaCreated.event_type(): IdeaCreated,
    VoteRecorded.event_type(): VoteRecorded,
}


def idea_of(fact: Fact) -> str:
    return fact.data.idea_id


def tally_after(tally: IdeaTally, fact: Fact) -> IdeaTally:
    if isinstance(fact, IdeaCreated):
        return tally.with_idea(fact.data)
    return tally.with_vote(fact.data)


class InsightProjection:
    """Applies each fact once to its idea's tally, then streams the idea's snapshot."""

    def __init__(self, store: InsightStore, broker: KafkaBroker, *, source: str) -> None:
        self.store = store
        self.broker = broker
        self.source = source

    async def apply(self, fact: Fact) -> IdeaInsight:
        idea_id = idea_of(fact)
        key = fact.dedup_key()
        now = utc_now()

        def next_document(doc: Document | None) -> Document | None:
            seen = seen_keys(doc)
            if key in seen:
                return None
            revision = (doc or {}).get("revision", 0) + 1
            insight = tally_after(stored_tally(idea_id, doc), fact).insight(revision=revision, now=now)
            return {**insight.model_dump(), "seen": remember(seen, key, SEEN_KEYS_KEPT)}

        doc = await self.store.change(idea_id, next_document)
        insight = IdeaInsight.model_validate(doc)
        # Published even for a repeated fact: the snapshot a crash may have kept from going out.
        await publish_event(
            self.broker, snapshot_event(insight, source=self.source), topic=INSIGHTS_IDEAS, key=idea_id
        )
        return insight


def register_subscribers(
    broker: KafkaBroker, projection: InsightProjection, settings: ServiceSettings
) -> None:
    document_dead_letters(broker, IDEAS_EVENTS, VOTES_EVENTS)
    broker.publisher(
        INSIGHTS_IDEAS,
        title="insights.ideas.v1:publish",
        schema=IdeaInsightUpdated,
        description="The latest insight per idea, keyed by idea id (compacted).",
    )

    @broker.subscriber(
        IDEAS_EVENTS,
        VOTES_EVENTS,
        title="facts:consume",
        description="Idea and vote facts; types this version does not know are skipped.",
        **consumer_options(settings),
    )
    async def on_fact(body: dict[str, Any]) -> None:
        fact_class = FACT_TYPES.get(str(body.get("type")))
        if fact_class is None:
            log.debug("skipping fact of type %r", body.get("type"))
            return
        fact = fact_class.model_validate(body)
        insight = await projection.apply(fact)
        log.info("%s: idea %s at r%d", fact.dedup_key(), insight.idea_id, insight.revision)
