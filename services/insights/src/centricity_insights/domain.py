"""Rules for insights: O(1) updates of an idea's tally per fact. Pure: no I/O."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

from centricity_contracts.ideas import IdeaRecord
from centricity_contracts.insights import IdeaInsight, IdeaInsightUpdated
from centricity_contracts.votes import VoteRecord

WILSON_Z_80 = 1.2816


def wilson_lower_bound(up: int, down: int, z: float = WILSON_Z_80) -> float:
    """Lower bound of the Wilson score interval for the share of up votes.

    It ranks 9 up / 1 down above 1 up / 0 down, which a plain ratio would not.
    """
    n = up + down
    if n == 0:
        return 0.0
    p = up / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt((p * (1 - p) + z2 / (4 * n)) / n)
    return max(0.0, (centre - margin) / (1 + z2 / n))


@dataclass(frozen=True)
class IdeaTally:
    idea_id: str
    businessunit: str | None = None
    title: str | None = None
    up: int = 0
    down: int = 0
    voters: int = 0

    def with_vote(self, vote: VoteRecord) -> IdeaTally:
        """The tally after a voter's vote went from `previous_value` to `value`."""
        up = self.up + (vote.value == 1) - (vote.previous_value == 1)
        down = self.down + (vote.value == -1) - (vote.previous_value == -1)
        voters = self.voters + (vote.previous_value == 0)
        return replace(self, up=up, down=down, voters=voters)

    def with_idea(self, idea: IdeaRecord) -> IdeaTally:
        return replace(self, businessunit=idea.businessunit, title=idea.title)

    def insight(self, *, revision: int, now: datetime) -> IdeaInsight:
        return IdeaInsight(
            idea_id=self.idea_id,
            businessunit=self.businessunit,
            title=self.title,
            up=self.up,
            down=self.down,
            voters=self.voters,
            score=self.up - self.down,
            wilson_lower_bound=round(wilson_lower_bound(self.up, self.down), 6),
            revision=revision,
            updated_at=now,
        )


def snapshot_event(insight: IdeaInsight, *, source: str) -> IdeaInsightUpdated:
    """The snapshot of `insight`; one id per revision, so consumers can drop repeats."""
    return IdeaInsightUpdated.build(
        id=f"{insight.idea_id}:r{insight.revision}",
        source=source,
        businessunit=insight.businessunit,
        subject=insight.idea_id,
        time=insight.updated_at,
        data=insight,
    )
