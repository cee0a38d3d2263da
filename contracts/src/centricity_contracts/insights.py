"""Insight snapshots that the insights service streams to dashboards and any Kafka client."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from centricity_contracts.envelope import BusinessUnitId, CloudEvent
from centricity_contracts.ideas import IdeaId
from centricity_contracts.model import ContractModel
from centricity_contracts.topics import INSIGHTS_IDEAS


class IdeaInsight(ContractModel):
    """Everything known about one idea's reception, as of `revision`."""

    idea_id: IdeaId
    businessunit: BusinessUnitId | None = Field(
        default=None, description="The idea's business unit; unknown until its creation is seen."
    )
    title: str | None = None
    up: int = Field(ge=0, description="Voters whose current vote is +1.")
    down: int = Field(ge=0, description="Voters whose current vote is -1.")
    voters: int = Field(ge=0, description="Distinct voters with a current vote.")
    score: int = Field(description="up - down.")
    wilson_lower_bound: float = Field(
        ge=0, le=1, description="Wilson lower bound of up/(up+down) at 80 % confidence (z=1.2816)."
    )
    revision: int = Field(ge=0, description="Increases by one with every fact applied.")
    updated_at: AwareDatetime


class IdeaInsightUpdated(CloudEvent[IdeaInsight]):
    """Snapshot: an idea's insight changed. Keyed by idea id on a compacted topic."""

    topic: ClassVar[str] = INSIGHTS_IDEAS
    type: Literal["centricity.idea_insight.updated.v1"]
    businessunit: BusinessUnitId | None = Field(  # type: ignore[assignment]
        default=None, description="Extension attribute: the idea's business unit, once known."
    )
