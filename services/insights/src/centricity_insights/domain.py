"""Rules for insights: O(1) updates of an idea's state per fact, and what each idea adds to its
units (business unit, campaign, customer type, enterprise). Pure: no I/O.

Unit metrics are never updated from facts directly. Each idea's contribution to its units is a
function of the idea's state, and a fact changes a unit by `contribution(after) -
contribution(before)`. So a unit changes only when an idea really changed, and a fact the idea
has already applied (a redelivery) changes no unit either.

Two things are counted apart from the ideas' state, each exactly once per customer: who took
part (participants), and the question "did this delivered idea help you?" put to one customer
(asked, answered, reminded). A fact names them as candidates; the store counts each for the
first batch that claims it (see store.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar, get_args

from ddsketch.mapping import LogarithmicMapping

from centricity_contracts.campaigns import CampaignCreated
from centricity_contracts.customers import Customer
from centricity_contracts.ideas import (
    IdeaAttested,
    IdeaCommented,
    IdeaCreated,
    IdeaEdited,
    IdeaFollowUpNeeded,
    IdeaMerged,
    IdeaStatus,
    IdeaStatusChanged,
)
from centricity_contracts.insights import (
    IdeaInsight,
    IdeaInsightUpdated,
    UnitInsight,
    UnitInsightUpdated,
    UnitKind,
)
from centricity_contracts.notifications import NotificationKind, NotificationRequested
from centricity_contracts.votes import VoteMoved, VoteRecorded, VoteRetracted, VoteReweighted

WILSON_Z_80 = 1.2816
TREND_TAU_S = 7 * 24 * 3600.0
TREND_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
COVERED_STATUSES = frozenset({IdeaStatus.PLANNED, IdeaStatus.IN_PROGRESS, IdeaStatus.DELIVERED})
# First-response times go into the log-spaced buckets of a DDSketch (±1 % relative accuracy):
# a unit keeps one counter per bucket, so the median and p90 need no stored list of times.
FIRST_RESPONSE_MAPPING = LogarithmicMapping(relative_accuracy=0.01)
FIRST_RESPONSE_BUCKET = "frt_"
# Times from an attestation request to its answer, in buckets of the same mapping.
ANSWER_TIME_BUCKET = "att_"
QUANTILE_BUCKETS = (FIRST_RESPONSE_BUCKET, ANSWER_TIME_BUCKET)
SHORTEST_RESPONSE_S = 0.001
STAFF = "staff"
ENTERPRISE = "enterprise"
EPSILON = 1e-9
EARLY_PARTICIPANTS_KEPT = 1000
# Requests for an idea whose creation is not seen yet wait in its state (its units are unknown).
# The notifications topic can be read ahead of the ideas' (a backlog, a rebuild), hence more.
EARLY_QUESTIONS_KEPT = 10_000

Fact = (
    CampaignCreated
    | IdeaCreated
    | IdeaEdited
    | IdeaStatusChanged
    | IdeaCommented
    | IdeaMerged
    | IdeaAttested
    | IdeaFollowUpNeeded
    | VoteRecorded
    | VoteRetracted
    | VoteMoved
    | VoteReweighted
    | NotificationRequested
)
# The classes of the union, so the two never disagree.
FACT_CLASSES: tuple[type[Fact], ...] = get_args(Fact)

Counters = dict[str, float]
UnitCounters = dict[str, Counters]
Key = TypeVar("Key")


def wilson_lower_bound(up: int, down: int, z: float = WILSON_Z_80) -> float:
    """Lower bound of the Wilson score interval for the share of up votes.

    It ranks 9 up / 1 down above 1 up / 0 down, which a plain ratio would not.
    """
    n = up + down
    if n <= 0:
        return 0.0
    p = min(1.0, max(0.0, up / n))
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt(max(0.0, p * (1 - p) + z2 / (4 * n)) / n)
    return max(0.0, (centre - margin) / (1 + z2 / n))


def log_add(log_sum: float | None, log_term: float) -> float:
    """ln(e^log_sum + e^log_term) without leaving log space (e^(t/τ) overflows after ~13 years)."""
    if log_sum is None:
        return log_term
    high, low = max(log_sum, log_term), min(log_sum, log_term)
    return high + math.log1p(math.exp(low - high))


def trend_time(at: datetime) -> float:
    """t/τ for a fact at `at`: the exponent of its weight in the decayed score."""
    return (at - TREND_EPOCH).total_seconds() / TREND_TAU_S


def unit_key(kind: UnitKind, name: str) -> str:
    return ENTERPRISE if kind is UnitKind.ENTERPRISE else f"{kind.value}:{name}"


def unit_key_range(kind: UnitKind) -> tuple[str, str]:
    """The keys of one kind's units: from the first (inclusive) to the last (exclusive)."""
    if kind is UnitKind.ENTERPRISE:
        return ENTERPRISE, ENTERPRISE + "!"  # no other key starts with it
    prefix = f"{kind.value}:"
    return prefix, prefix[:-1] + chr(ord(":") + 1)


