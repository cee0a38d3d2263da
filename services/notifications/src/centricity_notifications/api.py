"""HTTP routes of the notifications service."""

from __future__ import annotations

import html
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from centricity_contracts.customers import Customer
from centricity_contracts.ideas import IdeaId
from centricity_contracts.model import ContractModel
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
EndpointId = Annotated[str, Path(min_length=1, max_length=64)]
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


class SubscriptionRequest(ContractModel):
    subscribed: bool = Field(description="true: follow the idea; false: hear nothing more about it.")
    customer: Customer | None = Field(
        default=None, description="The customer of the calling unit; a signed-in customer is themselves."
    )


SUBSCRIPTIONS_PAGE_MAX = 500
PAGED_RESPONSE: dict[str, Any] = {
    "description": "One page, in idea id order.",
    "headers": {
        "Link": {
            "description": 'The next page as `<url>; rel="next"` (RFC 8288), when this page is full.',
            "schema": {"type": "string"},
        }
    },
}


class Subscription(BaseModel):
    idea_id: str
    customer_businessunit: str
    customer: Customer
    subscribed: bool
    reasons: list[str] = Field(
        description="Why the customer follows it: authored, voted, commented, subscribed."
    )


class Contact(ContractModel):
    email: EmailAddress | None = Field(description="Where notifications are mailed; null: mail nothing.")


class MailStatus(BaseModel):
    state: str = Field(description="none (no address), pending, sending, sent or failed.")
    attempts: int = 0
    sent_at: str | None = None
    error: str | None = None


class ToldNotification(BaseModel):
    notification: Notification
    mail: MailStatus


class WebhookRequest(ContractModel):
    url: str = Field(min_length=8, max_length=2048, examples=["https://crm.retail.example/centricity-hooks"])
    event_types: list[str] | None = Field(
        default=None, max_length=10, description="What it takes; all this service sends if omitted."
    )
    description: str | None = Field(default=None, max_length=500)
    secret: str | None = Field(
        default=None,
        max_length=200,
        description="A Standard Webhooks secret (whsec_...); one is made if omitted.",
    )


class WebhookEndpoint(BaseModel):
    endpoint_id: str
    url: str
    event_types: list[str]
    description: str | None
    created_at: str


class WebhookRegistered(WebhookEndpoint):
    secret: str = Field(description="Verifies the signatures of deliveries; shown only now.")


class DeliveryAttempt(BaseModel):
    at: str
    status: int | None = Field(description="The endpoint's HTTP status; none if it did not answer.")
    error: str | None
    duration_ms: float


class WebhookDelivery(BaseModel):
    delivery_id: str
    message_id: str = Field(description="The webhook-id header: the notification id, to de-duplicate by.")
    event_type: str
    state: str = Field(description="pending, sending, delivered or dead (retries ran out; replay it).")
    attempts: int
    created_at: str
    next_at: str | None = None
    delivered_at: str | None = None
    last_status: int | None = None
    last_error: str | None = None
    log: list[DeliveryAttempt] = Field(description="The latest attempts, oldest first.")


def endpoint_of(doc: Document) -> WebhookEndpoint:
    return WebhookEndpoint(
        endpoint_id=doc["_id"],
        url=doc["url"],
        event_types=list(doc["event_types"]),
        description=doc.get("description"),
        created_at=doc["created_at"],
    )


