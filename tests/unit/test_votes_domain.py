from datetime import UTC, datetime, timedelta

import pytest

from centricity_contracts import Ballot, Customer, CustomerType
from centricity_contracts.customers import Actor
from centricity_contracts.votes import CustomerValue, VoteRecord, Withdrawal
from centricity_votes import domain
from centricity_votes.domain import IdeaView, StoredVote, WeightPolicy

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
VOTER = Customer(customer_id="c-1", customer_type=CustomerType.INTERNAL)
AGENT = Actor(actor_id="agent-7")
OPEN = IdeaView("idea-1", "submitted")
BUDGETED = IdeaView("idea-1", "under_review", campaign_id="camp-1", vote_budget=10)


def ballot(value: int, *, points: int = 1, proxy: Actor | None = None, idea_id: str = "idea-1") -> Ballot:
    return Ballot(idea_id=idea_id, voter=VOTER, value=value, points=points, proxy=proxy)


def cast(
    value: int,
    current: StoredVote | None = None,
    *,
    idea: IdeaView = OPEN,
    weight: float = 1.0,
    **kwargs: object,
) -> tuple[StoredVote, VoteRecord] | None:
    return domain.cast(
        ballot(value, **kwargs),  # type: ignore[arg-type]
        voter_businessunit="retail",
        current=current,
        idea=idea,
        weight=weight,
        now=NOW,
    )


def first(value: int = 1, **kwargs: object) -> StoredVote:
    result = cast(value, **kwargs)  # type: ignore[arg-type]
    assert result is not None
    return result[0]


def test_a_first_vote_is_recorded_with_no_previous_value() -> None:
    result = cast(1, weight=2.5)
    assert result is not None
    vote, record = result
    assert (record.value, record.previous_value, record.revision, record.weight) == (1, 0, 1, 2.5)
    assert vote.vote_id == domain.vote_id_for("idea-1", "retail", "c-1") == record.vote_id


def test_the_same_value_again_changes_nothing() -> None:
    assert cast(1, first(1)) is None


def test_a_different_value_replaces_the_vote_and_remembers_the_old_one_and_its_weight() -> None:
    result = cast(-1, first(1, weight=2.0), weight=3.0)
    assert result is not None
    _, record = result
    assert (record.value, record.previous_value, record.revision) == (-1, 1, 2)
    assert (record.weight, record.previous_weight) == (3.0, 2.0)
    assert (record.weighted, record.previous_weighted) == (-3.0, 2.0)


def test_the_same_customer_id_in_two_units_is_two_voters() -> None:
    assert domain.vote_id_for("idea-1", "retail", "c-1") != domain.vote_id_for("idea-1", "wholesale", "c-1")


def test_each_revision_gets_its_own_fact_id() -> None:
    one = cast(1)
    assert one is not None
    two = cast(-1, one[0])
    assert two is not None
    ids = {domain.recorded_fact(r, source="/centricity/votes").id for r in (one[1], two[1])}
    assert len(ids) == 2
    assert domain.recorded_fact(two[1], source="s").subject == "idea-1"


def test_votes_need_a_known_open_idea() -> None:
    with pytest.raises(domain.UnknownIdea):
        domain.check_open("idea-9", None)
    with pytest.raises(domain.IdeaClosed, match="delivered"):
        domain.check_open("idea-1", IdeaView("idea-1", "delivered"))
    assert domain.check_open("idea-1", OPEN) is OPEN


def test_a_proxy_vote_keeps_the_proxy_and_the_customer() -> None:
    result = cast(1, proxy=AGENT)
    assert result is not None
    assert result[1].proxy == AGENT
    assert result[1].voter == VOTER


def test_the_customers_own_vote_replaces_a_proxy_vote() -> None:
    by_proxy = first(1, proxy=AGENT)
    result = cast(1, by_proxy)
    assert result is not None
    assert result[0].proxy is None
    assert result[1].previous_value == 1


def test_a_proxy_cannot_replace_the_customers_own_vote() -> None:
    with pytest.raises(domain.ProxyCannotReplace):
        cast(-1, first(1), proxy=AGENT)


def test_points_above_one_need_a_campaign_budget() -> None:
    with pytest.raises(domain.PointsNeedBudget):
        cast(1, points=3)
    result = cast(1, idea=BUDGETED, points=3)
    assert result is not None
    assert (result[1].points, result[1].campaign_id) == (3, "camp-1")


