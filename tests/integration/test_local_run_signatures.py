"""`make run` binds each Kafka intake event to its unit: an unsigned one is refused."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE, IDEAS_INTAKE_DLQ
from centricity_ideas.main import IdeasSettings, create_app
from centricity_plumbing.broker import SIGNATURE_HEADER, intake_signature
from centricity_plumbing.clock import utc_now
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_plumbing.localrun import DEV_BUSINESS_UNITS, LocalSystem
from centricity_plumbing.settings import ENV_PREFIX
from tests.integration.conftest import SettingsFactory, running, unique
from tests.support import bu_event, produce, wait_for_records


def local_run_settings(
    make_settings: SettingsFactory, infra: LocalInfrastructure, monkeypatch: pytest.MonkeyPatch
) -> IdeasSettings:
    """The ideas service configured as `make run` configures it, on this test's own store and group."""
    for name, value in LocalSystem(infra).service_env("ideas").items():
        if name.startswith(ENV_PREFIX):
            monkeypatch.setenv(name, value)
    as_run = IdeasSettings()
    settings: IdeasSettings = make_settings(
        IdeasSettings, business_units=as_run.business_units, intake_signatures=as_run.intake_signatures
    )
    return settings


def enterprise_launch(event_id: str, reference: str) -> dict[str, Any]:
    now = utc_now()
    data = {
        "reference": reference,
        "title": "Cut onboarding time",
        "scope": "enterprise",
        "opens_at": (now - timedelta(days=1)).isoformat(),
        "closes_at": (now + timedelta(days=30)).isoformat(),
    }
    return bu_event("centricity.campaign.launched.v1", event_id, data, "hq")


async def test_under_make_run_only_a_signed_event_launches_an_enterprise_campaign(
    make_settings: SettingsFactory, infra: LocalInfrastructure, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = unique("launch")
    forged = json.dumps(enterprise_launch(f"{run}-1", f"{run}-FORGED")).encode()
    genuine = json.dumps(enterprise_launch(f"{run}-2", f"{run}-GENUINE")).encode()
    hq_key = DEV_BUSINESS_UNITS["hq"]["api_key"]
    await produce(infra.kafka_bootstrap, IDEAS_INTAKE, [(run, forged)])
    signed = {SIGNATURE_HEADER: intake_signature(genuine, hq_key)}
    await produce(infra.kafka_bootstrap, IDEAS_INTAKE, [(run, genuine)], headers=signed)

    async with running(create_app(local_run_settings(make_settings, infra, monkeypatch))):
        [dead] = await wait_for_records(infra.kafka_bootstrap, IDEAS_INTAKE_DLQ, lambda r: r.key == run)
        [created] = await wait_for_records(
            infra.kafka_bootstrap, IDEAS_EVENTS, lambda r: run.encode() in r.value
        )
    assert dead.value == forged
    assert dead.headers["dlq-code"] == "unauthorised"
    assert created.json()["type"] == "centricity.campaign.created.v1"
    assert created.json()["data"]["reference"] == f"{run}-GENUINE"
