"""A unit over time: points per hour or day from the hourly documents the projection keeps."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from centricity_insights.domain import ratio
from centricity_insights.store import HOUR_MS

SERIES_COUNTERS = (
    "ideas",
    "participants",
    "votes",
    "weighted_demand",
    "covered_demand",
    "delivered",
    "attested",
    "helped",
    "attestation_requests",
    "attestation_answers",
    "comments",
    "engagement",
    "cross_bu_engagement",
)


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"


class SeriesPoint(BaseModel):
    """What changed in one hour or day, and where the ratios stood at its end."""

    start: AwareDatetime
    changes: dict[str, float] = Field(
        description="Change of each counter during the bucket (ideas, votes, weighted_demand, ...)."
    )
    totals: dict[str, float] = Field(
        default_factory=dict,
        description="Each counter at the bucket's end, counting every hour since the first fact: what "
        "a chart of the unit over time draws.",
    )
    coverage: float | None = Field(description="covered_demand / weighted_demand at the bucket's end.")
    delivery_rate: float | None
    helpfulness: float | None
    cross_bu_share: float | None
    response_rate: float | None = Field(
        default=None, description="attestation_answers / attestation_requests at the bucket's end."
    )


def series_points(docs: list[dict[str, Any]], *, bucket: Bucket, since_ms: int) -> list[SeriesPoint]:
    """Points from hourly documents (all of them, oldest first), so ratios are cumulative."""
    width = HOUR_MS if bucket is Bucket.HOUR else 24 * HOUR_MS
    totals: dict[str, float] = {}
    points: dict[int, SeriesPoint] = {}
    for doc in docs:
        start = int(doc["hour_ms"]) - int(doc["hour_ms"]) % width
        changes = {name: float(doc.get(name, 0) or 0) for name in SERIES_COUNTERS}
        for name, value in changes.items():
            totals[name] = totals.get(name, 0) + value
        if start < since_ms:
            continue
        point = points.get(start)
        merged = {n: round((point.changes[n] if point else 0) + v, 6) for n, v in changes.items()}
        points[start] = SeriesPoint(
            start=datetime.fromtimestamp(start / 1000, tz=UTC),
            changes=merged,
            totals={name: round(value, 6) for name, value in totals.items()},
            coverage=ratio(totals["covered_demand"], totals["weighted_demand"]),
            delivery_rate=ratio(totals["delivered"], totals["ideas"]),
            helpfulness=ratio(totals["helped"], totals["attested"]),
            cross_bu_share=ratio(totals["cross_bu_engagement"], totals["engagement"]),
            response_rate=ratio(totals["attestation_answers"], totals["attestation_requests"]),
        )
    return list(points.values())
