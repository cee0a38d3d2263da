"""The votes service's use cases: votes, withdrawals, merges and re-weights, for HTTP and Kafka alike.

Crash safety: a vote document stores the facts its latest changes caused, keyed by the intake
record that caused them, in the same write as the change. Offsets are committed only after the
facts are published, so after a crash the records are delivered again; a record already applied
then republishes its stored fact under the same id instead of applying twice. HTTP writes, which
nobody redelivers, also keep their facts in an outbox until published.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from centricity_contracts.campaigns import CampaignCreated
from centricity_contracts.envelope import CloudEvent
from centricity_contracts.ideas import (
    CLOSED_TO_VOTING,
    IdeaCreated,
    IdeaMerged,
    IdeaStatus,
    IdeaStatusChanged,
)
from centricity_contracts.topics import VOTES_EVENTS
from centricity_contracts.votes import Ballot, CustomerValued, Withdrawal
from centricity_plumbing.audit import Cause, acting
from centricity_plumbing.clock import utc_now
from centricity_plumbing.idempotency import Origin, has_seen, recent_fact
from centricity_plumbing.lanes import lanes_by_key
from centricity_plumbing.mongo import Document
from centricity_plumbing.outbox import Outbox, current_trace, outbox_entry
from centricity_plumbing.visibility import Viewer
from centricity_votes import domain
from centricity_votes.domain import IdeaView, StoredVote, VoteRefused, WeightPolicy
from centricity_votes.store import (
    VersionedWrite,
    VoteStore,
    budget_id,
    stored_vote,
    vote_document,
)

log = logging.getLogger(__name__)

INTAKE_BATCH = 500
WRITE_ATTEMPTS = 10
# An idea stored by another replica wakes nobody here: a waiting request looks again this often.
NEW_IDEA_RECHECK_S = 0.25


class VoterCommand:
    """What a cast and a withdrawal share: one customer's vote on one idea."""

    businessunit: str

    @property
    def target(self) -> Ballot | Withdrawal:
        raise NotImplementedError

    @property
    def idea_id(self) -> str:
        return self.target.idea_id

    @property
    def vote_id(self) -> str:
        return domain.vote_id_for(self.target.idea_id, self.businessunit, self.target.voter.customer_id)

    @property
    def voter_key(self) -> str:
        return self.target.voter.key(self.businessunit)

    key: str | None

    def cause(self, origin: Origin) -> Cause | None:
        """A Kafka record's own cause; an HTTP request's is the current one."""
        return None if origin is Origin.HTTP else Cause.of_intake(self.businessunit, self.key)


@dataclass(frozen=True)
class Cast(VoterCommand):
    ballot: Ballot
    businessunit: str
    key: str | None

    @property
    def target(self) -> Ballot:
        return self.ballot


@dataclass(frozen=True)
class Withdraw(VoterCommand):
    withdrawal: Withdrawal
    businessunit: str
    key: str | None

    @property
    def target(self) -> Withdrawal:
        return self.withdrawal


Command = Cast | Withdraw


@dataclass(frozen=True)
class Applied:
    """The vote after a command, and whether the command changed it."""

    vote: StoredVote | None
    changed: bool


Outcome = Applied | VoteRefused
# Whether every idea fact published so far has been stored, by any replica.
CaughtUp = Callable[[], Awaitable[bool]]


async def never_caught_up() -> bool:
    return False


class IdeaArrivals:
    """Wakes the requests waiting for an idea as soon as this replica stores new ideas."""

    def __init__(self) -> None:
        self._next = asyncio.Event()

    def next(self) -> asyncio.Event:
        """Set once ideas are stored after this call; take it before looking the idea up, so an
        idea stored in between is not missed."""
        return self._next

    def announce(self) -> None:
        self._next.set()
        self._next = asyncio.Event()


