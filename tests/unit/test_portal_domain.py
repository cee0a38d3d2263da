"""The portal's rules: who sees which controls, how waiting reads, what a refusal says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from centricity_contracts.ideas import IdeaStatus
from centricity_plumbing.auth import Principal, PrincipalKind, Role
from centricity_portal import domain
from centricity_portal.upstream import Api, refused

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
MODERATOR = Principal(PrincipalKind.STAFF, "mo", "retail", frozenset({Role.MODERATOR}))
VIEWER = Principal(PrincipalKind.STAFF, "vic", "retail", frozenset({Role.VIEWER}))
ANALYST = Principal(PrincipalKind.STAFF, "ana", None, frozenset({Role.ANALYST}))
ALICE = Principal(PrincipalKind.CUSTOMER, "alice", "retail", frozenset({Role.CUSTOMER}), "alice", "external")


@pytest.mark.parametrize(
    ("ago", "reads"),
    [
        (timedelta(seconds=5), "5 s"),
        (timedelta(minutes=30), "30 min"),
        (timedelta(hours=4, minutes=12), "4.2 h"),
        (timedelta(days=3), "3.0 d"),
        (timedelta(seconds=-3), "0 s"),
    ],
)
def test_waiting_reads_in_the_largest_unit_that_says_it(ago: timedelta, reads: str) -> None:
    assert domain.waiting(NOW - ago, NOW) == reads


def test_only_the_ideas_own_moderators_and_admins_moderate_it() -> None:
    assert domain.moderates(MODERATOR, "retail")
    assert not domain.moderates(MODERATOR, "wholesale")
    assert not domain.moderates(VIEWER, "retail")
    assert not domain.moderates(ALICE, "retail")


def test_the_console_is_for_a_units_staff_and_my_page_for_customers() -> None:
    assert domain.is_staff(MODERATOR)
    assert domain.is_staff(VIEWER)
    assert not domain.is_staff(ANALYST), "enterprise-wide roles act for no unit"
    assert not domain.is_staff(ALICE)
    assert domain.is_customer(ALICE)
    assert not domain.is_customer(MODERATOR)


def test_customers_are_asked_only_about_delivered_ideas() -> None:
    assert domain.may_attest(ALICE, IdeaStatus.DELIVERED)
    assert not domain.may_attest(ALICE, IdeaStatus.PLANNED)
    assert not domain.may_attest(MODERATOR, IdeaStatus.DELIVERED)


def test_voting_is_offered_until_an_idea_closes() -> None:
    assert domain.may_vote_on(IdeaStatus.PLANNED)
    assert not domain.may_vote_on(IdeaStatus.DELIVERED)
    assert not domain.may_vote_on(IdeaStatus.DUPLICATE)


def test_status_changes_offer_every_status_but_those_with_operations_of_their_own() -> None:
    assert IdeaStatus.DUPLICATE not in domain.SET_BY_STATUS_CHANGE
    assert IdeaStatus.WITHDRAWN not in domain.SET_BY_STATUS_CHANGE
    assert IdeaStatus.DECLINED in domain.SET_BY_STATUS_CHANGE


def test_follow_up_is_for_delivered_ideas_flagged_by_their_customers() -> None:
    flagged = {"status": "delivered", "follow_up_needed_at": "2026-12-07T10:00:00Z"}
    assert domain.needs_follow_up(flagged)
    assert not domain.needs_follow_up(flagged | {"follow_up_needed_at": None})
    assert not domain.needs_follow_up(flagged | {"status": "in_progress"})


def test_tags_typed_with_commas_become_a_list() -> None:
    assert domain.tags_from(" App, accessibility ,, ") == ["app", "accessibility"]


def test_a_tally_without_an_insight_is_zero() -> None:
    assert domain.Tally.of(None) == domain.Tally()
    assert domain.Tally.of({"up": 3, "down": 1, "voters": 4}) == domain.Tally(3, 1, 4)


def test_a_services_problem_is_said_in_words_with_each_field_it_names() -> None:
    answer = httpx.Response(
        422,
        json={
            "title": "Request validation error",
            "detail": "",
            "errors": [{"loc": ["body", "title"], "msg": "String should have at least 3 characters"}],
        },
    )
    said = refused(Api.IDEAS, answer).message()
    assert said == "Request validation error. title: String should have at least 3 characters."


def test_an_answer_that_is_not_a_problem_still_says_who_refused() -> None:
    said = refused(Api.VOTES, httpx.Response(409, text="<html>")).message()
    assert said == "The votes service answered 409."