def delivery_of(doc: Document) -> WebhookDelivery:
    return WebhookDelivery(
        delivery_id=doc["_id"],
        message_id=doc["message_id"],
        event_type=doc["event_type"],
        state=doc["state"],
        attempts=int(doc.get("attempts", 0)),
        created_at=doc["created_at"],
        next_at=doc.get("next_at") if doc["state"] == "pending" else None,
        delivered_at=doc.get("delivered_at"),
        last_status=doc.get("last_status"),
        last_error=doc.get("last_error"),
        log=[DeliveryAttempt.model_validate(a) for a in doc.get("log", [])],
    )


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
        summary="The ideas a customer follows, and those they stopped following, a page at a time",
        responses={**READ_RESPONSES, 200: PAGED_RESPONSE},
    )
    async def subscriptions(
        request: Request,
        response: Response,
        customer_id: CustomerId,
        principal: Annotated[Principal, permitted(Action.READ_NOTIFICATIONS)],
        businessunit: Annotated[str | None, Query(max_length=63)] = None,
        limit: Annotated[int, Query(ge=1, le=SUBSCRIPTIONS_PAGE_MAX)] = 100,
        after: Annotated[
            str | None, Query(max_length=64, description="The last idea id of the previous page.")
        ] = None,
    ) -> list[Subscription]:
        as_themselves(principal, customer_id)
        unit = unit_for(principal, businessunit)
        page = [
            subscription_of(doc)
            for doc in await notifier.subscriptions_of(unit, customer_id, limit=limit, after=after)
        ]
        if len(page) == limit:
            following = request.url.include_query_params(after=page[-1].idea_id)
            response.headers["Link"] = f'<{following}>; rel="next"'
        return page

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
        link = notifier.check_unsubscribe_link(token)
        title = await notifier.idea_title(link.idea_id)
        return simple_page(
            "Stop mail about this idea?",
            f"<p>You follow <strong>{html.escape(title)}</strong>.</p>"
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
        link = await notifier.unsubscribe_by_link(token)
        title = html.escape(await notifier.idea_title(link.idea_id))
        return simple_page(
            "Unsubscribed", f"<p>You will get no more mail about <strong>{title}</strong>.</p>"
        )

    @router.post(
        "/webhooks",
        status_code=201,
        tags=["webhooks"],
        summary="Register an endpoint that receives the unit's customers' notifications",
        description="Deliveries are signed in the Standard Webhooks scheme (webhook-id, webhook-timestamp, "
        "webhook-signature) with the endpoint's secret; webhook-id is the notification id. Endpoints on "
        "loopback or private addresses are refused. A unit has at most CENTRICITY_WEBHOOK_ENDPOINTS_PER_UNIT "
        "live endpoints (20).",
        responses={
            **WRITE_RESPONSES,
            409: {"description": "The unit has as many endpoints as it may"},
            422: {"description": "Not an http(s) URL, a private target, or a bad secret"},
        },
    )
    async def register_webhook(
        request: WebhookRequest, principal: Annotated[Principal, permitted(Action.MANAGE_WEBHOOKS)]
    ) -> WebhookRegistered:
        assert principal.businessunit is not None
        doc = await notifier.register_endpoint(
            principal.businessunit,
            url=request.url,
            event_types=request.event_types,
            description=request.description,
            secret=request.secret,
        )
        return WebhookRegistered(**endpoint_of(doc).model_dump(), secret=doc["secret"])

    @router.get("/webhooks", tags=["webhooks"], summary="The unit's endpoints", responses=READ_RESPONSES)
    async def webhooks(
        principal: Annotated[Principal, permitted(Action.MANAGE_WEBHOOKS)],
    ) -> list[WebhookEndpoint]:
        assert principal.businessunit is not None
        return [endpoint_of(doc) for doc in await notifier.endpoints(principal.businessunit)]

    @router.delete(
        "/webhooks/{endpoint_id}",
        status_code=204,
        tags=["webhooks"],
        summary="Stop delivering to an endpoint",
    )
    async def delete_webhook(
        endpoint_id: EndpointId, principal: Annotated[Principal, permitted(Action.MANAGE_WEBHOOKS)]
    ) -> None:
        assert principal.businessunit is not None
        await notifier.delete_endpoint(principal.businessunit, endpoint_id)

    @router.get(
        "/webhooks/{endpoint_id}/deliveries",
        tags=["webhooks"],
        summary="An endpoint's delivery log, newest first",
        responses={**READ_RESPONSES, 404: {"description": "No such endpoint of the unit"}},
    )
    async def deliveries(
        endpoint_id: EndpointId,
        principal: Annotated[Principal, permitted(Action.MANAGE_WEBHOOKS)],
        state: Annotated[Literal["pending", "sending", "delivered", "dead"] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> list[WebhookDelivery]:
        assert principal.businessunit is not None
        return [
            delivery_of(d)
            for d in await notifier.deliveries(principal.businessunit, endpoint_id, state, limit)
        ]

    @router.post(
        "/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay",
        tags=["webhooks"],
        summary="Send a delivery again (a dead one, say, once the endpoint is fixed)",
        responses={404: {"description": "No such endpoint or delivery, or it is being sent right now"}},
    )
    async def replay(
        endpoint_id: EndpointId,
        delivery_id: Annotated[str, Path(min_length=1, max_length=200)],
        principal: Annotated[Principal, permitted(Action.MANAGE_WEBHOOKS)],
    ) -> WebhookDelivery:
        assert principal.businessunit is not None
        return delivery_of(await notifier.replay(principal.businessunit, endpoint_id, delivery_id))

    return router
