"""The rules of telling customers: who follows an idea, which changes they hear of, what they are
asked, and when they are reminded. No I/O."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from centricity_contracts.customers import Customer
from centricity_contracts.envelope import CloudEvent
from centricity_contracts.ideas import IdeaCommented, IdeaMerged, IdeaStatus, IdeaStatusChanged
from centricity_contracts.notifications import AttestationRequest, Notification, NotificationKind

# Notification ids are name-based, so a change told again (after a crash, by another replica)
# has the same ids: receivers, and this service's own mail outbox, keep one of each.
NOTIFICATION_NAMESPACE = uuid.UUID("6f1d2c3b-4a5e-5f60-8a7b-9c0d1e2f3a4b")


class Reason(StrEnum):
    """Why a customer follows an idea. Authors and voters are also asked whether it helped."""

    AUTHORED = "authored"
    VOTED = "voted"
    COMMENTED = "commented"
    SUBSCRIBED = "subscribed"


ASKED = frozenset({Reason.AUTHORED, Reason.VOTED})


def customer_key(businessunit: str, customer_id: str) -> str:
    return f"{businessunit}:{customer_id}"


def subscription_id(idea_id: str, key: str) -> str:
    return f"{idea_id}|{key}"


def notification_id(cause: str, key: str, reminder: int = 0) -> str:
    name = f"{cause}|{key}" + (f"|reminder-{reminder}" if reminder else "")
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, name))


@dataclass(frozen=True)
class Follower:
    businessunit: str
    customer: Customer
    reasons: frozenset[Reason]

    @property
    def key(self) -> str:
        return customer_key(self.businessunit, self.customer.customer_id)

    @property
    def asked(self) -> bool:
        """Only those the ideas service lets attest are asked: the author and voters."""
        return bool(self.reasons & ASKED)


@dataclass(frozen=True)
class IdeaFacts:
    """What this service knows of an idea, to word its notifications."""

    idea_id: str
    businessunit: str
    title: str


@dataclass(frozen=True)
class Change:
    """A change of an idea its followers hear of, identified by the fact that made it."""

    cause: str
    idea_id: str
    kind: NotificationKind
    at: datetime
    from_status: IdeaStatus | None = None
    to_status: IdeaStatus | None = None
    reason: str | None = None
    response: str | None = None
    into_idea_id: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "idea_id": self.idea_id,
            "kind": str(self.kind),
            "at": self.at.isoformat(),
            "from_status": self.from_status and str(self.from_status),
            "to_status": self.to_status and str(self.to_status),
            "reason": self.reason,
            "response": self.response,
            "into_idea_id": self.into_idea_id,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Change:
        return cls(
            cause=doc["cause"],
            idea_id=doc["idea_id"],
            kind=NotificationKind(doc["kind"]),
            at=datetime.fromisoformat(doc["at"]),
            from_status=IdeaStatus(doc["from_status"]) if doc.get("from_status") else None,
            to_status=IdeaStatus(doc["to_status"]) if doc.get("to_status") else None,
            reason=doc.get("reason"),
            response=doc.get("response"),
            into_idea_id=doc.get("into_idea_id"),
        )


def change_of(fact: CloudEvent[Any]) -> Change | None:
    """The change an idea fact tells followers of, if any: status changes (delivery apart), official
    responses and merges. A status set to `duplicate` is told by its merge fact, once."""
    cause = fact.dedup_key()
    if isinstance(fact, IdeaStatusChanged):
        change = fact.data
        if change.to_status is IdeaStatus.DUPLICATE or change.to_status == change.from_status:
            return None
        kind = (
            NotificationKind.DELIVERED
            if change.to_status is IdeaStatus.DELIVERED
            else NotificationKind.STATUS_CHANGED
        )
        return Change(
            cause,
            change.idea_id,
            kind,
            change.changed_at,
            from_status=change.from_status,
            to_status=change.to_status,
            reason=change.reason,
        )
    if isinstance(fact, IdeaMerged):
        merge = fact.data
        return Change(
            cause, merge.idea_id, NotificationKind.MERGED, merge.merged_at, into_idea_id=merge.into_idea_id
        )
    if isinstance(fact, IdeaCommented) and fact.data.official:
        comment = fact.data
        return Change(
            cause,
            comment.idea_id,
            NotificationKind.OFFICIAL_RESPONSE,
            comment.commented_at,
            response=comment.body,
        )
    return None


def notification_for(
    change: Change,
    follower: Follower,
    idea: IdeaFacts,
    *,
    now: datetime,
    attestation: AttestationRequest | None = None,
    reminder: int = 0,
) -> Notification:
    return Notification(
        notification_id=notification_id(change.cause, follower.key, reminder),
        customer=follower.customer,
        customer_businessunit=follower.businessunit,
        idea_id=idea.idea_id,
        idea_businessunit=idea.businessunit,
        idea_title=idea.title,
        kind=NotificationKind.ATTESTATION_REMINDER if reminder else change.kind,
        cause=change.cause,
        from_status=change.from_status,
        to_status=change.to_status,
        reason=change.reason,
        response=change.response,
        into_idea_id=change.into_idea_id,
        attestation=attestation,
        requested_at=now,
    )


def asks(change: Change, follower: Follower) -> bool:
    return change.kind is NotificationKind.DELIVERED and follower.asked


@dataclass(frozen=True)
class ReminderPolicy:
    """Remind a customer who has not answered `after` later, at most `at_most` times."""

    after: timedelta = timedelta(days=7)
    at_most: int = 2
    link_valid_for: timedelta = timedelta(days=60)

    def first_due(self, asked_at: datetime) -> datetime | None:
        return asked_at + self.after if self.at_most > 0 else None

    def next_due(self, reminded_at: datetime, reminders_sent: int) -> datetime | None:
        """When the next reminder is due after one was sent, or None when it was the last."""
        return reminded_at + self.after if reminders_sent < self.at_most else None


BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 300.0


def backoff(attempts: int) -> timedelta:
    """How long to wait before trying a delivery again: exponential (1 s, 2 s, 4 s... at most five
    minutes), with jitter so that receivers coming back are not hit by every sender at once."""
    ceiling = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, attempts - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # jitter, not security
