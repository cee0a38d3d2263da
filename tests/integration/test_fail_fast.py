"""While the store is down, HTTP answers 503 problem+json with Retry-After at once instead of
hanging (issue #13); once it is back, the retried request takes effect once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from centricity_ideas.main import IdeasSettings, create_app
from centricity_plumbing.localinfra import LocalInfrastructure, free_port
from tests.integration.conftest import BUSINESS_UNITS, running, unique
from tests.integration.test_idea_management import RETAIL, idea_body

# Far below the 30 s PyMongo waits by default; a loose bound, so a busy machine does not fail it.
HANG_S = 10.0


@pytest.fixture
def own_infra(tmp_path: Path) -> Iterator[LocalInfrastructure]:
    infra = LocalInfrastructure(
        kafka_port=free_port(), mongo_port=free_port(), mongo_data_dir=tmp_path / "mongo", run_dir=tmp_path
    )
    with infra:
        yield infra


async def test_a_store_outage_answers_503_fast_and_nothing_accepted_is_lost(
    own_infra: LocalInfrastructure,
) -> None:
    settings = IdeasSettings(
        kafka_bootstrap_servers=own_infra.kafka_bootstrap,
        mongo_url=own_infra.mongo_url,
        business_units=BUSINESS_UNITS,
        kafka_group_id=unique("g"),
    )
    body = idea_body(unique("OUT"), "Submitted while the store is down")
    async with running(create_app(settings)) as client:
        own_infra.stop_mongo()
        started = time.monotonic()
        during = await client.post("/ideas", json=body, headers=RETAIL)
        waited = time.monotonic() - started
        own_infra.start_mongo()
        after = await client.post("/ideas", json=body, headers=RETAIL)
        again = await client.post("/ideas", json=body, headers=RETAIL)
    assert during.status_code == 503, during.text
    assert during.headers["content-type"].startswith("application/problem+json")
    assert during.json()["type"] == "urn:centricity:problem:dependency-unavailable"
    assert int(during.headers["retry-after"]) >= 1
    assert waited < HANG_S
    assert (after.status_code, again.status_code) == (201, 200)
    assert after.json()["idea_id"] == again.json()["idea_id"]
