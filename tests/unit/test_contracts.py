"""The event contracts: envelope rules, naming, committed schemas and their compatibility."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jsoncompat import check_compat
from pydantic import ValidationError

from centricity_contracts import IdeaSubmitted, VoteCast
from centricity_contracts.envelope import EVENT_TYPE_PATTERN, CloudEvent
from centricity_contracts.registry import EVENT_CLASSES, SCHEMA_DIR, render_schema, schema_path, stale_schemas
from centricity_contracts.topics import ALL_TOPICS, dead_letter_topic

REPO = Path(__file__).resolve().parents[2]
IRREGULAR_PAST_TENSE = {"withdrawn", "cast", "sent", "won", "lost", "read", "set", "given"}

VALID_VOTE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "/bu/retail/crm",
    "type": "centricity.vote.cast.v1",
    "businessunit": "retail",
    "data": {"idea_id": "i-1", "voter": {"customer_id": "c-1", "customer_type": "external"}, "value": 1},
}


def test_a_valid_intake_event_parses_and_keeps_unknown_extensions() -> None:
    event = VoteCast.model_validate({**VALID_VOTE, "traceparent": "00-abc-def-01"})
    assert event.data.value == 1
    assert event.extensions() == {"traceparent": "00-abc-def-01"}
    assert event.dedup_key() == "/bu/retail/crm evt-1"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"type": "centricity.idea.submitted.v1"}, "type"),
        ({"id": ""}, "id"),
        ({"businessunit": "Retail Banking"}, "businessunit"),
        ({"data": {**VALID_VOTE["data"], "value": 2}}, "value"),
    ],
)
def test_an_invalid_envelope_or_payload_is_rejected(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as error:
        VoteCast.model_validate({**VALID_VOTE, **change})
    assert field in str(error.value)


def test_a_missing_businessunit_is_rejected() -> None:
    body = {k: v for k, v in VALID_VOTE.items() if k != "businessunit"}
    with pytest.raises(ValidationError, match="businessunit"):
        VoteCast.model_validate(body)


def test_oversized_idea_fields_are_rejected() -> None:
    data = {"reference": "r", "title": "x" * 201, "author": {"customer_id": "c", "customer_type": "partner"}}
    with pytest.raises(ValidationError, match="title"):
        IdeaSubmitted.model_validate({**VALID_VOTE, "type": "centricity.idea.submitted.v1", "data": data})


@pytest.mark.parametrize("event_class", EVENT_CLASSES)
def test_event_types_are_versioned_and_past_tense(event_class: type[CloudEvent[Any]]) -> None:
    event_type = event_class.event_type()
    assert re.fullmatch(EVENT_TYPE_PATTERN, event_type)
    verb = event_type.split(".")[2].split("_")[-1]
    assert verb.endswith("ed") or verb in IRREGULAR_PAST_TENSE, f"{event_type}: use the past tense"


def test_every_event_topic_is_a_created_topic() -> None:
    created = {spec.name for spec in ALL_TOPICS}
    assert {event_class.topic for event_class in EVENT_CLASSES} <= created
    assert dead_letter_topic("ideas.intake.v1") in created
    assert dead_letter_topic("votes.intake.v1") in created


def test_committed_schemas_are_up_to_date() -> None:
    stale = stale_schemas()
    assert not stale, f"run `make schemas` and commit: {[p.name for p in stale]}"


def test_no_committed_schema_is_orphaned() -> None:
    expected = {schema_path(event_class).name for event_class in EVENT_CLASSES}
    assert {p.name for p in SCHEMA_DIR.glob("*.json")} == expected


def committed_versions(path: Path) -> list[str]:
    """Every version of a schema file ever committed, oldest first."""
    relative = path.relative_to(REPO).as_posix()
    try:
        commits = subprocess.run(
            ["git", "log", "--format=%H", "--reverse", "--", relative],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no git history to compare schemas with")
    return [
        subprocess.run(
            ["git", "show", f"{commit}:{relative}"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout
        for commit in commits
    ]


@pytest.mark.parametrize("event_class", EVENT_CLASSES, ids=lambda c: c.event_type())
def test_schema_is_backward_compatible_with_every_committed_version(
    event_class: type[CloudEvent[Any]],
) -> None:
    """A reader built on today's schema must accept every event any committed schema allowed."""
    current = render_schema(event_class)
    for old in committed_versions(schema_path(event_class)):
        assert check_compat(old, current, "deserializer"), (
            f"{event_class.event_type()} changed incompatibly: publish a new major version instead"
        )


def test_the_compatibility_check_catches_a_breaking_change() -> None:
    schema = json.loads(render_schema(VoteCast))
    narrowed = json.loads(json.dumps(schema))
    narrowed["$defs"]["Ballot"]["required"].append("weight")
    narrowed["$defs"]["Ballot"]["properties"]["weight"] = {"type": "number"}
    widened = json.loads(json.dumps(schema))
    widened["$defs"]["Ballot"]["properties"]["comment"] = {"type": "string"}
    assert not check_compat(json.dumps(schema), json.dumps(narrowed), "deserializer")
    assert check_compat(json.dumps(schema), json.dumps(widened), "deserializer")
