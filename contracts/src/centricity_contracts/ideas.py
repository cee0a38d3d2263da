"""Idea events: what business units submit, and the facts the ideas service records."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from centricity_contracts.customers import Customer
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
    title: str = Field(min_length=3, max_length=TITLE_MAX, examples=["Let me save my basket for later"])
    description: str = Field(
        default="",
        max_length=DESCRIPTION_MAX,
        examples=["I often build a basket on my phone and want to finish on my laptop."],
    )
    tags: list[Tag] = Field(default_factory=list, max_length=TAGS_MAX, examples=[["checkout"]])
    author: Customer


class IdeaSubmitted(CloudEvent[IdeaSubmission]):
    """Intake: a customer submitted an idea in a business-unit system."""

    topic: ClassVar[str] = IDEAS_INTAKE
    type: Literal["centricity.idea.submitted.v1"]


class IdeaRecord(IdeaSubmission):
    """An idea as the ideas service stored it."""

    idea_id: IdeaId
    businessunit: BusinessUnitId
    created_at: AwareDatetime


class IdeaCreated(CloudEvent[IdeaRecord]):
    """Fact: the ideas service recorded a new idea. Keyed by idea id."""

    topic: ClassVar[str] = IDEAS_EVENTS
    type: Literal["centricity.idea.created.v1"]
