"""Insight snapshots that the insights service streams to dashboards and any Kafka client."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from centricity_contracts.envelope import BusinessUnitId, CloudEvent
from centricity_contracts.ideas import IdeaId, IdeaStatus
from centricity_contracts.model import ContractModel
from centricity_contracts.topics import INSIGHTS_IDEAS, INSIGHTS_UNITS


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
    weighted_score: float = Field(
        default=0.0, description="Sum over current votes of value * points * the voter's weight."
    )
    trending: float | None = Field(
        default=None,
        description="ln of the exponentially decayed weighted score, Σ Δ·e^(t/τ) with τ = 7 days and t in "
        "seconds since 2026-01-01 divided by τ. Comparable between ideas at any time; none while the "
        "decayed score is not positive. The decayed score now is e^(trending - t_now/τ).",
    )
    status: IdeaStatus | None = Field(default=None, description="The idea's workflow status, once known.")
    campaign_id: str | None = Field(default=None, description="The campaign the idea answers, if any.")
    comments: int = Field(default=0, ge=0, description="Comments posted on the idea.")
    helped: int = Field(default=0, ge=0, description="Customers who attested the delivered idea helped.")
    not_helped: int = Field(default=0, ge=0, description="Customers who attested it did not help.")
    first_response_seconds: float | None = Field(
        default=None, description="Seconds from submission to the idea's first status change."
    )
    merged_into: IdeaId | None = Field(default=None, description="Set once the idea was merged away.")
    internal_only: bool = Field(
        default=False, description="Only staff and internal customers see the idea (and its insight)."
    )
    follow_up_needed: bool = Field(
        default=False,
        description="Too many customers said the delivered idea did not help: its unit is to follow up.",
    )


class IdeaInsightUpdated(CloudEvent[IdeaInsight]):
    """Snapshot: an idea's insight changed. Keyed by idea id on a compacted topic."""

    topic: ClassVar[str] = INSIGHTS_IDEAS
    type: Literal["centricity.idea_insight.updated.v1"]
    businessunit: BusinessUnitId | None = Field(  # type: ignore[assignment]
        default=None, description="Extension attribute: the idea's business unit, once known."
    )


class UnitKind(StrEnum):
    ENTERPRISE = "enterprise"
    BUSINESSUNIT = "businessunit"
    CAMPAIGN = "campaign"
    CUSTOMER_TYPE = "customer_type"


class UnitInsight(ContractModel):
    """What a business unit, a campaign, a customer type or the whole enterprise hears and does.

    Ideas, votes and demand count what is on the unit's ideas now; for a customer type, what
    customers of that type submitted, voted or attested.
    """

    unit: str = Field(
        description="`enterprise`, `businessunit:<id>`, `campaign:<id>` or `customer_type:<type>`; "
        "the Kafka key of its snapshots.",
        examples=["businessunit:retail"],
    )
    kind: UnitKind
    name: str = Field(description="The unit's id within its kind (`enterprise` for the enterprise).")
    title: str | None = Field(
        default=None,
        description="What people call it: a campaign's title, a business unit's configured name.",
    )
    ideas: int = Field(ge=0, description="Ideas submitted.")
    participants: int = Field(
        ge=0, description="Distinct customers who submitted, voted, commented or attested."
    )
    votes: int = Field(ge=0, description="Current votes (one per voter and idea).")
    weighted_demand: float = Field(ge=0, description="Σ points * weight of current up votes.")
    covered_demand: float = Field(
        ge=0, description="The part of weighted_demand on planned, in-progress or delivered ideas."
    )
    coverage: float | None = Field(
        default=None, ge=0, le=1, description="covered_demand / weighted_demand; none without demand."
    )
    delivered: int = Field(ge=0, description="Ideas delivered.")
    delivery_rate: float | None = Field(default=None, ge=0, le=1, description="delivered / ideas.")
    withdrawn: int = Field(default=0, ge=0, description="Ideas their author or unit withdrew.")
    first_responses: int = Field(ge=0, description="Ideas that got a first response (status change).")
    first_response_median_s: float | None = Field(
        default=None, description="Median seconds from submission to first response (±1 %)."
    )
    first_response_p90_s: float | None = Field(
        default=None, description="90th percentile of the same (±1 %)."
    )
    attested: int = Field(ge=0, description="Customers' current attestations on delivered ideas.")
    helped: int = Field(ge=0, description="Attestations that say the idea helped.")
    helpfulness: float | None = Field(default=None, ge=0, le=1, description="helped / attested.")
    attestation_requests: int = Field(
        default=0,
        ge=0,
        description="Questions asked: customers (authors and voters) asked whether a delivered idea "
        "helped them, one per idea and customer however often notified or reminded.",
    )
    attestation_reminders: int = Field(
        default=0, ge=0, description="Reminders of those questions sent, each once."
    )
    attestation_answers: int = Field(
        default=0,
        ge=0,
        description="Of the questions asked, those the customer answered: an attestation by them on "
        "the idea, given before or after being asked.",
    )
    response_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="attestation_answers / attestation_requests; none before a question was asked.",
    )
    answer_time_median_s: float | None = Field(
        default=None,
        ge=0,
        description="Median seconds from a question's request to the customer's first attestation "
        "(±1 %); an answer given before the request counts as immediate.",
    )
    comments: int = Field(ge=0, description="Comments on the unit's ideas.")
    engagement: int = Field(ge=0, description="Current votes plus comments.")
    cross_bu_engagement: int = Field(
        ge=0, description="Votes and comments that came from a business unit other than the idea's."
    )
    cross_bu_share: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="cross_bu_engagement / engagement: the silo indicator "
        "(0 means every unit keeps to itself).",
    )
    revision: int = Field(ge=0, description="Increases with every stored change of the unit.")
    updated_at: AwareDatetime


class UnitInsightUpdated(CloudEvent[UnitInsight]):
    """Snapshot: a unit's metrics changed. Keyed by unit (e.g. businessunit:retail) on a compacted topic."""

    topic: ClassVar[str] = INSIGHTS_UNITS
    type: Literal["centricity.unit_insight.updated.v1"]
    businessunit: BusinessUnitId | None = Field(  # type: ignore[assignment]
        default=None, description="Extension attribute: set for a business unit's own metrics."
    )
