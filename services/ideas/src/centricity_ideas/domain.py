"""Rules for ideas and campaigns. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from centricity_contracts.campaigns import CampaignLaunch, CampaignRecord, CampaignScope
from centricity_contracts.customers import Actor, Customer, CustomerType
from centricity_contracts.ideas import (
    Attestation,
    AttestationGiving,
    Comment,
    CommentPosting,
    FollowUp,
    IdeaCreated,
    IdeaEdit,
    IdeaRecord,
    IdeaRevision,
    IdeaStatus,
    IdeaSubmission,
    IdeaWithdrawal,
    LikelyDuplicate,
    Merge,
    StatusChange,
    StatusDecision,
)

# Re-exported: the rules of ideas name ideas by these ids, which the contracts define.
from centricity_contracts.ids import IDEA_NAMESPACE as IDEA_NAMESPACE
from centricity_contracts.ids import campaign_id_for as campaign_id_for
from centricity_contracts.ids import idea_id_for as idea_id_for
from centricity_plumbing.rules import NotFound, RuleViolation
from centricity_plumbing.visibility import Viewer

MAIN_LINE = (
    IdeaStatus.SUBMITTED,
    IdeaStatus.UNDER_REVIEW,
    IdeaStatus.PLANNED,
    IdeaStatus.IN_PROGRESS,
    IdeaStatus.DELIVERED,
)
OPEN_STATUSES = frozenset(MAIN_LINE[:-1])
EDITABLE_FIELDS = ("title", "description", "tags")


class IllegalTransition(RuleViolation):
    kind = "illegal-transition"
    status = 409
    title = "Illegal transition"

    def __init__(self, detail: str, allowed: list[IdeaStatus] | None = None) -> None:
        super().__init__(detail)
        self.allowed = allowed or []

    def extensions(self) -> dict[str, Any]:
        return {"allowed": [str(s) for s in self.allowed]}


class ReasonRequired(RuleViolation):
    kind = "reason-required"
    status = 422
    title = "Reason required"


class ForeignBusinessUnit(RuleViolation):
    kind = "foreign-business-unit"
    status = 403
    title = "Foreign business unit"


class NotDelivered(RuleViolation):
    kind = "not-delivered"
    status = 409
    title = "Not delivered"


class InternalOnly(RuleViolation):
    kind = "internal-only"
    status = 403
    title = "Internal customers only"


class LinkUsed(RuleViolation):
    kind = "link-used"
    status = 409
    title = "This link was used already"


class LinkInvalid(RuleViolation):
    kind = "invalid-link"
    status = 400
    title = "Invalid link"


class NotAParticipant(RuleViolation):
    kind = "not-a-participant"
    status = 403
    title = "Not a participant"


class InvalidMerge(RuleViolation):
    kind = "invalid-merge"
    status = 409
    title = "Invalid merge"


class CampaignClosed(RuleViolation):
    kind = "campaign-closed"
    status = 409
    title = "Campaign closed"


class CampaignNotAllowed(RuleViolation):
    kind = "campaign-not-allowed"
    status = 403
    title = "Campaign not allowed"


class NotTheAuthor(RuleViolation):
    kind = "not-the-author"
    status = 403
    title = "Not the author"


class IdeaClosed(RuleViolation):
    kind = "idea-closed"
    status = 409
    title = "Idea closed"


class StatusEntry(BaseModel):
    from_status: IdeaStatus
    to_status: IdeaStatus
    reason: str | None = None
    by: Actor
    at: AwareDatetime


class EditEntry(BaseModel):
    changes: dict[str, dict[str, Any]]
    by: Actor
    at: AwareDatetime


class AttestationEntry(BaseModel):
    customer: Customer
    customer_businessunit: str
    helped: bool
    comment: str | None = None
    at: AwareDatetime


class Idea(IdeaRecord):
    """An idea with everything that happened to it."""

    updated_at: AwareDatetime
    status_history: list[StatusEntry] = Field(default_factory=list)
    edits: list[EditEntry] = Field(default_factory=list)
    first_response_at: AwareDatetime | None = None
    first_response_seconds: float | None = None
    duplicate_of: str | None = None
    merged_from: list[str] = Field(default_factory=list)
    comment_count: int = 0
    attestations: dict[str, AttestationEntry] = Field(
        default_factory=dict, description="Keyed by `<businessunit>:<customer_id>`: one per customer."
    )
    follow_up_needed_at: AwareDatetime | None = Field(
        default=None,
        description="Set when too many customers said the delivered idea did not help: its unit is to "
        "follow up, and may take it back to in_progress. Cleared when it does.",
    )

    @property
    def helped_count(self) -> int:
        return sum(1 for a in self.attestations.values() if a.helped)

    @property
    def did_not_help_count(self) -> int:
        return sum(1 for a in self.attestations.values() if not a.helped)


def as_seen_by(idea: Idea, viewer: Viewer, *, hidden: Collection[str] = ()) -> Idea:
    """The idea as a reader may see it: customers they may not identify under pseudonyms, and
    without the likely duplicates in `hidden` (internal-only ideas the reader may not see)."""
    attestations = {}
    for entry in idea.attestations.values():
        customer = viewer.customer(entry.customer_businessunit, entry.customer)
        key = customer.key(entry.customer_businessunit)
        attestations[key] = entry.model_copy(update={"customer": customer})
    return idea.model_copy(
        update={
            "author": viewer.customer(idea.businessunit, idea.author),
            "attestations": attestations,
            "likely_duplicates": [d for d in idea.likely_duplicates if d.idea_id not in hidden],
        }
    )


def comment_as_seen_by(comment: Comment, viewer: Viewer) -> Comment:
    if comment.author is None:
        return comment
    return comment.model_copy(update={"author": viewer.customer(comment.businessunit, comment.author)})


def check_visible(idea: IdeaRecord, viewer: Viewer) -> None:
    """An internal-only idea does not exist for readers who may not see it."""
    if idea.internal_only and not viewer.sees_internal_only:
        raise NotFound("idea", idea.idea_id)


def check_takes_part(idea: IdeaRecord, customer: Customer) -> None:
    """Only internal customers take part in an internal-only idea."""
    if idea.internal_only and customer.customer_type is not CustomerType.INTERNAL:
        raise InternalOnly(
            f"idea {idea.idea_id} is internal-only; {customer.customer_type} customers do not take part in it"
        )


def launch_campaign(
    launch: CampaignLaunch, *, businessunit: str, may_launch_enterprise: bool, now: datetime
) -> CampaignRecord:
    if launch.scope is CampaignScope.ENTERPRISE and not may_launch_enterprise:
        raise CampaignNotAllowed(f"business unit {businessunit!r} may not launch enterprise-wide campaigns")
    return CampaignRecord(
        **launch.model_dump(),
        campaign_id=campaign_id_for(businessunit, launch.reference),
        businessunit=businessunit,
        created_at=now,
    )


def check_campaign_accepts(campaign: CampaignRecord, *, businessunit: str, now: datetime) -> None:
    """Ideas may enter a campaign only while it is open, and only from units it is meant for."""
    if not campaign.opens_at <= now < campaign.closes_at:
        raise CampaignClosed(
            f"campaign {campaign.campaign_id!r} takes ideas from {campaign.opens_at.isoformat()} "
            f"until {campaign.closes_at.isoformat()}"
        )
    if campaign.scope is CampaignScope.BUSINESSUNIT and campaign.businessunit != businessunit:
        raise CampaignNotAllowed(
            f"campaign {campaign.campaign_id!r} is for business unit {campaign.businessunit!r}"
        )


def new_idea(
    submission: IdeaSubmission,
    *,
    businessunit: str,
    now: datetime,
    likely_duplicates: list[LikelyDuplicate] | None,
) -> Idea:
    """A submitted idea; `likely_duplicates` None means they are still to be looked for."""
    return Idea(
        **submission.model_dump(),
        idea_id=idea_id_for(businessunit, submission.reference),
        businessunit=businessunit,
        created_at=now,
        updated_at=now,
        likely_duplicates=likely_duplicates or [],
        duplicates_checked=likely_duplicates is not None,
    )


def record_of(idea: Idea) -> IdeaRecord:
    # An Idea is a valid IdeaRecord with more fields: only those are taken, not checked again.
    return IdeaRecord.model_construct(**{name: getattr(idea, name) for name in IdeaRecord.model_fields})


def created_fact(idea: Idea, *, source: str) -> IdeaCreated:
    """The fact that `idea` was created; its id is stable so a republish is recognisable."""
    return IdeaCreated.build(
        id=f"{idea.idea_id}:created",
        source=source,
        businessunit=idea.businessunit,
        subject=idea.idea_id,
        time=idea.created_at,
        data=record_of(idea),
    )


def allowed_next(status: IdeaStatus, *, follow_up_needed: bool = False) -> list[IdeaStatus]:
    if status is IdeaStatus.DELIVERED and follow_up_needed:
        return [IdeaStatus.IN_PROGRESS]  # the loop opens again
    if status not in OPEN_STATUSES:
        return []
    return [*MAIN_LINE[MAIN_LINE.index(status) + 1 :], IdeaStatus.DECLINED]


@dataclass(frozen=True)
class FollowUpPolicy:
    """When a delivered idea did not help enough: at least `min_answers` answers of which at least
    `not_helped_share` said it did not, or `not_helped_count` that did not, whatever the share."""

    min_answers: int = 3
    not_helped_share: float = 0.34
    not_helped_count: int = 10

    def describe(self) -> str:
        return (
            f"at least {self.min_answers} answers of which at least {self.not_helped_share:.0%} "
            f"did not help, or {self.not_helped_count} that did not"
        )

    def needed(self, attested: int, not_helped: int) -> bool:
        if not_helped >= self.not_helped_count:
            return True
        return attested >= self.min_answers and not_helped / attested >= self.not_helped_share


def follow_up(idea: Idea, policy: FollowUpPolicy, *, now: datetime) -> tuple[Idea, FollowUp] | None:
    """The idea flagged for follow-up, and the fact saying so, when its answers now call for it."""
    if idea.status is not IdeaStatus.DELIVERED or idea.follow_up_needed_at is not None:
        return None
    attested, not_helped = len(idea.attestations), idea.did_not_help_count
    if not policy.needed(attested, not_helped):
        return None
    flagged = idea.model_copy(update={"follow_up_needed_at": now})
    fact = FollowUp(
        idea_id=idea.idea_id,
        businessunit=idea.businessunit,
        attested=attested,
        not_helped=not_helped,
        not_helped_share=round(not_helped / attested, 6) if attested else 0.0,
        threshold=policy.describe(),
        needed_at=now,
    )
    return flagged, fact


def check_owner(idea: Idea, businessunit: str, action: str) -> None:
    if idea.businessunit != businessunit:
        raise ForeignBusinessUnit(
            f"only business unit {idea.businessunit!r}, where idea {idea.idea_id} was submitted, "
            f"may {action} it"
        )


def change_status(
    idea: Idea, decision: StatusDecision, *, businessunit: str, now: datetime
) -> tuple[Idea, StatusChange]:
    """Move an idea forward on the main line, or decline it with a reason."""
    check_owner(idea, businessunit, "change the status of")
    target = decision.status
    if target is IdeaStatus.DUPLICATE:
        raise IllegalTransition("an idea becomes a duplicate by merging it into another idea")
    if target is IdeaStatus.WITHDRAWN:
        raise IllegalTransition("an idea is withdrawn with a withdrawal, by its author or its unit")
    allowed = allowed_next(idea.status, follow_up_needed=idea.follow_up_needed_at is not None)
    if target not in allowed:
        listed = ", ".join(allowed) or "none: it is closed"
        raise IllegalTransition(
            f"an idea cannot go from {idea.status} to {target}; allowed: {listed}", allowed
        )
    if target is IdeaStatus.DECLINED and not (decision.reason or "").strip():
        raise ReasonRequired("declining an idea needs a reason")
    changed, fact = moved(idea, target, reason=decision.reason, by=decision.by, now=now)
    if idea.status is IdeaStatus.DELIVERED:  # reopened to follow up: the flag has done its work
        changed = changed.model_copy(update={"follow_up_needed_at": None})
    return changed, fact


def withdraw(
    idea: Idea, withdrawal: IdeaWithdrawal, *, businessunit: str, now: datetime
) -> tuple[Idea, StatusChange]:
    """The author (through the unit) or the unit takes an open idea back; it is closed for good."""
    check_owner(idea, businessunit, "withdraw")
    author = withdrawal.author
    if author is not None and author.customer_id != idea.author.customer_id:
        raise NotTheAuthor(f"only the author of idea {idea.idea_id} may ask to withdraw it")
    if idea.status not in OPEN_STATUSES:
        raise IllegalTransition(f"idea {idea.idea_id} is {idea.status} and can no longer be withdrawn")
    # A withdrawal is not the unit answering the idea: the first-response clock is left alone.
    return moved(
        idea, IdeaStatus.WITHDRAWN, reason=withdrawal.reason, by=withdrawal.by, now=now, response=False
    )


def moved(
    idea: Idea,
    target: IdeaStatus,
    *,
    reason: str | None,
    by: Actor,
    now: datetime,
    response: bool = True,
) -> tuple[Idea, StatusChange]:
    """The idea in its new status, with the entry in its history and the fact saying so; the first
    `response` from the unit also stops the first-response clock."""
    first_response = response and idea.first_response_at is None
    seconds = (now - idea.created_at).total_seconds() if first_response else None
    entry = StatusEntry(from_status=idea.status, to_status=target, reason=reason, by=by, at=now)
    changed = idea.model_copy(
        update={
            "status": target,
            "status_history": [*idea.status_history, entry],
            "first_response_at": now if first_response else idea.first_response_at,
            "first_response_seconds": seconds if first_response else idea.first_response_seconds,
            "updated_at": now,
        }
    )
    fact = StatusChange(
        idea_id=idea.idea_id,
        businessunit=idea.businessunit,
        from_status=idea.status,
        to_status=target,
        reason=reason,
        by=by,
        changed_at=now,
        first_response_seconds=seconds,
    )
    return changed, fact


def edit(
    idea: Idea, revision: IdeaRevision, *, businessunit: str, now: datetime
) -> tuple[Idea, IdeaEdit | None]:
    """Apply new field values; the history keeps what each was before. None when nothing changed."""
    check_owner(idea, businessunit, "edit")
    if idea.status not in OPEN_STATUSES:
        raise IdeaClosed(f"idea {idea.idea_id} is {idea.status} and can no longer be edited")
    changes = {
        field: {"before": getattr(idea, field), "after": value}
        for field in EDITABLE_FIELDS
        if (value := getattr(revision, field)) is not None and value != getattr(idea, field)
    }
    if not changes:
        return idea, None
    entry = EditEntry(changes=changes, by=revision.by, at=now)
    update = {field: change["after"] for field, change in changes.items()}
    changed = idea.model_copy(update={**update, "edits": [*idea.edits, entry], "updated_at": now})
    fact = IdeaEdit(
        idea_id=idea.idea_id, businessunit=idea.businessunit, changes=changes, by=revision.by, edited_at=now
    )
    return changed, fact


def add_comment(
    idea: Idea, posting: CommentPosting, *, businessunit: str, comment_id: str, now: datetime
) -> tuple[Idea, Comment]:
    if posting.official and idea.businessunit != businessunit:
        raise ForeignBusinessUnit(f"only staff of {idea.businessunit!r} can respond officially on this idea")
    if posting.author is not None:
        check_takes_part(idea, posting.author)
    comment = Comment(
        comment_id=comment_id,
        idea_id=idea.idea_id,
        businessunit=businessunit,
        body=posting.body,
        author=posting.author,
        staff=posting.staff,
        official=posting.official,
        commented_at=now,
    )
    return idea.model_copy(update={"comment_count": idea.comment_count + 1, "updated_at": now}), comment


def check_merge(duplicate: Idea, target: Idea, *, businessunit: str) -> None:
    check_owner(duplicate, businessunit, "merge")
    if duplicate.idea_id == target.idea_id:
        raise InvalidMerge("an idea cannot be merged into itself")
    if duplicate.status not in OPEN_STATUSES:
        raise InvalidMerge(f"idea {duplicate.idea_id} is {duplicate.status}; only open ideas can be merged")
    if target.status is IdeaStatus.DUPLICATE:
        raise InvalidMerge(
            f"idea {target.idea_id} is itself a duplicate of {target.duplicate_of}; merge into that"
        )


def merge(
    duplicate: Idea, target: Idea, *, businessunit: str, by: Actor, now: datetime
) -> tuple[Idea, Merge]:
    """Close `duplicate` as a duplicate of `target`; the fact tells others to move its votes."""
    check_merge(duplicate, target, businessunit=businessunit)
    entry = StatusEntry(
        from_status=duplicate.status,
        to_status=IdeaStatus.DUPLICATE,
        reason=f"duplicate of {target.idea_id}",
        by=by,
        at=now,
    )
    closed = duplicate.model_copy(
        update={
            "status": IdeaStatus.DUPLICATE,
            "duplicate_of": target.idea_id,
            "status_history": [*duplicate.status_history, entry],
            "updated_at": now,
        }
    )
    fact = Merge(
        idea_id=duplicate.idea_id,
        into_idea_id=target.idea_id,
        businessunit=duplicate.businessunit,
        by=by,
        merged_at=now,
    )
    return closed, fact


def absorb(target: Idea, duplicate_id: str, *, now: datetime) -> Idea | None:
    """Link a merged duplicate from the idea it went into; None if already linked."""
    if duplicate_id in target.merged_from:
        return None
    # The merged twin is no longer a likely duplicate of the idea it went into.
    likely = [d for d in target.likely_duplicates if d.idea_id != duplicate_id]
    return target.model_copy(
        update={
            "merged_from": [*target.merged_from, duplicate_id],
            "likely_duplicates": likely,
            "updated_at": now,
        }
    )


def attest(
    idea: Idea, giving: AttestationGiving, *, businessunit: str, voted: bool, now: datetime
) -> tuple[Idea, Attestation | None]:
    """Record whether a delivered idea helped its author or a voter; None if the answer is unchanged."""
    if idea.status is not IdeaStatus.DELIVERED:
        raise NotDelivered(f"idea {idea.idea_id} is {idea.status}; customers attest once it is delivered")
    key = giving.customer.key(businessunit)
    is_author = idea.businessunit == businessunit and idea.author.customer_id == giving.customer.customer_id
    if not (is_author or voted):
        raise NotAParticipant(f"customer {key} neither wrote nor voted on idea {idea.idea_id}")
    previous = idea.attestations.get(key)
    if previous is not None and (previous.helped, previous.comment) == (giving.helped, giving.comment):
        return idea, None
    entry = AttestationEntry(
        customer=giving.customer,
        customer_businessunit=businessunit,
        helped=giving.helped,
        comment=giving.comment,
        at=now,
    )
    changed = idea.model_copy(update={"attestations": {**idea.attestations, key: entry}, "updated_at": now})
    fact = Attestation(
        idea_id=idea.idea_id,
        customer=giving.customer,
        customer_businessunit=businessunit,
        helped=giving.helped,
        previous_helped=previous.helped if previous else None,
        comment=giving.comment,
        attested_at=now,
    )
    return changed, fact
