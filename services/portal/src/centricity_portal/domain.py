"""What the pages decide without asking anyone: who sees which controls, and how things read."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from centricity_contracts.ideas import CLOSED_TO_VOTING, IdeaStatus
from centricity_contracts.notifications import NotificationKind
from centricity_plumbing.auth import Principal, PrincipalKind, Role

# Merges and withdrawals have their own operations; every other status is set with a reason.
SET_BY_STATUS_CHANGE = [s for s in IdeaStatus if s not in (IdeaStatus.DUPLICATE, IdeaStatus.WITHDRAWN)]
MODERATING_ROLES = frozenset({Role.ADMIN, Role.MODERATOR})


class BrowseSort(StrEnum):
    """The ideas service's orders, as a person would name them."""

    NEWEST = "newest"
    RECENTLY_UPDATED = "recently_updated"
    MOST_COMMENTED = "most_commented"
    OLDEST = "oldest"


SORT_LABELS = {
    BrowseSort.NEWEST: "New",
    BrowseSort.RECENTLY_UPDATED: "Recently updated",
    BrowseSort.MOST_COMMENTED: "Most discussed",
    BrowseSort.OLDEST: "Oldest",
}

NOTICE_HEADLINES = {
    NotificationKind.STATUS_CHANGED: "Status changed",
    NotificationKind.OFFICIAL_RESPONSE: "Official response",
    NotificationKind.MERGED: "Merged into another idea",
    NotificationKind.DELIVERED: "Delivered: did it help you?",
    NotificationKind.ATTESTATION_REMINDER: "Reminder: did it help you?",
}
ASKS_FOR_ANSWER = frozenset({NotificationKind.DELIVERED, NotificationKind.ATTESTATION_REMINDER})


def status_label(status: str | None) -> str:
    return (status or "").replace("_", " ").capitalize()


def is_customer(principal: Principal) -> bool:
    return principal.kind is PrincipalKind.CUSTOMER


def is_staff(principal: Principal) -> bool:
    return principal.kind is PrincipalKind.STAFF and principal.businessunit is not None


def moderates(principal: Principal, businessunit: str) -> bool:
    """Admins and moderators triage, merge, answer and deliver their own unit's ideas."""
    return principal.businessunit == businessunit and bool(principal.roles & MODERATING_ROLES)


def may_vote_on(status: str) -> bool:
    return status not in CLOSED_TO_VOTING


def may_attest(principal: Principal, status: str) -> bool:
    return is_customer(principal) and status == IdeaStatus.DELIVERED


def waiting(since: datetime, now: datetime) -> str:
    """How long something has waited, in the largest unit that says it."""
    seconds = max(0.0, (now - since).total_seconds())
    if seconds < 90:
        return f"{math.floor(seconds)} s"
    if seconds < 5400:
        return f"{math.floor(seconds / 60 + 0.5)} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


@dataclass(frozen=True)
class Tally:
    up: int = 0
    down: int = 0
    voters: int = 0

    @classmethod
    def of(cls, insight: dict[str, Any] | None) -> Tally:
        if not insight:
            return cls()
        return cls(
            up=int(insight.get("up", 0)),
            down=int(insight.get("down", 0)),
            voters=int(insight.get("voters", 0)),
        )


def needs_follow_up(idea: dict[str, Any]) -> bool:
    return idea.get("status") == IdeaStatus.DELIVERED and idea.get("follow_up_needed_at") is not None


def tags_from(text: str) -> list[str]:
    """Tags typed as a comma-separated list."""
    return [t.strip().lower() for t in text.split(",") if t.strip()]
