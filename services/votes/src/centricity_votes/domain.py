"""Rules for votes. Pure: no I/O.

A vote is one customer's stance on one idea: up or down, with points (in a campaign with a
budget) and the customer's weight when it last changed. Every change yields exactly one fact,
whose id is derived from the vote and its revision, so a republished fact keeps its id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from centricity_contracts.customers import Actor, Customer, CustomerType
from centricity_contracts.ideas import CLOSED_TO_VOTING
from centricity_contracts.votes import (
    Ballot,
    CustomerTier,
    CustomerValue,
    VoteMove,
    VoteMoved,
    VoteRecord,
    VoteRecorded,
    VoteRetracted,
    VoteRetraction,
    VoteReweight,
    VoteReweighted,
    Withdrawal,
)
from centricity_plumbing.rules import RuleViolation

NO_VOTE: Literal[0] = 0
DEFAULT_WEIGHT = 1.0

Fact = VoteRecorded | VoteRetracted | VoteMoved | VoteReweighted
FactT = TypeVar("FactT", VoteRecorded, VoteRetracted, VoteMoved, VoteReweighted)


class VoteRefused(RuleViolation):
    kind = "refused"
    status = 409
    title = "Vote refused"


class UnknownIdea(VoteRefused):
    kind = "unknown-idea"
    status = 404
    title = "Unknown idea"


class IdeaClosed(VoteRefused):
    kind = "idea-closed"
    status = 409
    title = "Voting has closed"


class InternalOnly(VoteRefused):
    kind = "internal-only"
    status = 403
    title = "Internal customers only"


class ProxyCannotReplace(VoteRefused):
    kind = "customer-voted"
    status = 409
    title = "The customer's own vote stands"


class PointsNeedBudget(VoteRefused):
    kind = "points-without-budget"
    status = 422
    title = "Points need a campaign with a vote budget"


class OverBudget(VoteRefused):
    kind = "over-budget"
    status = 409
    title = "Over the campaign's vote budget"


@dataclass(frozen=True)
class IdeaView:
    """What the votes service knows of an idea, from the ideas service's facts."""

    idea_id: str
    status: str
    campaign_id: str | None = None
    vote_budget: int | None = None
    internal_only: bool = False

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_TO_VOTING


class StoredVote(BaseModel):
    """The current state of one voter's vote on one idea; value 0 once retracted or moved away."""

    model_config = ConfigDict(frozen=True)

    vote_id: str
    idea_id: str
    voter: Customer
    voter_businessunit: str
    value: Literal[1, 0, -1]
    weight: float = DEFAULT_WEIGHT
    points: int = 1
    proxy: Actor | None = None
    campaign_id: str | None = None
    revision: int = 0
    moved_to: str | None = None
    recorded_at: AwareDatetime | None = Field(
        default=None, description="When this service recorded the vote's current value."
    )

    @property
    def voter_key(self) -> str:
        return self.voter.key(self.voter_businessunit)

    def fact_id(self) -> str:
        return f"{self.vote_id}:r{self.revision}"


@dataclass(frozen=True)
class WeightPolicy:
    """How a customer's value becomes a vote weight: tier weight times a log-scaled value factor.

    The log keeps one very large account from drowning out everyone else: 10x the annual value
    adds a constant, it does not multiply the weight by ten.
    """

    tier_weights: Mapping[str, float] = field(
        default_factory=lambda: {
            CustomerTier.STANDARD: 1.0,
            CustomerTier.SILVER: 1.5,
            CustomerTier.GOLD: 2.0,
            CustomerTier.PLATINUM: 3.0,
            CustomerTier.STRATEGIC: 5.0,
        }
    )
    value_unit: float = 10_000.0

    def weight(self, value: CustomerValue) -> float:
        tier = self.tier_weights.get(value.tier, DEFAULT_WEIGHT) if value.tier else DEFAULT_WEIGHT
        annual = value.annual_value or 0.0
        return round(tier * (1.0 + math.log10(1.0 + annual / self.value_unit)), 4)


def check_open(idea_id: str, idea: IdeaView | None) -> IdeaView:
    """Votes go only to ideas the ideas service has recorded and not yet closed."""
    if idea is None:
        raise UnknownIdea(f"no idea {idea_id!r} is known")
    if not idea.is_open:
        raise IdeaClosed(f"idea {idea_id!r} is {idea.status}; voting on it has closed")
    return idea


