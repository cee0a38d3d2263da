"""The one exception every service's rules raise when they refuse a request.

A violation carries its own meaning: `kind` is the problem type over HTTP and the `dlq-code` of a
dead-lettered record, `status` its HTTP status and `title` its summary. A new rule declares all
three where it is defined, so no service keeps a map from rule to status.
"""

from __future__ import annotations

from typing import Any


class RuleViolation(Exception):
    """A request the rules refuse, whatever the retries."""

    kind: str = "conflict"
    status: int = 409
    title: str = "The rules refuse this change"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def extensions(self) -> dict[str, Any]:
        """Extra members of the problem+json body, for a client to act on."""
        return {}


class NotFound(RuleViolation):
    """A request about something that does not exist: `unknown-idea`, `unknown-campaign`..."""

    status = 404

    def __init__(self, what: str, key: str) -> None:
        super().__init__(f"no {what} has id {key!r}")
        self.what = what
        self.kind = f"unknown-{what}"
        self.title = f"Unknown {what}"


class InvalidInput(RuleViolation):
    """A value the schema admits but the rules cannot read, such as a cursor from elsewhere."""

    kind = "invalid-input"
    status = 400
    title = "Invalid input"
