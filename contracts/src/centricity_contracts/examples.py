"""One example of every event type: documented in EVENTS.md and checked by the tests."""

from __future__ import annotations

from typing import Any

from centricity_contracts.ids import campaign_id_for

IDEA = "7d4c8a0e-3f0b-5b6e-9c1a-2e4f6a8b0c2d"
OTHER_IDEA = "0e6b2f4c-8a1d-5e3f-b7c9-4d2a6e8f1b3c"
# The id of the campaign the launch example below creates, so the examples can be posted in turn.
CAMPAIGN = campaign_id_for("hq", "Q1-ONBOARD")
AUTHOR = {"customer_id": "c-1042", "customer_type": "external", "display_name": "Ada"}
VOTER = {"customer_id": "w-7", "customer_type": "internal"}
STAFF = {"actor_id": "pm-anna", "display_name": "Anna, product manager"}


def _event(
    event_type: str, event_id: str, source: str, unit: str | None, data: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": "2026-11-23T09:14:00Z",
        **extra,
        "businessunit": unit,
        "data": data,
    }
    return {k: v for k, v in event.items() if v is not None}


def _intake(event_type: str, event_id: str, unit: str, data: dict[str, Any]) -> dict[str, Any]:
    return _event(event_type, event_id, f"/bu/{unit}/crm", unit, data)


def _fact(
    event_type: str, event_id: str, service: str, unit: str | None, subject: str, data: dict[str, Any]
) -> dict[str, Any]:
    return _event(
        event_type,
        event_id,
        f"/centricity/{service}",
        unit,
        data,
        subject=subject,
        datacontenttype="application/json",
    )


SUBMISSION = {
    "reference": "CRM-2291",
    "title": "Let me save my basket for later",
    "description": "I build a basket on my phone and want to finish on my laptop.",
    "tags": ["checkout", "mobile"],
    "author": AUTHOR,
    "campaign_id": CAMPAIGN,
}
LAUNCH = {
    "reference": "Q1-ONBOARD",
    "title": "Cut onboarding time",
    "goal": "New business customers trade within 2 days instead of 10.",
    "scope": "enterprise",
    "opens_at": "2026-11-01T00:00:00Z",
    "closes_at": "2027-01-31T00:00:00Z",
}

