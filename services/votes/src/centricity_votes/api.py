"""HTTP routes of the votes service."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Path, Query
from pydantic import BaseModel, Field

from centricity_contracts.customers import Actor
from centricity_contracts.votes import Ballot, Withdrawal
from centricity_plumbing.auth import Principal, PrincipalKind
from centricity_plumbing.input import StrictBodyRoute
from centricity_plumbing.permissions import Action, NotPermitted, actor_for, as_themselves, permitted
from centricity_plumbing.visibility import Viewer, viewer_for
from centricity_votes.domain import StoredVote, vote_id_for
from centricity_votes.service import Cast, VoteLedger, Withdraw

IDEA_EXAMPLE = "5f0c7a3e-2b1d-5c4e-9a8f-1d2e3f4a5b6c"
BALLOT_EXAMPLES = {
    "up": {
        "value": {
            "idea_id": IDEA_EXAMPLE,
            "voter": {"customer_id": "c-7", "customer_type": "external"},
            "value": 1,
        }
    },
    "points": {
        "summary": "3 points in a campaign with a vote budget",
        "value": {
            "idea_id": IDEA_EXAMPLE,
            "voter": {"customer_id": "c-7", "customer_type": "external"},
            "value": 1,
            "points": 3,
        },
    },
    "proxy": {
        "summary": "Recorded by support staff after a call",
        "value": {
            "idea_id": IDEA_EXAMPLE,
            "voter": {"customer_id": "c-7", "customer_type": "external"},
            "value": 1,
            "proxy": {"actor_id": "agent-12", "display_name": "Support agent"},
        },
    },
}
WRITE_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "Missing or invalid credentials"},
    403: {"description": "The principal may not vote, or not for this customer"},
    404: {"description": "No such idea"},
    409: {
        "description": "Voting has closed, a proxy tried to replace the customer's own vote, or over budget"
    },
    429: {"description": "The business unit is over its write rate limit; see Retry-After"},
}


class VoteOutcome(BaseModel):
    outcome: Literal["recorded", "unchanged", "retracted"]
    vote: StoredVote | None = Field(
        description="The vote now; value 0 once retracted. None if there never was one."
    )


class Allocation(BaseModel):
    campaign_id: str
    budget: int | None
    allocated: dict[str, int] = Field(description="Points per idea id.")
    remaining: int | None


def request_key(businessunit: str, idempotency_key: str | None) -> str | None:
    return f"http {businessunit} {idempotency_key}" if idempotency_key else None


IdempotencyKey = Annotated[
    str | None,
    Header(max_length=200, description="Makes a retried request count once, even after a later vote."),
]


def unit_of(principal: Principal) -> str:
    assert principal.businessunit is not None  # writes of principals without a unit are refused
    return principal.businessunit


def proxy_for(principal: Principal, named: Actor | None) -> Actor | None:
    """A customer votes only as themselves; staff signed in always vote as a proxy, as themselves."""
    if principal.kind is PrincipalKind.CUSTOMER:
        if named is not None:
            raise NotPermitted("Customers vote as themselves, never as a proxy.")
        return None
    if principal.kind is PrincipalKind.STAFF:
        return actor_for(principal, named)
    return named


def shown_to(viewer: Viewer, vote: StoredVote) -> StoredVote:
    unit = vote.voter_businessunit
    if viewer.identifies(unit, vote.voter.customer_id):
        return vote
    voter = viewer.customer(unit, vote.voter)
    return vote.model_copy(
        update={"voter": voter, "vote_id": vote_id_for(vote.idea_id, unit, voter.customer_id), "proxy": None}
    )


def votes_router(ledger: VoteLedger) -> APIRouter:
    router = APIRouter(route_class=StrictBodyRoute, tags=["votes"])

    @router.post("/votes", summary="Cast or change a customer's vote on an idea", responses=WRITE_RESPONSES)
    async def cast_vote(
        ballot: Annotated[Ballot, Body(openapi_examples=BALLOT_EXAMPLES)],
        viewer: Annotated[Viewer, viewer_for(Action.VOTE)],
        idempotency_key: IdempotencyKey = None,
    ) -> VoteOutcome:
        principal = viewer.principal
        await ledger.check_visible(ballot.idea_id, viewer, known=False)
        businessunit = unit_of(principal)
        as_themselves(principal, ballot.voter.customer_id, ballot.voter.customer_type)
        ballot = ballot.model_copy(update={"proxy": proxy_for(principal, ballot.proxy)})
        applied = await ledger.apply_when_known(
            Cast(ballot, businessunit, request_key(businessunit, idempotency_key))
        )
        return VoteOutcome(outcome="recorded" if applied.changed else "unchanged", vote=applied.vote)

    @router.post(
        "/votes/withdrawals", summary="Take a customer's vote on an idea back", responses=WRITE_RESPONSES
    )
    async def withdraw_vote(
        withdrawal: Withdrawal,
        viewer: Annotated[Viewer, viewer_for(Action.VOTE)],
        idempotency_key: IdempotencyKey = None,
    ) -> VoteOutcome:
        principal = viewer.principal
        await ledger.check_visible(withdrawal.idea_id, viewer, known=False)
        businessunit = unit_of(principal)
        as_themselves(principal, withdrawal.voter.customer_id, withdrawal.voter.customer_type)
        withdrawal = withdrawal.model_copy(update={"proxy": proxy_for(principal, withdrawal.proxy)})
        command = Withdraw(withdrawal, businessunit, request_key(businessunit, idempotency_key))
        applied = await ledger.apply_when_known(command)
        return VoteOutcome(outcome="retracted" if applied.changed else "unchanged", vote=applied.vote)

    @router.get(
        "/ideas/{idea_id}/votes",
        summary="The current votes on an idea",
        responses={404: {"description": "No such idea, or one the reader may not see"}},
        description="Voters of other units than the caller's appear under stable pseudonyms; a customer "
        "sees only themselves by name.",
    )
    async def votes_on_idea(
        idea_id: Annotated[str, Path(max_length=64)],
        viewer: Annotated[Viewer, viewer_for(Action.READ_VOTERS)],
        limit: Annotated[int, Query(ge=1, le=1000, description="Votes per page, by vote id.")] = 500,
        offset: Annotated[int, Query(ge=0, le=1_000_000, description="Votes to skip.")] = 0,
    ) -> list[StoredVote]:
        await ledger.check_visible(idea_id, viewer, known=True)
        return [shown_to(viewer, v) for v in await ledger.votes_on(idea_id, offset=offset, limit=limit)]

    @router.get(
        "/customers/{customer_id}/allocation",
        summary="How many of a campaign's vote points a customer of the calling unit has used",
    )
    async def allocation(
        customer_id: Annotated[str, Path(max_length=200)],
        principal: Annotated[Principal, permitted(Action.READ_VOTERS)],
        campaign_id: Annotated[str, Query(max_length=64)],
    ) -> Allocation:
        as_themselves(principal, customer_id)
        if principal.businessunit is None:
            raise NotPermitted("A budget belongs to a customer of a unit: sign in for that unit.")
        businessunit = principal.businessunit
        budget, allocated = await ledger.allocation(campaign_id, f"{businessunit}:{customer_id}")
        remaining = None if budget is None else budget - sum(allocated.values())
        return Allocation(campaign_id=campaign_id, budget=budget, allocated=allocated, remaining=remaining)

    return router