def unit_of_key(key: str) -> tuple[UnitKind, str]:
    if key == ENTERPRISE:
        return UnitKind.ENTERPRISE, ENTERPRISE
    kind, _, name = key.partition(":")
    return UnitKind(kind), name


def first_response_bucket(seconds: float) -> str:
    return f"{FIRST_RESPONSE_BUCKET}{FIRST_RESPONSE_MAPPING.key(max(seconds, SHORTEST_RESPONSE_S))}"


def answer_time_bucket(seconds: float) -> str:
    return f"{ANSWER_TIME_BUCKET}{FIRST_RESPONSE_MAPPING.key(max(seconds, SHORTEST_RESPONSE_S))}"


def buckets_of(counters: Mapping[str, Any], prefix: str) -> dict[int, float]:
    """The DDSketch buckets stored under `prefix` in a unit's counters."""
    return {
        int(key[len(prefix) :]): float(value) for key, value in counters.items() if key.startswith(prefix)
    }


def bucket_quantile(buckets: dict[int, float], quantile: float) -> float | None:
    """The value at `quantile` of the counts in DDSketch buckets, as DDSketch itself computes it."""
    total = sum(count for count in buckets.values() if count > 0)
    if total <= 0:
        return None
    rank = quantile * (total - 1)
    running = 0.0
    for key in sorted(buckets):
        running += max(0.0, buckets[key])
        if running > rank:
            return float(FIRST_RESPONSE_MAPPING.value(key))
    return float(FIRST_RESPONSE_MAPPING.value(max(buckets)))


@dataclass(frozen=True)
class Participation:
    """A customer who took part (submitted, voted, commented, attested) and of which type."""

    customer_key: str
    customer_type: str

    @classmethod
    def of(cls, customer: Customer, businessunit: str) -> Participation:
        return cls(customer.key(businessunit), customer.customer_type.value)


class QuestionEvent(StrEnum):
    ASKED = "asked"
    ANSWERED = "answered"
    REMINDED = "reminded"


@dataclass(frozen=True)
class Question:
    """Something that happened to the question "did this delivered idea help you?" put to one
    customer: asked (the first delivered notification with an attestation link), answered (an
    attestation by the customer on the idea, before or after being asked), or reminded."""

    event: QuestionEvent
    customer_key: str
    customer_type: str
    at_ms: int
    notification_id: str | None = None  # for a reminder: each counts once

    def to_list(self) -> list[Any]:
        return [self.event.value, self.customer_key, self.customer_type, self.at_ms, self.notification_id]

    @classmethod
    def from_list(cls, values: list[Any]) -> Question:
        event, customer_key, customer_type, at_ms, notification_id = values
        return cls(QuestionEvent(event), customer_key, customer_type, int(at_ms), notification_id)


