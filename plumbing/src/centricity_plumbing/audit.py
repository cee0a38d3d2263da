"""Who caused a change, carried on every fact it publishes, for the audit trail.

Each fact a service publishes carries four CloudEvents extension attributes, set where the fact
is put in the outbox:

- `principal`: the authenticated caller (`staff:<subject>`, `customer:<subject>`,
  `system:<unit>` for a unit's API key or its signed Kafka intake);
- `origin`: `http` or `kafka`;
- `causationid`: the HTTP request's id (`X-Request-ID`, or one made for it) or the intake
  event's `source` and `id`;
- `traceparent`: the W3C trace context of the change (the CloudEvents tracing extension).

An HTTP write sets the cause once for the request (`acting`); a Kafka batch names each record's
cause with its command, since one batch holds many callers' records.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response

from centricity_contracts.envelope import CloudEvent

if TYPE_CHECKING:  # the outbox imports this module, and idempotency imports the outbox
    from centricity_plumbing.idempotency import Origin

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's own request id is kept if it is a plain token; anything else gets one of ours.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class Cause:
    """Who asked for a change, how, and in which request or event."""

    principal: str
    origin: Origin
    causation_id: str | None = None

    @classmethod
    def of_intake(cls, businessunit: str, event_key: str | None) -> Cause:
        """An intake record on Kafka: signed by (or accepted from) the unit's system."""
        from centricity_plumbing.idempotency import Origin

        return cls(f"system:{businessunit}", Origin.KAFKA, event_key)

    @classmethod
    def following(cls, fact: CloudEvent[Any]) -> Cause:
        """A change one service makes because of another's fact: whoever caused that fact."""
        from centricity_plumbing.idempotency import Origin

        principal = fact.extensions().get("principal")
        return cls(
            principal if isinstance(principal, str) else f"service:{fact.source}",
            Origin.KAFKA,
            fact.dedup_key(),
        )

    def attributes(self, trace: dict[str, str] | None) -> dict[str, Any]:
        attributes: dict[str, Any] = {"principal": self.principal, "origin": str(self.origin)}
        if self.causation_id:
            attributes["causationid"] = self.causation_id
        if trace and trace.get("traceparent"):
            attributes["traceparent"] = trace["traceparent"]
        return attributes


_current: ContextVar[Cause | None] = ContextVar("centricity_cause", default=None)


def current_cause() -> Cause | None:
    return _current.get()


@contextmanager
def acting(cause: Cause) -> Iterator[None]:
    """Make `cause` the cause of the facts published within."""
    token = _current.set(cause)
    try:
        yield
    finally:
        _current.reset(token)


def request_id(request: Request, response: Response) -> str:
    """The request's id: the caller's `X-Request-ID` if it is a plain token, else a new one;
    answered in the same header so the caller can find its change in the audit trail."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    chosen = given if _REQUEST_ID.match(given) else str(uuid.uuid4())
    response.headers[REQUEST_ID_HEADER] = chosen
    return chosen
