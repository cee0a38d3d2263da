"""HTTP routes of the notifications service."""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from centricity_contracts.customers import Customer
from centricity_contracts.ideas import IdeaId
from centricity_contracts.notifications import EmailAddress, Notification
from centricity_notifications.service import Notifier
from centricity_plumbing.auth import Principal, PrincipalKind, Role
from centricity_plumbing.input import StrictBodyRoute
from centricity_plumbing.mongo import Document
from centricity_plumbing.pages import simple_page
from centricity_plumbing.permissions import Action, NotPermitted, as_themselves, customer_of, permitted
from centricity_plumbing.visibility import Viewer, viewer_for

CustomerId = Annotated[str, Path(min_length=1, max_length=128)]
Token = Annotated[str, Path(min_length=1, max_length=4096)]
WRITE_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing or invalid credentials"},
    403: {"description": "The principal may not act for this customer"},
    404: {"description": "No such idea, or not one the customer may see"},
    429: {"description": "The business unit is over its write rate limit; see Retry-After"},
}
READ_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing or invalid credentials"},
    403: {"description": "The principal may not read this customer's notifications"},
}


class SubscriptionRequest(BaseModel):
    subscribed: bool = Field(description="true: follow the idea; false: hear nothing more about it.")
    customer: Customer | None = Field(
        default=None, description="The customer of the calling unit; a signed-in customer is themselves."
    )


class Subscription(BaseModel):
    idea_id: str
    customer_businessunit: str
    customer: Customer
    subscribed: bool
    reasons: list[str] = Field(
        description="Why the customer follows it: authored, voted, commented, subscribed."
    )


class Contact(BaseModel):
    email: EmailAddress | None = Field(description="Where notifications are mailed; null: mail nothing.")


class MailStatus(BaseModel):
    state: str = Field(description="none (no address), pending, sending, sent or failed.")
    attempts: int = 0
    sent_at: str | None = None
    error: str | None = None


class ToldNotification(BaseModel):
    notification: Notification
    mail: MailStatus


def subscription_of(doc: Document) -> Subscription:
    return Subscription(
        idea_id=doc["idea_id"],
        customer_businessunit=doc["businessunit"],
        customer=Customer.model_validate(doc["customer"]),
        subscribed=bool(doc.get("subscribed")),
        reasons=list(doc.get("reasons", [])),
    )


def told(doc: Document) -> ToldNotification:
    mail = doc.get("mail") or {}
    return ToldNotification(
        notification=Notification.model_validate(doc["notification"]),
        mail=MailStatus(
            state=mail.get("state", "none"),
            attempts=int(mail.get("attempts", 0)),
            sent_at=mail.get("sent_at"),
            error=mail.get("error"),
        ),
    )


def unit_for(principal: Principal, businessunit: str | None) -> str:
    """The unit whose customer a request is about: the principal's own; enterprise admins name it."""
    if Role.ENTERPRISE_ADMIN in principal.roles and principal.businessunit is None:
        if businessunit is None:
            raise NotPermitted("Name the customer's unit with ?businessunit=.")
        return businessunit
    if principal.businessunit is None or (businessunit not in (None, principal.businessunit)):
        raise NotPermitted("You may read only your own unit's customers.")
    return principal.businessunit


def acting_customer(principal: Principal, named: Customer | None) -> Customer:
    """A customer acts as themselves; a system names its customer."""
    themselves = customer_of(principal)
    if principal.kind is PrincipalKind.CUSTOMER:
        if named is not None:
            as_themselves(principal, named.customer_id, named.customer_type)
        assert themselves is not None
        return themselves
    if named is None:
        raise NotPermitted("Name the customer: {'customer': {'customer_id': ..., 'customer_type': ...}}.")
    return named