def question_id(idea_id: str, customer_key: str) -> str:
    """One question per idea and customer, however often it is asked or answered."""
    return f"{idea_id}|{customer_key}"


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass
class Applied:
    """What one fact did beyond the idea's own state: who took part, and what happened to
    whose question."""

    participations: list[Participation] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


def _bump(counts: dict[str, Any], key: str, by: float) -> None:
    counts[key] = counts.get(key, 0) + by
    if abs(counts[key]) < EPSILON:
        del counts[key]


def _pair(customer_type: str, businessunit: str) -> str:
    return f"{customer_type}|{businessunit}"


@dataclass
class IdeaState:
    """What insights keeps about one idea: enough to answer every metric in O(1) per fact."""

    idea_id: str
    businessunit: str | None = None
    title: str | None = None
    campaign_id: str | None = None
    author_type: str | None = None
    status: str | None = None
    internal_only: bool = False
    follow_up_needed: bool = False
    created: bool = False
    up: int = 0
    down: int = 0
    voters: int = 0
    weighted_score: float = 0.0
    trend_positive: float | None = None
    trend_negative: float | None = None
    comments: int = 0
    helped: int = 0
    not_helped: int = 0
    first_response_seconds: float | None = None
    merged_into: str | None = None
    # "<customer type>|<voter's unit>" -> current votes
    votes_by: dict[str, int] = field(default_factory=dict)
    # voter's customer type -> Σ points * weight of current up votes
    demand_by_type: dict[str, float] = field(default_factory=dict)
    # "<customer type or staff>|<commenter's unit>" -> comments
    comments_by: dict[str, int] = field(default_factory=dict)
    attested_by_type: dict[str, int] = field(default_factory=dict)
    helped_by_type: dict[str, int] = field(default_factory=dict)
    # "<customer type>|<customer key>" of those who took part before the idea's creation was seen
    # (facts of two topics interleave): they join the idea's unit and campaign once it is known.
    early_participants: list[str] = field(default_factory=list)
    # Questions asked or reminded before the idea's creation was seen (Question.to_list()): they
    # are counted for the idea's units once those are known.
    early_questions: list[list[Any]] = field(default_factory=list)

    @classmethod
    def from_document(cls, idea_id: str, doc: dict[str, Any] | None) -> IdeaState:
        names = {f.name for f in fields(cls)} - {"idea_id"}
        values = {name: doc[name] for name in names if doc and name in doc and doc[name] is not None}
        state = cls(idea_id=idea_id, **values)
        # Snapshots of the first version stored no `created` flag: a known unit meant creation seen.
        state.created = state.created or bool(doc and "created" not in doc and doc.get("businessunit"))
        return state

    def to_document(self) -> dict[str, Any]:
        # Shallow, with copies of the containers: dataclasses.asdict deep-copies and is slow.
        document = {name: getattr(self, name) for name in _STATE_FIELDS}
        return {k: v.copy() if isinstance(v, dict | list) else v for k, v in document.items()}

    @property
    def trending(self) -> float | None:
        """ln of the decayed weighted score, or None while it is not positive."""
        if self.trend_positive is None:
            return None
        if self.trend_negative is None:
            return self.trend_positive
        if self.trend_negative >= self.trend_positive:
            return None
        return self.trend_positive + math.log1p(-math.exp(self.trend_negative - self.trend_positive))

    # --- facts -------------------------------------------------------------------------------

    def apply(self, fact: Fact) -> Applied:
        """Apply one fact about this idea; returns who took part in it and whose question moved."""
        outcome = self._apply(fact)
        took_part = [each for each in outcome if isinstance(each, Participation)]
        questions = [each for each in outcome if isinstance(each, Question)]
        if not self.created:
            known = set(self.early_participants)
            fresh = [f"{p.customer_type}|{p.customer_key}" for p in took_part]
            self.early_participants += [p for p in dict.fromkeys(fresh) if p not in known]
            del self.early_participants[:-EARLY_PARTICIPANTS_KEPT]
            # Asked or reminded: counted for units not known yet, so kept until they are.
            waiting = [q for q in questions if q.event is not QuestionEvent.ANSWERED]
            questions = [q for q in questions if q.event is QuestionEvent.ANSWERED]
            for question in waiting:
                if question.to_list() not in self.early_questions:
                    self.early_questions.append(question.to_list())
            del self.early_questions[EARLY_QUESTIONS_KEPT:]
        return Applied(took_part, questions)

    def _apply(self, fact: Fact) -> list[Participation | Question]:
        match fact:
            case IdeaCreated():
                return self._created(fact)
            case IdeaEdited():
                title = fact.data.changes.get("title", {}).get("after")
                if isinstance(title, str):
                    self.title = title
            case IdeaStatusChanged():
                if fact.data.from_status is IdeaStatus.DELIVERED:
                    self.follow_up_needed = False  # reopened to follow up
                self.status = fact.data.to_status.value
                if self.first_response_seconds is None and fact.data.first_response_seconds is not None:
                    self.first_response_seconds = fact.data.first_response_seconds
            case IdeaCommented():
                return self._commented(fact)
            case IdeaMerged():
                if fact.data.idea_id == self.idea_id:
                    self.status = IdeaStatus.DUPLICATE.value
                    self.merged_into = fact.data.into_idea_id
            case IdeaAttested():
                return self._attested(fact)
            case IdeaFollowUpNeeded():
                self.follow_up_needed = True
            case VoteRecorded():
                return self._vote_recorded(fact)
            case VoteRetracted():
                self._vote_retracted(fact)
            case VoteMoved():
                return self._vote_moved(fact)
            case VoteReweighted():
                self._vote_reweighted(fact)
            case NotificationRequested():
                return self._notified(fact)
        return []

    def _created(self, fact: IdeaCreated) -> list[Participation | Question]:
        idea = fact.data
        self.created = True
        self.businessunit = idea.businessunit
        self.title = idea.title
        self.campaign_id = idea.campaign_id
        self.internal_only = idea.internal_only
        self.author_type = idea.author.customer_type.value
        # A status change seen first (it cannot be, in order) must not be undone by the creation.
        self.status = self.status or idea.status.value
        early = [
            Participation(key, customer_type)
            for customer_type, _, key in (pair.partition("|") for pair in self.early_participants)
        ]
        self.early_participants = []
        asked = [Question.from_list(values) for values in self.early_questions]
        self.early_questions = []
        return [Participation.of(idea.author, idea.businessunit), *early, *asked]

    def _commented(self, fact: IdeaCommented) -> list[Participation | Question]:
        comment = fact.data
        self.comments += 1
        commenter_type = comment.author.customer_type.value if comment.author else STAFF
        _bump(self.comments_by, _pair(commenter_type, comment.businessunit), 1)
        return [Participation.of(comment.author, comment.businessunit)] if comment.author else []

    def _notified(self, fact: NotificationRequested) -> list[Participation | Question]:
        event = question_event(fact)
        if event is None:
            return []
        notification = fact.data
        return [
            Question(
                event,
                notification.customer.key(notification.customer_businessunit),
                notification.customer.customer_type.value,
                epoch_ms(notification.requested_at),
                notification.notification_id if event is QuestionEvent.REMINDED else None,
            )
        ]

    def _attested(self, fact: IdeaAttested) -> list[Participation | Question]:
        attestation = fact.data
        customer_type = attestation.customer.customer_type.value
        if attestation.previous_helped is None:
            _bump(self.attested_by_type, customer_type, 1)
        else:
            self.helped -= attestation.previous_helped
            self.not_helped -= not attestation.previous_helped
            _bump(self.helped_by_type, customer_type, -int(attestation.previous_helped))
        self.helped += attestation.helped
        self.not_helped += not attestation.helped
        _bump(self.helped_by_type, customer_type, int(attestation.helped))
        key = attestation.customer.key(attestation.customer_businessunit)
        return [
            Participation.of(attestation.customer, attestation.customer_businessunit),
            Question(QuestionEvent.ANSWERED, key, customer_type, epoch_ms(attestation.attested_at)),
        ]

    def _vote_recorded(self, fact: VoteRecorded) -> list[Participation | Question]:
        vote = fact.data
        voter_type = vote.voter.customer_type.value
        if vote.previous_value != 0:
            self._count_vote(
                vote.previous_value,
                vote.previous_points,
                vote.previous_weight,
                voter_type,
                vote.voter_businessunit,
                -1,
            )
        self._count_vote(vote.value, vote.points, vote.weight, voter_type, vote.voter_businessunit, 1)
        self._trend(vote.weighted - vote.previous_weighted, vote.recorded_at)
        return [Participation.of(vote.voter, vote.voter_businessunit)]

    def _vote_retracted(self, fact: VoteRetracted) -> None:
        vote = fact.data
        self._count_vote(
            vote.previous_value,
            vote.previous_points,
            vote.previous_weight,
            vote.voter.customer_type.value,
            vote.voter_businessunit,
            -1,
        )
        self._trend(-vote.previous_value * vote.previous_points * vote.previous_weight, vote.retracted_at)

    def _vote_reweighted(self, fact: VoteReweighted) -> None:
        vote = fact.data
        change = vote.value * vote.points * (vote.weight - vote.previous_weight)
        self.weighted_score += change
        if vote.value == 1:
            _bump(self.demand_by_type, vote.voter.customer_type.value, change)
        self._trend(change, vote.reweighted_at)

    def _vote_moved(self, fact: VoteMoved) -> list[Participation | Question]:
        move = fact.data
        voter_type = move.voter.customer_type.value
        weighted = move.value * move.points * move.weight
        if self.idea_id == move.from_idea_id:
            self._count_vote(move.value, move.points, move.weight, voter_type, move.voter_businessunit, -1)
            self._trend(-weighted, move.moved_at)
            return []
        if move.outcome == "moved":
            self._count_vote(move.value, move.points, move.weight, voter_type, move.voter_businessunit, 1)
            self._trend(weighted, move.moved_at)
            return [Participation.of(move.voter, move.voter_businessunit)]
        return []

    def _count_vote(
        self, value: int, points: int, weight: float, voter_type: str, voter_unit: str, sign: int
    ) -> None:
        """Add (sign 1) or remove (sign -1) one voter's vote."""
        if value == 0:
            return
        self.up += sign * (value == 1)
        self.down += sign * (value == -1)
        self.voters += sign
        self.weighted_score += sign * value * points * weight
        _bump(self.votes_by, _pair(voter_type, voter_unit), sign)
        if value == 1:
            _bump(self.demand_by_type, voter_type, sign * points * weight)

    def _trend(self, change: float, at: datetime) -> None:
        if abs(change) < EPSILON:
            return
        term = math.log(abs(change)) + trend_time(at)
        if change > 0:
            self.trend_positive = log_add(self.trend_positive, term)
        else:
            self.trend_negative = log_add(self.trend_negative, term)

    # --- what the idea adds to its units -------------------------------------------------------

    def idea_units(self) -> list[str]:
        units = [ENTERPRISE]
        if self.businessunit:
            units.append(unit_key(UnitKind.BUSINESSUNIT, self.businessunit))
        if self.campaign_id:
            units.append(unit_key(UnitKind.CAMPAIGN, self.campaign_id))
        return units

    def units_of(self, participation: Participation | Question) -> list[str]:
        return [*self.idea_units(), unit_key(UnitKind.CUSTOMER_TYPE, participation.customer_type)]

    def contributions(self) -> UnitCounters:
        """What this idea adds to each of its units' counters now."""
        result: UnitCounters = {}
        whole = self._counters(None)
        for unit in self.idea_units():
            result[unit] = whole
        types = {
            *(pair.split("|")[0] for pair in (*self.votes_by, *self.comments_by)),
            *self.demand_by_type,
            *self.attested_by_type,
            *([self.author_type] if self.author_type else []),
        } - {STAFF}
        for customer_type in types:
            counters = self._counters(customer_type)
            if counters:
                result[unit_key(UnitKind.CUSTOMER_TYPE, customer_type)] = counters
        return result

    def _counters(self, customer_type: str | None) -> Counters:
        """The idea's counters, from customers of `customer_type` only, or from everyone (None)."""

        def of_type(candidate: str | None) -> bool:
            return customer_type is None or candidate == customer_type

        counters: Counters = {}
        if self.created and of_type(self.author_type):
            # A merged duplicate counts once, as the idea it went into: not as an idea of its own.
            if self.status != IdeaStatus.DUPLICATE:
                counters["ideas"] = 1
                counters["delivered"] = float(self.status == IdeaStatus.DELIVERED)
                counters["withdrawn"] = float(self.status == IdeaStatus.WITHDRAWN)
            if self.first_response_seconds is not None:
                counters["first_responses"] = 1
                counters[first_response_bucket(self.first_response_seconds)] = 1
        votes = {pair: n for pair, n in self.votes_by.items() if of_type(pair.split("|")[0])}
        comments = {pair: n for pair, n in self.comments_by.items() if of_type(pair.split("|")[0])}
        demand = sum(d for t, d in self.demand_by_type.items() if of_type(t))
        counters["votes"] = sum(votes.values())
        counters["weighted_demand"] = demand
        counters["covered_demand"] = demand if self.status in COVERED_STATUSES else 0.0
        if self.status == IdeaStatus.DELIVERED:
            counters["attested"] = sum(n for t, n in self.attested_by_type.items() if of_type(t))
            counters["helped"] = sum(n for t, n in self.helped_by_type.items() if of_type(t))
        counters["comments"] = sum(comments.values())
        counters["engagement"] = counters["votes"] + counters["comments"]
        if self.businessunit:
            counters["cross_bu_engagement"] = sum(
                n
                for pair, n in (*votes.items(), *comments.items())
                if pair.split("|")[1] != self.businessunit
            )
        return {name: value for name, value in counters.items() if abs(value) > EPSILON}

    # --- the snapshot --------------------------------------------------------------------------

    def insight(self, *, revision: int, now: datetime) -> IdeaInsight:
        up, down = max(0, self.up), max(0, self.down)
        trending = self.trending
        return IdeaInsight(
            idea_id=self.idea_id,
            businessunit=self.businessunit,
            title=self.title,
            up=up,
            down=down,
            voters=max(0, self.voters),
            score=up - down,
            wilson_lower_bound=round(wilson_lower_bound(up, down), 6),
            revision=revision,
            updated_at=now,
            weighted_score=round(self.weighted_score, 6),
            trending=round(trending, 9) if trending is not None else None,
            status=IdeaStatus(self.status) if self.status else None,
            campaign_id=self.campaign_id,
            comments=max(0, self.comments),
            helped=max(0, self.helped),
            not_helped=max(0, self.not_helped),
            first_response_seconds=self.first_response_seconds,
            merged_into=self.merged_into,
            internal_only=self.internal_only,
            follow_up_needed=self.follow_up_needed,
        )


