"""Idea events: what business units submit, and the facts the ideas service records."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints, model_validator

from centricity_contracts.customers import Actor, Customer, CustomerType
from centricity_contracts.envelope import BusinessUnitId, CloudEvent
from centricity_contracts.model import ContractModel
from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE

TITLE_MAX = 200
DESCRIPTION_MAX = 10_000
TAGS_MAX = 20

Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=40),
]


def _unique(tags: list[str] | None) -> list[str] | None:
    return list(dict.fromkeys(tags)) if tags is not None else None


Tags = Annotated[list[Tag], AfterValidator(_unique)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=TITLE_MAX)]
CommentBody = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]

IdeaId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="Centricity's id of an idea, derived from its business unit and reference.",
        examples=["5f0c7a3e-2b1d-5c4e-9a8f-1d2e3f4a5b6c"],
    ),
]


class IdeaSubmission(ContractModel):
    """An idea as a business-unit system submits it."""

    reference: str = Field(
        min_length=1,
        max_length=128,
        description="The business unit's own id for the idea; the same reference twice is one idea.",
        examples=["CRM-2291"],
    )
    title: Title = Field(examples=["Let me save my basket for later"])
    description: str = Field(
        default="",
        max_length=DESCRIPTION_MAX,
        examples=["I often build a basket on my phone and want to finish on my laptop."],
    )
    tags: Tags = Field(default_factory=list, max_length=TAGS_MAX, examples=[["checkout"]])
    author: Customer
    campaign_id: str | None = Field(
        default=None, max_length=64, description="The open campaign the idea answers, if any."
    )
    internal_only: bool = Field(
        default=False,
        description="Only internal customers (employees) and staff see the idea, and only internal "
        "customers vote on it or comment; its author must be internal.",
    )

    @model_validator(mode="after")
    def _internal_author(self) -> Self:
        if self.internal_only and self.author.customer_type != CustomerType.INTERNAL:
            raise ValueError("an internal-only idea has an internal author")
        return self


class IdeaSubmitted(CloudEvent[IdeaSubmission]):
    """Intake: a customer submitted an idea in a business-unit system."""

    topic: ClassVar[str] = IDEAS_INTAKE
    type: Literal["centricity.idea.submitted.v1"]


class IdeaStatus(StrEnum):
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    DECLINED = "declined"
    DUPLICATE = "duplicate"
    WITHDRAWN = "withdrawn"


# Voting on an idea closes once it is delivered, declined, merged into another or withdrawn.
CLOSED_TO_VOTING = frozenset(
    {IdeaStatus.DELIVERED, IdeaStatus.DECLINED, IdeaStatus.DUPLICATE, IdeaStatus.WITHDRAWN}
)


class LikelyDuplicate(ContractModel):
    idea_id: IdeaId
    businessunit: BusinessUnitId
    title: str
    similarity: float = Field(ge=0, le=1, description="1 is the same text.")


class IdeaRecord(IdeaSubmission):
    """An idea as the ideas service stored it."""

    idea_id: IdeaId
    businessunit: BusinessUnitId
    created_at: AwareDatetime
    status: IdeaStatus = IdeaStatus.SUBMITTED
    likely_duplicates: list[LikelyDuplicate] = Field(
        default_factory=list, description="Existing ideas of any unit that may ask the same, best first."
    )
    duplicates_checked: bool = Field(
        default=False,
        description="True once likely duplicates were looked for; ideas taken in from Kafka get them "
        "shortly after, in centricity.idea.duplicates_suggested.v1.",
    )


class IdeaCreated(CloudEvent[IdeaRecord]):
    """Fact: the ideas service recorded a new idea. Keyed by idea id."""

    topic: ClassVar[str] = IDEAS_EVENTS
    type: Literal["centricity.idea.created.v1"]


class IdeaTarget(ContractModel):
    """Names an idea by Centricity's id, or by the sending unit's own reference."""

    idea_id: IdeaId | None = None
    reference: str | None = Field(
        default=None, max_length=128, description="The sending unit's reference, instead of idea_id."
    )

    @model_validator(mode="after")
    def _names_one_idea(self) -> Self:
        if (self.idea_id is None) == (self.reference is None):
            raise ValueError("give exactly one of idea_id and reference")
        return self


class IdeaRevision(IdeaTarget):
    """New values for some of an idea's fields; absent fields stay as they are."""

    title: Title | None = None
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    tags: Tags | None = Field(default=None, max_length=TAGS_MAX)
    by: Actor