def notifications_router(notifier: Notifier) -> APIRouter:
    router = APIRouter(route_class=StrictBodyRoute, tags=["notifications"])

    @router.put(
        "/ideas/{idea_id}/subscription",
        summary="Follow an idea, or stop following it",
        description="Authors, voters and commenters follow an idea already; this is how a customer "
        "follows another, or stops hearing of one. An unsubscribed customer is told nothing more "
        "about the idea, even after voting or commenting on it again.",
        responses=WRITE_RESPONSES,
    )
    async def subscribe(
        idea_id: Annotated[IdeaId, Path()],
        request: SubscriptionRequest,
        viewer: Annotated[Viewer, viewer_for(Action.SUBSCRIBE)],
    ) -> Subscription:
        principal = viewer.principal
        customer = acting_customer(principal, request.customer)
        assert principal.businessunit is not None  # writes without a unit are refused
        sees_internal_only = customer.customer_type == "internal" and viewer.sees_internal_only
        doc = await notifier.subscribe_visible(
            idea_id,
            principal.businessunit,
            customer,
            subscribed=request.subscribed,
            sees_internal_only=sees_internal_only,
        )
        return subscription_of(doc)

    @router.get(
        "/customers/{customer_id}/subscriptions",
        summary="The ideas a customer follows, and those they stopped following",
        responses=READ_RESPONSES,
    )
    async def subscriptions(
        customer_id: CustomerId,
        principal: Annotated[Principal, permitted(Action.READ_NOTIFICATIONS)],
        businessunit: Annotated[str | None, Query(max_length=63)] = None,
    ) -> list[Subscription]:
        as_themselves(principal, customer_id)
        unit = unit_for(principal, businessunit)
        return [subscription_of(doc) for doc in await notifier.subscriptions_of(unit, customer_id)]

    @router.get(
        "/customers/{customer_id}/notifications",
        summary="What a customer was told, newest first, and whether the mail went out",
        responses=READ_RESPONSES,
    )
    async def notifications(
        customer_id: CustomerId,
        principal: Annotated[Principal, permitted(Action.READ_NOTIFICATIONS)],
        businessunit: Annotated[str | None, Query(max_length=63)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> list[ToldNotification]:
        as_themselves(principal, customer_id)
        unit = unit_for(principal, businessunit)
        return [told(doc) for doc in await notifier.notifications_of(unit, customer_id, limit)]

    @router.get(
        "/customers/{customer_id}/contact",
        summary="Where a customer's notifications are mailed",
        responses=READ_RESPONSES,
    )
    async def contact(
        customer_id: CustomerId,
        principal: Annotated[Principal, permitted(Action.READ_NOTIFICATIONS)],
        businessunit: Annotated[str | None, Query(max_length=63)] = None,
    ) -> Contact:
        as_themselves(principal, customer_id)
        return Contact(email=await notifier.contact_of(unit_for(principal, businessunit), customer_id))

    @router.put(
        "/customers/{customer_id}/contact",
        summary="Set where a customer's notifications are mailed, or mail nothing",
        responses=WRITE_RESPONSES,
    )
    async def set_contact(
        customer_id: CustomerId,
        contact: Contact,
        principal: Annotated[Principal, permitted(Action.SUBSCRIBE)],
    ) -> Contact:
        as_themselves(principal, customer_id)
        assert principal.businessunit is not None
        await notifier.set_contact(principal.businessunit, customer_id, contact.email)
        return contact

    @router.get(
        "/unsubscribe-links/{token}",
        summary="The page of a mail's unsubscribe link",
        description="Opening it changes nothing (mail scanners open links); its button POSTs.",
        response_class=HTMLResponse,
    )
    async def unsubscribe_page(token: Token) -> HTMLResponse:
        notifier.check_unsubscribe_link(token)
        return simple_page(
            "Stop mail about this idea?",
            f"<form method='post' action='/unsubscribe-links/{html.escape(token)}'>"
            "<button type='submit' name='List-Unsubscribe' value='One-Click' "
            "style='font-size: 1.1em; padding: .5em 1em'>Unsubscribe</button></form>",
        )

    @router.post(
        "/unsubscribe-links/{token}",
        summary="Unsubscribe with a mail's link (RFC 8058 one-click)",
        description="The link is the credential: it names one customer and one idea, and expires.",
        response_class=HTMLResponse,
        responses={400: {"description": "The link was altered or has expired"}},
    )
    async def unsubscribe(token: Token) -> HTMLResponse:
        await notifier.unsubscribe_by_link(token)
        return simple_page("Unsubscribed", "<p>You will get no more mail about this idea.</p>")

    return router
