"""Kafka side of the ideas service: the intake subscriber and the idea facts it publishes."""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker

from centricity_contracts.ideas import IdeaCreated, IdeaRecord, IdeaSubmission, IdeaSubmitted
from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE
from centricity_ideas import domain
from centricity_ideas.store import IdeaStore, to_record
from centricity_plumbing.broker import RejectedEvent, consumer_options
from centricity_plumbing.clock import utc_now
from centricity_plumbing.outbox import Outbox, outbox_entry
from centricity_plumbing.settings import ServiceSettings

log = logging.getLogger(__name__)


class IdeaIntake:
    """Turns a business unit's submission into a stored idea and its published fact."""

    def __init__(self, store: IdeaStore, outbox: Outbox, *, source: str) -> None:
        self.store = store
        self.outbox = outbox
        self.source = source

    async def submit(self, submission: IdeaSubmission, *, businessunit: str) -> tuple[IdeaRecord, bool]:
        """Record the idea once; a resubmission of the same reference returns the stored one."""
        record = domain.record_submission(submission, businessunit=businessunit, now=utc_now())
        fact = domain.created_fact(record, source=self.source)
        entry = outbox_entry(fact, topic=IDEAS_EVENTS, key=record.idea_id)
        doc, created = await self.store.insert_new(record, [entry])
        # Also publishes what an earlier attempt stored but did not get to publish.
        await self.outbox.deliver(doc)
        return to_record(doc), created


def register_subscribers(broker: KafkaBroker, intake: IdeaIntake, settings: ServiceSettings) -> None:
    broker.publisher(
        IDEAS_EVENTS,
        title="ideas.events.v1:publish",
        schema=IdeaCreated,
        description="Facts the ideas service recorded, keyed by idea id.",
    )

    @broker.subscriber(
        IDEAS_INTAKE,
        title="ideas.intake.v1:consume",
        description="Ideas that business-unit systems submit. Rejected records go to ideas.intake.v1.dlq.",
        **consumer_options(settings),
    )
    async def on_idea_submitted(event: IdeaSubmitted) -> None:
        if event.businessunit not in settings.business_units:
            raise RejectedEvent(f"unknown business unit {event.businessunit!r}")
        record, created = await intake.submit(event.data, businessunit=event.businessunit)
        outcome = "recorded" if created else "already recorded"
        log.info("%s: idea %s %s", event.dedup_key(), record.idea_id, outcome)
