"""HTTP routes of the votes service."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header
from pydantic import BaseModel

from centricity_contracts.votes import Ballot, VoteRecord
from centricity_plumbing.auth import BusinessUnit
from centricity_votes.messaging import VoteIntake

BALLOT_EXAMPLE = {
    "idea_id": "5f0c7a3e-2b1d-5c4e-9a8f-1d2e3f4a5b6c",
    "voter": {"customer_id": "c-7", "customer_type": "internal"},
    "value": 1,
}


class VoteOutcome(BaseModel):
    outcome: Literal["recorded", "unchanged"]
    vote: VoteRecord


def votes_router(intake: VoteIntake) -> APIRouter:
    router = APIRouter(prefix="/votes", tags=["votes"])

    @router.post(
        "",
        summary="Cast a vote on behalf of a customer of the calling business unit",
        responses={401: {"description": "Missing or invalid API key"}},
    )
    async def cast_vote(
        ballot: Annotated[Ballot, Body(openapi_examples={"up": {"value": BALLOT_EXAMPLE}})],
        businessunit: BusinessUnit,
        idempotency_key: Annotated[
            str | None,
            Header(
                max_length=200,
                description="Makes a retried request count once, even after a later vote.",
            ),
        ] = None,
    ) -> VoteOutcome:
        key = f"http {businessunit} {idempotency_key}" if idempotency_key else None
        vote, changed = await intake.cast(ballot, voter_businessunit=businessunit, request_key=key)
        return VoteOutcome(outcome="recorded" if changed else "unchanged", vote=vote)

    return router
