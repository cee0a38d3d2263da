"""Insights rules: per-idea state per fact, and what an idea adds to its units."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from centricity_insights.domain import (
    ENTERPRISE,
    IdeaState,
    Question,
    QuestionEvent,
    answer_time_bucket,
    bucket_quantile,
    contribution_change,
    epoch_ms,
    facts_about,
    first_response_bucket,
    hour_of,
    idea_snapshot,
    participants_of,
    question_counts,
    question_id,
    remembered_by_idea,
    series_counters,
    unit_insight,
    wilson_lower_bound,
)
from centricity_insights.projection import add_question, parse_fact
from centricity_insights.store import UnitEffects
from centricity_plumbing.broker import RejectedEvent

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
IDEA = "idea-1"


def fact(event_type: str, data: dict[str, Any], event_id: str = "e") -> Any:
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/centricity/test",
        "type": event_type,
    }
    body |= {"businessunit": "retail", "data": data}
    import json

    parsed = parse_fact(json.dumps(body, default=str).encode())
    assert parsed is not None
    return parsed


def customer(customer_id: str, customer_type: str = "external") -> dict[str, str]:
    return {"customer_id": customer_id, "customer_type": customer_type}


def created(unit: str = "retail", campaign: str | None = "camp", author_type: str = "external") -> Any:
    data = {
        "idea_id": IDEA,
        "businessunit": unit,
        "reference": "R-1",
        "title": "Save my basket",
        "author": customer("author", author_type),
        "created_at": NOW.isoformat(),
        "campaign_id": campaign,
    }
    return fact("centricity.idea.created.v1", data)


def recorded(
    voter: str,
    value: int,
    previous: int = 0,
    *,
    unit: str = "retail",
    voter_type: str = "external",
    points: int = 1,
    weight: float = 1.0,
    previous_points: int = 1,
    previous_weight: float = 1.0,
    at: datetime = NOW,
) -> Any:
    data = {
        "vote_id": f"{IDEA}:{unit}:{voter}",
        "idea_id": IDEA,
        "voter": customer(voter, voter_type),
        "voter_businessunit": unit,
        "value": value,
        "previous_value": previous,
        "revision": 1,
        "recorded_at": at.isoformat(),
        "points": points,
        "weight": weight,
        "previous_points": previous_points,
        "previous_weight": previous_weight,
    }
    return fact("centricity.vote.recorded.v1", data)


def status(to: str, first_response: float | None = None, from_status: str = "submitted") -> Any:
    data = {
        "idea_id": IDEA,
        "businessunit": "retail",
        "from_status": from_status,
        "to_status": to,
        "by": {"actor_id": "pm"},
        "changed_at": NOW.isoformat(),
        "first_response_seconds": first_response,
    }
    return fact("centricity.idea.status_changed.v1", data)


def state_after(*facts: Any) -> IdeaState:
    state = IdeaState(IDEA)
    for each in facts:
        state.apply(each)
    return state


def test_first_votes_count_up_down_and_voters() -> None:
    state = state_after(recorded("a", 1), recorded("b", 1), recorded("c", -1))
    assert (state.up, state.down, state.voters, state.weighted_score) == (2, 1, 3, 1.0)


def test_a_changed_vote_moves_between_up_and_down_without_a_new_voter() -> None:
    state = state_after(recorded("a", 1), recorded("a", -1, previous=1))
    assert (state.up, state.down, state.voters) == (0, 1, 1)


def test_the_weighted_score_counts_points_and_weight_and_their_changes() -> None:
    state = state_after(
        recorded("a", 1, points=3, weight=2.0),
        recorded("a", 1, previous=1, points=2, weight=2.0, previous_points=3, previous_weight=2.0),
    )
    assert state.weighted_score == pytest.approx(4.0)
    assert state.demand_by_type == {"external": pytest.approx(4.0)}


def test_a_retraction_takes_the_vote_and_the_voter_away() -> None:
    retraction = {
        "vote_id": "v",
        "idea_id": IDEA,
        "voter": customer("a"),
        "voter_businessunit": "retail",
        "previous_value": 1,
        "previous_weight": 2.0,
        "previous_points": 1,
        "revision": 2,
        "retracted_at": NOW.isoformat(),
    }
    state = state_after(recorded("a", 1, weight=2.0), fact("centricity.vote.retracted.v1", retraction))
    assert (state.up, state.voters, state.weighted_score, state.votes_by) == (0, 0, 0.0, {})


def move(outcome: str) -> Any:
    data = {
        "vote_id": "src:retail:a",
        "from_idea_id": "src",
        "to_idea_id": IDEA,
        "to_vote_id": f"{IDEA}:retail:a",
        "voter": customer("a"),
        "voter_businessunit": "retail",
        "value": 1,
        "weight": 1.5,
        "points": 2,
        "outcome": outcome,
        "revision": 1,
        "moved_at": NOW.isoformat(),
    }
    return fact("centricity.vote.moved.v1", data)


def test_a_moved_vote_leaves_the_source_and_joins_the_target_unless_the_target_kept_its_own() -> None:
    source = IdeaState("src")
    source.apply(
        fact(
            "centricity.vote.recorded.v1",
            {**recorded("a", 1, points=2, weight=1.5).data.model_dump(mode="json"), "idea_id": "src"},
        )
    )
    source.apply(move("moved"))
    target = state_after(move("moved"))
    kept = state_after(recorded("a", 1), move("kept_target"))
    assert (source.voters, source.weighted_score) == (0, 0.0)
    assert (target.voters, target.up, target.weighted_score) == (1, 1, 3.0)
    assert (kept.voters, kept.weighted_score) == (1, 1.0)


def test_a_reweighted_vote_changes_the_weighted_score_only() -> None:
    data = {
        "vote_id": "v",
        "idea_id": IDEA,
        "voter": customer("a"),
        "voter_businessunit": "retail",
        "value": 1,
        "points": 2,
        "weight": 3.0,
        "previous_weight": 1.0,
        "revision": 2,
        "reweighted_at": NOW.isoformat(),
    }
    state = state_after(recorded("a", 1, points=2), fact("centricity.vote.reweighted.v1", data))
    assert (state.voters, state.weighted_score) == (1, 6.0)


def test_wilson_is_zero_without_votes_and_grows_with_evidence() -> None:
    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(9, 1) > wilson_lower_bound(1, 0)
    assert wilson_lower_bound(90, 10) > wilson_lower_bound(9, 1)


def test_wilson_matches_the_textbook_value() -> None:
    # p = 0.8, n = 10, z = 1.2816: (0.8 + z²/20 - z*sqrt((0.16 + z²/40)/10)) / (1 + z²/10)
    assert wilson_lower_bound(8, 2) == pytest.approx(0.60159, abs=1e-5)


def test_trending_weighs_a_vote_a_week_later_e_times_more_and_stays_finite_for_decades() -> None:
    early = state_after(recorded("a", 1, at=NOW))
    late = state_after(recorded("a", 1, at=NOW + timedelta(days=7)))
    assert early.trending is not None
    assert late.trending is not None
    assert late.trending - early.trending == pytest.approx(1.0)
    far = state_after(recorded("a", 1, at=NOW + timedelta(days=365 * 40)))
    assert far.trending is not None
    assert math.isfinite(far.trending)


def test_trending_subtracts_a_withdrawn_up_vote_in_log_space() -> None:
    state = state_after(recorded("a", 1), recorded("b", 1), recorded("b", -1, previous=1))
    # +1 +1 then -2 at the same moment: 0 left, so no trend; one more up vote makes it ln(1)+t/τ.
    assert state.trending is None or state.trending < -20
    state.apply(recorded("c", 1))
    single = state_after(recorded("x", 1))
    assert single.trending is not None
    assert state.trending == pytest.approx(single.trending, abs=1e-6)


def test_coverage_moves_with_the_status_and_delivery_counts_once() -> None:
    state = state_after(created(), recorded("a", 1, weight=2.0), recorded("b", 1))
    before = state.contributions()
    assert before["businessunit:retail"]["weighted_demand"] == 3.0
    assert "covered_demand" not in before["businessunit:retail"]
    state.apply(status("planned", first_response=3600.0))
    change = contribution_change(before, state.contributions())
    assert change["businessunit:retail"]["covered_demand"] == 3.0
    assert change["campaign:camp"]["first_responses"] == 1
    assert change[ENTERPRISE][first_response_bucket(3600.0)] == 1
    before = state.contributions()
    state.apply(status("delivered"))
    change = contribution_change(before, state.contributions())
    assert change["businessunit:retail"] == {"delivered": 1}


def test_cross_bu_engagement_counts_other_units_votes_and_comments() -> None:
    comment = {
        "comment_id": "c1",
        "idea_id": IDEA,
        "businessunit": "support",
        "body": "Yes please",
        "author": customer("s-1", "internal"),
        "commented_at": NOW.isoformat(),
    }
    state = state_after(
        created(),
        recorded("a", 1),
        recorded("w", 1, unit="wholesale", voter_type="partner"),
        fact("centricity.idea.commented.v1", comment),
    )
    unit = state.contributions()["businessunit:retail"]
    assert (unit["engagement"], unit["cross_bu_engagement"]) == (3, 2)
    assert state.contributions()["customer_type:partner"] == {
        "votes": 1,
        "weighted_demand": 1,
        "engagement": 1,
        "cross_bu_engagement": 1,
    }


def test_attestations_count_once_per_customer_and_follow_a_change_of_mind() -> None:
    def attested(helped: bool, previous: bool | None) -> Any:
        data = {
            "idea_id": IDEA,
            "customer": customer("author"),
            "customer_businessunit": "retail",
            "helped": helped,
            "previous_helped": previous,
            "attested_at": NOW.isoformat(),
        }
        return fact("centricity.idea.attested.v1", data)

    state = state_after(created(), status("delivered"), attested(True, None), attested(False, True))
    unit = state.contributions()["businessunit:retail"]
    assert (state.helped, state.not_helped) == (0, 1)
    assert (unit["attested"], unit.get("helped", 0)) == (1, 0)


def test_unit_metrics_turn_counters_into_ratios_and_quantiles() -> None:
    times = [60.0 * n for n in range(1, 101)]
    counters: dict[str, Any] = {"ideas": 4, "delivered": 1, "weighted_demand": 10.0, "covered_demand": 2.5}
    for seconds in times:
        bucket = first_response_bucket(seconds)
        counters[bucket] = counters.get(bucket, 0) + 1
    insight = unit_insight("businessunit:retail", counters, revision=3, now=NOW)
    assert (insight.delivery_rate, insight.coverage, insight.kind.value) == (0.25, 0.25, "businessunit")
    assert insight.first_response_median_s == pytest.approx(3000.0, rel=0.03)
    assert insight.first_response_p90_s == pytest.approx(5400.0, rel=0.03)
    assert bucket_quantile({}, 0.5) is None


def test_a_snapshot_for_an_idea_not_yet_seen_has_no_unit() -> None:
    insight = state_after(recorded("a", 1)).insight(revision=1, now=NOW)
    event = idea_snapshot(insight, source="s")
    assert (event.businessunit, event.id) == (None, f"{IDEA}:r1")
    assert state_after(recorded("a", 1)).contributions().keys() == {ENTERPRISE, "customer_type:external"}


def test_broken_facts_are_rejected_and_unknown_types_skipped() -> None:
    assert parse_fact(b'{"type": "centricity.vote.weighed.v9"}') is None
    with pytest.raises(RejectedEvent, match="not JSON"):
        parse_fact(b"{nope")
    with pytest.raises(RejectedEvent, match="invalid event"):
        parse_fact(b'{"type": "centricity.vote.recorded.v1", "data": {}}')


def test_who_took_part_before_the_creation_was_seen_joins_the_unit_once_it_is() -> None:
    state = IdeaState(IDEA)
    early = state.apply(recorded("a", 1)).participations
    assert participants_of(state, early) == {
        (ENTERPRISE, "retail:a"),
        ("customer_type:external", "retail:a"),
    }
    joined = participants_of(state, state.apply(created()).participations)
    assert ("businessunit:retail", "retail:a") in joined
    assert ("campaign:camp", "retail:author") in joined
    assert state.early_participants == []


def test_a_withdrawn_idea_is_counted_apart_and_its_demand_is_no_longer_covered() -> None:
    state = state_after(created(), recorded("a", 1), status("planned"))
    before = state.contributions()
    assert before["businessunit:retail"]["covered_demand"] == 1.0
    state.apply(status("withdrawn"))
    change = contribution_change(before, state.contributions())
    assert change["businessunit:retail"] == {"withdrawn": 1, "covered_demand": -1.0}
    insight = unit_insight("businessunit:retail", {"ideas": 2, "withdrawn": 1}, revision=1, now=NOW)
    assert insight.withdrawn == 1


def test_a_merged_duplicate_no_longer_counts_as_an_idea_of_its_own() -> None:
    merge = fact(
        "centricity.idea.merged.v1",
        {
            "idea_id": IDEA,
            "into_idea_id": "survivor",
            "businessunit": "retail",
            "by": {"actor_id": "pm"},
            "merged_at": NOW.isoformat(),
        },
        event_id="m",
    )
    state = state_after(created())
    before = state.contributions()
    assert before["businessunit:retail"]["ideas"] == 1
    state.apply(merge)
    change = contribution_change(before, state.contributions())
    assert change["businessunit:retail"]["ideas"] == -1
    assert change[ENTERPRISE]["ideas"] == -1


# --- asking customers whether a delivered idea helped ---------------------------------------------


def notification(
    who: str,
    kind: str = "delivered",
    *,
    ask: bool = True,
    at: datetime = NOW,
    notification_id: str | None = None,
    customer_type: str = "partner",
) -> Any:
    nid = notification_id or f"n-{who}-{kind}"
    data: dict[str, Any] = {
        "notification_id": nid,
        "customer": customer(who, customer_type),
        "customer_businessunit": "wholesale",
        "idea_id": IDEA,
        "idea_businessunit": "retail",
        "idea_title": "Save my basket",
        "kind": kind,
        "cause": "/centricity/ideas idea-1:delivered",
        "requested_at": at.isoformat(),
    }
    if ask:
        data["attestation"] = {
            "url": f"https://x.example/a/{nid}",
            "expires_at": (at + timedelta(days=60)).isoformat(),
        }
    return fact("centricity.notification.requested.v1", data, event_id=nid)


def attestation(who: str, *, at: datetime = NOW, helped: bool = True, previous: bool | None = None) -> Any:
    data = {
        "idea_id": IDEA,
        "customer": customer(who, "partner"),
        "customer_businessunit": "wholesale",
        "helped": helped,
        "previous_helped": previous,
        "attested_at": at.isoformat(),
    }
    return fact("centricity.idea.attested.v1", data, event_id=f"a-{who}-{helped}")


QUESTION_UNITS = [ENTERPRISE, "businessunit:retail", "campaign:camp", "customer_type:partner"]


def candidates(state: IdeaState, *facts: Any) -> UnitEffects:
    """The claims a batch of these facts puts to the store, as the projection makes them."""
    effects = UnitEffects()
    for each in facts:
        for question in state.apply(each).questions:
            add_question(effects, state, question)
    return effects


def test_a_delivered_notification_with_a_link_asks_once_and_a_redelivery_asks_nothing_new() -> None:
    state = state_after(created(), status("delivered"))
    asked = notification("v1")
    effects = candidates(state, asked, asked)  # the same notification id, delivered twice
    question = question_id(IDEA, "wholesale:v1")
    assert effects.asks == {question: (QUESTION_UNITS, epoch_ms(NOW))}
    assert not effects.answers
    assert not effects.reminders
    # The idea keeps no key of notifications: the store's claim of the question counts it once.
    assert not remembered_by_idea(asked)
    assert remembered_by_idea(status("delivered"))
    assert state.contributions() == state_after(created(), status("delivered")).contributions()


def test_reminders_count_apart_each_once_and_other_notifications_count_nothing() -> None:
    state = state_after(created(), status("delivered"))
    first = notification("v1", "attestation_reminder", notification_id="r1")
    second = notification("v1", "attestation_reminder", notification_id="r2", at=NOW + timedelta(days=7))
    effects = candidates(state, first, second, first)
    assert effects.reminders.keys() == {"r1", "r2"}
    assert not effects.asks
    assert facts_about(notification("c1", ask=False)) == [], "a follower who did not vote is not asked"
    assert facts_about(notification("v1", "status_changed", ask=False)) == []


def test_an_answer_before_the_request_is_a_response_at_once_counted_by_whichever_claim_is_second() -> None:
    state = state_after(created(), status("delivered"))
    answered = candidates(state, attestation("v1", at=NOW))
    asked = candidates(state, notification("v1", at=NOW + timedelta(minutes=5)))
    question = question_id(IDEA, "wholesale:v1")
    assert answered.answers == {question: epoch_ms(NOW)}
    assert not answered.asks
    assert asked.asks[question][1] == epoch_ms(NOW + timedelta(minutes=5))
    # The attestation's batch claimed the answer; the request's batch claimed the asking and,
    # finding the answer in, that it was answered.
    stored = {
        "_id": question,
        "answered_tag": "A",
        "answered_ms": epoch_ms(NOW),
        "asked_tag": "B",
        "asked_ms": epoch_ms(NOW + timedelta(minutes=5)),
        "units": QUESTION_UNITS,
        "answer_tag": "B",
    }
    assert question_counts(stored, "A") == []
    (requested, hour), (responded, answer_hour) = question_counts(stored, "B")
    assert requested == {unit: {"attestation_requests": 1} for unit in QUESTION_UNITS}
    immediate = answer_time_bucket(0.0)
    assert responded["customer_type:partner"] == {"attestation_answers": 1, immediate: 1}
    assert hour == answer_hour == hour_of(NOW + timedelta(minutes=5))
    assert series_counters(responded[ENTERPRISE]) == {"attestation_answers": 1}


def test_an_answer_after_the_request_takes_its_time_and_changes_of_mind_answer_nothing_new() -> None:
    state = state_after(created(), status("delivered"))
    later = NOW + timedelta(hours=26)
    effects = candidates(
        state,
        notification("v1"),
        attestation("v1", at=later),
        attestation("v1", at=later + timedelta(hours=1), helped=False, previous=True),
    )
    question = question_id(IDEA, "wholesale:v1")
    assert effects.answers == {question: epoch_ms(later)}, "the first attestation is the answer"
    stored = {
        "asked_tag": "T",
        "answer_tag": "T",
        "units": [ENTERPRISE],
        "asked_ms": epoch_ms(NOW),
        "answered_ms": epoch_ms(later),
    }
    (_, _), (responded, hour) = question_counts(stored, "T")
    assert responded[ENTERPRISE] == {"attestation_answers": 1, answer_time_bucket(26 * 3600.0): 1}
    assert hour == hour_of(later)


def test_a_request_before_the_idea_is_known_waits_once_for_its_units() -> None:
    state = IdeaState(IDEA)
    early = notification("v1")
    assert candidates(state, early, early, notification("v1", "attestation_reminder")) == UnitEffects()
    assert len(state.early_questions) == 2, "a redelivered request waits once"
    released = state.apply(created()).questions
    assert [q.event for q in released] == [QuestionEvent.ASKED, QuestionEvent.REMINDED]
    assert released[0] == Question(QuestionEvent.ASKED, "wholesale:v1", "partner", epoch_ms(NOW))
    effects = UnitEffects()
    for question in released:
        add_question(effects, state, question)
    assert effects.asks[question_id(IDEA, "wholesale:v1")][0] == QUESTION_UNITS
    assert state.early_questions == []


def test_candidate_claims_survive_the_effects_document_and_merge_to_the_earliest() -> None:
    state = state_after(created(), status("delivered"))
    effects = candidates(state, notification("v1", at=NOW + timedelta(days=1)), attestation("v2"))
    again = UnitEffects.from_document(effects.to_document("t"))
    assert (again.asks, again.answers) == (effects.asks, effects.answers)
    earlier = candidates(state, notification("v1", at=NOW, notification_id="n-again"))
    again.merge(earlier)
    assert again.asks[question_id(IDEA, "wholesale:v1")][1] == epoch_ms(NOW)


def test_unit_metrics_give_the_response_rate_and_the_median_time_to_answer() -> None:
    counters: dict[str, Any] = {
        "attestation_requests": 4,
        "attestation_answers": 3,
        "attestation_reminders": 5,
    }
    for seconds in (60.0, 3600.0, 86400.0):
        counters[answer_time_bucket(seconds)] = 1
    counters[first_response_bucket(10.0)] = 1
    insight = unit_insight("campaign:camp", counters, revision=1, now=NOW)
    assert (insight.attestation_requests, insight.attestation_answers, insight.attestation_reminders) == (
        4,
        3,
        5,
    )
    assert insight.response_rate == 0.75
    assert insight.answer_time_median_s == pytest.approx(3600.0, rel=0.02)
    assert insight.first_response_median_s == pytest.approx(10.0, rel=0.02)
    nothing = unit_insight("campaign:camp", {}, revision=1, now=NOW)
    assert (nothing.attestation_requests, nothing.response_rate, nothing.answer_time_median_s) == (
        0,
        None,
        None,
    )


def follow_up_needed() -> Any:
    data = {
        "idea_id": IDEA,
        "businessunit": "retail",
        "attested": 3,
        "not_helped": 2,
        "not_helped_share": 0.666667,
        "threshold": "at least 3 answers of which at least 34 % did not help, or 10 that did not",
        "needed_at": "2026-11-24T10:00:00Z",
    }
    return fact("centricity.idea.follow_up_needed.v1", data, event_id="follow-up")


def test_a_follow_up_shows_on_the_insight_until_the_idea_is_reopened() -> None:
    delivered = state_after(created(), status("delivered"), follow_up_needed())
    assert delivered.insight(revision=1, now=NOW).follow_up_needed is True
    reopen = status("in_progress", from_status="delivered")
    reopened = state_after(created(), status("delivered"), follow_up_needed(), reopen)
    assert reopened.insight(revision=1, now=NOW).follow_up_needed is False