_STATE_FIELDS = tuple(f.name for f in fields(IdeaState))


def contribution_change(before: UnitCounters, after: UnitCounters) -> UnitCounters:
    """after - before, per unit and counter; only what changed."""
    change: UnitCounters = {}
    for unit in before.keys() | after.keys():
        old, new = before.get(unit, {}), after.get(unit, {})
        diff = {name: new.get(name, 0) - old.get(name, 0) for name in old.keys() | new.keys()}
        diff = {name: value for name, value in diff.items() if abs(value) > EPSILON}
        if diff:
            change[unit] = diff
    return change


def add_into(total: dict[Key, Counters], change: Mapping[Key, Counters]) -> None:
    """Add each key's counters of `change` into `total` (the counters of `change` are not shared)."""
    for unit, counters in change.items():
        target = total.setdefault(unit, {})
        for name, value in counters.items():
            target[name] = target.get(name, 0) + value


def question_event(fact: NotificationRequested) -> QuestionEvent | None:
    """What a notification does to its customer's question: asks it (delivered, with a link to
    answer), reminds of it, or nothing (any other notification)."""
    notification = fact.data
    if notification.attestation is None:
        return None
    if notification.kind is NotificationKind.DELIVERED:
        return QuestionEvent.ASKED
    if notification.kind is NotificationKind.ATTESTATION_REMINDER:
        return QuestionEvent.REMINDED
    return None


