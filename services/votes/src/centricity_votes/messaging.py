"""Kafka side of the votes service: the intake subscriber and the vote facts it publishes."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker, KafkaMessage

from centricity_contracts.topics import IDEAS_EVENTS, VOTES_EVENTS, VOTES_INTAKE
from centricity_contracts.votes import Ballot, VoteCast, VoteRecord, VoteRecorded
from centricity_plumbing.broker import (
    RejectedEvent,
    authorise_intake,
    consumer_options,
    document_dead_letters,
)
from centricity_plumbing.clock import utc_now
from centricity_plumbing.mongo import Document, remember
from centricity_plumbing.outbox import Outbox, outbox_entry, pending_entries
from centricity_plumbing.settings import ServiceSettings
from centricity_votes import domain
from centricity_votes.domain import IdeaClosed, UnknownIdea
from centricity_votes.store import SEEN_KEYS_KEPT, VoteStore, seen_keys, stored_vote, vote_document

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """A record that may succeed later; the consumer pauses and receives it again."""


def status_after(fact: dict[str, Any]) -> str | None:
    """An idea's status after one of the ideas service's facts, or None if it does not change it."""
    data = fact.get("data") or {}
    match fact.get("type"):
        case "centricity.idea.created.v1":
            return str(data.get("status", "submitted"))
        case "centricity.idea.status_changed.v1":
            return str(data["to_status"])
        case "centricity.idea.merged.v1":
            return "duplicate"
    return None


class VoteIntake:
    """Applies ballots: one vote per voter per idea, each change published once as a fact."""

    def __init__(self, store: VoteStore, outbox: Outbox, *, source: str) -> None:
        self.store = store
        self.outbox = outbox
        self.source = source

    async def cast(
        self, ballot: Ballot, *, voter_businessunit: str, request_key: str | None = None
    ) -> tuple[VoteRecord, bool]:
        """Apply `ballot`; returns the current vote and whether this ballot changed it.

        `request_key` identifies the request or event. Every key is remembered, repeats
        included, so a redelivered old ballot cannot undo a newer one.
        """
        domain.check_open(ballot.idea_id, await self.store.idea_status(ballot.idea_id))
        vote_id = domain.vote_id_for(ballot.idea_id, voter_businessunit, ballot.voter.customer_id)
        now = utc_now()
        changed = False

        def next_document(doc: Document | None) -> Document | None:
            nonlocal changed
            changed = False
            seen = seen_keys(doc)
            if request_key is not None and request_key in seen:
                return None
            current = stored_vote(doc)
            keys = remember(seen, request_key, SEEN_KEYS_KEPT) if request_key else seen
            outbox = pending_entries(doc)
            record = domain.next_vote(ballot, voter_businessunit=voter_businessunit, current=current, now=now)
            if record is None:
                if current is None or keys == seen:
                    return None
                return vote_document(current, seen=keys, outbox=outbox)
            changed = True
            fact = domain.recorded_fact(record, source=self.source)
            entry = outbox_entry(fact, topic=VOTES_EVENTS, key=record.idea_id)
            return vote_document(record, seen=keys, outbox=[*outbox, entry])

        doc = await self.store.change(vote_id, next_document)
        # Also publishes what an earlier attempt stored but did not get to publish.
        await self.outbox.deliver(doc)
        vote = stored_vote(doc)
        if vote is None:
            raise RuntimeError(f"vote {vote_id} missing after a ballot was applied")
        return vote, changed


def register_subscribers(
    broker: KafkaBroker, intake: VoteIntake, settings: ServiceSettings, *, unknown_idea_grace_s: float
) -> None:
    document_dead_letters(broker, VOTES_INTAKE)
    broker.publisher(
        VOTES_EVENTS,
        title="votes.events.v1:publish",
        schema=VoteRecorded,
        description="Facts the votes service recorded, keyed by idea id.",
    )

    @broker.subscriber(
        IDEAS_EVENTS,
        title=f"{IDEAS_EVENTS}:consume",
        description="Idea facts: which ideas exist and whether voting on them is still open.",
        **consumer_options(settings, "ideas"),
    )
    async def on_idea_fact(body: dict[str, Any]) -> None:
        status = status_after(body)
        if status is not None:
            await intake.store.set_idea_status(str(body["subject"]), status)

    @broker.subscriber(
        VOTES_INTAKE,
        title="votes.intake.v1:consume",
        description="Votes that business-unit systems cast; key them by idea id to keep their order. "
        "Rejected records go to votes.intake.v1.dlq.",
        **consumer_options(settings),
    )
    async def on_vote_cast(event: VoteCast, msg: KafkaMessage) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message
        authorise_intake(settings, event.businessunit, record.value or b"", record.headers or ())
        try:
            vote, changed = await intake.cast(
                event.data, voter_businessunit=event.businessunit, request_key=event.dedup_key()
            )
        except UnknownIdea as error:
            # The idea's creation may simply not have reached us yet: retry for a while.
            age_s = time.time() - record.timestamp / 1000
            if age_s < unknown_idea_grace_s:
                raise RetryLater(f"{error}; retrying for up to {unknown_idea_grace_s:.0f} s") from error
            raise RejectedEvent.for_rule(error) from error
        except IdeaClosed as error:
            raise RejectedEvent.for_rule(error) from error
        outcome = f"recorded r{vote.revision}" if changed else "unchanged"
        log.info("%s: vote %s %s", event.dedup_key(), vote.vote_id, outcome)
