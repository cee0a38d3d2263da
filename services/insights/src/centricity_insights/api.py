"""HTTP routes of the insights service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from centricity_contracts.envelope import BusinessUnitId
from centricity_contracts.insights import IdeaInsight
from centricity_insights.store import InsightStore, Ranking
from centricity_plumbing.problems import NotFoundProblem


class InsightNotFound(NotFoundProblem):
    title = "No insight for this idea"


def insights_router(store: InsightStore) -> APIRouter:
    router = APIRouter(prefix="/ideas", tags=["insights"])

    @router.get("/top", summary="The best-received ideas")
    async def top_ideas(
        ranking: Annotated[
            Ranking, Query(description="score: up - down; wilson: confidence in the up share")
        ] = Ranking.SCORE,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        businessunit: Annotated[BusinessUnitId | None, Query(description="Only this unit's ideas")] = None,
    ) -> list[IdeaInsight]:
        return await store.top(ranking=ranking, limit=limit, businessunit=businessunit)

    @router.get(
        "/{idea_id}", summary="One idea's insight", responses={404: {"description": "No facts seen for it"}}
    )
    async def idea_insight(idea_id: Annotated[str, Path(max_length=64)]) -> IdeaInsight:
        insight = await store.get(idea_id)
        if insight is None:
            raise InsightNotFound(f"No fact about idea {idea_id!r} has been seen.")
        return insight

    return router