def decide(
    command: Command,
    current: StoredVote | None,
    idea: IdeaView | None,
    *,
    weight: float,
    now: datetime,
    source: str,
) -> tuple[StoredVote, domain.Fact] | None:
    """The vote a command leads to and the fact saying so; None when nothing changes."""
    open_idea = domain.check_open(command.idea_id, idea)
    if isinstance(command, Cast):
        cast = domain.cast(
            command.ballot,
            voter_businessunit=command.businessunit,
            current=current,
            idea=open_idea,
            weight=weight,
            now=now,
        )
        return (cast[0], domain.recorded_fact(cast[1], source=source)) if cast else None
    withdrawn = domain.withdraw(command.withdrawal, current=current, now=now)
    return (withdrawn[0], domain.retracted_fact(withdrawn[1], source=source)) if withdrawn else None


class VoteLedger:
    """Applies votes, withdrawals, merges and re-weights; publishes one fact per change."""

    def __init__(
        self,
        store: VoteStore,
        outbox: Outbox,
        *,
        source: str,
        weights: WeightPolicy,
        new_idea_wait_s: float = 3.0,
        idea_facts_caught_up: CaughtUp = never_caught_up,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.source = source
        self.weight_policy = weights
        self.new_idea_wait_s = new_idea_wait_s
        self.idea_facts_caught_up = idea_facts_caught_up
        self.arrivals = IdeaArrivals()

    async def apply_when_known(self, command: Command) -> Applied:
        """Apply one HTTP command. An idea created a moment ago may not have reached this service
        yet: wait for its creation, up to `new_idea_wait_s`, unless every idea fact is stored
        already, which means the idea was never created."""
        deadline = asyncio.get_running_loop().time() + self.new_idea_wait_s
        while True:
            arrival = self.arrivals.next()
            # Asked before the lookup: facts stored by then are what the lookup sees.
            settled = await self.idea_facts_caught_up()
            [outcome] = await self.apply([command], origin=Origin.HTTP)
            if isinstance(outcome, Applied):
                return outcome
            remaining = deadline - asyncio.get_running_loop().time()
            if not isinstance(outcome, domain.UnknownIdea) or settled or remaining <= 0:
                raise outcome
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrival.wait(), min(remaining, NEW_IDEA_RECHECK_S))

    async def apply(
        self, commands: Sequence[Command], *, origin: Origin, ideas: dict[str, IdeaView] | None = None
    ) -> list[Outcome]:
        """Apply commands in order; the `origin` decides how their facts survive a crash.

        `ideas` are the commands' ideas when the caller just read them."""
        if ideas is None:
            ideas = await self.store.idea_views(c.idea_id for c in commands)
        outcomes: list[Outcome | None] = [None] * len(commands)
        budgeted = [i for i, c in enumerate(commands) if _has_budget(ideas.get(c.idea_id))]
        unbudgeted = sorted(set(range(len(commands))) - set(budgeted))
        lanes = [
            [unbudgeted[i] for i in lane] for lane in lanes_by_key([commands[i].idea_id for i in unbudgeted])
        ]
        # The votes of one idea stay in one lane, in order.
        await asyncio.gather(
            *(self._apply_bulk(commands, lane, ideas, outcomes, origin=origin) for lane in lanes)
        )
        for i in budgeted:
            outcomes[i] = await self._apply_budgeted(commands[i], ideas[commands[i].idea_id], origin=origin)
        assert all(outcome is not None for outcome in outcomes), "every command has an outcome"
        return [outcome for outcome in outcomes if outcome is not None]

    async def _apply_bulk(
        self,
        commands: Sequence[Command],
        indices: list[int],
        ideas: dict[str, IdeaView],
        outcomes: list[Outcome | None],
        *,
        origin: Origin,
    ) -> None:
        if not indices:
            return
        weights = await self.store.weights(commands[i].voter_key for i in indices)
        for _ in range(WRITE_ATTEMPTS):
            docs = await self.store.load(commands[i].vote_id for i in indices)
            read = {vote_id: doc.get("revision", 0) for vote_id, doc in docs.items()}
            working: dict[str, Document | None] = dict(docs)
            facts: list[tuple[str, Document]] = []
            now, trace = utc_now(), current_trace()
            for i in indices:
                command = commands[i]
                doc = working.get(command.vote_id)
                if has_seen(doc, command.key):
                    outcomes[i] = Applied(stored_vote(doc), False)
                    # Applied before this batch: its fact may not have been published (a crash).
                    if (entry := recent_fact(docs.get(command.vote_id), command.key)) is not None:
                        facts.append((command.vote_id, entry))
                    continue
                try:
                    change = decide(
                        command,
                        stored_vote(doc),
                        ideas.get(command.idea_id),
                        weight=weights.get(command.voter_key, domain.DEFAULT_WEIGHT),
                        now=now,
                        source=self.source,
                    )
                except VoteRefused as refusal:
                    outcomes[i] = refusal
                    continue
                if change is None:
                    outcomes[i] = Applied(stored_vote(doc), False)
                    if doc is not None and command.key is not None:
                        working[command.vote_id] = vote_document(
                            None, doc, key=command.key, entry=None, origin=origin
                        )
                    continue
                vote, fact = change
                entry = outbox_entry(
                    fact, topic=VOTES_EVENTS, key=vote.idea_id, trace=trace, cause=command.cause(origin)
                )
                working[command.vote_id] = vote_document(
                    vote, doc, key=command.key, entry=entry, origin=origin
                )
                facts.append((command.vote_id, entry))
                outcomes[i] = Applied(vote, True)
            writes = [
                VersionedWrite(vote_id, read.get(vote_id, 0), doc)
                for vote_id, doc in working.items()
                if doc is not None and doc is not docs.get(vote_id)
            ]
            conflicts = await self.store.write_many(writes)
            await self._publish([fact for fact in facts if fact[0] not in conflicts], origin=origin)
            indices = [i for i in indices if commands[i].vote_id in conflicts]
            if not indices:
                return
        raise RuntimeError(f"{len(indices)} votes kept changing under a batch write")

    async def _apply_budgeted(self, command: Command, idea: IdeaView, *, origin: Origin) -> Outcome:
        """One vote in a campaign with a budget: its points are reserved before the vote is written."""
        doc = (await self.store.load([command.vote_id])).get(command.vote_id)
        if has_seen(doc, command.key):
            if (entry := recent_fact(doc, command.key)) is not None:
                await self._publish([(command.vote_id, entry)], origin=origin)
            return Applied(stored_vote(doc), False)
        weights = await self.store.weights([command.voter_key])
        weight = weights.get(command.voter_key, domain.DEFAULT_WEIGHT)
        try:
            if (
                decide(command, stored_vote(doc), idea, weight=weight, now=utc_now(), source=self.source)
                is None
            ):
                return Applied(stored_vote(doc), False)
            if isinstance(command, Cast):
                await self._reserve(command.voter_key, idea, command.ballot.points)
        except VoteRefused as refusal:
            return refusal
        applied = await self._apply_one(command, idea, weight, origin=origin)
        if isinstance(command, Withdraw):
            await self._reserve(command.voter_key, idea, 0)
        return applied

    async def _reserve(self, voter_key: str, idea: IdeaView, points: int, *, check: bool = True) -> None:
        """Set the points a voter puts on an idea within its campaign's budget, or refuse."""
        if idea.campaign_id is None:
            return

        def allocate(doc: Document | None) -> Document | None:
            allocations: dict[str, int] = dict((doc or {}).get("allocations", {}))
            if allocations.get(idea.idea_id, 0) == points:
                return None
            if check:
                domain.check_budget(allocations, idea, points)
            allocations[idea.idea_id] = points
            return {"allocations": {k: v for k, v in allocations.items() if v > 0}}

        await self.store.change(self.store.budgets, budget_id(idea.campaign_id, voter_key), allocate)

    async def _apply_one(self, command: Command, idea: IdeaView, weight: float, *, origin: Origin) -> Outcome:
        outcome: Applied = Applied(None, False)
        written: Document | None = None

        def next_document(doc: Document | None) -> Document | None:
            nonlocal outcome, written
            current = stored_vote(doc)
            change = decide(command, current, idea, weight=weight, now=utc_now(), source=self.source)
            if change is None:
                outcome, written = Applied(current, False), None
                return None
            vote, fact = change
            outcome = Applied(vote, True)
            written = outbox_entry(fact, topic=VOTES_EVENTS, key=vote.idea_id, cause=command.cause(origin))
            return vote_document(vote, doc, key=command.key, entry=written, origin=origin)

        try:
            await self.store.change(self.store.votes, command.vote_id, next_document)
        except VoteRefused as refusal:
            return refusal
        if written is not None:
            await self._publish([(command.vote_id, written)], origin=origin)
        return outcome

    async def _publish(self, facts: list[tuple[str, Document]], *, origin: Origin) -> None:
        """Publish (vote id, fact entry) pairs, then clear them from the outbox if they wait there."""
        if not facts:
            return
        await self.outbox.publish_entries([entry for _, entry in facts])
        if origin.keeps_facts_pending:
            await self.outbox.clear(
                list({vote_id for vote_id, _ in facts}), [entry["id"] for _, entry in facts]
            )

    async def move_votes(self, idea_id: str, into_idea_id: str, *, key: str) -> int:
        """Move every vote of a merged idea to the idea it merged into; returns how many facts."""
        into = await self.store.idea_view(into_idea_id)
        if into is None:
            raise RuntimeError(f"idea {into_idea_id!r}, target of a merge, is not known")
        moves = 0
        for doc in await self.store.votes_on(idea_id):
            source = stored_vote(doc)
            if source is None or (source.value == domain.NO_VOTE and not has_seen(doc, key)):
                continue
            to_vote_id = domain.vote_id_for(into_idea_id, source.voter_businessunit, source.voter.customer_id)
            target_doc = await self.store.change(
                self.store.votes, to_vote_id, self._moved_in(source, into, key)
            )
            await self.store.change(self.store.votes, source.vote_id, self._moved_out(into, key))
            await self._move_points(source, into, target_doc)
            if (entry := recent_fact(target_doc, key)) is not None:
                await self._publish([(to_vote_id, entry)], origin=Origin.KAFKA)
                moves += 1
        return moves

    async def _move_points(self, source: StoredVote, into: IdeaView, target_doc: Document | None) -> None:
        """Points follow a moved vote: released on the merged idea, and on the target counted as
        they are, even over budget, since the merge was staff's decision, not the voter's."""
        merged_from = IdeaView(source.idea_id, str(IdeaStatus.DUPLICATE), source.campaign_id)
        await self._reserve(source.voter_key, merged_from, 0, check=False)
        target = stored_vote(target_doc)
        if target is not None and into.vote_budget is not None and target.value != domain.NO_VOTE:
            await self._reserve(target.voter_key, into, target.points, check=False)

    def _moved_in(self, source: StoredVote, into: IdeaView, key: str) -> Any:
        def next_document(doc: Document | None) -> Document | None:
            if has_seen(doc, key):
                return None
            moved = domain.move(source, target=stored_vote(doc), into=into, now=utc_now())
            if moved is None:
                return None
            _, target, move = moved
            entry = outbox_entry(
                domain.moved_fact(move, source=self.source), topic=VOTES_EVENTS, key=into.idea_id
            )
            return vote_document(target, doc, key=key, entry=entry, origin=Origin.KAFKA)

        return next_document

    def _moved_out(self, into: IdeaView, key: str) -> Any:
        def next_document(doc: Document | None) -> Document | None:
            current = stored_vote(doc)
            if current is None or has_seen(doc, key):
                return None
            moved = domain.move(current, target=None, into=into, now=utc_now())
            return vote_document(moved[0] if moved else None, doc, key=key, entry=None, origin=Origin.KAFKA)

        return next_document

    async def value_customer(self, event: CustomerValued) -> int:
        """Record a customer's value; re-weight their open votes. Returns how many were re-weighted."""
        voter_key = event.data.customer.key(event.businessunit)
        weight = self.weight_policy.weight(event.data)
        valued_ms = int(event.data.valued_at.timestamp() * 1000)

        def newer(doc: Document | None) -> Document | None:
            if doc is not None and (doc["valued_at_ms"], doc["weight"]) >= (valued_ms, weight):
                return None
            return {
                "weight": weight,
                "valued_at_ms": valued_ms,
                "tier": event.data.tier,
                "annual_value": event.data.annual_value,
            }

        customer = await self.store.change(self.store.customers, voter_key, newer)
        if customer is None or customer["valued_at_ms"] != valued_ms:
            log.info("%s: a later value of %s is already known", event.dedup_key(), voter_key)
            return 0
        docs = await self.store.votes_of(voter_key)
        ideas = await self.store.idea_views(doc["idea_id"] for doc in docs)
        reweighted = 0
        for doc in docs:
            idea = ideas.get(doc["idea_id"])
            if idea is None or not idea.is_open:
                continue
            after = await self.store.change(
                self.store.votes, doc["_id"], self._reweighed(weight, event.dedup_key())
            )
            if (entry := recent_fact(after, event.dedup_key())) is not None:
                await self._publish([(doc["_id"], entry)], origin=Origin.KAFKA)
                reweighted += 1
        return reweighted

    def _reweighed(self, weight: float, key: str) -> Any:
        def reweigh(current: StoredVote) -> tuple[StoredVote, domain.Fact] | None:
            change = domain.reweigh(current, weight, now=utc_now())
            return (change[0], domain.reweighted_fact(change[1], source=self.source)) if change else None

        return self._once_per_key(key, reweigh)

    def _once_per_key(
        self, key: str, change: Callable[[StoredVote], tuple[StoredVote, domain.Fact] | None]
    ) -> Callable[[Document | None], Document | None]:
        """The next document of a stored vote that `change` moves, once per `key`, with its fact."""

        def next_document(doc: Document | None) -> Document | None:
            current = stored_vote(doc)
            if current is None or has_seen(doc, key):
                return None
            changed = change(current)
            if changed is None:
                return None
            vote, fact = changed
            entry = outbox_entry(fact, topic=VOTES_EVENTS, key=vote.idea_id)
            return vote_document(vote, doc, key=key, entry=entry, origin=Origin.KAFKA)

        return next_document

    async def record_idea_facts(self, facts: Sequence[CloudEvent[Any]]) -> bool:
        """Keep what voting needs to know from a batch of the ideas service's facts, in order.

        Returns whether an idea or a campaign was created, which may release parked votes.
        """
        ideas: dict[str, Document] = {}
        campaigns: dict[str, int | None] = {}
        created: list[str] = []
        closed: list[tuple[str, datetime, str, Cause]] = []
        new_campaigns = 0
        for fact in facts:
            match fact:
                case IdeaCreated():
                    record = fact.data
                    ideas.setdefault(record.idea_id, {}).update(
                        {
                            "status": str(record.status),
                            "campaign_id": record.campaign_id,
                            "internal_only": record.internal_only,
                        }
                    )
                    created.append(record.idea_id)
                case IdeaStatusChanged():
                    change = fact.data
                    ideas.setdefault(change.idea_id, {}).update({"status": str(change.to_status)})
                    if change.to_status in CLOSED_TO_VOTING:
                        closed.append(
                            (change.idea_id, change.changed_at, f"close {fact.id}", Cause.following(fact))
                        )
                case IdeaMerged():
                    merge = fact.data
                    ideas.setdefault(merge.idea_id, {}).update(
                        {"status": str(IdeaStatus.DUPLICATE), "merged_into": merge.into_idea_id}
                    )
                    # A merge reads what came before it: store that first.
                    await self.store.record(ideas, campaigns)
                    ideas, campaigns = {}, {}
                    with acting(Cause.following(fact)):
                        await self._merge(merge.idea_id, merge.into_idea_id, key=f"merge {fact.id}")
                case CampaignCreated():
                    campaigns[fact.data.campaign_id] = fact.data.vote_budget
                    new_campaigns += 1
        await self.store.record(ideas, campaigns)
        if created or new_campaigns:  # an idea in a campaign is known once its campaign is too
            self.arrivals.announce()
        for idea_id, closed_at, key, cause in closed:
            with acting(cause):
                await self.retract_late_votes(idea_id, closed_at, key=key)
        for merged_id, into_idea_id, key in await self.store.merges_waiting_for(created):
            await self.move_votes(merged_id, into_idea_id, key=key)
            await self.store.record({merged_id: {"merge_pending": None}}, {})
        return bool(created) or bool(new_campaigns)

    # Reads ---------------------------------------------------------------------------------

    async def check_visible(self, idea_id: str, viewer: Viewer, *, known: bool) -> None:
        """An internal-only idea does not exist for readers who may not see it; with `known`, nor
        does an idea this service has not heard of."""
        idea = (await self.store.idea_views([idea_id])).get(idea_id)
        if (idea is None and known) or (
            idea is not None and idea.internal_only and not viewer.sees_internal_only
        ):
            raise domain.UnknownIdea(f"no idea {idea_id!r} is known")

    async def votes_on(self, idea_id: str, *, offset: int, limit: int) -> list[StoredVote]:
        """A page of the current votes on an idea, without those retracted or moved away."""
        docs = await self.store.votes_on(idea_id, skip=offset, limit=limit)
        return [
            vote for doc in docs if (vote := stored_vote(doc)) is not None and vote.value != domain.NO_VOTE
        ]

    async def allocation(self, campaign_id: str, voter_key: str) -> tuple[int | None, dict[str, int]]:
        """A campaign's vote budget and the points a voter put on each of its ideas."""
        return await self.store.campaign_budget(campaign_id), await self.store.allocations(
            campaign_id, voter_key
        )

    async def retract_late_votes(self, idea_id: str, closed_at: datetime, *, key: str) -> int:
        """Take back the votes recorded after the idea closed; returns how many facts say so.

        Keyed by the closing fact, so a redelivery changes nothing and republishes what it kept.
        """
        retracted = 0
        for doc in await self.store.votes_on(idea_id):
            vote = stored_vote(doc)
            if vote is None or not (domain.cast_after(vote, closed_at) or has_seen(doc, key)):
                continue
            after = await self.store.change(self.store.votes, vote.vote_id, self._retracted_late(key))
            if vote.campaign_id is not None:
                # Its points go back to the voter's budget.
                released = IdeaView(vote.idea_id, str(IdeaStatus.DELIVERED), vote.campaign_id)
                await self._reserve(vote.voter_key, released, 0, check=False)
            if (entry := recent_fact(after, key)) is not None:
                await self._publish([(vote.vote_id, entry)], origin=Origin.KAFKA)
                retracted += 1
        return retracted

    def _retracted_late(self, key: str) -> Any:
        def retract(current: StoredVote) -> tuple[StoredVote, domain.Fact] | None:
            withdrawal = Withdrawal(idea_id=current.idea_id, voter=current.voter)
            withdrawn = domain.withdraw(withdrawal, current=current, now=utc_now())
            return (
                (withdrawn[0], domain.retracted_fact(withdrawn[1], source=self.source)) if withdrawn else None
            )

        return self._once_per_key(key, retract)

    async def _merge(self, idea_id: str, into_idea_id: str, *, key: str) -> None:
        if await self.store.idea_view(into_idea_id) is None:
            # The target's creation sits on another partition; move the votes when it comes.
            await self.store.record({idea_id: {"merge_pending": key}}, {})
            return
        await self.move_votes(idea_id, into_idea_id, key=key)


def _has_budget(idea: IdeaView | None) -> bool:
    return idea is not None and idea.is_open and idea.vote_budget is not None
