"""Kafka subscribers of the notifications service: the facts of the ideas and votes services, and
the subscriptions and contact details business units post."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker, KafkaMessage
from opentelemetry.sdk.trace import TracerProvider

from centricity_contracts.envelope import CloudEvent
from centricity_contracts.notifications import ContactSet, SubscriptionSet
from centricity_contracts.topics import IDEAS_EVENTS, NOTIFICATIONS, NOTIFICATIONS_INTAKE, VOTES_EVENTS
from centricity_notifications.service import Notifier
from centricity_plumbing.audit import Cause, acting
from centricity_plumbing.broker import (
    consumer_options,
    document_dead_letters,
    document_facts,
    intake_description,
    parse_intake,
)
from centricity_plumbing.facts import dead_letter_all, decode_records
from centricity_plumbing.settings import ServiceSettings
from centricity_plumbing.telemetry import record_spans

BATCH = 500


def register_subscribers(
    broker: KafkaBroker, notifier: Notifier, settings: ServiceSettings, tracer_provider: TracerProvider
) -> None:
    document_dead_letters(broker, NOTIFICATIONS_INTAKE)
    document_facts(broker, NOTIFICATIONS)

    @broker.subscriber(
        IDEAS_EVENTS,
        title=f"{IDEAS_EVENTS}:consume",
        description="Idea facts: who wrote and commented on which idea (they follow it), its title, "
        "and the changes followers are told of: status changes, official responses, merges (the "
        "duplicate's followers follow the surviving idea) and deliveries; and attestations, which "
        "stop reminders.",
        batch=True,
        max_records=BATCH,
        **consumer_options(settings, "ideas"),
    )
    async def on_idea_facts(msg: KafkaMessage) -> None:
        facts, broken = decode_records(msg.raw_message)
        await dead_letter_all(broker, broken, settings)
        with record_spans(msg.raw_message, tracer_provider):
            await notifier.record_idea_facts([fact for _, fact in facts])

    @broker.subscriber(
        VOTES_EVENTS,
        title=f"{VOTES_EVENTS}:consume",
        description="Vote facts: voters follow the ideas they vote on, and those their votes move to.",
        batch=True,
        max_records=BATCH,
        **consumer_options(settings, "votes"),
    )
    async def on_vote_facts(msg: KafkaMessage) -> None:
        facts, broken = decode_records(msg.raw_message)
        await dead_letter_all(broker, broken, settings)
        await notifier.record_vote_facts([fact for _, fact in facts])

    @broker.subscriber(
        NOTIFICATIONS_INTAKE,
        title=f"{NOTIFICATIONS_INTAKE}:consume",
        description=intake_description(NOTIFICATIONS_INTAKE, "Key them by customer id."),
        batch=True,
        max_records=BATCH,
        **consumer_options(settings),
    )
    async def on_intake(msg: KafkaMessage) -> None:
        for _, event in await parse_intake(broker, msg.raw_message, settings):
            with acting(Cause.of_intake(event.businessunit, event.dedup_key())):
                await apply_intake(event)

    async def apply_intake(event: CloudEvent[Any]) -> None:
        if isinstance(event, SubscriptionSet):
            change = event.data
            await notifier.subscribe(
                change.idea_id, event.businessunit, change.customer, subscribed=change.subscribed
            )
        elif isinstance(event, ContactSet):
            await notifier.set_contact(event.businessunit, event.data.customer.customer_id, event.data.email)
