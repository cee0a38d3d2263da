"""Use cases of the notifications service, shared by HTTP and Kafka: follow ideas from the facts
of the ideas and votes services, tell followers when an idea moves, ask authors and voters of a
delivered idea whether it helped, and remind those who have not answered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from centricity_contracts.customers import Customer
from centricity_contracts.envelope import CloudEvent
from centricity_contracts.ideas import (
    IdeaAttested,
    IdeaCommented,
    IdeaCreated,
    IdeaEdited,
    IdeaFollowUpNeeded,
    IdeaMerged,
)
from centricity_contracts.notifications import AttestationRequest, Notification, NotificationRequested
from centricity_contracts.registry import events_on
from centricity_contracts.topics import NOTIFICATIONS
from centricity_contracts.votes import VoteMoved, VoteRecorded
from centricity_notifications.domain import (
    Change,
    Follower,
    IdeaFacts,
    Reason,
    ReminderPolicy,
    asks,
    change_of,
    customer_key,
    notification_for,
    notification_id,
    subscription_id,
)
from centricity_notifications.store import DeliveryState, MailState, NotificationStore, follower_of
from centricity_notifications.webhooks import (
    TooManyEndpoints,
    WebhookSettings,
    check_secret,
    check_target,
    new_secret,
)
from centricity_plumbing.answerlinks import ANSWER, UNSUBSCRIBE, AnswerLink, AnswerLinkInvalid
from centricity_plumbing.clock import utc_now
from centricity_plumbing.mongo import Document
from centricity_plumbing.outbox import Outbox, outbox_entry
from centricity_plumbing.rules import InvalidInput, NotFound

log = logging.getLogger(__name__)

# A change is told a page of followers (store.FOLLOWER_PAGE) per round, each page written and
# published in bulk, so a change with 100,000 followers goes on beside other changes and intake.
# Reminders due are sent this many per round.
REMINDER_BATCH = 500
IDLE_POLL_S = 0.5
REMINDER_POLL_S = 5.0
# What endpoints may take: the facts this service publishes, from the registry.
WEBHOOK_EVENT_TYPES = (
    *(cls.event_type() for cls in events_on(NOTIFICATIONS)),
    IdeaFollowUpNeeded.event_type(),
)


@dataclass(frozen=True)
class Links:
    """Where the links in notifications point, and what signs them."""

    answer_base_url: str
    secret: str
    valid_for: timedelta

    def answer(self, change: Change, follower: Follower, notification_id: str) -> AttestationRequest:
        expires_at = change.at + self.valid_for
        link = AnswerLink(
            link_id=notification_id,
            idea_id=change.idea_id,
            businessunit=follower.businessunit,
            customer=follower.customer,
            expires_at=expires_at,
            purpose=ANSWER,
        )
        url = f"{self.answer_base_url.rstrip('/')}/attestation-links/{link.encode(self.secret)}"
        return AttestationRequest(url=url, expires_at=expires_at)


class Notifier:
    def __init__(
        self,
        store: NotificationStore,
        outbox: Outbox,
        *,
        source: str,
        links: Links,
        reminders: ReminderPolicy,
        webhooks: WebhookSettings,
    ) -> None:
        self.store = store
        self.webhooks = webhooks
        self.webhook_due = asyncio.Event()
        self.outbox = outbox
        self.source = source
        self.links = links
        self.reminders = reminders
        self.changed = asyncio.Event()
        self.mail_due = asyncio.Event()

    # Facts of the other services

    async def record_idea_facts(self, facts: Sequence[CloudEvent[Any]]) -> None:
        for fact in facts:
            await self._record_idea_fact(fact)
            change = change_of(fact)
            if change is not None:
                await self.store.add_change(change)
                self.changed.set()

    async def _record_idea_fact(self, fact: CloudEvent[Any]) -> None:
        if isinstance(fact, IdeaCreated):
            idea = fact.data
            await self.store.remember_idea(
                IdeaFacts(idea.idea_id, idea.businessunit, idea.title), internal_only=idea.internal_only
            )
            await self.store.follow(
                idea.idea_id, [Follower(idea.businessunit, idea.author, frozenset({Reason.AUTHORED}))]
            )
        elif isinstance(fact, IdeaEdited):
            title = fact.data.changes.get("title", {}).get("after")
            if isinstance(title, str):
                await self.store.retitle(fact.data.idea_id, title)
        elif isinstance(fact, IdeaCommented) and (author := fact.data.author) is not None:
            commenter = Follower(fact.data.businessunit, author, frozenset({Reason.COMMENTED}))
            await self.store.follow(fact.data.idea_id, [commenter])
        elif isinstance(fact, IdeaMerged):
            await self.store.carry_over(fact.data.idea_id, fact.data.into_idea_id)
        elif isinstance(fact, IdeaFollowUpNeeded):
            await self._tell_unit(fact, fact.data.businessunit)
        elif isinstance(fact, IdeaAttested):
            attestation = fact.data
            key = customer_key(attestation.customer_businessunit, attestation.customer.customer_id)
            await self.store.answered(attestation.idea_id, key, at=attestation.attested_at)

    async def record_vote_facts(self, facts: Sequence[CloudEvent[Any]]) -> None:
        voters: dict[str, list[Follower]] = {}
        for fact in facts:
            if isinstance(fact, VoteRecorded):
                vote = fact.data
                voters.setdefault(vote.idea_id, []).append(
                    Follower(vote.voter_businessunit, vote.voter, frozenset({Reason.VOTED}))
                )
            elif isinstance(fact, VoteMoved):
                move = fact.data
                voters.setdefault(move.to_idea_id, []).append(
                    Follower(move.voter_businessunit, move.voter, frozenset({Reason.VOTED}))
                )
        for idea_id, followers in voters.items():
            await self.store.follow(idea_id, followers)

    # Customers' choices

    async def subscribe(
        self, idea_id: str, businessunit: str, customer: Customer, *, subscribed: bool
    ) -> None:
        await self.store.set_subscribed(idea_id, businessunit, customer, subscribed=subscribed)

    async def subscribe_visible(
        self,
        idea_id: str,
        businessunit: str,
        customer: Customer,
        *,
        subscribed: bool,
        sees_internal_only: bool,
    ) -> Document:
        """Over HTTP: the idea must be one this reader can see."""
        idea = await self.store.idea_document(idea_id)
        if idea is None or "title" not in idea or (idea.get("internal_only") and not sees_internal_only):
            raise NotFound("idea", idea_id)
        await self.subscribe(idea_id, businessunit, customer, subscribed=subscribed)
        doc = await self.store.subscription(
            subscription_id(idea_id, customer_key(businessunit, customer.customer_id))
        )
        assert doc is not None
        return doc

    async def set_contact(self, businessunit: str, customer_id: str, email: str | None) -> None:
        await self.store.set_contact(customer_key(businessunit, customer_id), email)

    def check_unsubscribe_link(self, token: str) -> AnswerLink:
        try:
            return AnswerLink.decode(token, self.links.secret, UNSUBSCRIBE)
        except AnswerLinkInvalid as error:
            raise InvalidLink(error.reason) from error

    async def idea_title(self, idea_id: str) -> str:
        idea = await self.store.idea(idea_id)
        return idea.title if idea else "this idea"

    async def unsubscribe_by_link(self, token: str) -> AnswerLink:
        link = self.check_unsubscribe_link(token)
        await self.subscribe(link.idea_id, link.businessunit, link.customer, subscribed=False)
        return link

    # Telling

    async def tell_pending(self) -> int:
        """One round of every open change: tell the next followers of each. Returns how many told."""
        told = 0
        for change, page in await self.store.open_changes():
            told += await self.tell(change, page)
        return told

    async def tell(self, change: Change, page: int) -> int:
        """Tell the followers on one page of the idea, then move the change to the next page."""
        idea = await self.store.idea(change.idea_id)
        if idea is None:  # its creation is behind it on the same partition, so never: keep it open
            log.warning("change %s of unknown idea %s waits", change.cause, change.idea_id)
            return 0
        pages = await self.store.pages_of(change.idea_id)
        followers = await self.store.followers_on(change.idea_id, page) if page < pages else []
        if followers:
            await self._notify(change, idea, [(f, 0) for f in followers], at=change.at)
            await self.store.ask([self._question(change, f) for f in followers if asks(change, f)])
        await self.store.advance(change.cause, page + 1, done=page + 1 >= pages)
        # A page of only unsubscribed followers told nobody, but the change moved on.
        return max(len(followers), 1) if page < pages else 0

    def _question(self, change: Change, follower: Follower) -> Document:
        # Reminders count from when the question went out, which may be well after the delivery
        # (a backlog); the first insert of a question is the one kept.
        asked_at = utc_now()
        due = self.reminders.first_due(asked_at)
        return {
            "_id": subscription_id(change.idea_id, follower.key),
            "idea_id": change.idea_id,
            "customer_key": follower.key,
            "change": change.to_document(),
            "asked_at": asked_at.isoformat(),
            "answered": False,
            "reminders": 0,
            **({"remind_at": due.isoformat()} if due else {}),
        }

    async def _notify(
        self, change: Change, idea: IdeaFacts, followers: list[tuple[Follower, int]], *, at: datetime
    ) -> list[Notification]:
        """Store, publish and queue for mail one notification per follower (and reminder number)."""
        emails = await self.store.emails_of(f.key for f, _ in followers)
        notifications = []
        for follower, reminder in followers:
            # Reminders carry the question's own link: one link per question, answered once.
            question = notification_id(change.cause, follower.key)
            attestation = self.links.answer(change, follower, question) if asks(change, follower) else None
            notifications.append(
                notification_for(change, follower, idea, now=at, attestation=attestation, reminder=reminder)
            )
        now = utc_now()
        await self.store.record_notifications(
            [
                notification_document(n, emails.get(f.key), now)
                for n, (f, _) in zip(notifications, followers, strict=True)
            ]
        )
        self.mail_due.set()
        entries = [self._entry(n) for n in notifications]
        await self._enqueue_webhooks(notifications, entries, now)
        await self.outbox.publish_entries(entries)
        return notifications

    async def _tell_unit(self, fact: CloudEvent[Any], businessunit: str) -> None:
        """A fact for a unit itself (a follow-up it owes): to its endpoints that take the type."""
        endpoints = await self.store.endpoints_for({businessunit}, fact.type)
        payload = fact.to_json_bytes().decode()
        now = utc_now()
        await self.store.enqueue_deliveries(
            [delivery_document(e, fact.id, fact.type, payload, now) for e in endpoints.get(businessunit, [])]
        )
        self.webhook_due.set()

    async def _enqueue_webhooks(
        self, notifications: list[Notification], entries: list[Document], now: datetime
    ) -> None:
        """One delivery per notification to each endpoint of the customer's unit that takes it."""
        event_type = NotificationRequested.event_type()
        endpoints = await self.store.endpoints_for(
            {n.customer_businessunit for n in notifications}, event_type
        )
        deliveries = [
            delivery_document(endpoint, n.notification_id, event_type, entry["payload"], now)
            for n, entry in zip(notifications, entries, strict=True)
            for endpoint in endpoints.get(n.customer_businessunit, [])
        ]
        await self.store.enqueue_deliveries(deliveries)
        if deliveries:
            self.webhook_due.set()

    def _entry(self, notification: Notification) -> Document:
        key = customer_key(notification.customer_businessunit, notification.customer.customer_id)
        event = NotificationRequested.build(
            id=notification.notification_id,
            source=self.source,
            businessunit=notification.customer_businessunit,
            subject=key,
            data=notification,
            time=notification.requested_at,
        )
        return outbox_entry(event, topic=NOTIFICATIONS, key=key)

    async def remind_due(self, limit: int = REMINDER_BATCH) -> int:
        """Remind the customers whose answer is overdue; each reminder is told once."""
        reminded = 0
        for question in await self.store.due_reminders(utc_now(), limit):
            reminded += await self._remind(question)
        return reminded

    async def _remind(self, question: Document) -> int:
        sent = int(question["reminders"]) + 1
        due_at = datetime.fromisoformat(question["remind_at"])
        subscription = await self.store.subscription(question["_id"])
        change = Change.from_document(question["change"])
        idea = await self.store.idea(change.idea_id)
        if subscription is None or not subscription.get("subscribed") or idea is None:
            await self.store.reminded(question["_id"], sent, None)  # no longer following: ask no more
            return 0
        await self._notify(change, idea, [(follower_of(subscription), sent)], at=due_at)
        await self.store.reminded(question["_id"], sent, self.reminders.next_due(due_at, sent))
        return 1

    async def keep_telling(self) -> None:
        """Background job: tell open changes as they come, and remind when reminders are due."""
        last_reminders = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                while await self.tell_pending():
                    pass
                if loop.time() - last_reminders >= REMINDER_POLL_S:
                    last_reminders = loop.time()
                    while await self.remind_due():
                        pass
            except Exception:  # the store or broker is away: what is open stays open
                log.exception("telling followers failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), IDLE_POLL_S)
            self.changed.clear()

    # Webhook endpoints

    async def register_endpoint(
        self,
        businessunit: str,
        *,
        url: str,
        event_types: list[str] | None,
        description: str | None,
        secret: str | None,
    ) -> Document:
        """A unit's new endpoint; its secret is in the answer, and never again."""
        unknown = sorted(set(event_types or ()) - set(WEBHOOK_EVENT_TYPES))
        if unknown:
            raise InvalidInput(f"Unknown event types {unknown}; endpoints take {list(WEBHOOK_EVENT_TYPES)}.")
        live = await self.store.count_endpoints_of(businessunit)
        if live >= self.webhooks.endpoints_per_unit:
            raise TooManyEndpoints(
                f"The unit has {live} endpoints, the most it may have; delete one before adding another."
            )
        await check_target(url, allow_private=self.webhooks.allow_private_targets)
        if secret is not None:
            check_secret(secret)
        doc = {
            "_id": str(uuid.uuid4()),
            "businessunit": businessunit,
            "url": url,
            "event_types": list(event_types or WEBHOOK_EVENT_TYPES),
            "description": description,
            "secret": secret or new_secret(),
            "created_at": utc_now().isoformat(),
        }
        await self.store.add_endpoint(doc)
        return doc

    async def endpoints(self, businessunit: str) -> list[Document]:
        return await self.store.endpoints_of(businessunit)

    async def own_endpoint(self, businessunit: str, endpoint_id: str) -> Document:
        """An endpoint of this unit; another unit's does not exist for it."""
        doc = await self.store.endpoint(endpoint_id)
        if doc is None or doc.get("deleted") or doc["businessunit"] != businessunit:
            raise NotFound("webhook", endpoint_id)
        return doc

    async def delete_endpoint(self, businessunit: str, endpoint_id: str) -> None:
        await self.own_endpoint(businessunit, endpoint_id)
        await self.store.delete_endpoint(endpoint_id, at=utc_now())

    async def deliveries(
        self, businessunit: str, endpoint_id: str, state: str | None, limit: int
    ) -> list[Document]:
        await self.own_endpoint(businessunit, endpoint_id)
        return await self.store.deliveries_of(endpoint_id, state, limit)

    async def replay(self, businessunit: str, endpoint_id: str, delivery_id: str) -> Document:
        await self.own_endpoint(businessunit, endpoint_id)
        doc = await self.store.replay(endpoint_id, delivery_id, now=utc_now())
        if doc is None:
            raise NotFound("delivery", delivery_id)
        self.webhook_due.set()
        return doc

    # Reads

    async def subscriptions_of(
        self, businessunit: str, customer_id: str, *, limit: int, after: str | None = None
    ) -> list[Document]:
        return await self.store.subscriptions_of(
            customer_key(businessunit, customer_id), limit=limit, after=after
        )

    async def notifications_of(self, businessunit: str, customer_id: str, limit: int) -> list[Document]:
        return await self.store.notifications_of(customer_key(businessunit, customer_id), limit)

    async def contact_of(self, businessunit: str, customer_id: str) -> str | None:
        return await self.store.contact(customer_key(businessunit, customer_id))


class InvalidLink(InvalidInput):
    kind = "invalid-link"
    status = 400
    title = "Invalid link"


def delivery_document(
    endpoint: Document, message_id: str, event_type: str, payload: str, now: datetime
) -> Document:
    return {
        "_id": f"{endpoint['_id']}|{message_id}",
        "endpoint_id": endpoint["_id"],
        "businessunit": endpoint["businessunit"],
        "message_id": message_id,
        "event_type": event_type,
        "payload": payload,
        "state": DeliveryState.PENDING,
        "attempts": 0,
        "created_at": now.isoformat(),
        "first_at": now.isoformat(),
        "next_at": now.isoformat(),
    }


def notification_document(notification: Notification, email: str | None, now: datetime) -> Document:
    key = customer_key(notification.customer_businessunit, notification.customer.customer_id)
    mail: Document = (
        {
            "state": MailState.PENDING,
            "to": email,
            "attempts": 0,
            "first_at": now.isoformat(),
            "next_at": now.isoformat(),
        }
        if email
        else {"state": "none"}
    )
    return {
        "_id": notification.notification_id,
        "customer_key": key,
        "idea_id": notification.idea_id,
        "kind": str(notification.kind),
        "requested_at": notification.requested_at.isoformat(),
        "notification": notification.model_dump(mode="json"),
        "mail": mail,
    }
