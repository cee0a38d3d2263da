"""Vote events: what business units cast, and the facts the votes service records."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from centricity_contracts.customers import Actor, Customer
from centricity_contracts.envelope import BusinessUnitId, CloudEvent
from centricity_contracts.ideas import IdeaId
from centricity_contracts.model import ContractModel
from centricity_contracts.topics import VOTES_EVENTS, VOTES_INTAKE

VoteValue = Literal[1, -1]
StoredVoteValue = Literal[1, 0, -1]
Points = int
MAX_POINTS = 1000


class Ballot(ContractModel):
    """A customer's vote on an idea, as a business-unit system casts it."""

    idea_id: IdeaId
    voter: Customer
    value: VoteValue = Field(description="+1 for up, -1 for down.", examples=[1])
    points: Points = Field(
        default=1,
        ge=1,
        le=MAX_POINTS,
        description="Points put on the idea. Above 1 only in a campaign that gives each voter a budget.",
    )
    proxy: Actor | None = Field(
        default=None,
        description="Staff member who records the vote on the customer's behalf, e.g. after a support "
        "call. The customer's own later vote replaces it; a proxy cannot replace the customer's own vote.",
    )


class VoteCast(CloudEvent[Ballot]):
    """Intake: a customer cast a vote in a business-unit system. Key it by idea id."""

    topic: ClassVar[str] = VOTES_INTAKE
    type: Literal["centricity.vote.cast.v1"]


class Withdrawal(ContractModel):
    """A customer takes their vote on an idea back."""

    idea_id: IdeaId
    voter: Customer
    proxy: Actor | None = Field(default=None, description="Staff member acting for the customer.")


class VoteWithdrawn(CloudEvent[Withdrawal]):
    """Intake: a customer withdrew their vote in a business-unit system. Key it by idea id."""

    topic: ClassVar[str] = VOTES_INTAKE
    type: Literal["centricity.vote.withdrawn.v1"]


class CustomerTier(StrEnum):
    STANDARD = "standard"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"
    STRATEGIC = "strategic"


class CustomerValue(ContractModel):
    """What a customer is worth to the business unit, as of `valued_at`."""

    customer: Customer
    tier: CustomerTier | None = Field(default=None, examples=["gold"])
    annual_value: float | None = Field(
        default=None,
        ge=0,
        le=1e12,
        description="Yearly revenue or cost-to-serve saved, in the enterprise's reporting currency.",
        examples=[250000],
    )
    valued_at: AwareDatetime = Field(description="When the unit valued the customer; older values never win.")

    @model_validator(mode="after")
    def _says_something(self) -> Self:
        if self.tier is None and self.annual_value is None:
            raise ValueError("give a tier, an annual_value or both")
        return self


class CustomerValued(CloudEvent[CustomerValue]):
    """Intake: a business unit valued one of its customers. Key it by customer id."""

    topic: ClassVar[str] = VOTES_INTAKE
    type: Literal["centricity.customer.valued.v1"]


class VoteRecord(ContractModel):
    """A vote as the votes service recorded it, with the value it replaced."""

    vote_id: str = Field(description="One per voter and idea: `<idea_id>:<businessunit>:<customer_id>`.")
    idea_id: IdeaId
    voter: Customer
    voter_businessunit: BusinessUnitId
    value: VoteValue
    previous_value: StoredVoteValue = Field(description="0 when the voter had no vote on the idea.")
    revision: int = Field(ge=1, description="How many times this vote has changed, this one included.")
    recorded_at: AwareDatetime
    weight: float = Field(
        default=1.0, gt=0, description="The voter's weight when the vote was recorded (customer value)."
    )
    points: Points = Field(default=1, ge=1, le=MAX_POINTS)
    previous_weight: float = Field(default=1.0, gt=0, description="Weight of the replaced vote.")
    previous_points: Points = Field(
        default=1, ge=1, le=MAX_POINTS, description="Points of the replaced vote."
    )
    proxy: Actor | None = Field(default=None, description="Set when staff recorded it for the customer.")
    campaign_id: str | None = Field(default=None, description="The idea's campaign, if any.")

    @property
    def weighted(self) -> float:
        """What this vote adds to the idea's weighted score."""
        return self.value * self.points * self.weight

    @property
    def previous_weighted(self) -> float:
        return self.previous_value * self.previous_points * self.previous_weight


class VoteRecorded(CloudEvent[VoteRecord]):
    """Fact: the votes service recorded a new or changed vote. Keyed by idea id."""

    topic: ClassVar[str] = VOTES_EVENTS
    type: Literal["centricity.vote.recorded.v1"]


class VoteRetraction(ContractModel):
    """A vote taken back: the idea loses what it added."""

    vote_id: str
    idea_id: IdeaId
    voter: Customer
    voter_businessunit: BusinessUnitId
    previous_value: VoteValue
    previous_weight: float = Field(gt=0)
    previous_points: Points = Field(ge=1, le=MAX_POINTS)
    revision: int = Field(ge=1)
    proxy: Actor | None = None
    campaign_id: str | None = None
    retracted_at: AwareDatetime


class VoteRetracted(CloudEvent[VoteRetraction]):
    """Fact: a voter withdrew their vote. Keyed by idea id."""

    topic: ClassVar[str] = VOTES_EVENTS
    type: Literal["centricity.vote.retracted.v1"]


class VoteMove(ContractModel):
    """A vote leaving a merged idea for the idea it merged into."""

    vote_id: str = Field(description="The vote on the merged (source) idea, now gone.")
    from_idea_id: IdeaId
    to_idea_id: IdeaId
    to_vote_id: str = Field(description="The voter's vote on the target idea.")
    voter: Customer
    voter_businessunit: BusinessUnitId
    value: VoteValue = Field(description="The moved vote's value.")
    weight: float = Field(gt=0)
    points: Points = Field(ge=1, le=MAX_POINTS)
    outcome: Literal["moved", "kept_target"] = Field(
        description="moved: the target gained this vote. kept_target: the voter had already voted on the "
        "target, so that vote stays and this one only leaves the source (one vote per voter)."
    )
    revision: int = Field(ge=1, description="Revision of the target vote after the move.")
    moved_at: AwareDatetime


class VoteMoved(CloudEvent[VoteMove]):
    """Fact: a merge moved a vote to the surviving idea. Keyed by the target idea id."""

    topic: ClassVar[str] = VOTES_EVENTS
    type: Literal["centricity.vote.moved.v1"]


class VoteReweight(ContractModel):
    """An open vote whose voter's value changed."""

    vote_id: str
    idea_id: IdeaId
    voter: Customer
    voter_businessunit: BusinessUnitId
    value: VoteValue
    points: Points = Field(ge=1, le=MAX_POINTS)
    weight: float = Field(gt=0)
    previous_weight: float = Field(gt=0)
    revision: int = Field(ge=1)
    campaign_id: str | None = None
    reweighted_at: AwareDatetime


class VoteReweighted(CloudEvent[VoteReweight]):
    """Fact: an open vote was re-weighted after its voter's value changed. Keyed by idea id."""

    topic: ClassVar[str] = VOTES_EVENTS
    type: Literal["centricity.vote.reweighted.v1"]
