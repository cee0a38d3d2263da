"""Centricity's event contracts: one CloudEvents envelope, versioned event types, topic names."""

from centricity_contracts.customers import Customer, CustomerType
from centricity_contracts.envelope import CloudEvent
from centricity_contracts.ideas import IdeaCreated, IdeaRecord, IdeaSubmission, IdeaSubmitted
from centricity_contracts.insights import IdeaInsight, IdeaInsightUpdated
from centricity_contracts.votes import Ballot, VoteCast, VoteRecord, VoteRecorded

__all__ = [
    "Ballot",
    "CloudEvent",
    "Customer",
    "CustomerType",
    "IdeaCreated",
    "IdeaInsight",
    "IdeaInsightUpdated",
    "IdeaRecord",
    "IdeaSubmission",
    "IdeaSubmitted",
    "VoteCast",
    "VoteRecord",
    "VoteRecorded",
]
