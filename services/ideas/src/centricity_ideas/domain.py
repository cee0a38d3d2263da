"""Rules for ideas. Pure: no I/O."""

from __future__ import annotations

import uuid
from datetime import datetime

from centricity_contracts.ideas import IdeaCreated, IdeaRecord, IdeaSubmission

# Fixed forever: idea ids derive from it, so changing it would fork every idea's identity.
IDEA_NAMESPACE = uuid.UUID("0b4f3c5e-9a57-4f7e-8d3b-6c1e2a9f4d10")


def idea_id_for(businessunit: str, reference: str) -> str:
    """An idea's id, derived from its business unit and that unit's own reference.

    Deriving it makes a resubmission land on the same document, so it cannot create a twin.
    """
    return str(uuid.uuid5(IDEA_NAMESPACE, f"{businessunit}\x1f{reference}"))


def record_submission(submission: IdeaSubmission, *, businessunit: str, now: datetime) -> IdeaRecord:
    return IdeaRecord(
        **submission.model_dump(),
        idea_id=idea_id_for(businessunit, submission.reference),
        businessunit=businessunit,
        created_at=now,
    )


def created_fact(record: IdeaRecord, *, source: str) -> IdeaCreated:
    """The fact that `record` was created; its id is stable so a republish is recognisable."""
    return IdeaCreated.build(
        id=f"{record.idea_id}:created",
        source=source,
        businessunit=record.businessunit,
        subject=record.idea_id,
        time=record.created_at,
        data=record,
    )
