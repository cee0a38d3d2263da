"""Rules for votes. Pure: no I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from centricity_contracts.votes import Ballot, VoteRecord, VoteRecorded
from centricity_plumbing.rules import RuleViolation

NO_VOTE: Literal[0] = 0
# Voting closes once an idea is delivered, declined or merged into another.
CLOSED_STATUSES = frozenset({"delivered", "declined", "duplicate"})


class VoteRefused(RuleViolation):
    kind = "refused"


class UnknownIdea(VoteRefused):
    kind = "unknown-idea"


class IdeaClosed(VoteRefused):
    kind = "idea-closed"


def check_open(idea_id: str, status: str | None) -> None:
    """Votes go only to ideas the ideas service has recorded and not yet closed."""
    if status is None:
        raise UnknownIdea(f"no idea {idea_id!r} is known")
    if status in CLOSED_STATUSES:
        raise IdeaClosed(f"idea {idea_id!r} is {status}; voting on it has closed")


def vote_id_for(idea_id: str, voter_businessunit: str, customer_id: str) -> str:
    """One vote per voter per idea: the id names both, so a second vote replaces the first."""
    return f"{idea_id}:{voter_businessunit}:{customer_id}"


def next_vote(
    ballot: Ballot,
    *,
    voter_businessunit: str,
    current: VoteRecord | None,
    now: datetime,
) -> VoteRecord | None:
    """The vote after `ballot` is applied, or None when it changes nothing (a repeat)."""
    if current is not None and current.value == ballot.value:
        return None
    return VoteRecord(
        vote_id=vote_id_for(ballot.idea_id, voter_businessunit, ballot.voter.customer_id),
        idea_id=ballot.idea_id,
        voter=ballot.voter,
        voter_businessunit=voter_businessunit,
        value=ballot.value,
        previous_value=current.value if current is not None else NO_VOTE,
        revision=(current.revision if current is not None else 0) + 1,
        recorded_at=now,
    )


def recorded_fact(record: VoteRecord, *, source: str) -> VoteRecorded:
    """The fact that `record` was recorded; one id per vote revision, stable across republishes."""
    return VoteRecorded.build(
        id=f"{record.vote_id}:r{record.revision}",
        source=source,
        businessunit=record.voter_businessunit,
        subject=record.idea_id,
        time=record.recorded_at,
        data=record,
    )
