"""HTTP routes of the votes service."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header
from pydantic import BaseModel

from centricity_contracts.votes import Ballot, VoteRecord
from centricity_plumbing.auth import BusinessUnit
from centricity_plumbing.problems import Problem
from centricity_votes.domain import IdeaClosed, UnknownIdea
from centricity_votes.messaging import VoteIntake

NEW_IDEA_WAIT_S = 3.0
BALLOT_EXAMPLE = {
    "idea_id": "5f0c7a3e-2b1d-5c4e-9a8f-1d2e3f4a5b6c",
    "voter": {"customer_id": "c-7", "customer_type": "internal"},
    "value": 1,
}


class VoteOutcome(BaseModel):
    outcome: Literal["recorded", "unchanged"]
    vote: VoteRecord


async def cast_when_known(
    intake: VoteIntake, ballot: Ballot, businessunit: str, key: str | None
) -> tuple[VoteRecord, bool]:
    """Cast a vote, waiting briefly for an idea created a moment ago to reach this service."""
    deadline = time.monotonic() + NEW_IDEA_WAIT_S
    while True:
        try:
            return await intake.cast(ballot, voter_businessunit=businessunit, request_key=key)
        except UnknownIdea:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def votes_router(intake: VoteIntake) -> APIRouter:
    router = APIRouter(prefix="/votes", tags=["votes"])

    @router.post(
        "",
        summary="Cast a vote on behalf of a customer of the calling business unit",
        responses={
            401: {"description": "Missing or invalid API key"},
            404: {"description": "No such idea"},
            409: {"description": "The idea is delivered, declined or merged: voting has closed"},
        },
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
        try:
            vote, changed = await cast_when_known(intake, ballot, businessunit, key)
        except UnknownIdea as error:
            raise Problem("Unknown idea", type_=error.kind, detail=str(error), status=404) from error
        except IdeaClosed as error:
            raise Problem("Voting has closed", type_=error.kind, detail=str(error), status=409) from error
        return VoteOutcome(outcome="recorded" if changed else "unchanged", vote=vote)

    return router
