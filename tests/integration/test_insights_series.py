"""A unit over time (#18): the hourly points the dashboard's chart draws, with each counter's total
at the point's end (counted once across a redelivery), and a problem+json answer, documented in
OpenAPI, for a unit nobody knows."""

from __future__ import annotations

from centricity_contracts.topics import IDEAS_EVENTS, VOTES_EVENTS
from centricity_insights.main import InsightsSettings, create_app
from centricity_plumbing.localinfra import LocalInfrastructure
from tests.integration.conftest import SettingsFactory, running, unique
from tests.integration.test_insights_units import a_units_day, settled
from tests.support import produce


async def test_hourly_points_carry_totals_counted_once(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    home, other, campaign = unique("bu"), unique("bu"), unique("camp")
    idea_facts, vote_facts, _ = a_units_day(home, other, campaign)
    # Every fact twice, as a redelivery brings them: the totals move once.
    await produce(infra.kafka_bootstrap, IDEAS_EVENTS, idea_facts + idea_facts)
    await produce(infra.kafka_bootstrap, VOTES_EVENTS, vote_facts + vote_facts)
    home_unit = f"businessunit:{home}"
    async with running(create_app(make_settings(InsightsSettings))) as client:
        metrics = await settled(client, home_unit, votes=4, ideas=2, participants=6)
        answer = await client.get(f"/units/{home_unit}/series", params={"bucket": "hour", "days": 1})
        assert answer.status_code == 200, answer.text
        points = answer.json()
        assert points, "the hour of the facts"
        assert all(p["start"].endswith(":00:00Z") for p in points), "whole hours"
        last = points[-1]["totals"]
        assert (last["votes"], last["ideas"], last["participants"]) == (4, 2, 6)
        assert last["weighted_demand"] == metrics["weighted_demand"]
        assert sum(p["changes"]["votes"] for p in points) == 4


async def test_the_series_of_an_unknown_unit_is_a_documented_problem(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(InsightsSettings))
    spec = app.openapi()["paths"]["/units/{unit}/series"]["get"]
    assert "application/problem+json" in spec["responses"]["404"]["content"]
    assert "totals" in app.openapi()["components"]["schemas"]["SeriesPoint"]["properties"]
    async with running(app) as client:
        answer = await client.get("/units/businessunit:nobody-here/series")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "No metrics for this unit"
