"""The ideas service's use cases, where that needs no broker or store."""

from __future__ import annotations

from typing import Any, cast

from centricity_contracts.ideas import IdeaSubmitted
from centricity_contracts.registry import events_on
from centricity_contracts.topics import IDEAS_INTAKE
from centricity_ideas.service import IdeaOperations
from centricity_plumbing.settings import ServiceSettings


def test_every_intake_type_of_the_registry_has_a_use_case() -> None:
    unused = cast(Any, None)
    ops = IdeaOperations(unused, unused, unused, ServiceSettings(service_name="ideas"))
    expected = set(events_on(IDEAS_INTAKE)) - {IdeaSubmitted}  # submissions are stored in bulk
    assert set(ops.intake_use_cases) == expected
