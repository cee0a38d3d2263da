"""Replicas of a service on one broker and one store agree (issue #13): here, on rate limits."""

from __future__ import annotations

from centricity_ideas.main import IdeasSettings, create_app
from tests.integration.conftest import API_KEYS, BUSINESS_UNITS, SettingsFactory, running, unique
from tests.integration.test_idea_management import RETAIL, idea_body


async def test_two_replicas_share_each_units_write_limit(make_settings: SettingsFactory) -> None:
    units = {
        **BUSINESS_UNITS,
        "retail": BUSINESS_UNITS["retail"].model_copy(update={"write_rate_limit": "3/minute"}),
    }
    first = create_app(make_settings(IdeasSettings, business_units=units))
    second = create_app(make_settings(IdeasSettings, business_units=units))
    async with running(first) as one, running(second) as two:
        answers = [
            await client.post("/ideas", json=idea_body(unique("R"), "Shared limit"), headers=RETAIL)
            for client in (one, two, one, two)
        ]
        other_unit = await two.post(
            "/ideas", json=idea_body(unique("W"), "Own limit"), headers={"X-API-Key": API_KEYS["wholesale"]}
        )
    assert [answer.status_code for answer in answers] == [201, 201, 201, 429]
    assert answers[-1].json()["type"] == "urn:centricity:problem:rate-limited"
    assert other_unit.status_code == 201
