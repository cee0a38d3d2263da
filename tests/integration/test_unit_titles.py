"""Units are shown by what people call them (issue #18): a business unit by its configured name,
a campaign by its title from the ideas service's fact; every view offers the other units."""

from __future__ import annotations

from typing import Any

from centricity_contracts.topics import IDEAS_EVENTS
from centricity_insights.main import InsightsSettings, create_app
from centricity_plumbing.localinfra import LocalInfrastructure
from tests.integration.conftest import SettingsFactory, running, unique
from tests.support import campaign_created_fact, eventually, produce


async def test_units_carry_their_titles(make_settings: SettingsFactory, infra: LocalInfrastructure) -> None:
    campaign = unique("camp")
    async with running(create_app(make_settings(InsightsSettings))) as client:
        await produce(
            infra.kafka_bootstrap, IDEAS_EVENTS, [(campaign, campaign_created_fact(campaign, None))]
        )

        async def campaign_titled() -> dict[str, Any] | None:
            answer = await client.get(f"/units/campaign:{campaign}")
            return dict(answer.json()) if answer.status_code == 200 else None

        titled = await eventually(campaign_titled, what="the campaign's title")
        retail = (await client.get("/units/businessunit:retail")).json()
        enterprise = (await client.get("/units/enterprise")).json()
    assert titled["title"] == f"Campaign {campaign}"
    assert (retail["title"], enterprise["title"]) == ("Retail", "Enterprise")
