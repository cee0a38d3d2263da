from datetime import UTC, datetime

import pytest

from centricity_contracts import Customer, CustomerType, VoteRecord
from centricity_insights.domain import IdeaTally, snapshot_event, wilson_lower_bound

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def vote(value: int, previous: int, voter: str = "c-1") -> VoteRecord:
    return VoteRecord.model_validate(
        {
            "vote_id": f"idea-1:retail:{voter}",
            "idea_id": "idea-1",
            "voter": Customer(customer_id=voter, customer_type=CustomerType.EXTERNAL).model_dump(),
            "voter_businessunit": "retail",
            "value": value,
            "previous_value": previous,
            "revision": 1,
            "recorded_at": NOW,
        }
    )


def test_first_votes_count_up_down_and_voters() -> None:
    tally = (
        IdeaTally("idea-1").with_vote(vote(1, 0, "a")).with_vote(vote(1, 0, "b")).with_vote(vote(-1, 0, "c"))
    )
    assert (tally.up, tally.down, tally.voters) == (2, 1, 3)


def test_a_changed_vote_moves_between_up_and_down_without_a_new_voter() -> None:
    tally = IdeaTally("idea-1").with_vote(vote(1, 0)).with_vote(vote(-1, 1))
    assert (tally.up, tally.down, tally.voters) == (0, 1, 1)


def test_wilson_is_zero_without_votes_and_grows_with_evidence() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(9, 1) > wilson_lower_bound(1, 0)
    assert wilson_lower_bound(90, 10) > wilson_lower_bound(9, 1)


def test_wilson_matches_the_textbook_value() -> None:
    # p = 0.8, n = 10, z = 1.2816: (0.8 + z²/20 - z*sqrt((0.16 + z²/40)/10)) / (1 + z²/10)
    assert wilson_lower_bound(8, 2) == pytest.approx(0.60159, abs=1e-5)


def test_the_insight_carries_score_and_revision() -> None:
    insight = IdeaTally("idea-1", "retail", "T", up=3, down=1, voters=4).insight(revision=7, now=NOW)
    assert (insight.score, insight.revision, insight.businessunit) == (2, 7, "retail")
    event = snapshot_event(insight, source="/centricity/insights")
    assert event.id == "idea-1:r7"
    assert event.businessunit == "retail"


def test_a_snapshot_for_an_idea_not_yet_seen_has_no_unit() -> None:
    insight = IdeaTally("idea-1").with_vote(vote(1, 0)).insight(revision=1, now=NOW)
    assert snapshot_event(insight, source="s").businessunit is None