def facts_about(fact: Fact) -> list[str]:
    """The ideas a fact changes: one, or for a moved vote the source and the target."""
    if isinstance(fact, CampaignCreated):
        return []  # it names a unit, and changes no idea
    if isinstance(fact, VoteMoved):
        return [fact.data.from_idea_id, fact.data.to_idea_id]
    if isinstance(fact, NotificationRequested) and question_event(fact) is None:
        return []  # only requests to attest and their reminders count
    return [fact.data.idea_id]


def remembered_by_idea(fact: Fact) -> bool:
    """Whether an idea keeps the fact's key to skip its redelivery. Notifications are not kept:
    a fan-out brings thousands per idea, which would crowd out the keys of votes still to be
    redelivered, and each question and reminder counts once anyway (the store claims them)."""
    return not isinstance(fact, NotificationRequested)


def fact_time(fact: Fact) -> datetime:
    """When the fact happened, from its data, so a replay buckets it as the live run did."""
    match fact:
        case CampaignCreated():
            return fact.data.created_at
        case IdeaCreated():
            return fact.data.created_at
        case IdeaEdited():
            return fact.data.edited_at
        case IdeaStatusChanged():
            return fact.data.changed_at
        case IdeaCommented():
            return fact.data.commented_at
        case IdeaMerged():
            return fact.data.merged_at
        case IdeaAttested():
            return fact.data.attested_at
        case IdeaFollowUpNeeded():
            return fact.data.needed_at
        case VoteRecorded():
            return fact.data.recorded_at
        case VoteRetracted():
            return fact.data.retracted_at
        case VoteMoved():
            return fact.data.moved_at
        case VoteReweighted():
            return fact.data.reweighted_at
        case NotificationRequested():
            return fact.data.requested_at