def vote_id_for(idea_id: str, voter_businessunit: str, customer_id: str) -> str:
    """One vote per voter per idea: the id names both, so a second vote replaces the first."""
    return f"{idea_id}:{voter_businessunit}:{customer_id}"


def check_points(idea: IdeaView, points: int) -> None:
    if points > 1 and idea.vote_budget is None:
        raise PointsNeedBudget(
            f"idea {idea.idea_id!r} is not in a campaign with a vote budget; a vote carries 1 point"
        )


def check_budget(allocations: Mapping[str, int], idea: IdeaView, points: int) -> None:
    """A voter's points across a campaign's ideas may not exceed its budget."""
    if idea.vote_budget is None:
        return
    elsewhere = sum(p for idea_id, p in allocations.items() if idea_id != idea.idea_id)
    if elsewhere + points > idea.vote_budget:
        left = max(idea.vote_budget - elsewhere, 0)
        raise OverBudget(
            f"{points} points asked but only {left} of the campaign's {idea.vote_budget} are left; "
            f"{elsewhere} are on other ideas of campaign {idea.campaign_id!r}"
        )


def cast(
    ballot: Ballot,
    *,
    voter_businessunit: str,
    current: StoredVote | None,
    idea: IdeaView,
    weight: float,
    now: datetime,
) -> tuple[StoredVote, VoteRecord] | None:
    """The vote after `ballot`, and its record; None when it changes nothing (a repeat)."""
    if idea.internal_only and ballot.voter.customer_type is not CustomerType.INTERNAL:
        raise InternalOnly(
            f"idea {idea.idea_id!r} is internal-only; "
            f"{ballot.voter.customer_type} customers do not vote on it"
        )
    check_points(idea, ballot.points)
    held = current if current is not None and current.value != NO_VOTE else None
    if ballot.proxy is not None and held is not None and held.proxy is None:
        raise ProxyCannotReplace(
            f"customer {ballot.voter.customer_id!r} voted on idea {idea.idea_id!r} themselves; "
            "a proxy vote cannot replace it"
        )
    if held is not None and (held.value, held.points, held.proxy) == (
        ballot.value,
        ballot.points,
        ballot.proxy,
    ):
        return None
    vote = StoredVote(
        vote_id=vote_id_for(ballot.idea_id, voter_businessunit, ballot.voter.customer_id),
        idea_id=ballot.idea_id,
        voter=ballot.voter,
        voter_businessunit=voter_businessunit,
        value=ballot.value,
        weight=weight,
        points=ballot.points,
        proxy=ballot.proxy,
        campaign_id=idea.campaign_id,
        revision=(current.revision if current is not None else 0) + 1,
        recorded_at=now,
    )
    record = VoteRecord(
        vote_id=vote.vote_id,
        idea_id=vote.idea_id,
        voter=vote.voter,
        voter_businessunit=voter_businessunit,
        value=ballot.value,
        previous_value=held.value if held is not None else NO_VOTE,
        revision=vote.revision,
        recorded_at=now,
        weight=weight,
        points=ballot.points,
        previous_weight=held.weight if held is not None else DEFAULT_WEIGHT,
        previous_points=held.points if held is not None else 1,
        proxy=ballot.proxy,
        campaign_id=idea.campaign_id,
    )
    return vote, record


def cast_after(vote: StoredVote, closed_at: datetime) -> bool:
    """Whether a vote was recorded after its idea closed, before this service heard of it.

    Such a vote is taken back when the closing fact arrives: voting closes at the moment the idea
    did, not at the moment this service learned of it. Votes recorded before this field existed
    carry no time, and stand.
    """
    return vote.value != NO_VOTE and vote.recorded_at is not None and vote.recorded_at > closed_at


def withdraw(
    withdrawal: Withdrawal, *, current: StoredVote | None, now: datetime
) -> tuple[StoredVote, VoteRetraction] | None:
    """The vote after it is taken back; None when there is no vote to take back."""
    if current is None or current.value == NO_VOTE:
        return None
    if withdrawal.proxy is not None and current.proxy is None:
        raise ProxyCannotReplace("the customer cast this vote themselves; a proxy cannot withdraw it")
    vote = current.model_copy(update={"value": NO_VOTE, "revision": current.revision + 1, "proxy": None})
    retraction = VoteRetraction(
        vote_id=current.vote_id,
        idea_id=current.idea_id,
        voter=current.voter,
        voter_businessunit=current.voter_businessunit,
        previous_value=current.value,
        previous_weight=current.weight,
        previous_points=current.points,
        revision=vote.revision,
        proxy=withdrawal.proxy,
        campaign_id=current.campaign_id,
        retracted_at=now,
    )
    return vote, retraction


