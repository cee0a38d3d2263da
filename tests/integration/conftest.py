"""Integration fixtures: the real local broker and store, and services running in-process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import TopicPartition
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from centricity_plumbing.localinfra import LocalInfrastructure, free_port
from centricity_plumbing.settings import BusinessUnitConfig, ServiceSettings
from tests.support import start_group_at, topic_ends

S = TypeVar("S", bound=ServiceSettings)

API_KEYS = {"retail": "key-retail", "wholesale": "key-wholesale"}
BUSINESS_UNITS = {unit: BusinessUnitConfig(name=unit.title(), api_key=key) for unit, key in API_KEYS.items()}


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalInfrastructure]:
    run_dir: Path = tmp_path_factory.mktemp("infra")
    with LocalInfrastructure(
        kafka_port=free_port(),
        mongo_port=free_port(),
        oidc_port=free_port(),
        smtp_port=free_port(),
        webhook_port=free_port(),
        run_dir=run_dir,
    ) as running:
        yield running


SettingsFactory = Callable[..., Any]

# Where the topics ended when a test began, by the consumer groups its settings name. The topics
# are shared by every test of the session: a test's services start where its own records begin,
# as if the topics were its own, instead of replaying (and republishing) all earlier tests'.
# A group a test names itself (a replay, say) reads from the start, as in production.
GROUP_STARTS: dict[str, dict[TopicPartition, int]] = {}


@pytest.fixture
async def make_settings(infra: LocalInfrastructure) -> SettingsFactory:
    """Settings on the local infrastructure, with a database and consumer group of this test's own."""
    suffix = uuid.uuid4().hex[:10]
    starts = await topic_ends(infra.kafka_bootstrap)

    def make(settings_class: type[S], **overrides: Any) -> S:
        name = settings_class.model_fields["service_name"].default
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": infra.kafka_bootstrap,
            "mongo_url": infra.mongo_url,
            "mongo_database": f"t_{name}_{suffix}",
            "kafka_group_id": f"t-{name}-{suffix}",
            "business_units": BUSINESS_UNITS,
            "kafka_session_timeout_ms": 2000,
            "kafka_heartbeat_interval_ms": 500,
            "oidc_issuer": infra.oidc_issuer,
        }
        if "smtp_port" in settings_class.model_fields:
            values |= {"smtp_host": infra.smtp_host, "smtp_port": infra.smtp_port}
        if "kafka_group_id" not in overrides:
            GROUP_STARTS[values["kafka_group_id"]] = starts
        return settings_class(**{**values, **overrides})

    return make


class ReadsAsSystem(httpx.Auth):
    """A test client that reads as a business unit's system (its API key) unless the request
    brings credentials of its own; writes carry only the credentials a test gives them."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if request.method == "GET" and not {"x-api-key", "authorization"} & set(request.headers.keys()):
            request.headers["X-API-Key"] = self.api_key
        yield request


@asynccontextmanager
async def running(app: FastAPI, reader: str | None = API_KEYS["retail"]) -> AsyncIterator[httpx.AsyncClient]:
    """Start a service as its process would (lifespan: store, broker, consumers) and talk HTTP to it.

    GETs read as retail's system unless `reader` is None (then requests carry only what they bring).
    """
    await start_where_the_test_began(app)
    # A stop waits for the batch in hand, which on a loaded 2-core machine can take a while.
    async with LifespanManager(app, startup_timeout=120, shutdown_timeout=120):
        transport = httpx.ASGITransport(app=app)
        auth = ReadsAsSystem(reader) if reader else None
        async with httpx.AsyncClient(transport=transport, base_url="http://service", auth=auth) as client:
            yield client


async def start_where_the_test_began(app: FastAPI) -> None:
    """Commit the test's starting offsets for each consumer group of `app` that has none yet."""
    settings = app.state.settings
    for subscriber in app.state.runtime.broker.subscribers:
        group = subscriber.group_id
        base = next((g for g in GROUP_STARTS if group == g or str(group).startswith(f"{g}-")), None)
        if group and base:
            await start_group_at(
                settings.kafka_bootstrap_servers, group, subscriber.topic_names, GROUP_STARTS[base]
            )


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
