"""Every Kafka topic name in Centricity, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

IDEAS_INTAKE = "ideas.intake.v1"
VOTES_INTAKE = "votes.intake.v1"
IDEAS_EVENTS = "ideas.events.v1"
VOTES_EVENTS = "votes.events.v1"
INSIGHTS_IDEAS = "insights.ideas.v1"
INSIGHTS_UNITS = "insights.units.v1"
NOTIFICATIONS_INTAKE = "notifications.intake.v1"
NOTIFICATIONS = "notifications.v1"

DEAD_LETTER_SUFFIX = ".dlq"


def dead_letter_topic(topic: str) -> str:
    """The topic where rejected records of `topic` go, with the reason in their headers."""
    return f"{topic}{DEAD_LETTER_SUFFIX}"


IDEAS_INTAKE_DLQ = dead_letter_topic(IDEAS_INTAKE)
VOTES_INTAKE_DLQ = dead_letter_topic(VOTES_INTAKE)
IDEAS_EVENTS_DLQ = dead_letter_topic(IDEAS_EVENTS)
VOTES_EVENTS_DLQ = dead_letter_topic(VOTES_EVENTS)
NOTIFICATIONS_INTAKE_DLQ = dead_letter_topic(NOTIFICATIONS_INTAKE)
NOTIFICATIONS_DLQ = dead_letter_topic(NOTIFICATIONS)


@dataclass(frozen=True)
class TopicSpec:
    """How a topic is created: local runner and Kubernetes manifests agree on these."""

    name: str
    partitions: int
    compacted: bool = False
    description: str = ""
    config: dict[str, str] = field(default_factory=dict)

    def topic_config(self) -> dict[str, str]:
        policy = {"cleanup.policy": "compact"} if self.compacted else {}
        return {**policy, **self.config}


ALL_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(IDEAS_INTAKE, 3, description="Ideas posted by business-unit systems (untrusted)."),
    TopicSpec(VOTES_INTAKE, 3, description="Votes posted by business-unit systems (untrusted)."),
    TopicSpec(IDEAS_INTAKE_DLQ, 1, description="Rejected ideas intake records, reason in headers."),
    TopicSpec(VOTES_INTAKE_DLQ, 1, description="Rejected votes intake records, reason in headers."),
    TopicSpec(IDEAS_EVENTS, 3, description="Facts recorded by the ideas service, keyed by idea id."),
    TopicSpec(VOTES_EVENTS, 3, description="Facts recorded by the votes service, keyed by idea id."),
    TopicSpec(IDEAS_EVENTS_DLQ, 1, description="Idea facts a consumer could not read."),
    TopicSpec(VOTES_EVENTS_DLQ, 1, description="Vote facts a consumer could not read."),
    TopicSpec(
        NOTIFICATIONS_INTAKE, 3, description="Subscriptions and contact details posted by business units."
    ),
    TopicSpec(
        NOTIFICATIONS_INTAKE_DLQ, 1, description="Rejected notifications intake records, reason in headers."
    ),
    TopicSpec(NOTIFICATIONS, 3, description="What each customer is to be told, keyed by customer."),
    TopicSpec(NOTIFICATIONS_DLQ, 1, description="Notification facts a consumer could not read."),
    TopicSpec(
        INSIGHTS_IDEAS,
        3,
        compacted=True,
        description="Latest insight snapshot per idea, keyed by idea id.",
    ),
    TopicSpec(
        INSIGHTS_UNITS,
        3,
        compacted=True,
        description="Latest metrics per business unit, campaign, customer type and the enterprise.",
    ),
)
