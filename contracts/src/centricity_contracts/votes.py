"""Vote events: what business units cast, and the facts the votes service records."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from centricity_contracts.customers import Customer
from centricity_contracts.envelope import BusinessUnitId, CloudEvent
from centricity_contracts.ideas import IdeaId
from centricity_contracts.model import ContractModel
from centricity_contracts.topics import VOTES_EVENTS, VOTES_INTAKE

VoteValue = Literal[1, -1]


class Ballot(ContractModel):
    """A customer's vote on an idea, as a business-unit system casts it."""

    idea_id: IdeaId
    voter: Customer
    value: VoteValue = Field(description="+1 for up, -1 for down.", examples=[1])


class VoteCast(CloudEvent[Ballot]):
    """Intake: a customer cast a vote in a business-unit system. Key it by idea id."""

    topic: ClassVar[str] = VOTES_INTAKE
    type: Literal["centricity.vote.cast.v1"]


class VoteRecord(ContractModel):
    """A vote as the votes service recorded it, with the value it replaced."""

    vote_id: str = Field(description="One per voter and idea: `<idea_id>:<businessunit>:<customer_id>`.")
    idea_id: IdeaId
    voter: Customer
    voter_businessunit: BusinessUnitId
    value: VoteValue
    previous_value: Literal[1, 0, -1] = Field(description="0 when this is the voter's first vote.")
    revision: int = Field(ge=1, description="How many times this vote has changed, this one included.")
    recorded_at: AwareDatetime


class VoteRecorded(CloudEvent[VoteRecord]):
    """Fact: the votes service recorded a new or changed vote. Keyed by idea id."""

    topic: ClassVar[str] = VOTES_EVENTS
    type: Literal["centricity.vote.recorded.v1"]