def ratio(part: float, whole: float) -> float | None:
    if whole <= EPSILON:
        return None
    return round(min(1.0, max(0.0, part / whole)), 6)


def unit_insight(unit: str, counters: dict[str, Any], *, revision: int, now: datetime) -> UnitInsight:
    """A unit's metrics from its stored counters."""
    kind, name = unit_of_key(unit)

    def count(name: str) -> float:
        return max(0.0, float(counters.get(name, 0) or 0))

    buckets = buckets_of(counters, FIRST_RESPONSE_BUCKET)
    median, p90 = bucket_quantile(buckets, 0.5), bucket_quantile(buckets, 0.9)
    answer_median = bucket_quantile(buckets_of(counters, ANSWER_TIME_BUCKET), 0.5)
    return UnitInsight(
        title=counters.get("title"),
        unit=unit,
        kind=kind,
        name=name,
        ideas=round(count("ideas")),
        participants=round(count("participants")),
        votes=round(count("votes")),
        weighted_demand=round(count("weighted_demand"), 6),
        covered_demand=round(min(count("covered_demand"), count("weighted_demand")), 6),
        coverage=ratio(count("covered_demand"), count("weighted_demand")),
        delivered=round(count("delivered")),
        delivery_rate=ratio(count("delivered"), count("ideas")),
        withdrawn=round(count("withdrawn")),
        first_responses=round(count("first_responses")),
        first_response_median_s=round(median, 3) if median is not None else None,
        first_response_p90_s=round(p90, 3) if p90 is not None else None,
        attested=round(count("attested")),
        helped=round(count("helped")),
        helpfulness=ratio(count("helped"), count("attested")),
        attestation_requests=round(count("attestation_requests")),
        attestation_reminders=round(count("attestation_reminders")),
        attestation_answers=round(count("attestation_answers")),
        response_rate=ratio(count("attestation_answers"), count("attestation_requests")),
        answer_time_median_s=round(answer_median, 3) if answer_median is not None else None,
        comments=round(count("comments")),
        engagement=round(count("engagement")),
        cross_bu_engagement=round(count("cross_bu_engagement")),
        cross_bu_share=ratio(count("cross_bu_engagement"), count("engagement")),
        revision=revision,
        updated_at=now,
    )