def test_a_budget_refuses_over_allocation_and_counts_a_changed_idea_once() -> None:
    domain.check_budget({"idea-2": 6}, BUDGETED, 4)
    with pytest.raises(domain.OverBudget, match="only 4 of the campaign's 10 are left"):
        domain.check_budget({"idea-2": 6}, BUDGETED, 5)
    domain.check_budget({"idea-1": 9}, BUDGETED, 10)


def test_a_withdrawal_retracts_with_what_the_vote_added() -> None:
    vote = first(-1, weight=2.0)
    result = domain.withdraw(Withdrawal(idea_id="idea-1", voter=VOTER), current=vote, now=NOW)
    assert result is not None
    after, retraction = result
    assert after.value == 0
    assert (retraction.previous_value, retraction.previous_weight, retraction.revision) == (-1, 2.0, 2)
    assert domain.withdraw(Withdrawal(idea_id="idea-1", voter=VOTER), current=after, now=NOW) is None


def test_a_vote_again_after_a_withdrawal_starts_from_no_vote() -> None:
    withdrawn = domain.withdraw(Withdrawal(idea_id="idea-1", voter=VOTER), current=first(1), now=NOW)
    assert withdrawn is not None
    again = cast(1, withdrawn[0])
    assert again is not None
    assert (again[1].previous_value, again[1].revision) == (0, 3)


def test_weight_grows_with_tier_and_log_of_annual_value() -> None:
    policy = WeightPolicy()

    def weight(tier: str | None, annual: float | None) -> float:
        return policy.weight(CustomerValue(customer=VOTER, tier=tier, annual_value=annual, valued_at=NOW))

    assert weight("standard", None) == 1.0
    assert weight("gold", None) == 2.0
    assert weight(None, 90_000) == 2.0
    assert weight("gold", 90_000) == 4.0
    assert weight(None, 990_000) == 3.0


def test_reweighing_changes_open_votes_only_when_the_weight_changes() -> None:
    vote = first(1)
    result = domain.reweigh(vote, 4.0, now=NOW)
    assert result is not None
    after, reweight = result
    assert (reweight.previous_weight, reweight.weight, after.revision) == (1.0, 4.0, 2)
    assert domain.reweigh(after, 4.0, now=NOW) is None


def test_a_moved_vote_lands_on_the_target_when_the_voter_had_none_there() -> None:
    source = first(1, weight=2.0)
    target_idea = IdeaView("idea-2", "planned")
    moved = domain.move(source, target=None, into=target_idea, now=NOW)
    assert moved is not None
    new_source, new_target, fact = moved
    assert new_source.value == 0
    assert new_source.moved_to == "idea-2"
    assert new_target is not None
    assert (new_target.idea_id, new_target.value, new_target.weight) == ("idea-2", 1, 2.0)
    assert new_target.vote_id == fact.to_vote_id == domain.vote_id_for("idea-2", "retail", "c-1")
    assert fact.outcome == "moved"


def test_a_voter_on_both_ideas_keeps_one_vote_on_the_target() -> None:
    source = first(1)
    target = first(-1, idea_id="idea-2")
    moved = domain.move(source, target=target, into=IdeaView("idea-2", "planned"), now=NOW)
    assert moved is not None
    new_source, new_target, fact = moved
    assert new_target is None
    assert new_source.value == 0
    assert (fact.outcome, fact.value, fact.revision) == ("kept_target", 1, target.revision)
    assert domain.moved_fact(fact, source="s").id == f"{source.vote_id}:moved"


def test_a_vote_counts_as_late_only_if_recorded_after_the_idea_closed() -> None:
    closed_at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    vote = StoredVote(
        vote_id="i:retail:c",
        idea_id="i",
        voter=Customer(customer_id="c", customer_type=CustomerType.EXTERNAL),
        voter_businessunit="retail",
        value=1,
        recorded_at=closed_at + timedelta(seconds=1),
    )
    assert domain.cast_after(vote, closed_at)
    assert not domain.cast_after(vote.model_copy(update={"recorded_at": closed_at}), closed_at)
    assert not domain.cast_after(vote.model_copy(update={"value": 0}), closed_at)
    assert not domain.cast_after(vote.model_copy(update={"recorded_at": None}), closed_at)
