"""The one exception every service's domain raises when its rules refuse a request."""


class RuleViolation(Exception):
    """A request the rules refuse; `kind` names the rule, for the HTTP problem type and the DLQ reason."""

    kind = "conflict"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