class IdeaRevised(CloudEvent[IdeaRevision]):
    """Intake: the idea's unit edited it in its own system."""

    topic: ClassVar[str] = IDEAS_INTAKE
    type: Literal["centricity.idea.revised.v1"]


class StatusDecision(IdeaTarget):
    status: IdeaStatus = Field(description="The new status; merging into another idea is its own event.")
    reason: str | None = Field(default=None, max_length=2000, description="Required to decline.")
    by: Actor


class IdeaStatusSet(CloudEvent[StatusDecision]):
    """Intake: the idea's unit decided a new status for it."""

    topic: ClassVar[str] = IDEAS_INTAKE
    type: Literal["centricity.idea.status_set.v1"]


class IdeaWithdrawal(IdeaTarget):
    """The idea's author, or its unit, takes it back; the fact is a status change to `withdrawn`."""

    reason: str | None = Field(default=None, max_length=2000, description="Shown in the status history.")
    by: Actor = Field(description="Who recorded the withdrawal in the unit: staff, or the unit's system.")
    author: Customer | None = Field(
        default=None, description="Set when the author asked; it must be the idea's author."
    )


class IdeaWithdrawn(CloudEvent[IdeaWithdrawal]):
    """Intake: the idea's author or its unit withdrew it in the unit's system."""

    topic: ClassVar[str] = IDEAS_INTAKE
    type: Literal["centricity.idea.withdrawn.v1"]


class CommentPosting(IdeaTarget):
    body: CommentBody
    author: Customer | None = Field(default=None, description="The customer commenting, or")
    staff: Actor | None = Field(default=None, description="the staff member commenting.")
    official: bool = Field(default=False, description="An official response; staff only.")

    @model_validator(mode="after")
    def _one_author(self) -> Self:
        if (self.author is None) == (self.staff is None):
            raise ValueError("give exactly one of author (a customer) and staff")
        if self.official and self.staff is None:
            raise ValueError("only staff can give an official response")
        return self


class CommentPosted(CloudEvent[CommentPosting]):
    """Intake: someone commented on an idea in a unit's system."""

    topic: ClassVar[str] = IDEAS_INTAKE
    type: Literal["centricity.comment.posted.v1"]


class DuplicateFlag(IdeaTarget):
    into_idea_id: IdeaId = Field(description="The idea that stays; the named one merges into it.")
    by: Actor


class DuplicateFlagged(CloudEvent[DuplicateFlag]):
    """Intake: the idea's unit found it duplicates another idea."""

    topic: ClassVar[str] = IDEAS_INTAKE
    type: Literal["centricity.duplicate.flagged.v1"]


class AttestationGiving(IdeaTarget):
    customer: Customer
    helped: bool = Field(description="Did the delivered idea help this customer?")
    comment: str | None = Field(default=None, max_length=2000)


class AttestationGiven(CloudEvent[AttestationGiving]):
    """Intake: the author or a voter of a delivered idea said whether it helped."""

    topic: ClassVar[str] = IDEAS_INTAKE
    type: Literal["centricity.attestation.given.v1"]


class IdeaEdit(ContractModel):
    idea_id: IdeaId
    businessunit: BusinessUnitId
    changes: dict[str, dict[str, object]] = Field(
        description="Each changed field's value before and after: {field: {before, after}}."
    )
    by: Actor
    edited_at: AwareDatetime


