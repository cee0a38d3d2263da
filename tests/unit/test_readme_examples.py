"""The example events in the README and the event catalog are valid events of their types."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from centricity_contracts.registry import EVENT_CLASSES

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", REPO / "contracts" / "EVENTS.md"]
EXAMPLE = re.compile(r"<!-- example: (?P<type>[\w.]+) -->\s*```json\n(?P<body>.*?)```", re.DOTALL)


BY_TYPE = {event_class.event_type(): event_class for event_class in EVENT_CLASSES}


def test_every_event_type_has_an_example_in_the_catalog() -> None:
    catalog = {m["type"] for m in EXAMPLE.finditer(DOCUMENTS[1].read_text())}
    assert catalog == set(BY_TYPE)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_documented_example_is_valid(document: Path) -> None:
    examples = [(m["type"], json.loads(m["body"])) for m in EXAMPLE.finditer(document.read_text())]
    assert examples
    for event_type, body in examples:
        event = BY_TYPE[event_type].model_validate(body)
        assert event.type == event_type
