"""What every service exposes besides its own routes: health, readiness and its API documents."""

from __future__ import annotations

import re

import httpx
import pytest

from centricity_ideas.main import IdeasSettings
from centricity_ideas.main import create_app as create_ideas
from centricity_insights.main import InsightsSettings
from centricity_insights.main import create_app as create_insights
from centricity_notifications.main import NotificationsSettings
from centricity_notifications.main import create_app as create_notifications
from centricity_votes.main import VotesSettings
from centricity_votes.main import create_app as create_votes
from tests.integration.conftest import SettingsFactory, running

SERVICES = [
    (create_ideas, IdeasSettings, "ideas.intake.v1"),
    (create_votes, VotesSettings, "votes.intake.v1"),
    (create_insights, InsightsSettings, "votes.events.v1"),
    # Left out once, its OpenAPI document answered 500 (a 422 documented without a body).
    (create_notifications, NotificationsSettings, "notifications.intake.v1"),
]


@pytest.mark.parametrize(("create_app", "settings_class", "consumed_topic"), SERVICES)
async def test_a_running_service_is_alive_ready_and_documents_its_http_and_kafka_api(
    make_settings: SettingsFactory, create_app: object, settings_class: type, consumed_topic: str
) -> None:
    async with running(create_app(make_settings(settings_class))) as client:  # type: ignore[operator]
        health, ready = await client.get("/health"), await client.get("/ready")
        openapi, asyncapi = await client.get("/openapi.json"), await client.get("/asyncapi.json")
        page = await client.get("/asyncapi")
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"broker": True, "store": True}
    assert openapi.status_code == 200, openapi.text
    assert openapi.json()["openapi"].startswith("3.")
    for path, operations in openapi.json()["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    # A documented error promises the body it is answered with.
                    assert "application/problem+json" in response.get("content", {}), (path, method, status)
    document = asyncapi.json()
    assert document["asyncapi"].startswith("3.")
    assert consumed_topic in {channel["address"] for channel in document["channels"].values()}
    assert page.status_code == 200
    assert "asyncapi" in page.text.lower()


async def test_the_api_pages_load_their_viewers_from_the_service_not_a_cdn(
    make_settings: SettingsFactory,
) -> None:
    async with running(create_ideas(make_settings(IdeasSettings))) as client:
        pages = {path: (await client.get(path)).text for path in ("/docs", "/redoc", "/asyncapi")}
        assets = {
            path: await client.get(path)
            for page in pages.values()
            for path in re.findall(r'(?:src|href)="(/[^"]+\.(?:js|css))"', page)
        }
    for page in pages.values():
        assert not re.search(r'(?:src|href)="https?://[^"]+\.(?:js|css)"', page), page
    assert {path.rsplit("/", 1)[-1] for path in assets} >= {
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "redoc.standalone.js",
        "asyncapi-react.standalone.js",
        "asyncapi-react.min.css",
    }
    assert all(answer.status_code == 200 and len(answer.content) > 10_000 for answer in assets.values())


async def test_a_service_whose_broker_is_not_connected_is_not_ready(make_settings: SettingsFactory) -> None:
    app = create_votes(make_settings(VotesSettings))  # lifespan not run: the broker never started
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
        ready = await client.get("/ready")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.json()["checks"]["broker"] is False
    await app.state.runtime.store.close()


async def test_write_routes_document_examples_and_the_api_key(make_settings: SettingsFactory) -> None:
    app = create_ideas(make_settings(IdeasSettings))
    spec = app.openapi()
    await app.state.runtime.store.close()
    post = spec["paths"]["/ideas"]["post"]
    assert "idea" in post["requestBody"]["content"]["application/json"]["examples"]
    assert any("APIKeyHeader" in requirement for requirement in post["security"])
    assert "application/problem+json" in post["responses"]["422"]["content"]


async def test_a_405_names_every_method_of_its_path_and_a_rule_422_is_documented(
    make_settings: SettingsFactory,
) -> None:
    app = create_ideas(make_settings(IdeasSettings))
    async with running(app) as client:
        answer = await client.options("/ideas/00000000-0000-0000-0000-000000000000")
        # A literal path beside `/ideas/{idea_id}` is not taken for an idea's id.
        on_search = await client.patch("/ideas/search", json={})
        spec = (await client.get("/openapi.json")).json()
    assert answer.status_code == 405
    assert {"GET", "PATCH"} <= {m.strip() for m in answer.headers["allow"].split(",")}
    assert on_search.status_code == 405
    assert on_search.headers["allow"] == "GET"
    unprocessable = spec["components"]["schemas"]["HTTPValidationError"]
    # A decline without a reason is a 422 with `detail` and no `errors`.
    assert "errors" not in unprocessable["required"]
    assert "detail" in unprocessable["properties"]
    assert "200" in spec["paths"]["/campaigns"]["post"]["responses"]
