"""The audit trail: one entry per fact of every fact topic, saying who changed what, when and
from where. Built from the facts themselves, so it covers history and any replica can rebuild it.

Who, from where and in which request come from the audit attributes every service puts on its
facts (`principal`, `origin`, `causationid`, `traceparent`; see plumbing's `audit`). Facts
published before those existed still say which unit, when, and whom their data names as acting.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiokafka import ConsumerRecord
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from centricity_plumbing.mongo import Document


class AuditedFact(BaseModel):
    """What the trail reads of any fact, whatever its type: the envelope and the data as JSON."""

    model_config = ConfigDict(extra="allow")

    id: str
    source: str
    type: str
    time: AwareDatetime | None = None
    subject: str | None = None
    businessunit: str
    data: dict[str, Any] = Field(default_factory=dict)
    principal: str | None = None
    origin: Literal["http", "kafka"] | None = None
    causationid: str | None = None
    traceparent: str | None = None


class AuditEntry(BaseModel):
    """One change: who asked for it (`principal`), whom it names as acting (`actor`), when, from
    where (`origin`, `causation_id`), and the trace that followed it."""

    event_id: str = Field(description="The fact's CloudEvents `source` and `id`, with a space between.")
    type: str = Field(examples=["centricity.idea.status_changed.v1"])
    time: datetime
    businessunit: str
    idea_id: str | None = None
    subject: str | None = None
    principal: str | None = Field(
        default=None,
        description="The authenticated caller: staff:<subject>, customer:<subject> or system:<unit> "
        "(a unit's API key or signed Kafka intake), or service:<source> for a service's own change. "
        "Absent for facts published before the audit attributes existed.",
    )
    actor: str | None = Field(default=None, description="Whom the fact's data names as acting.")
    origin: Literal["http", "kafka"] | None = None
    causation_id: str | None = Field(
        default=None, description="The HTTP request's X-Request-ID, or the intake event's source and id."
    )
    trace_id: str | None = Field(default=None, description="The W3C trace id of the change.")
    topic: str
    partition: int
    offset: int


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next (older) page; absent on the last page."
    )


class AuditQuery(BaseModel):
    """Filters of the trail; `businessunit` None means every unit."""

    principal: str | None = None
    idea_id: str | None = None
    businessunit: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class BadCursor(ValueError):
    pass


def entry_of(record: ConsumerRecord[Any, Any], *, retention: timedelta) -> Document | None:
    """The trail's document of a fact record, or None for a record that is no fact (those are
    dead-lettered by the facts' consumer)."""
    try:
        fact = AuditedFact.model_validate_json(record.value or b"")
    except ValidationError:
        return None
    time = fact.time or datetime.fromtimestamp(record.timestamp / 1000, UTC)
    traceparent = fact.traceparent or _header(record, "traceparent")
    entry = AuditEntry(
        event_id=f"{fact.source} {fact.id}",
        type=fact.type,
        time=time,
        businessunit=fact.businessunit,
        idea_id=_idea_of(fact.data),
        subject=fact.subject,
        principal=fact.principal,
        actor=actor_named(fact.data),
        origin=fact.origin,
        causation_id=fact.causationid,
        trace_id=trace_id_of(traceparent),
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )
    return {
        "_id": entry.event_id,
        **entry.model_dump(),
        "time": time.astimezone(UTC),
        "time_ms": epoch_ms(time),
        "expires_at": datetime.now(UTC) + retention,
    }


def _idea_of(data: dict[str, Any]) -> str | None:
    idea_id = data.get("idea_id")
    return idea_id if isinstance(idea_id, str) else None


def actor_named(data: dict[str, Any]) -> str | None:
    """Whom a fact's data names as acting: a staff member (`by`, a commenting `staff`, a `proxy`
    for a customer), else the customer who wrote, voted, commented or answered."""
    for field in ("by", "staff", "proxy"):
        staff = data.get(field)
        if isinstance(staff, dict) and isinstance(staff.get("actor_id"), str):
            return str(staff["actor_id"])
    for field in ("author", "voter", "customer"):
        person = data.get(field)
        if isinstance(person, dict) and isinstance(person.get("customer_id"), str):
            return f"customer:{person['customer_id']}"
    return None


def trace_id_of(traceparent: str | None) -> str | None:
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def _header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name and isinstance(value, bytes):
            return value.decode(errors="replace")
    return None


def to_entry(doc: Document) -> AuditEntry:
    return AuditEntry.model_validate({**doc, "time": doc["time"].replace(tzinfo=UTC)})


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def cursor_after(doc: Document) -> str:
    """An opaque cursor: the time and id of the last entry of a page."""
    position = [doc["time_ms"], doc["event_id"]]
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def position_of(cursor: str) -> tuple[int, str]:
    try:
        at_ms, event_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(at_ms, int) or not isinstance(event_id, str):
            raise TypeError("not a position")
        return at_ms, event_id
    except (ValueError, TypeError, binascii.Error) as error:
        raise BadCursor("The cursor is not one this service gave.") from error
