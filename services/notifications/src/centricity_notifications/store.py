"""Notifications in MongoDB: ideas, followers, contact addresses, changes being told, the mail
outbox and the questions asked.

Every write is one idempotent single-document write keyed by what caused it, so a fact handled
twice (redelivery, a second replica, a restart) leaves the same state. No write relies on a
transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from centricity_contracts.customers import Customer
from centricity_notifications.domain import Change, Follower, IdeaFacts, Reason, customer_key, subscription_id
from centricity_plumbing.mongo import Document

DUPLICATE_KEY = 11000
# Followers are told a page at a time: a follower's page is fixed when they start following.
FOLLOWER_PAGE = 500
FOLLOWER_SEQ = "follower_seq"
# The latest attempts a delivery's log shows.
ATTEMPTS_SHOWN = 20


class Leased:
    """The states a leased outbox entry (a mail, a webhook delivery) goes through to be sent."""

    PENDING = "pending"
    SENDING = "sending"


UNSENT = (Leased.PENDING, Leased.SENDING)


class MailState(Leased):
    SENT = "sent"
    FAILED = "failed"


class DeliveryState(Leased):
    DELIVERED = "delivered"
    DEAD = "dead"


class NotificationStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.ideas: AsyncCollection[Document] = db["ideas"]
        self.subscriptions: AsyncCollection[Document] = db["subscriptions"]
        self.contacts: AsyncCollection[Document] = db["contacts"]
        # A change being told: `next_page` of the idea's followers is told next, so a restart goes
        # on from there.
        self.changes: AsyncCollection[Document] = db["changes"]
        # What this customer was told, one document per notification id (the mail outbox too).
        self.notifications: AsyncCollection[Document] = db["notifications"]
        # Attestation questions, one per idea and customer: answered, or when to remind.
        self.questions: AsyncCollection[Document] = db["questions"]
        self.endpoints: AsyncCollection[Document] = db["webhook_endpoints"]
        # One per endpoint and notification: its state, attempts and log.
        self.deliveries: AsyncCollection[Document] = db["webhook_deliveries"]
        # Each attempt of a delivery, its log: a document each (arrays of documents are not
        # dependable on the local store, which keeps pushed documents as strings).
        self.attempts: AsyncCollection[Document] = db["webhook_attempts"]

    async def create_indexes(self) -> None:
        await self.subscriptions.create_index("idea_id")
        await self.subscriptions.create_index("page")
        await self.subscriptions.create_index([("customer_key", ASCENDING), ("idea_id", ASCENDING)])
        await self.changes.create_index("done")
        await self.notifications.create_index([("customer_key", ASCENDING), ("requested_at", ASCENDING)])
        await self.notifications.create_index([("mail.state", ASCENDING), ("mail.next_at", ASCENDING)])
        await self.questions.create_index([("answered", ASCENDING), ("remind_at", ASCENDING)])
        await self.endpoints.create_index("businessunit")
        await self.deliveries.create_index([("state", ASCENDING), ("next_at", ASCENDING)])
        await self.deliveries.create_index([("endpoint_id", ASCENDING), ("created_at", ASCENDING)])
        await self.attempts.create_index([("delivery_id", ASCENDING), ("at", ASCENDING)])

    # Ideas

    async def remember_idea(self, idea: IdeaFacts, *, internal_only: bool) -> None:
        await self.ideas.update_one(
            {"_id": idea.idea_id},
            {
                "$set": {
                    "businessunit": idea.businessunit,
                    "title": idea.title,
                    "internal_only": internal_only,
                }
            },
            upsert=True,
        )

    async def idea_document(self, idea_id: str) -> Document | None:
        return await self.ideas.find_one({"_id": idea_id})

    async def retitle(self, idea_id: str, title: str) -> None:
        await self.ideas.update_one({"_id": idea_id}, {"$set": {"title": title}})

    async def idea(self, idea_id: str) -> IdeaFacts | None:
        doc = await self.ideas.find_one({"_id": idea_id})
        if doc is None or "title" not in doc:  # votes can come before the idea's creation
            return None
        return IdeaFacts(idea_id=doc["_id"], businessunit=doc["businessunit"], title=doc["title"])

    # Followers

    async def _reserve_seats(self, idea_id: str, count: int) -> int:
        """The first of `count` follower numbers of an idea no one else holds (one atomic $inc)."""
        doc = await self.ideas.find_one_and_update(
            {"_id": idea_id},
            {"$inc": {FOLLOWER_SEQ: count}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None
        return int(doc[FOLLOWER_SEQ]) - count

    async def follow(self, idea_id: str, followers: Iterable[Follower]) -> None:
        """Add reasons to follow; an explicit unsubscribe stays one (participating again does not
        undo it). A new follower lands on one of the idea's pages, which telling reads one by one."""
        followers = list(followers)
        if not followers:
            return
        first = await self._reserve_seats(idea_id, len(followers))
        writes = [
            UpdateOne(
                {"_id": subscription_id(idea_id, f.key)},
                {
                    "$setOnInsert": {
                        "idea_id": idea_id,
                        "customer_key": f.key,
                        "businessunit": f.businessunit,
                        "subscribed": True,
                        "page": page_key(idea_id, (first + n) // FOLLOWER_PAGE),
                    },
                    "$set": {"customer": f.customer.model_dump(mode="json")},
                    "$addToSet": {"reasons": {"$each": sorted(f.reasons)}},
                },
                upsert=True,
            )
            for n, f in enumerate(followers)
        ]
        await self.subscriptions.bulk_write(writes, ordered=False)

    async def set_subscribed(
        self, idea_id: str, businessunit: str, customer: Customer, *, subscribed: bool
    ) -> None:
        key = customer_key(businessunit, customer.customer_id)
        reasons = {"$addToSet": {"reasons": str(Reason.SUBSCRIBED)}} if subscribed else {}
        page = page_key(idea_id, await self._reserve_seats(idea_id, 1) // FOLLOWER_PAGE)
        await self.subscriptions.update_one(
            {"_id": subscription_id(idea_id, key)},
            {
                "$setOnInsert": {
                    "idea_id": idea_id,
                    "customer_key": key,
                    "businessunit": businessunit,
                    "page": page,
                },
                "$set": {"subscribed": subscribed, "customer": customer.model_dump(mode="json")},
                **reasons,
            },
            upsert=True,
        )

    async def followers_on(self, idea_id: str, page: int) -> list[Follower]:
        """The subscribed followers on one of an idea's pages (an indexed equality: the local store
        scans a whole collection for a range, so pages are not read by ranges of _id)."""
        cursor = self.subscriptions.find({"page": page_key(idea_id, page), "subscribed": True}).sort(
            "_id", ASCENDING
        )
        return [follower_of(doc) async for doc in cursor]

    async def pages_of(self, idea_id: str) -> int:
        """How many follower pages an idea has now."""
        doc = await self.ideas.find_one({"_id": idea_id}, projection={FOLLOWER_SEQ: 1})
        seats = int((doc or {}).get(FOLLOWER_SEQ, 0))
        return -(-seats // FOLLOWER_PAGE)

    async def subscription(self, subscription: str) -> Document | None:
        return await self.subscriptions.find_one({"_id": subscription})

    async def subscriptions_of(self, key: str, *, limit: int, after: str | None = None) -> list[Document]:
        """A page of one customer's subscriptions in idea id order, after the idea `after`."""
        query: Document = {"customer_key": key}
        if after is not None:
            query["idea_id"] = {"$gt": after}
        cursor = self.subscriptions.find(query).sort("idea_id", ASCENDING).limit(limit)
        return [doc async for doc in cursor]

    async def carry_over(self, from_idea: str, into_idea: str) -> None:
        """A merge: the duplicate's subscribed followers follow the surviving idea too."""
        for page in range(await self.pages_of(from_idea)):
            await self.follow(into_idea, await self.followers_on(from_idea, page))

    # Contacts

    async def set_contact(self, key: str, email: str | None) -> None:
        await self.contacts.update_one({"_id": key}, {"$set": {"email": email}}, upsert=True)

    async def emails_of(self, keys: Iterable[str]) -> dict[str, str]:
        found = self.contacts.find({"_id": {"$in": list(set(keys))}, "email": {"$type": "string"}})
        return {doc["_id"]: doc["email"] async for doc in found}

    async def contact(self, key: str) -> str | None:
        doc = await self.contacts.find_one({"_id": key})
        return None if doc is None else doc.get("email")

    # Changes being told

    async def add_change(self, change: Change) -> None:
        await self.changes.update_one(
            {"_id": change.cause},
            {"$setOnInsert": {**change.to_document(), "next_page": 0, "done": False}},
            upsert=True,
        )

    async def open_changes(self, limit: int = 100) -> list[tuple[Change, int]]:
        cursor = self.changes.find({"done": False}).sort("at", ASCENDING).limit(limit)
        return [(Change.from_document(doc), int(doc["next_page"])) async for doc in cursor]

    async def advance(self, cause: str, next_page: int, *, done: bool) -> None:
        await self.changes.update_one({"_id": cause}, {"$set": {"next_page": next_page, "done": done}})

    # Notifications and their mail

    async def record_notifications(self, docs: list[Document]) -> None:
        """Keep each notification once: one told again keeps its first document (and mail state)."""
        await insert_once(self.notifications, docs)

    async def claim_mail(self, *, now: datetime, lease_until: datetime) -> Document | None:
        """One notification whose mail is due (pending, or its sender vanished mid-send), leased."""
        return await claim_due(self.notifications, "mail.", now=now, lease_until=lease_until)

    async def mail_sent(self, notification_id: str, *, at: datetime) -> None:
        await self.notifications.update_one(
            {"_id": notification_id},
            {
                "$set": {"mail.state": MailState.SENT, "mail.sent_at": at.isoformat()},
                "$unset": {"mail.error": ""},
            },
        )

    async def mail_retry(self, notification_id: str, *, error: str, next_at: datetime) -> None:
        await self.notifications.update_one(
            {"_id": notification_id},
            {
                "$set": {
                    "mail.state": MailState.PENDING,
                    "mail.error": error,
                    "mail.next_at": next_at.isoformat(),
                }
            },
        )

    async def mail_failed(self, notification_id: str, *, error: str) -> None:
        await self.notifications.update_one(
            {"_id": notification_id}, {"$set": {"mail.state": MailState.FAILED, "mail.error": error}}
        )

    async def notifications_of(self, key: str, limit: int) -> list[Document]:
        cursor = self.notifications.find({"customer_key": key}).sort("requested_at", -1).limit(limit)
        return [doc async for doc in cursor]

    async def changes_waiting(self) -> int:
        """Changes whose subscribers are not all told yet."""
        return await self.changes.count_documents({"done": False})

    async def mail_waiting(self) -> int:
        return await self.notifications.count_documents({"mail.state": {"$in": list(UNSENT)}})

    async def deliveries_waiting(self) -> int:
        return await self.deliveries.count_documents({"state": {"$in": list(UNSENT)}})

    async def mail_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        async for row in await self.notifications.aggregate(
            [{"$group": {"_id": "$mail.state", "n": {"$sum": 1}}}]
        ):
            counts[str(row["_id"])] = int(row["n"])
        return counts

    # Questions (did it help?)

    async def ask(self, docs: list[Document]) -> None:
        if docs:
            writes = [UpdateOne({"_id": d["_id"]}, {"$setOnInsert": d}, upsert=True) for d in docs]
            await self.questions.bulk_write(writes, ordered=False)

    async def answered(self, idea_id: str, key: str, *, at: datetime) -> None:
        """The customer answered; if before this service asked (a unit's system attested first),
        the question is kept answered, so asking it later sends no reminders."""
        await self.questions.update_one(
            {"_id": subscription_id(idea_id, key)},
            {
                "$set": {"answered": True, "answered_at": at.isoformat()},
                "$setOnInsert": {"idea_id": idea_id, "customer_key": key, "reminders": 0},
                "$unset": {"remind_at": ""},
            },
            upsert=True,
        )

    async def due_reminders(self, now: datetime, limit: int) -> list[Document]:
        cursor = self.questions.find({"answered": False, "remind_at": {"$lte": now.isoformat()}}).limit(limit)
        return [doc async for doc in cursor]

    async def reminded(self, question_id: str, sent: int, next_at: datetime | None) -> None:
        """Count a reminder once: only the writer that saw `sent - 1` sent so far moves it on."""
        update: dict[str, Any] = {"$set": {"reminders": sent}}
        if next_at is None:
            update["$unset"] = {"remind_at": ""}
        else:
            update["$set"]["remind_at"] = next_at.isoformat()
        await self.questions.update_one({"_id": question_id, "reminders": sent - 1}, update)

    # Webhook endpoints and deliveries

    async def add_endpoint(self, doc: Document) -> None:
        await self.endpoints.insert_one(doc)

    async def endpoint(self, endpoint_id: str) -> Document | None:
        return await self.endpoints.find_one({"_id": endpoint_id})

    async def count_endpoints_of(self, businessunit: str) -> int:
        return await self.endpoints.count_documents({"businessunit": businessunit, "deleted": {"$ne": True}})

    async def endpoints_of(self, businessunit: str) -> list[Document]:
        cursor = self.endpoints.find({"businessunit": businessunit, "deleted": {"$ne": True}}).sort(
            "created_at", 1
        )
        return [doc async for doc in cursor]

    async def endpoints_for(self, units: Iterable[str], event_type: str) -> dict[str, list[Document]]:
        """The live endpoints of these units that take this event type, by unit."""
        found: dict[str, list[Document]] = {}
        query = {
            "businessunit": {"$in": sorted(set(units))},
            "deleted": {"$ne": True},
            "event_types": event_type,
        }
        async for doc in self.endpoints.find(query):
            found.setdefault(doc["businessunit"], []).append(doc)
        return found

    async def delete_endpoint(self, endpoint_id: str, *, at: datetime) -> None:
        await self.endpoints.update_one(
            {"_id": endpoint_id}, {"$set": {"deleted": True, "deleted_at": at.isoformat()}}
        )

    async def enqueue_deliveries(self, docs: list[Document]) -> None:
        await insert_once(self.deliveries, docs)

    async def claim_delivery(self, *, now: datetime, lease_until: datetime) -> Document | None:
        """One webhook delivery that is due (pending, or its sender vanished mid-send), leased."""
        return await claim_due(self.deliveries, "", now=now, lease_until=lease_until)

    async def _finish_attempt(self, delivery_id: str, attempt: Document, fields: Document) -> None:
        await self.attempts.insert_one({"_id": str(uuid.uuid4()), "delivery_id": delivery_id, **attempt})
        await self.deliveries.update_one(
            {"_id": delivery_id},
            {"$set": {**fields, "last_status": attempt["status"], "last_error": attempt["error"]}},
        )

    async def delivery_done(self, delivery_id: str, attempt: Document) -> None:
        await self._finish_attempt(
            delivery_id, attempt, {"state": DeliveryState.DELIVERED, "delivered_at": attempt["at"]}
        )

    async def delivery_retry(self, delivery_id: str, attempt: Document, *, next_at: datetime) -> None:
        await self._finish_attempt(
            delivery_id, attempt, {"state": DeliveryState.PENDING, "next_at": next_at.isoformat()}
        )

    async def delivery_dead(self, delivery_id: str, attempt: Document) -> None:
        await self._finish_attempt(delivery_id, attempt, {"state": DeliveryState.DEAD})

    async def deliveries_of(self, endpoint_id: str, state: str | None, limit: int) -> list[Document]:
        query: Document = {"endpoint_id": endpoint_id, **({"state": state} if state else {})}
        cursor = self.deliveries.find(query).sort("created_at", -1).limit(limit)
        deliveries = [doc async for doc in cursor]
        logs: dict[str, list[Document]] = {}
        found = self.attempts.find({"delivery_id": {"$in": [d["_id"] for d in deliveries]}}).sort(
            "at", ASCENDING
        )
        async for attempt in found:
            logs.setdefault(attempt["delivery_id"], []).append(attempt)
        return [{**d, "log": logs.get(d["_id"], [])[-ATTEMPTS_SHOWN:]} for d in deliveries]

    async def replay(self, endpoint_id: str, delivery_id: str, *, now: datetime) -> Document | None:
        """Send a delivery again, with a fresh retry window; not one being sent right now."""
        return await self.deliveries.find_one_and_update(
            {"_id": delivery_id, "endpoint_id": endpoint_id, "state": {"$ne": DeliveryState.SENDING}},
            {
                "$set": {
                    "state": DeliveryState.PENDING,
                    "next_at": now.isoformat(),
                    "first_at": now.isoformat(),
                    "attempts": 0,
                }
            },
            return_document=ReturnDocument.AFTER,
        )


async def insert_once(collection: AsyncCollection[Document], docs: list[Document]) -> None:
    """Insert documents whose ids may already exist (a round told again); the first one stays."""
    if not docs:
        return
    writes = [UpdateOne({"_id": d["_id"]}, {"$setOnInsert": d}, upsert=True) for d in docs]
    try:
        await collection.bulk_write(writes, ordered=False)
    except BulkWriteError as error:  # two replicas inserting the same one at once
        if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
            raise


async def claim_due(
    collection: AsyncCollection[Document], prefix: str, *, now: datetime, lease_until: datetime
) -> Document | None:
    """Lease one document whose `<prefix>state` is pending and due, or sending with its lease run
    out (its sender died mid-send), counting the attempt; the oldest due first."""
    at = now.isoformat()
    return await collection.find_one_and_update(
        {
            "$or": [
                {f"{prefix}state": Leased.PENDING, f"{prefix}next_at": {"$lte": at}},
                {f"{prefix}state": Leased.SENDING, f"{prefix}lease_until": {"$lte": at}},
            ]
        },
        {
            "$set": {f"{prefix}state": Leased.SENDING, f"{prefix}lease_until": lease_until.isoformat()},
            "$inc": {f"{prefix}attempts": 1},
        },
        sort=[(f"{prefix}next_at", ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )


def page_key(idea_id: str, page: int) -> str:
    return f"{idea_id}#{page}"


def follower_of(doc: Document) -> Follower:
    return Follower(
        businessunit=doc["businessunit"],
        customer=Customer.model_validate(doc["customer"]),
        reasons=frozenset(Reason(r) for r in doc.get("reasons", [])),
    )