def idea_snapshot(insight: IdeaInsight, *, source: str) -> IdeaInsightUpdated:
    """The snapshot of `insight`; one id per revision, so consumers can drop repeats."""
    return IdeaInsightUpdated.build(
        id=f"{insight.idea_id}:r{insight.revision}",
        source=source,
        businessunit=insight.businessunit,
        subject=insight.idea_id,
        time=insight.updated_at,
        data=insight,
    )


def unit_snapshot(insight: UnitInsight, *, source: str) -> UnitInsightUpdated:
    return UnitInsightUpdated.build(
        id=f"{insight.unit}:r{insight.revision}",
        source=source,
        businessunit=insight.name if insight.kind is UnitKind.BUSINESSUNIT else None,
        subject=insight.unit,
        time=insight.updated_at,
        data=insight,
    )


def hour_of(at: datetime) -> int:
    """Epoch milliseconds of the hour `at` falls in (stored as ints: nx-27017 ranges on dates are wrong)."""
    return hour_of_ms(epoch_ms(at))


def hour_of_ms(ms: int) -> int:
    return ms - ms % 3_600_000


def series_counters(change: Counters) -> Counters:
    """The counters a time series keeps: everything but the buckets of times."""
    return {name: value for name, value in change.items() if not name.startswith(QUANTILE_BUCKETS)}