class IdeaEdited(CloudEvent[IdeaEdit]):
    """Fact: the idea's unit edited it; the changes say what was before and after. Keyed by idea id."""

    topic: ClassVar[str] = IDEAS_EVENTS
    type: Literal["centricity.idea.edited.v1"]


class StatusChange(ContractModel):
    idea_id: IdeaId
    businessunit: BusinessUnitId
    from_status: IdeaStatus
    to_status: IdeaStatus
    reason: str | None = None
    by: Actor
    changed_at: AwareDatetime
    first_response_seconds: float | None = Field(
        default=None, description="Set on the first change: seconds from submission to this answer."
    )


class IdeaStatusChanged(CloudEvent[StatusChange]):
    """Fact: an idea moved in its workflow, with who, why and when. Keyed by idea id."""

    topic: ClassVar[str] = IDEAS_EVENTS
    type: Literal["centricity.idea.status_changed.v1"]


class Comment(ContractModel):
    comment_id: str
    idea_id: IdeaId
    businessunit: BusinessUnitId = Field(description="The commenter's unit.")
    body: str
    author: Customer | None = None
    staff: Actor | None = None
    official: bool = False
    commented_at: AwareDatetime


class IdeaCommented(CloudEvent[Comment]):
    """Fact: a customer or staff member commented on an idea. Keyed by idea id."""

    topic: ClassVar[str] = IDEAS_EVENTS
    type: Literal["centricity.idea.commented.v1"]


class Merge(ContractModel):
    idea_id: IdeaId = Field(description="The duplicate, now closed.")
    into_idea_id: IdeaId = Field(description="The idea it merged into; its votes move there.")
    businessunit: BusinessUnitId
    by: Actor
    merged_at: AwareDatetime


class IdeaMerged(CloudEvent[Merge]):
    """Fact: an idea was closed as a duplicate of another; its votes belong there now. Keyed by idea id."""

    topic: ClassVar[str] = IDEAS_EVENTS
    type: Literal["centricity.idea.merged.v1"]


class Attestation(ContractModel):
    idea_id: IdeaId
    customer: Customer
    customer_businessunit: BusinessUnitId
    helped: bool
    previous_helped: bool | None = Field(default=None, description="The customer's earlier answer, if any.")
    comment: str | None = None
    attested_at: AwareDatetime


class IdeaAttested(CloudEvent[Attestation]):
    """Fact: a customer said whether a delivered idea helped them. Keyed by idea id."""

    topic: ClassVar[str] = IDEAS_EVENTS
    type: Literal["centricity.idea.attested.v1"]


class FollowUp(ContractModel):
    idea_id: IdeaId
    businessunit: BusinessUnitId = Field(description="The idea's unit, which is to follow up.")
    attested: int = Field(ge=0, description="Customers who have answered whether it helped.")
    not_helped: int = Field(ge=0, description="Those who answered that it did not.")
    not_helped_share: float = Field(ge=0, le=1)
    threshold: str = Field(description="The rule that was met, as configured.")
    needed_at: AwareDatetime


class IdeaFollowUpNeeded(CloudEvent[FollowUp]):
    """Fact: a delivered idea did not help enough of its customers; its unit is to follow up.

    The loop opens again: the unit may take the idea back to in_progress."""

    topic: ClassVar[str] = IDEAS_EVENTS
    type: Literal["centricity.idea.follow_up_needed.v1"]


class DuplicateSuggestion(ContractModel):
    idea_id: IdeaId
    businessunit: BusinessUnitId
    likely_duplicates: list[LikelyDuplicate]
    checked_at: AwareDatetime


class IdeaDuplicatesSuggested(CloudEvent[DuplicateSuggestion]):
    """Fact: likely duplicates were looked for among every unit's ideas. Keyed by idea id."""

    topic: ClassVar[str] = IDEAS_EVENTS
    type: Literal["centricity.idea.duplicates_suggested.v1"]
