"""Campaigns: challenges tied to a business goal, open for ideas during a window."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from centricity_contracts.envelope import BusinessUnitId, CloudEvent
from centricity_contracts.model import ContractModel, Timestamp
from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE


class CampaignScope(StrEnum):
    BUSINESSUNIT = "businessunit"
    ENTERPRISE = "enterprise"


class CampaignLaunch(ContractModel):
    """A campaign as a business unit launches it."""

    reference: str = Field(
        min_length=1,
        max_length=128,
        description="The unit's own id for the campaign.",
        examples=["Q1-ONBOARD"],
    )
    title: str = Field(min_length=3, max_length=200, examples=["Cut onboarding time"])
    goal: str = Field(
        default="", max_length=2000, examples=["New business customers trade within 2 days instead of 10."]
    )
    scope: CampaignScope = Field(
        default=CampaignScope.BUSINESSUNIT,
        description="businessunit: only the launching unit's ideas; enterprise: every unit's ideas.",
    )
    opens_at: Timestamp
    closes_at: Timestamp
    vote_budget: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Points each voter may spread over the campaign's ideas; none means one vote per idea.",
        examples=[10],
    )

    @model_validator(mode="after")
    def _window_is_ordered(self) -> Self:
        if self.closes_at <= self.opens_at:
            raise ValueError("closes_at must be after opens_at")
        return self


class CampaignLaunched(CloudEvent[CampaignLaunch]):
    """Intake: a business unit launched a campaign."""

    topic: ClassVar[str] = IDEAS_INTAKE
    type: Literal["centricity.campaign.launched.v1"]


class CampaignRecord(CampaignLaunch):
    campaign_id: str = Field(min_length=1, max_length=64)
    businessunit: BusinessUnitId = Field(description="The unit that launched it.")
    created_at: AwareDatetime


class CampaignCreated(CloudEvent[CampaignRecord]):
    """Fact: a campaign was recorded. Keyed by campaign id."""

    topic: ClassVar[str] = IDEAS_EVENTS
    type: Literal["centricity.campaign.created.v1"]