def asked_counters(units: Iterable[str], asked_ms: int) -> tuple[UnitCounters, int]:
    """A question counted as asked: one request for each of its units, in the hour it was asked."""
    return {unit: {"attestation_requests": 1} for unit in units}, hour_of_ms(asked_ms)


def answered_counters(units: Iterable[str], asked_ms: int, answered_ms: int) -> tuple[UnitCounters, int]:
    """A question counted as answered, with the time from request to answer (an answer given
    before the request counts as immediate), in the hour the question had both."""
    bucket = answer_time_bucket(max(0, answered_ms - asked_ms) / 1000)
    counters: UnitCounters = {unit: {"attestation_answers": 1, bucket: 1} for unit in units}
    return counters, hour_of_ms(max(asked_ms, answered_ms))


def reminded_counters(units: Iterable[str], at_ms: int) -> tuple[UnitCounters, int]:
    return {unit: {"attestation_reminders": 1} for unit in units}, hour_of_ms(at_ms)


def question_counts(question: Mapping[str, Any], tag: str) -> list[tuple[UnitCounters, int]]:
    """What a stored question counts for the batch `tag`: asked, if `tag` claimed its request
    (`asked_tag`), and answered, if `tag` claimed its answer (`answer_tag`, only ever set once
    both the request and an attestation are in). Each is claimed by one tag only, so a question
    counts once whichever of its facts comes first and however often either comes."""
    counts = []
    if question.get("asked_tag") == tag:
        counts.append(asked_counters(question["units"], question["asked_ms"]))
    if question.get("answer_tag") == tag:
        counts.append(answered_counters(question["units"], question["asked_ms"], question["answered_ms"]))
    return counts


def participants_of(state: IdeaState, participations: Iterable[Participation]) -> set[tuple[str, str]]:
    """(unit, customer key) pairs: who took part in which unit."""
    return {
        (unit, participation.customer_key)
        for participation in participations
        for unit in state.units_of(participation)
    }