def reweigh(current: StoredVote, weight: float, *, now: datetime) -> tuple[StoredVote, VoteReweight] | None:
    """An open vote under the voter's new weight; None if it has no value or the weight is the same."""
    if current.value == NO_VOTE or math.isclose(current.weight, weight):
        return None
    vote = current.model_copy(update={"weight": weight, "revision": current.revision + 1})
    reweight = VoteReweight(
        vote_id=current.vote_id,
        idea_id=current.idea_id,
        voter=current.voter,
        voter_businessunit=current.voter_businessunit,
        value=current.value,
        points=current.points,
        weight=weight,
        previous_weight=current.weight,
        revision=vote.revision,
        campaign_id=current.campaign_id,
        reweighted_at=now,
    )
    return vote, reweight


def move(
    source: StoredVote, *, target: StoredVote | None, into: IdeaView, now: datetime
) -> tuple[StoredVote, StoredVote | None, VoteMove] | None:
    """Move a vote off a merged idea: (source after, target after or None if unchanged, the move).

    A voter who already votes on the target keeps that vote, so they count once.
    """
    if source.value == NO_VOTE:
        return None
    moved_source = source.model_copy(
        update={"value": NO_VOTE, "revision": source.revision + 1, "moved_to": into.idea_id}
    )
    to_vote_id = vote_id_for(into.idea_id, source.voter_businessunit, source.voter.customer_id)
    keeps_target = target is not None and target.value != NO_VOTE
    new_target = (
        None
        if keeps_target
        else source.model_copy(
            update={
                "vote_id": to_vote_id,
                "idea_id": into.idea_id,
                "campaign_id": into.campaign_id,
                "revision": (target.revision if target is not None else 0) + 1,
                "moved_to": None,
            }
        )
    )
    move_fact = VoteMove(
        vote_id=source.vote_id,
        from_idea_id=source.idea_id,
        to_idea_id=into.idea_id,
        to_vote_id=to_vote_id,
        voter=source.voter,
        voter_businessunit=source.voter_businessunit,
        value=source.value,
        weight=source.weight,
        points=source.points,
        outcome="kept_target" if keeps_target else "moved",
        revision=_revision_after(new_target, target),
        moved_at=now,
    )
    return moved_source, new_target, move_fact


def _revision_after(new_target: StoredVote | None, target: StoredVote | None) -> int:
    kept = new_target or target
    return kept.revision if kept is not None else 1


def _fact(
    event_class: type[FactT], data: Any, *, fact_id: str, subject: str, time: datetime, source: str
) -> FactT:
    return event_class.build(
        id=fact_id, source=source, businessunit=data.voter_businessunit, subject=subject, time=time, data=data
    )


def recorded_fact(record: VoteRecord, *, source: str) -> VoteRecorded:
    """The fact that `record` was recorded; one id per vote revision, stable across republishes."""
    fact_id = f"{record.vote_id}:r{record.revision}"
    return _fact(
        VoteRecorded, record, fact_id=fact_id, subject=record.idea_id, time=record.recorded_at, source=source
    )


def retracted_fact(retraction: VoteRetraction, *, source: str) -> VoteRetracted:
    fact_id = f"{retraction.vote_id}:r{retraction.revision}"
    time = retraction.retracted_at
    return _fact(
        VoteRetracted, retraction, fact_id=fact_id, subject=retraction.idea_id, time=time, source=source
    )


def reweighted_fact(reweight: VoteReweight, *, source: str) -> VoteReweighted:
    fact_id = f"{reweight.vote_id}:r{reweight.revision}"
    time = reweight.reweighted_at
    return _fact(
        VoteReweighted, reweight, fact_id=fact_id, subject=reweight.idea_id, time=time, source=source
    )


def moved_fact(move_fact: VoteMove, *, source: str) -> VoteMoved:
    """A vote leaves its idea once, so the source vote id names the move."""
    fact_id = f"{move_fact.vote_id}:moved"
    time = move_fact.moved_at
    return _fact(
        VoteMoved, move_fact, fact_id=fact_id, subject=move_fact.to_idea_id, time=time, source=source
    )
