"""Notification events: who follows an idea, and what they are told when it moves.

Customers follow the ideas they wrote, voted on or commented on, and any they subscribe to.
When an idea moves, each follower gets one `notification.requested` fact, keyed by customer, for
the business unit that owns the relationship with them to deliver; Centricity also mails it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from centricity_contracts.customers import Customer
from centricity_contracts.envelope import BusinessUnitId, CloudEvent
from centricity_contracts.ideas import IdeaId, IdeaStatus
from centricity_contracts.model import ContractModel
from centricity_contracts.topics import NOTIFICATIONS, NOTIFICATIONS_INTAKE

# Deliberately loose: the SMTP server is the judge of an address; this refuses what is surely not one.
EmailAddress = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$"),
    Field(examples=["ada@example.com"]),
]


class SubscriptionChange(ContractModel):
    idea_id: IdeaId
    customer: Customer = Field(description="The customer, of the event's business unit.")
    subscribed: bool = Field(description="true: follow the idea; false: hear nothing more about it.")


class SubscriptionSet(CloudEvent[SubscriptionChange]):
    """Intake: a customer subscribed to an idea, or unsubscribed from it."""

    topic: ClassVar[str] = NOTIFICATIONS_INTAKE
    type: Literal["centricity.subscription.set.v1"]


class ContactDetails(ContractModel):
    customer: Customer = Field(description="The customer, of the event's business unit.")
    email: EmailAddress | None = Field(description="Where notifications are mailed; null: mail nothing.")


class ContactSet(CloudEvent[ContactDetails]):
    """Intake: where a customer wants to be mailed, or that they want no mail."""

    topic: ClassVar[str] = NOTIFICATIONS_INTAKE
    type: Literal["centricity.contact.set.v1"]


class NotificationKind(StrEnum):
    STATUS_CHANGED = "status_changed"
    OFFICIAL_RESPONSE = "official_response"
    MERGED = "merged"
    DELIVERED = "delivered"
    ATTESTATION_REMINDER = "attestation_reminder"


class AttestationRequest(ContractModel):
    url: str = Field(
        max_length=4096,
        description="A page where the customer answers, without signing in; made for this customer "
        "and idea only. Opening it records nothing: the answer is the page's POST.",
    )
    expires_at: AwareDatetime


class Notification(ContractModel):
    notification_id: str = Field(
        max_length=64,
        description="One per customer and change; also the idempotency key of every delivery of it.",
    )
    customer: Customer
    customer_businessunit: BusinessUnitId
    idea_id: IdeaId
    idea_businessunit: BusinessUnitId
    idea_title: str
    kind: NotificationKind
    cause: str = Field(max_length=600, description="The fact that caused it: its `source` and `id`.")
    from_status: IdeaStatus | None = None
    to_status: IdeaStatus | None = None
    reason: str | None = Field(default=None, description="Why the status changed, as staff wrote it.")
    response: str | None = Field(default=None, description="The official response, for official_response.")
    into_idea_id: IdeaId | None = Field(default=None, description="The surviving idea, for merged.")
    attestation: AttestationRequest | None = Field(
        default=None,
        description="For delivered (and its reminders): did it help? Asked of authors and voters.",
    )
    requested_at: AwareDatetime


class NotificationRequested(CloudEvent[Notification]):
    """A customer is to be told that an idea they follow moved."""

    topic: ClassVar[str] = NOTIFICATIONS
    type: Literal["centricity.notification.requested.v1"]
