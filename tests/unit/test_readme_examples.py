"""The example events in the README are valid events of the types they claim to be."""

from __future__ import annotations

import json
import re
from pathlib import Path

from centricity_contracts.registry import EVENT_CLASSES

README = Path(__file__).resolve().parents[2] / "README.md"
EXAMPLE = re.compile(r"<!-- example: (?P<type>[\w.]+) -->\s*```json\n(?P<body>.*?)```", re.DOTALL)


def test_every_event_type_has_a_valid_readme_example() -> None:
    examples = {m["type"]: json.loads(m["body"]) for m in EXAMPLE.finditer(README.read_text())}
    by_type = {event_class.event_type(): event_class for event_class in EVENT_CLASSES}
    assert set(examples) == set(by_type)
    for event_type, body in examples.items():
        event = by_type[event_type].model_validate(body)
        assert event.type == event_type