EXAMPLES: dict[str, dict[str, Any]] = {
    "centricity.idea.submitted.v1": _intake(
        "centricity.idea.submitted.v1", "crm-evt-88121", "retail", SUBMISSION
    ),
    "centricity.idea.revised.v1": _intake(
        "centricity.idea.revised.v1",
        "crm-evt-88190",
        "retail",
        {"reference": "CRM-2291", "title": "Save my basket across devices", "by": STAFF},
    ),
    "centricity.idea.status_set.v1": _intake(
        "centricity.idea.status_set.v1",
        "crm-evt-88201",
        "retail",
        {"reference": "CRM-2291", "status": "planned", "reason": "In the Q1 checkout release.", "by": STAFF},
    ),
    "centricity.idea.withdrawn.v1": _intake(
        "centricity.idea.withdrawn.v1",
        "crm-evt-88209",
        "retail",
        {"reference": "CRM-2291", "reason": "Solved by the new app.", "by": STAFF, "author": AUTHOR},
    ),
    "centricity.comment.posted.v1": _intake(
        "centricity.comment.posted.v1",
        "crm-evt-88202",
        "retail",
        {"idea_id": IDEA, "body": "We start on this in January.", "staff": STAFF, "official": True},
    ),
    "centricity.duplicate.flagged.v1": _intake(
        "centricity.duplicate.flagged.v1",
        "crm-evt-88203",
        "retail",
        {"idea_id": OTHER_IDEA, "into_idea_id": IDEA, "by": STAFF},
    ),
    "centricity.attestation.given.v1": _intake(
        "centricity.attestation.given.v1",
        "portal-att-77",
        "wholesale",
        {
            "idea_id": IDEA,
            "customer": {"customer_id": "w-7", "customer_type": "internal"},
            "helped": True,
            "comment": "Saves me ten minutes a day.",
        },
    ),
    "centricity.campaign.launched.v1": _intake("centricity.campaign.launched.v1", "hq-evt-1", "hq", LAUNCH),
    "centricity.vote.cast.v1": _intake(
        "centricity.vote.cast.v1",
        "portal-vote-5512",
        "wholesale",
        {"idea_id": IDEA, "voter": VOTER, "value": 1},
    ),
    "centricity.vote.withdrawn.v1": _intake(
        "centricity.vote.withdrawn.v1",
        "portal-vote-5577",
        "wholesale",
        {"idea_id": IDEA, "voter": VOTER},
    ),
    "centricity.customer.valued.v1": _intake(
        "centricity.customer.valued.v1",
        "crm-value-w-7-2026-11",
        "wholesale",
        {"customer": VOTER, "tier": "gold", "annual_value": 250000, "valued_at": "2026-11-01T00:00:00Z"},
    ),
    "centricity.idea.created.v1": _fact(
        "centricity.idea.created.v1",
        f"{IDEA}:created",
        "ideas",
        "retail",
        IDEA,
        {
            **SUBMISSION,
            "idea_id": IDEA,
            "businessunit": "retail",
            "created_at": "2026-11-23T09:14:00.412Z",
            "status": "submitted",
            "duplicates_checked": True,
            "likely_duplicates": [
                {
                    "idea_id": OTHER_IDEA,
                    "businessunit": "wholesale",
                    "title": "Keep my cart between sessions",
                    "similarity": 0.71,
                }
            ],
        },
    ),
    "centricity.idea.duplicates_suggested.v1": _fact(
        "centricity.idea.duplicates_suggested.v1",
        f"{IDEA}:r2",
        "ideas",
        "retail",
        IDEA,
        {
            "idea_id": IDEA,
            "businessunit": "retail",
            "likely_duplicates": [
                {
                    "idea_id": OTHER_IDEA,
                    "businessunit": "wholesale",
                    "title": "Keep my cart between sessions",
                    "similarity": 0.71,
                }
            ],
            "checked_at": "2026-11-23T09:14:01.200Z",
        },
    ),
    "centricity.idea.edited.v1": _fact(
        "centricity.idea.edited.v1",
        f"{IDEA}:r2",
        "ideas",
        "retail",
        IDEA,
        {
            "idea_id": IDEA,
            "businessunit": "retail",
            "by": STAFF,
            "edited_at": "2026-11-23T10:00:00Z",
            "changes": {
                "title": {
                    "before": "Let me save my basket for later",
                    "after": "Save my basket across devices",
                }
            },
        },
    ),
    "centricity.idea.status_changed.v1": _fact(
        "centricity.idea.status_changed.v1",
        f"{IDEA}:r3",
        "ideas",
        "retail",
        IDEA,
        {
            "idea_id": IDEA,
            "businessunit": "retail",
            "from_status": "submitted",
            "to_status": "planned",
            "reason": "In the Q1 checkout release.",
            "by": STAFF,
            "changed_at": "2026-11-24T09:14:00Z",
            "first_response_seconds": 86400.0,
        },
    ),
    "centricity.idea.commented.v1": _fact(
        "centricity.idea.commented.v1",
        f"{IDEA}:r4",
        "ideas",
        "retail",
        IDEA,
        {
            "comment_id": "b1f0c2d3",
            "idea_id": IDEA,
            "businessunit": "retail",
            "body": "We start on this in January.",
            "staff": STAFF,
            "official": True,
            "commented_at": "2026-11-24T09:15:00Z",
        },
    ),
    "centricity.idea.merged.v1": _fact(
        "centricity.idea.merged.v1",
        f"{OTHER_IDEA}:r2",
        "ideas",
        "wholesale",
        OTHER_IDEA,
        {
            "idea_id": OTHER_IDEA,
            "into_idea_id": IDEA,
            "businessunit": "wholesale",
            "by": STAFF,
            "merged_at": "2026-11-24T11:00:00Z",
        },
    ),
    "centricity.idea.attested.v1": _fact(
        "centricity.idea.attested.v1",
        f"{IDEA}:r9",
        "ideas",
        "retail",
        IDEA,
        {
            "idea_id": IDEA,
            "customer": {"customer_id": "w-7", "customer_type": "internal"},
            "customer_businessunit": "wholesale",
            "helped": True,
            "previous_helped": None,
            "comment": "Saves me ten minutes a day.",
            "attested_at": "2027-02-03T08:00:00Z",
        },
    ),
    "centricity.campaign.created.v1": _fact(
        "centricity.campaign.created.v1",
        f"{CAMPAIGN}:created",
        "ideas",
        "hq",
        CAMPAIGN,
        {**LAUNCH, "campaign_id": CAMPAIGN, "businessunit": "hq", "created_at": "2026-10-30T12:00:00Z"},
    ),
    "centricity.vote.recorded.v1": _fact(
        "centricity.vote.recorded.v1",
        f"{IDEA}:wholesale:w-7:r2",
        "votes",
        "wholesale",
        IDEA,
        {
            "vote_id": f"{IDEA}:wholesale:w-7",
            "idea_id": IDEA,
            "voter": VOTER,
            "voter_businessunit": "wholesale",
            "value": -1,
            "previous_value": 1,
            "revision": 2,
            "recorded_at": "2026-11-23T09:31:00.020Z",
            "weight": 2.61,
            "points": 1,
            "previous_weight": 2.61,
            "previous_points": 1,
            "campaign_id": CAMPAIGN,
        },
    ),
    "centricity.vote.retracted.v1": _fact(
        "centricity.vote.retracted.v1",
        f"{IDEA}:wholesale:w-7:r3",
        "votes",
        "wholesale",
        IDEA,
        {
            "vote_id": f"{IDEA}:wholesale:w-7",
            "idea_id": IDEA,
            "voter": VOTER,
            "voter_businessunit": "wholesale",
            "previous_value": -1,
            "previous_weight": 2.61,
            "previous_points": 1,
            "revision": 3,
            "campaign_id": CAMPAIGN,
            "retracted_at": "2026-11-23T10:02:00Z",
        },
    ),
    "centricity.vote.moved.v1": _fact(
        "centricity.vote.moved.v1",
        f"{OTHER_IDEA}:wholesale:w-7:r1",
        "votes",
        "wholesale",
        OTHER_IDEA,
        {
            "vote_id": f"{IDEA}:wholesale:w-7",
            "from_idea_id": IDEA,
            "to_idea_id": OTHER_IDEA,
            "to_vote_id": f"{OTHER_IDEA}:wholesale:w-7",
            "voter": VOTER,
            "voter_businessunit": "wholesale",
            "value": 1,
            "weight": 2.61,
            "points": 1,
            "outcome": "moved",
            "revision": 1,
            "moved_at": "2026-11-24T08:00:00Z",
        },
    ),
    "centricity.vote.reweighted.v1": _fact(
        "centricity.vote.reweighted.v1",
        f"{IDEA}:wholesale:w-7:r4",
        "votes",
        "wholesale",
        IDEA,
        {
            "vote_id": f"{IDEA}:wholesale:w-7",
            "idea_id": IDEA,
            "voter": VOTER,
            "voter_businessunit": "wholesale",
            "value": 1,
            "points": 1,
            "weight": 3.61,
            "previous_weight": 2.61,
            "revision": 4,
            "campaign_id": CAMPAIGN,
            "reweighted_at": "2026-11-23T11:00:00Z",
        },
    ),
    "centricity.idea_insight.updated.v1": _fact(
        "centricity.idea_insight.updated.v1",
        f"{IDEA}:r5",
        "insights",
        "retail",
        IDEA,
        {
            "idea_id": IDEA,
            "businessunit": "retail",
            "title": "Let me save my basket for later",
            "up": 2,
            "down": 1,
            "voters": 3,
            "score": 1,
            "wilson_lower_bound": 0.321172,
            "revision": 5,
            "updated_at": "2026-11-23T09:31:00.080Z",
            "weighted_score": 4.22,
            "trending": 7.91,
            "status": "planned",
            "campaign_id": CAMPAIGN,
            "comments": 2,
            "helped": 0,
            "not_helped": 0,
            "first_response_seconds": 86400.0,
        },
    ),
    "centricity.unit_insight.updated.v1": _fact(
        "centricity.unit_insight.updated.v1",
        "businessunit:retail:r42",
        "insights",
        "retail",
        "businessunit:retail",
        {
            "unit": "businessunit:retail",
            "kind": "businessunit",
            "name": "retail",
            "ideas": 120,
            "participants": 310,
            "votes": 845,
            "weighted_demand": 1210.5,
            "covered_demand": 532.0,
            "coverage": 0.439488,
            "delivered": 14,
            "delivery_rate": 0.116667,
            "first_responses": 88,
            "first_response_median_s": 172800.0,
            "first_response_p90_s": 777600.0,
            "attested": 40,
            "helped": 31,
            "helpfulness": 0.775,
            "attestation_requests": 160,
            "attestation_reminders": 190,
            "attestation_answers": 44,
            "response_rate": 0.275,
            "answer_time_median_s": 93600.0,
            "comments": 260,
            "engagement": 1105,
            "cross_bu_engagement": 298,
            "cross_bu_share": 0.269683,
            "revision": 42,
            "updated_at": "2026-11-23T09:31:00.080Z",
        },
    ),
    "centricity.idea.follow_up_needed.v1": _fact(
        "centricity.idea.follow_up_needed.v1",
        f"{IDEA}:r12.follow-up",
        "ideas",
        "retail",
        IDEA,
        {
            "idea_id": IDEA,
            "businessunit": "retail",
            "attested": 6,
            "not_helped": 3,
            "not_helped_share": 0.5,
            "threshold": "at least 3 answers of which at least 34 % did not help, or 10 that did not",
            "needed_at": "2026-12-20T10:00:00Z",
        },
    ),
    "centricity.subscription.set.v1": _intake(
        "centricity.subscription.set.v1",
        "crm-sub-881",
        "wholesale",
        {"idea_id": IDEA, "customer": VOTER, "subscribed": False},
    ),
    "centricity.contact.set.v1": _intake(
        "centricity.contact.set.v1",
        "crm-contact-17",
        "retail",
        {"customer": AUTHOR, "email": "ada@example.com"},
    ),
    "centricity.notification.requested.v1": _fact(
        "centricity.notification.requested.v1",
        "9b1f3d5e-7a2c-5e4f-8b6d-0c2e4f6a8b1d",
        "notifications",
        "retail",
        "retail:c-1042",
        {
            "notification_id": "9b1f3d5e-7a2c-5e4f-8b6d-0c2e4f6a8b1d",
            "customer": AUTHOR,
            "customer_businessunit": "retail",
            "idea_id": IDEA,
            "idea_businessunit": "retail",
            "idea_title": "Let me save my basket for later",
            "kind": "delivered",
            "cause": f"/centricity/ideas {IDEA}:r9",
            "from_status": "in_progress",
            "to_status": "delivered",
            "reason": "Shipped in release 26.12.",
            "attestation": {
                "url": "http://127.0.0.1:8101/attestation-links/eyJhbGciOi...",
                "expires_at": "2027-02-04T09:14:00Z",
            },
            "requested_at": "2026-12-06T09:14:00.120Z",
        },
    ),
}
