"""The ideas service's use cases: one entry per operation, called alike by HTTP and Kafka intake."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel

from centricity_contracts.campaigns import CampaignCreated, CampaignLaunch, CampaignLaunched, CampaignRecord
from centricity_contracts.envelope import CloudEvent
from centricity_contracts.ideas import (
    AttestationGiven,
    AttestationGiving,
    Comment,
    CommentPosted,
    CommentPosting,
    DuplicateFlag,
    DuplicateFlagged,
    DuplicateSuggestion,
    IdeaAttested,
    IdeaCommented,
    IdeaDuplicatesSuggested,
    IdeaEdited,
    IdeaFollowUpNeeded,
    IdeaMerged,
    IdeaRecord,
    IdeaRevised,
    IdeaRevision,
    IdeaStatusChanged,
    IdeaStatusSet,
    IdeaSubmission,
    IdeaTarget,
    IdeaWithdrawal,
    IdeaWithdrawn,
    LikelyDuplicate,
    StatusDecision,
)
from centricity_contracts.topics import IDEAS_EVENTS
from centricity_ideas import domain
from centricity_ideas.domain import Idea
from centricity_ideas.similarity import SimilarityIndex
from centricity_ideas.store import (
    CREATED_FIELD,
    DUPLICATES_CHECKED_AT,
    EMBEDDING,
    SEEN_KEYS_KEPT,
    IdeaFilter,
    IdeaSort,
    IdeaStore,
    carried_fields,
    has_current_embedding,
    idea_document,
    stored_idea,
)
from centricity_plumbing.answerlinks import AnswerLink, AnswerLinkInvalid
from centricity_plumbing.audit import Cause
from centricity_plumbing.clock import utc_now
from centricity_plumbing.idempotency import Origin, has_seen, remember, seen_keys
from centricity_plumbing.memory import release_freed_memory
from centricity_plumbing.mongo import Document
from centricity_plumbing.outbox import Outbox, current_trace, outbox_entry, pending_entries
from centricity_plumbing.priority import Foreground, lower_thread_priority
from centricity_plumbing.rules import NotFound, RuleViolation
from centricity_plumbing.settings import ServiceSettings
from centricity_plumbing.visibility import Viewer

log = logging.getLogger(__name__)
T = TypeVar("T")

LIKELY_DUPLICATES = 3
INTAKE_BATCH = 2000
INDEX_REFRESH_S = 5.0


@dataclass(frozen=True)
class Submission:
    submission: IdeaSubmission
    businessunit: str
    origin: Origin
    request_key: str | None = None

    @property
    def idea_id(self) -> str:
        return domain.idea_id_for(self.businessunit, self.submission.reference)

    @property
    def cause(self) -> Cause | None:
        """A Kafka record's own cause; an HTTP request's is the current one."""
        return None if self.origin is Origin.HTTP else Cause.of_intake(self.businessunit, self.request_key)


def _created_by(doc: Document, request_keys: set[str], *, inserted_now: bool) -> bool:
    """Whether one of these intake events created the stored idea, so its kept created fact is due."""
    if CREATED_FIELD not in doc:
        return False
    return inserted_now or not request_keys.isdisjoint(seen_keys(doc))


def kept_suggestion(doc: Document) -> DuplicateSuggestion:
    """The likely duplicates an idea keeps, as first found."""
    idea = stored_idea(doc)
    return DuplicateSuggestion(
        idea_id=idea.idea_id,
        businessunit=idea.businessunit,
        likely_duplicates=idea.likely_duplicates,
        checked_at=doc.get(DUPLICATES_CHECKED_AT) or idea.updated_at,
    )


def searchable(idea: IdeaRecord) -> tuple[str, str, str, str, str]:
    return (idea.idea_id, idea.businessunit, idea.title, idea.description, idea.status)


class IdeaOperations:
    """What business units do with ideas; each change stores its fact with it, then publishes it."""

    def __init__(
        self,
        store: IdeaStore,
        outbox: Outbox,
        index: SimilarityIndex,
        settings: ServiceSettings,
        follow_up_policy: domain.FollowUpPolicy | None = None,
    ) -> None:
        self.store = store
        self.follow_up_policy = follow_up_policy or domain.FollowUpPolicy()
        self.outbox = outbox
        self.index = index
        self.settings = settings
        self.source = settings.fact_source()
        self._indexed_until: datetime | None = None
        # The use case each intake type calls; submissions are stored in bulk by `submit_many`.
        # A test checks that every intake type of the registry has one.
        self.intake_use_cases: dict[type[CloudEvent[Any]], Callable[..., Awaitable[Any]]] = {
            IdeaRevised: self.revise,
            IdeaStatusSet: self.set_status,
            IdeaWithdrawn: self.withdraw,
            CommentPosted: self.comment,
            DuplicateFlagged: self.merge,
            AttestationGiven: self.attest,
            CampaignLaunched: self.launch_campaign,
        }
        # Likely duplicates are looked for after intake: in lulls of intake, at a lower CPU priority.
        self.intake = Foreground()
        self.background_work = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="duplicates", initializer=lower_thread_priority
        )

    async def _in_background(self, work: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.background_work, work, *args)

    def target_id(self, target: IdeaTarget, businessunit: str) -> str:
        if target.idea_id is not None:
            return target.idea_id
        assert target.reference is not None
        return domain.idea_id_for(businessunit, target.reference)

    def fact(
        self, event_class: type[CloudEvent[Any]], data: BaseModel, *, subject: str, event_id: str, unit: str
    ) -> CloudEvent[Any]:
        return event_class.build(
            id=event_id, source=self.source, businessunit=unit, subject=subject, data=data
        )

    async def apply_intake(self, event: CloudEvent[Any]) -> None:
        """Apply one intake event other than a submission, idempotently by its `source` + `id`."""
        use_case = self.intake_use_cases[type(event)]
        await use_case(event.data, businessunit=event.businessunit, request_key=event.dedup_key())

    # Reads ---------------------------------------------------------------------------------

    async def idea(self, idea_id: str) -> Idea:
        idea = await self.store.get(idea_id)
        if idea is None:
            raise NotFound("idea", idea_id)
        return idea

    async def seen_idea(self, idea_id: str, viewer: Viewer) -> Idea:
        idea = await self.idea(idea_id)
        domain.check_visible(idea, viewer)
        return (await self.seen([idea], viewer))[0]

    async def seen(self, ideas: list[Idea], viewer: Viewer) -> list[Idea]:
        """Ideas as a reader may see them (see `domain.as_seen_by`)."""
        hidden: set[str] = set()
        if not viewer.sees_internal_only:
            hidden = await self.store.internal_only_among(
                {d.idea_id for idea in ideas for d in idea.likely_duplicates}
            )
        return [domain.as_seen_by(idea, viewer, hidden=hidden) for idea in ideas]

    async def page(
        self, *, where: IdeaFilter, sort: IdeaSort, limit: int, cursor: str | None, viewer: Viewer
    ) -> tuple[list[Idea], str | None]:
        where = replace(where, with_internal_only=viewer.sees_internal_only)
        ideas, next_cursor = await self.store.page(where=where, sort=sort, limit=limit, cursor=cursor)
        return await self.seen(ideas, viewer), next_cursor

    async def search(self, query: str, *, limit: int, viewer: Viewer) -> list[tuple[Idea, float]]:
        """Ideas whose title and description cover the query best, with how well."""
        hits = self.index.search(query, limit=limit)
        found = await self.store.ideas_by_id([idea_id for idea_id, _ in hits])
        visible = [
            (found[idea_id], score)
            for idea_id, score in hits
            if idea_id in found and (viewer.sees_internal_only or not found[idea_id].internal_only)
        ]
        seen = await self.seen([idea for idea, _ in visible], viewer)
        return [(idea, score) for idea, (_, score) in zip(seen, visible, strict=True)]

    async def comments(
        self, idea_id: str, viewer: Viewer, *, offset: int = 0, limit: int = 0
    ) -> list[Comment]:
        await self.seen_idea(idea_id, viewer)
        page = await self.store.comments_of(idea_id, skip=offset, limit=limit)
        return [domain.comment_as_seen_by(c, viewer) for c in page]

    async def campaign(self, campaign_id: str) -> CampaignRecord:
        found = await self.store.get_campaign(campaign_id)
        if found is None:
            raise NotFound("campaign", campaign_id)
        return found

    async def campaigns(
        self, businessunit: str | None, *, limit: int, offset: int = 0
    ) -> list[CampaignRecord]:
        return await self.store.list_campaigns(businessunit, limit=limit, offset=offset)

    async def remember_voter(self, vote_id: str, idea_id: str) -> None:
        """A vote fact says who voted on which idea: voters may attest the delivered idea."""
        await self.store.remember_voter(vote_id, idea_id)

    # Submissions ---------------------------------------------------------------------------

    async def submit(self, submission: IdeaSubmission, *, businessunit: str) -> tuple[Idea, bool]:
        """Take one idea in, with its likely duplicates in the answer."""
        (outcome,) = await self.submit_many(
            [Submission(submission, businessunit, Origin.HTTP)], find_duplicates=True
        )
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def submit_many(
        self, items: Sequence[Submission], *, find_duplicates: bool = False
    ) -> list[tuple[Idea, bool] | RuleViolation]:
        """Store many submissions with one bulk write; each gets its idea, or the rule it broke.

        Without `find_duplicates` the likely duplicates follow later, from the duplicate finder,
        so that a burst is stored at the store's pace rather than the similarity search's.

        A submission is new unless its business unit already submitted its reference.
        """
        now = utc_now()
        outcomes: dict[int, tuple[Idea, bool] | RuleViolation] = {}
        fresh: dict[str, tuple[int, Submission]] = {}
        refused: dict[int, Submission] = {}
        campaigns: dict[str, CampaignRecord | None] = {}
        for position, item in enumerate(items):
            if item.idea_id in fresh:
                continue
            try:
                await self._check_campaign(item, campaigns, now)
            except RuleViolation as error:
                outcomes[position] = error
                refused[position] = item
                continue
            fresh[item.idea_id] = (position, item)
        keys: dict[str, set[str]] = {}
        for item in items:
            if item.request_key:
                keys.setdefault(item.idea_id, set()).add(item.request_key)
        stored = await self._store_new(list(fresh.values()), keys, now, find_duplicates)
        outcomes.update(await self._already_stored(refused, keys))
        for position, item in enumerate(items):
            if position not in outcomes:
                idea, created = stored[item.idea_id]
                outcomes[position] = (idea, created and fresh[item.idea_id][0] == position)
        return [outcomes[position] for position in range(len(items))]

    async def _already_stored(
        self, refused: dict[int, Submission], keys: dict[str, set[str]]
    ) -> dict[int, tuple[Idea, bool]]:
        """Refused submissions whose idea exists after all: redeliveries after the campaign closed."""
        found = await self.store.documents([item.idea_id for item in refused.values()])
        await self.outbox.publish_entries(
            [
                doc[CREATED_FIELD]
                for doc in found.values()
                if _created_by(doc, keys.get(doc["_id"], set()), inserted_now=False)
            ]
        )
        return {
            position: (stored_idea(found[item.idea_id]), False)
            for position, item in refused.items()
            if item.idea_id in found
        }

    async def _store_new(
        self,
        accepted: list[tuple[int, Submission]],
        keys: dict[str, set[str]],
        now: datetime,
        find_duplicates: bool,
    ) -> dict[str, tuple[Idea, bool]]:
        """Insert new ideas in bulk with their facts, and publish the facts (again for a
        redelivered event whose idea is stored: `keys` are each idea's intake event keys)."""
        if not accepted:
            return {}
        duplicates: list[list[LikelyDuplicate] | None] = [None] * len(accepted)
        embeddings: dict[str, Document] = {}
        if find_duplicates:
            # Encoding takes milliseconds of CPU per idea: off the event loop.
            found, embedded = await asyncio.to_thread(
                self.index.similar_and_embedded,
                [(i.submission.title, i.submission.description) for _, i in accepted],
                limit=LIKELY_DUPLICATES,
                exclude=[i.idea_id for _, i in accepted],
            )
            duplicates = list(found)
            embeddings = {i.idea_id: e for (_, i), e in zip(accepted, embedded, strict=True)}
        ideas = [
            domain.new_idea(
                item.submission, businessunit=item.businessunit, now=now, likely_duplicates=likely
            )
            for (_, item), likely in zip(accepted, duplicates, strict=True)
        ]
        trace = current_trace()
        docs = [
            {
                **self._new_document(idea, item, trace),
                **({EMBEDDING: embeddings[idea.idea_id]} if idea.idea_id in embeddings else {}),
            }
            for idea, (_, item) in zip(ideas, accepted, strict=True)
        ]
        stored, existed = await self.store.insert_new(docs)
        if find_duplicates:
            # Ideas taken in without their duplicates join the index in the duplicate finder.
            new_ideas = [searchable(i) for i in ideas if i.idea_id not in existed]
            await asyncio.to_thread(self.index.add, new_ideas, embeddings)
        await self.outbox.deliver_many([doc for doc in stored if pending_entries(doc)])
        await self.outbox.publish_entries(
            [
                doc[CREATED_FIELD]
                for doc in stored
                if _created_by(doc, keys.get(doc["_id"], set()), inserted_now=doc["_id"] not in existed)
            ]
        )
        made = {idea.idea_id: idea for idea in ideas}
        return {
            doc["_id"]: (stored_idea(doc), False) if doc["_id"] in existed else (made[doc["_id"]], True)
            for doc in stored
        }

    def _new_document(self, idea: Idea, item: Submission, trace: dict[str, str]) -> Document:
        entry = self._created_entry(idea, trace, item.cause)
        seen = remember([], item.request_key, SEEN_KEYS_KEPT)
        if item.origin.keeps_facts_pending:
            return {**idea_document(idea, outbox=[entry], seen=seen), "revision": 1}
        # The redelivery of the intake record republishes the kept fact, so no second write is
        # needed to clear it.
        return {**idea_document(idea, outbox=[], seen=seen), CREATED_FIELD: entry, "revision": 1}

    def _created_entry(
        self, idea: Idea, trace: dict[str, str] | None = None, cause: Cause | None = None
    ) -> Document:
        return outbox_entry(
            domain.created_fact(idea, source=self.source),
            topic=IDEAS_EVENTS,
            key=idea.idea_id,
            trace=trace,
            cause=cause,
        )

    async def _check_campaign(
        self, item: Submission, cache: dict[str, CampaignRecord | None], now: datetime
    ) -> None:
        campaign_id = item.submission.campaign_id
        if campaign_id is None:
            return
        if campaign_id not in cache:
            cache[campaign_id] = await self.store.get_campaign(campaign_id)
        campaign = cache[campaign_id]
        if campaign is None:
            raise NotFound("campaign", campaign_id)
        domain.check_campaign_accepts(campaign, businessunit=item.businessunit, now=now)

    # Changes to one idea ---------------------------------------------------------------------

    async def _change(
        self,
        idea_id: str,
        request_key: str | None,
        apply: Callable[[Idea, str], tuple[Idea, CloudEvent[Any] | list[CloudEvent[Any]] | None]],
    ) -> Idea:
        """Apply a rule to the stored idea once per request key, storing its facts in the same write.

        The idea's window of seen keys holds the latest only: a key applied earlier than those is
        found among the applied requests, recorded after each write. A crash in between leaves
        only the latest key unrecorded, which the window holds."""
        applied = request_key is not None and bool(await self.store.applied_requests.among([request_key]))

        def next_document(doc: Document | None) -> Document | None:
            if doc is None:
                raise NotFound("idea", idea_id)
            seen = seen_keys(doc)
            if applied or has_seen(doc, request_key):
                return None
            fact_id = f"{idea_id}:r{doc.get('revision', 0) + 1}"
            changed, made = apply(stored_idea(doc), fact_id)
            facts = made if isinstance(made, list) else [made] if made is not None else []
            keys = remember(seen, request_key, SEEN_KEYS_KEPT)
            if not facts and keys == seen:
                return None
            entries = [outbox_entry(fact, topic=IDEAS_EVENTS, key=idea_id) for fact in facts]
            return {
                **idea_document(changed, outbox=[*pending_entries(doc), *entries], seen=keys),
                **carried_fields(doc),
            }

        doc = await self.store.change(idea_id, next_document)
        if request_key is not None and not applied:
            await self.store.applied_requests.add([request_key])
        await self.outbox.deliver(doc)
        assert doc is not None
        return stored_idea(doc)

    async def revise(
        self, revision: IdeaRevision, *, businessunit: str, request_key: str | None = None
    ) -> Idea:
        idea_id = self.target_id(revision, businessunit)

        def apply(idea: Idea, fact_id: str) -> tuple[Idea, CloudEvent[Any] | None]:
            changed, edit = domain.edit(idea, revision, businessunit=businessunit, now=utc_now())
            fact = (
                self.fact(IdeaEdited, edit, subject=idea_id, event_id=fact_id, unit=idea.businessunit)
                if edit
                else None
            )
            return changed, fact

        idea = await self._change(idea_id, request_key, apply)
        await self._reindex(idea, text_may_change=True)
        return idea

    async def set_status(
        self, decision: StatusDecision, *, businessunit: str, request_key: str | None = None
    ) -> Idea:
        idea_id = self.target_id(decision, businessunit)

        def apply(idea: Idea, fact_id: str) -> tuple[Idea, CloudEvent[Any] | None]:
            changed, change = domain.change_status(idea, decision, businessunit=businessunit, now=utc_now())
            return changed, self.fact(
                IdeaStatusChanged, change, subject=idea_id, event_id=fact_id, unit=idea.businessunit
            )

        return await self._change(idea_id, request_key, apply)

    async def withdraw(
        self, withdrawal: IdeaWithdrawal, *, businessunit: str, request_key: str | None = None
    ) -> Idea:
        """The author or the idea's unit takes it back: it closes, and voting on it with it."""
        idea_id = self.target_id(withdrawal, businessunit)

        def apply(idea: Idea, fact_id: str) -> tuple[Idea, CloudEvent[Any] | None]:
            changed, change = domain.withdraw(idea, withdrawal, businessunit=businessunit, now=utc_now())
            return changed, self.fact(
                IdeaStatusChanged, change, subject=idea_id, event_id=fact_id, unit=idea.businessunit
            )

        return await self._change(idea_id, request_key, apply)

    async def comment(
        self, posting: CommentPosting, *, businessunit: str, request_key: str | None = None
    ) -> Comment | None:
        """The comment, stored once per request key; None when a crash came between counting it
        and storing it, until its fact (published with the count) has restored it."""
        idea_id = self.target_id(posting, businessunit)
        comment_id = str(
            uuid.uuid5(domain.IDEA_NAMESPACE, f"comment\x1f{idea_id}\x1f{request_key or uuid.uuid4()}")
        )
        made: list[Comment] = []

        def apply(idea: Idea, fact_id: str) -> tuple[Idea, CloudEvent[Any] | None]:
            changed, comment = domain.add_comment(
                idea, posting, businessunit=businessunit, comment_id=comment_id, now=utc_now()
            )
            made[:] = [comment]
            return changed, self.fact(
                IdeaCommented, comment, subject=idea_id, event_id=fact_id, unit=businessunit
            )

        await self._change(idea_id, request_key, apply)
        if made:
            await self.store.add_comment(made[0])
            return made[0]
        return await self.store.comment(comment_id)

    async def keep_comments(self, comments: Sequence[Comment]) -> None:
        """Store the comments of commented facts that are not stored yet: the idea's write (its
        count and the fact) and the comment's are two, and a crash may come between them."""
        await self.store.add_comments(comments)

    async def merge(self, flag: DuplicateFlag, *, businessunit: str, request_key: str | None = None) -> Idea:
        duplicate_id = self.target_id(flag, businessunit)
        target = await self.store.get(flag.into_idea_id)
        if target is None:
            raise NotFound("idea", flag.into_idea_id)

        def apply(idea: Idea, fact_id: str) -> tuple[Idea, CloudEvent[Any] | None]:
            domain.check_owner(idea, businessunit, "merge")
            if idea.duplicate_of == target.idea_id:
                return idea, None
            closed, merge = domain.merge(idea, target, businessunit=businessunit, by=flag.by, now=utc_now())
            return closed, self.fact(
                IdeaMerged, merge, subject=duplicate_id, event_id=fact_id, unit=idea.businessunit
            )

        duplicate = await self._change(duplicate_id, request_key, apply)
        await self._link_merged(target.idea_id, duplicate_id)
        await self._reindex(duplicate, text_may_change=False)
        return duplicate

    async def _reindex(self, idea: Idea, *, text_may_change: bool) -> None:
        """Index a changed idea now; an edit's new embedding is stored with it."""
        await asyncio.to_thread(self.index.add, [searchable(idea)])
        if text_may_change:
            await self.store.save_embeddings(self.index.embeddings([idea.idea_id]))

    async def _link_merged(self, target_id: str, duplicate_id: str) -> None:
        def next_document(doc: Document | None) -> Document | None:
            if doc is None:
                raise NotFound("idea", target_id)
            linked = domain.absorb(stored_idea(doc), duplicate_id, now=utc_now())
            if linked is None:
                return None
            return {
                **idea_document(linked, outbox=pending_entries(doc), seen=seen_keys(doc)),
                **carried_fields(doc),
            }

        await self.store.change(target_id, next_document)

    async def attest(
        self, giving: AttestationGiving, *, businessunit: str, request_key: str | None = None
    ) -> Idea:
        idea_id = self.target_id(giving, businessunit)
        voted = await self.store.has_voted(idea_id, giving.customer.key(businessunit))

        def apply(idea: Idea, fact_id: str) -> tuple[Idea, list[CloudEvent[Any]]]:
            now = utc_now()
            changed, attestation = domain.attest(
                idea, giving, businessunit=businessunit, voted=voted, now=now
            )
            if attestation is None:
                return changed, []
            facts: list[CloudEvent[Any]] = [
                self.fact(
                    IdeaAttested, attestation, subject=idea_id, event_id=fact_id, unit=idea.businessunit
                )
            ]
            flagged = domain.follow_up(changed, self.follow_up_policy, now=now)
            if flagged is not None:
                changed, follow_up = flagged
                facts.append(
                    self.fact(
                        IdeaFollowUpNeeded,
                        follow_up,
                        subject=idea_id,
                        event_id=f"{fact_id}.follow-up",
                        unit=idea.businessunit,
                    )
                )
            return changed, facts

        return await self._change(idea_id, request_key, apply)

    def answer_link(self, token: str) -> AnswerLink:
        try:
            return AnswerLink.decode(token, self.settings.answer_link_secret.get_secret_value())
        except AnswerLinkInvalid as error:
            raise domain.LinkInvalid(error.reason) from error

    async def answer_link_used(self, link: AnswerLink) -> bool:
        return await self.store.link_used(link.link_id)

    async def answer_by_link(
        self, token: str, *, helped: bool, comment: str | None
    ) -> tuple[AnswerLink, Idea]:
        """The customer a link was made for answers whether the idea helped; each link answers once.

        The answer is recorded before the link is marked used: a crash in between leaves the link
        good for one more answer, never an answer lost.
        """
        link = self.answer_link(token)
        if await self.answer_link_used(link):
            raise domain.LinkUsed(
                "You answered with this link already; to change your answer, sign in and attest again."
            )
        giving = AttestationGiving(
            idea_id=link.idea_id, customer=link.customer, helped=helped, comment=comment
        )
        idea = await self.attest(giving, businessunit=link.businessunit)
        await self.store.use_link(link.link_id, idea_id=link.idea_id, at=utc_now().isoformat())
        return link, idea

    async def launch_campaign(
        self, launch: CampaignLaunch, *, businessunit: str, request_key: str | None = None
    ) -> tuple[CampaignRecord, bool]:
        """Launch a campaign, idempotently by the unit's reference (so `request_key` is not needed)."""
        unit = self.settings.business_units[businessunit]
        campaign = domain.launch_campaign(
            launch, businessunit=businessunit, may_launch_enterprise=unit.enterprise, now=utc_now()
        )
        stored, created = await self.store.add_campaign(campaign)
        if created:
            fact = self.fact(
                CampaignCreated,
                stored,
                subject=stored.campaign_id,
                event_id=f"{stored.campaign_id}:created",
                unit=businessunit,
            )
            await self.outbox.publish_now(fact, topic=IDEAS_EVENTS, key=stored.campaign_id)
        return stored, created

    # Likely duplicates and the similarity index ---------------------------------------------

    async def suggest_duplicates(self, ideas: list[IdeaRecord]) -> None:
        """Find the likely duplicates of ideas taken in without them: one search, one bulk write.

        The suggestion is state the idea keeps, so a redelivery republishes what is stored under
        the same event id, without searching again: a crash between the write and the publish
        loses nothing. Ideas this service's store does not hold are left alone.
        """
        stored = await self.store.documents([i.idea_id for i in ideas if not i.duplicates_checked])
        unchecked = [i for i in ideas if i.idea_id in stored and not stored[i.idea_id]["duplicates_checked"]]
        suggestions = [kept_suggestion(doc) for doc in stored.values() if doc["duplicates_checked"]]
        if unchecked:
            suggestions += await self._search_and_record(unchecked)
            await self._in_background(release_freed_memory)
        trace = current_trace()
        await self.outbox.publish_entries(
            [
                outbox_entry(self._suggestion_fact(s), topic=IDEAS_EVENTS, key=s.idea_id, trace=trace)
                for s in suggestions
            ]
        )

    async def _search_and_record(self, ideas: list[IdeaRecord]) -> list[DuplicateSuggestion]:
        # Ideas of one burst join the index first, so that twins within the burst find each other.
        found = await self._in_background(self._index_and_search, ideas)
        checked_at = utc_now()
        suggestions = [
            DuplicateSuggestion(
                idea_id=idea.idea_id,
                businessunit=idea.businessunit,
                likely_duplicates=likely,
                checked_at=checked_at,
            )
            for idea, likely in zip(ideas, found, strict=True)
        ]
        embeddings = self.index.embeddings(s.idea_id for s in suggestions)
        if await self.store.record_duplicates(suggestions, embeddings):
            return suggestions
        # Another replica checked some meanwhile (a rebalance): what they keep was published.
        stored = await self.store.documents([s.idea_id for s in suggestions])
        return [kept_suggestion(doc) for doc in stored.values()]

    def _index_and_search(self, ideas: list[IdeaRecord]) -> list[list[LikelyDuplicate]]:
        self.index.add([searchable(idea) for idea in ideas])
        return self.index.similar(
            [(idea.title, idea.description) for idea in ideas],
            limit=LIKELY_DUPLICATES,
            exclude=[idea.idea_id for idea in ideas],
        )

    def _suggestion_fact(self, suggestion: DuplicateSuggestion) -> CloudEvent[Any]:
        return self.fact(
            IdeaDuplicatesSuggested,
            suggestion,
            subject=suggestion.idea_id,
            event_id=f"{suggestion.idea_id}:duplicates",
            unit=suggestion.businessunit,
        )

    async def refresh_index(self) -> None:
        """Bring in ideas that other replicas stored since the last refresh."""
        started = utc_now()
        docs = await self.store.searchable(self._indexed_until)
        items = [
            (d["_id"], d["businessunit"], d["title"], d.get("description", ""), d["status"]) for d in docs
        ]
        stored = {d["_id"]: d[EMBEDDING] for d in docs if EMBEDDING in d}
        await self._in_background(self.index.add, items, stored)
        # Ideas stored without an embedding of their current text get the one just made.
        await self.store.save_embeddings(
            self.index.embeddings(d["_id"] for d in docs if not has_current_embedding(d))
        )
        # Times are taken before writes land, so the next poll looks a little further back.
        self._indexed_until = started - timedelta(seconds=INDEX_REFRESH_S)

    async def keep_index_fresh(self) -> None:
        while True:
            await asyncio.sleep(INDEX_REFRESH_S)
            try:
                await self.refresh_index()
            except Exception:
                log.exception("refreshing the similarity index failed")
