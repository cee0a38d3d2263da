"""HTTP routes of the ideas service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Request, Response, status

from centricity_contracts.ideas import IdeaRecord, IdeaSubmission
from centricity_ideas.messaging import IdeaIntake
from centricity_ideas.store import IdeaStore
from centricity_plumbing.auth import BusinessUnit
from centricity_plumbing.problems import NotFoundProblem

SUBMISSION_EXAMPLE = {
    "reference": "CRM-2291",
    "title": "Let me save my basket for later",
    "description": "I build a basket on my phone and want to finish on my laptop.",
    "tags": ["checkout", "mobile"],
    "author": {"customer_id": "c-1042", "customer_type": "external"},
}


class IdeaNotFound(NotFoundProblem):
    title = "Idea not found"


def ideas_router(intake: IdeaIntake, store: IdeaStore) -> APIRouter:
    router = APIRouter(prefix="/ideas", tags=["ideas"])

    @router.post(
        "",
        status_code=status.HTTP_201_CREATED,
        summary="Submit an idea on behalf of the calling business unit",
        responses={
            200: {"description": "This business unit already submitted this reference"},
            401: {"description": "Missing or invalid API key"},
        },
    )
    async def submit_idea(
        submission: Annotated[IdeaSubmission, Body(openapi_examples={"idea": {"value": SUBMISSION_EXAMPLE}})],
        businessunit: BusinessUnit,
        request: Request,
        response: Response,
    ) -> IdeaRecord:
        record, created = await intake.submit(submission, businessunit=businessunit)
        response.headers["Location"] = str(request.url_for("get_idea", idea_id=record.idea_id))
        if not created:
            response.status_code = status.HTTP_200_OK
        return record

    @router.get("/{idea_id}", summary="Get an idea by id", responses={404: {"description": "No such idea"}})
    async def get_idea(idea_id: Annotated[str, Path(max_length=64)]) -> IdeaRecord:
        record = await store.get(idea_id)
        if record is None:
            raise IdeaNotFound(f"No idea has id {idea_id!r}.")
        return record

    return router
