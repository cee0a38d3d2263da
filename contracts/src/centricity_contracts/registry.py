"""The catalogue of event types, and their JSON Schema export."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from centricity_contracts.envelope import CloudEvent
from centricity_contracts.ideas import IdeaCreated, IdeaSubmitted
from centricity_contracts.insights import IdeaInsightUpdated
from centricity_contracts.votes import VoteCast, VoteRecorded

EVENT_CLASSES: tuple[type[CloudEvent[Any]], ...] = (
    IdeaSubmitted,
    IdeaCreated,
    VoteCast,
    VoteRecorded,
    IdeaInsightUpdated,
)

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def event_schema(event_class: type[CloudEvent[Any]]) -> dict[str, Any]:
    """The JSON Schema (2020-12, validation mode) of one event type, envelope included."""
    schema = event_class.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["x-kafka-topic"] = event_class.topic
    return schema


def render_schema(event_class: type[CloudEvent[Any]]) -> str:
    return json.dumps(event_schema(event_class), indent=2, sort_keys=True) + "\n"


def schema_path(event_class: type[CloudEvent[Any]], directory: Path = SCHEMA_DIR) -> Path:
    return directory / f"{event_class.event_type()}.json"


def stale_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Committed schema files that differ from what the models generate now."""
    stale = []
    for event_class in EVENT_CLASSES:
        path = schema_path(event_class, directory)
        if not path.exists() or path.read_text() != render_schema(event_class):
            stale.append(path)
    return stale


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for event_class in EVENT_CLASSES:
        path = schema_path(event_class, directory)
        path.write_text(render_schema(event_class))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export the event JSON Schemas.")
    parser.add_argument("--check", action="store_true", help="fail if committed files are stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_schemas()
        for path in stale:
            print(f"stale: {path}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_schemas():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
