"""What each kind of principal may do: one table, enforced on every route and printed in the README.

A grant says who may take an action at all. Where it applies is enforced beside it:
- systems and staff act only in their own business unit (the use cases check that the idea,
  campaign or vote belongs to it);
- customers act only as themselves (`as_themselves`);
- enterprise-wide roles have no unit, so they read, but they do not write ideas or votes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Any

from fastapi import Depends, Request, Response

from centricity_contracts.customers import Actor, Customer
from centricity_plumbing.audit import Cause, acting, request_id
from centricity_plumbing.auth import AuthenticatedPrincipal, Principal, PrincipalKind, Role
from centricity_plumbing.idempotency import Origin
from centricity_plumbing.problems import ForbiddenProblem


class Action(StrEnum):
    READ = "read ideas, campaigns, comments and an idea's insight"
    READ_VOTERS = "read who voted, and a customer's budget"
    READ_INSIGHTS = "read unit metrics, series, the live stream and dashboard"
    READ_NOTIFICATIONS = "read what a customer follows and was told"
    READ_AUDIT = "read the audit trail: who changed what, when, from where"
    SUBMIT_IDEA = "submit an idea"
    REVISE_IDEA = "revise an idea"
    CHANGE_STATUS = "change an idea's status (triage, decline, deliver)"
    MERGE_IDEAS = "merge a duplicate"
    WITHDRAW_IDEA = "withdraw an idea"
    COMMENT = "comment"
    ATTEST = "attest whether a delivered idea helped"
    LAUNCH_CAMPAIGN = "launch a campaign"
    VOTE = "vote, change or withdraw a vote"
    SUBSCRIBE = "follow an idea or stop, and set where mail goes"
    MANAGE_WEBHOOKS = "register webhooks, read their deliveries, replay them"

    @property
    def writes(self) -> bool:
        return not self.name.startswith("READ")


SYSTEM = "system"
Grant = Role | str
GRANTEES: list[Grant] = [
    SYSTEM,
    Role.ADMIN,
    Role.MODERATOR,
    Role.VIEWER,
    Role.ENTERPRISE_ADMIN,
    Role.ANALYST,
    Role.CUSTOMER,
]
_ALL: frozenset[Grant] = frozenset(GRANTEES)
_UNIT_STAFF: frozenset[Grant] = frozenset({Role.ADMIN, Role.MODERATOR, Role.VIEWER})

PERMISSIONS: dict[Action, frozenset[Grant]] = {
    Action.READ: _ALL,
    Action.READ_VOTERS: frozenset({SYSTEM, *_UNIT_STAFF, Role.ENTERPRISE_ADMIN, Role.CUSTOMER}),
    Action.READ_INSIGHTS: _ALL - {Role.CUSTOMER},
    Action.READ_NOTIFICATIONS: frozenset({SYSTEM, *_UNIT_STAFF, Role.ENTERPRISE_ADMIN, Role.CUSTOMER}),
    Action.READ_AUDIT: frozenset({SYSTEM, Role.ADMIN, Role.ENTERPRISE_ADMIN}),
    Action.SUBMIT_IDEA: frozenset({SYSTEM, Role.ADMIN, Role.MODERATOR, Role.CUSTOMER}),
    Action.REVISE_IDEA: frozenset({SYSTEM, Role.ADMIN, Role.MODERATOR}),
    Action.CHANGE_STATUS: frozenset({SYSTEM, Role.ADMIN, Role.MODERATOR}),
    Action.MERGE_IDEAS: frozenset({SYSTEM, Role.ADMIN, Role.MODERATOR}),
    Action.WITHDRAW_IDEA: frozenset({SYSTEM, Role.ADMIN}),
    Action.COMMENT: frozenset({SYSTEM, Role.ADMIN, Role.MODERATOR, Role.CUSTOMER}),
    Action.ATTEST: frozenset({SYSTEM, Role.CUSTOMER}),
    Action.LAUNCH_CAMPAIGN: frozenset({SYSTEM, Role.ADMIN}),
    Action.VOTE: frozenset({SYSTEM, Role.ADMIN, Role.MODERATOR, Role.CUSTOMER}),
    Action.SUBSCRIBE: frozenset({SYSTEM, Role.CUSTOMER}),
    Action.MANAGE_WEBHOOKS: frozenset({SYSTEM, Role.ADMIN}),
}
NOTES = {
    Action.READ_AUDIT: "systems and admins: their own unit's; enterprise admins: every unit's",
    Action.READ_VOTERS: "customers: their own budget only; staff: their unit's voters",
    Action.SUBMIT_IDEA: "customers: as themselves, in their unit",
    Action.COMMENT: "customers: as themselves",
    Action.ATTEST: "customers: as themselves",
    Action.VOTE: "customers: as themselves; admins and moderators: proxy votes",
    Action.READ_NOTIFICATIONS: "customers: their own; systems and staff: their unit's customers",
    Action.SUBSCRIBE: "customers: as themselves; systems: their unit's customers",
    Action.MANAGE_WEBHOOKS: "their own unit's endpoints",
}


class NotPermitted(ForbiddenProblem):
    title = "Not permitted"


def grants_of(principal: Principal) -> set[Grant]:
    if principal.kind is PrincipalKind.SYSTEM:
        return {SYSTEM}
    return set(principal.roles)


def may(principal: Principal, action: Action) -> bool:
    return bool(grants_of(principal) & PERMISSIONS[action])


def authorise(principal: Principal, action: Action) -> None:
    if not may(principal, action):
        held = ", ".join(sorted(grants_of(principal))) or "no Centricity role"
        raise NotPermitted(f"You may not {action.value} ({held}).")
    if action.writes and principal.businessunit is None:
        raise NotPermitted(f"You may not {action.value}: you act for no business unit.")


def as_themselves(principal: Principal, customer_id: str, customer_type: str | None = None) -> None:
    """A customer names only themselves (as author, voter, commenter or attester)."""
    if principal.kind is not PrincipalKind.CUSTOMER:
        return
    if customer_id != principal.customer_id or (customer_type and customer_type != principal.customer_type):
        raise NotPermitted("Customers act only as themselves.")


def permitted(action: Action) -> Any:
    """A route dependency: the authenticated principal, allowed to take `action` (and, for a
    write, within its unit's rate limit)."""

    async def dependency(
        request: Request, response: Response, principal: AuthenticatedPrincipal
    ) -> AsyncIterator[Principal]:
        authorise(principal, action)
        if not action.writes:
            yield principal
            return
        await request.app.state.write_limiter.admit(principal.businessunit)
        # The route runs within: the facts of this write name who asked, and in which request.
        with acting(Cause(principal.actor_id, Origin.HTTP, request_id(request, response))):
            yield principal

    return Depends(dependency)


def permission_table() -> str:
    """The README's permission matrix, from PERMISSIONS."""
    header = ["Action", *(str(g) for g in GRANTEES), "Where"]
    rows = [
        [action.value, *("yes" if g in PERMISSIONS[action] else "-" for g in GRANTEES), NOTES.get(action, "")]
        for action in Action
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def actor_for(principal: Principal, named: Actor | None) -> Actor:
    """Who a fact names as having acted: a signed-in person is always themselves; a system may
    name the person in its own system who acted, or is named itself."""
    if principal.kind is PrincipalKind.SYSTEM:
        return named or Actor(actor_id=principal.actor_id)
    return Actor(actor_id=principal.actor_id, display_name=principal.name)


def customer_of(principal: Principal) -> Customer | None:
    if principal.kind is not PrincipalKind.CUSTOMER or principal.customer_id is None:
        return None
    return Customer(customer_id=principal.customer_id, customer_type=principal.customer_type or "external")


def sees_customers_of(principal: Principal, businessunit: str) -> bool:
    """Whether a principal sees who a unit's customers are, rather than their pseudonyms."""
    if Role.ENTERPRISE_ADMIN in principal.roles:
        return True
    return principal.kind is not PrincipalKind.CUSTOMER and principal.businessunit == businessunit


def is_themselves(principal: Principal, businessunit: str, customer_id: str) -> bool:
    return (
        principal.kind is PrincipalKind.CUSTOMER
        and principal.businessunit == businessunit
        and principal.customer_id == customer_id
    )
