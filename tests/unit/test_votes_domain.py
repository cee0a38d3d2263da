from datetime import UTC, datetime

from centricity_contracts import Ballot, Customer, CustomerType
from centricity_votes.domain import next_vote, recorded_fact, vote_id_for

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
VOTER = Customer(customer_id="c-1", customer_type=CustomerType.INTERNAL)


def ballot(value: int) -> Ballot:
    return Ballot.model_validate({"idea_id": "idea-1", "voter": VOTER.model_dump(), "value": value})


def test_a_first_vote_is_recorded_with_no_previous_value() -> None:
    vote = next_vote(ballot(1), voter_businessunit="retail", current=None, now=NOW)
    assert vote is not None
    assert (vote.value, vote.previous_value, vote.revision) == (1, 0, 1)
    assert vote.vote_id == vote_id_for("idea-1", "retail", "c-1")


def test_the_same_value_again_changes_nothing() -> None:
    first = next_vote(ballot(1), voter_businessunit="retail", current=None, now=NOW)
    assert next_vote(ballot(1), voter_businessunit="retail", current=first, now=NOW) is None


def test_a_different_value_replaces_the_vote_and_remembers_the_old_one() -> None:
    first = next_vote(ballot(1), voter_businessunit="retail", current=None, now=NOW)
    changed = next_vote(ballot(-1), voter_businessunit="retail", current=first, now=NOW)
    assert changed is not None
    assert (changed.value, changed.previous_value, changed.revision) == (-1, 1, 2)


def test_the_same_customer_id_in_two_units_is_two_voters() -> None:
    assert vote_id_for("idea-1", "retail", "c-1") != vote_id_for("idea-1", "wholesale", "c-1")


def test_each_revision_gets_its_own_fact_id() -> None:
    first = next_vote(ballot(1), voter_businessunit="retail", current=None, now=NOW)
    second = next_vote(ballot(-1), voter_businessunit="retail", current=first, now=NOW)
    assert first is not None
    assert second is not None
    ids = {recorded_fact(v, source="/centricity/votes").id for v in (first, second)}
    assert len(ids) == 2
    assert recorded_fact(second, source="s").subject == "idea-1"
