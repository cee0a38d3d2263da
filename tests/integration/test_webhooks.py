"""Webhooks on the real local broker, store and a real HTTP receiver: a unit's endpoints get its
customers' notifications, signed in the Standard Webhooks scheme and verified here with that
project's own library; endpoints that fail, are slow or are private are handled apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from centricity_ideas.main import IdeasSettings
from centricity_ideas.main import create_app as create_ideas
from centricity_notifications.main import NotificationsSettings
from centricity_notifications.main import create_app as create_notifications
from centricity_plumbing.localinfra import LocalInfrastructure, free_port
from centricity_plumbing.webhookbin import received
from tests.integration.conftest import API_KEYS, SettingsFactory, running, unique
from tests.support import eventually

RETAIL = {"X-API-Key": API_KEYS["retail"]}
# Each test's services read the fact topics from their start, earlier tests' facts included: on a
# busy machine they take a while to reach this test's own.
CATCH_UP_S = 120.0
WHOLESALE = {"X-API-Key": API_KEYS["wholesale"]}


@asynccontextmanager
async def services(
    make_settings: SettingsFactory, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    notifications = create_notifications(make_settings(NotificationsSettings, **settings))
    async with (
        running(create_ideas(make_settings(IdeasSettings))) as ideas,
        running(notifications) as notes,
    ):
        yield ideas, notes


async def register(notes: httpx.AsyncClient, url: str, headers: dict[str, str] = RETAIL) -> dict[str, Any]:
    answer = await notes.post("/webhooks", json={"url": url, "description": "CRM"}, headers=headers)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def idea_that_moves(ideas: httpx.AsyncClient, notes: httpx.AsyncClient) -> tuple[str, str]:
    author = unique("author")
    submitted = await ideas.post(
        "/ideas",
        json={
            "reference": unique("R"),
            "title": "Statements as CSV",
            "author": {"customer_id": author, "customer_type": "external"},
        },
        headers=RETAIL,
    )
    idea_id = submitted.json()["idea_id"]

    async def follows() -> bool | None:
        found = (await notes.get(f"/customers/{author}/subscriptions", headers=RETAIL)).json()
        return True if found else None

    await eventually(follows, timeout=CATCH_UP_S, what="the author follows the idea")
    moved = await ideas.post(
        f"/ideas/{idea_id}/status", json={"status": "planned", "reason": "Q2"}, headers=RETAIL
    )
    assert moved.status_code == 200, moved.text
    return idea_id, author


def requests_to(infra: LocalInfrastructure, path: str) -> list[dict[str, Any]]:
    return [r for r in received(infra.webhook_log) if r["path"] == path]


async def test_deliveries_are_signed_once_each_and_bad_endpoints_hold_up_only_themselves(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    run = unique("run")
    good, failing, slow = f"/{run}/crm", f"/status/500/{run}", f"/slow/30/{run}"
    async with services(
        make_settings,
        webhook_allow_private_targets=True,
        webhook_timeout_s=1.0,
        webhook_retry_for_s=3.0,
    ) as (ideas, notes):
        endpoint = await register(notes, infra.webhook_url + good)
        dead_one = await register(notes, infra.webhook_url + failing)
        await register(notes, infra.webhook_url + slow)
        unreachable = await register(notes, f"http://127.0.0.1:{free_port()}/nobody-listens")
        other_unit = await register(notes, infra.webhook_url + f"/{run}/wholesale", headers=WHOLESALE)
        idea_id, author = await idea_that_moves(ideas, notes)

        # The service reads the fact topics from their start, so earlier tests' ideas are told too:
        # everything below picks this idea's notification out.
        def about_it(path: str) -> list[dict[str, Any]]:
            return [r for r in requests_to(infra, path) if idea_id in r["body"]]

        found = await eventually(lambda: _some(about_it(good)), timeout=CATCH_UP_S, what="a delivery")
        delivered = found[0]
        # Verified with the Standard Webhooks library itself, from the endpoint's secret.
        payload = Webhook(endpoint["secret"]).verify(delivered["body"], delivered["headers"])
        assert payload["type"] == "centricity.notification.requested.v1"
        assert payload["data"]["idea_id"] == idea_id
        assert payload["data"]["customer"]["customer_id"] == author
        assert delivered["headers"]["webhook-id"] == payload["data"]["notification_id"]
        tampered = {**delivered["headers"], "webhook-signature": "v1,AAAA"}
        with pytest.raises(WebhookVerificationError):
            Webhook(endpoint["secret"]).verify(delivered["body"], tampered)

        answer = await notes.get(f"/webhooks/{endpoint['endpoint_id']}/deliveries", headers=RETAIL)
        assert answer.status_code == 200, answer.text
        notification_id = payload["data"]["notification_id"]
        log = [d for d in answer.json() if d["message_id"] == notification_id]
        # One delivery of the one notification. An attempt the endpoint took but answered too late
        # for its 1 s (this machine is shared) is sent again under the same webhook-id.
        [(state, attempts, last_status)] = [(d["state"], d["attempts"], d["log"][-1]["status"]) for d in log]
        assert (state, last_status) == ("delivered", 204)
        sent = about_it(good)
        assert len(sent) == attempts
        assert {r["headers"]["webhook-id"] for r in sent} == {notification_id}
        # The wholesale unit's endpoint hears nothing of retail's customers.
        assert about_it(f"/{run}/wholesale") == []
        assert (
            await notes.get(f"/webhooks/{other_unit['endpoint_id']}/deliveries", headers=RETAIL)
        ).status_code == 404

        # The failing endpoint is retried with backoff until its window closes, then dead-lettered.
        async def dead() -> list[dict[str, Any]] | None:
            found = (
                await notes.get(f"/webhooks/{dead_one['endpoint_id']}/deliveries", headers=RETAIL)
            ).json()
            found = [d for d in found if d["message_id"] == notification_id]
            return found if found and found[0]["state"] == "dead" else None

        [given_up] = await eventually(dead, timeout=CATCH_UP_S, what="the failing delivery dead-lettered")
        assert given_up["attempts"] >= 2
        assert {a["status"] for a in given_up["log"]} == {500}
        assert len(about_it(failing)) == given_up["attempts"]

        # Nothing listens at the unreachable one: the same, with the connection error in its log.
        async def refused() -> list[dict[str, Any]] | None:
            found = (
                await notes.get(f"/webhooks/{unreachable['endpoint_id']}/deliveries", headers=RETAIL)
            ).json()
            found = [d for d in found if d["message_id"] == notification_id]
            return found if found and found[0]["state"] == "dead" else None

        [never] = await eventually(refused, timeout=CATCH_UP_S, what="the unreachable delivery dead-lettered")
        assert never["log"][-1]["status"] is None
        assert "ConnectError" in never["log"][-1]["error"]
        replayed = await notes.post(
            f"/webhooks/{dead_one['endpoint_id']}/deliveries/{given_up['delivery_id']}/replay", headers=RETAIL
        )
        assert replayed.status_code == 200, replayed.text
        assert replayed.json()["state"] == "pending"
        await eventually(
            lambda: _some(about_it(failing)[given_up["attempts"] :]),
            what="the replayed delivery sent",
        )
        # The good endpoint got its notification and nothing more, whatever the others did.
        assert len(about_it(good)) == attempts


async def _some(items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    return items or None


async def test_private_and_malformed_targets_and_bad_secrets_are_refused(
    make_settings: SettingsFactory,
) -> None:
    async with services(make_settings) as (_, notes):
        for url, why in (
            ("http://127.0.0.1:9500/hook", "not a public address"),
            ("http://10.1.2.3/hook", "not a public address"),
            ("http://169.254.169.254/latest/meta-data", "not a public address"),
            ("http://[::1]/hook", "not a public address"),
            ("ftp://example.com/hook", "not an http or https URL"),
            ("https://user:pw@example.com/hook", "no credentials"),
        ):
            answer = await notes.post("/webhooks", json={"url": url}, headers=RETAIL)
            assert answer.status_code == 422, (url, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert why in answer.json()["detail"], (url, answer.json())
        for body in (
            {"url": "https://example.com/hook", "secret": "not-a-secret"},
            {"url": "https://example.com/hook", "event_types": ["centricity.nothing.v1"]},
            {"url": "https://example.com/hook", "colour": "red"},
        ):
            answer = await notes.post("/webhooks", json=body, headers=RETAIL)
            assert answer.status_code in (400, 422), (body, answer.text)
        assert (await notes.get("/webhooks", headers=RETAIL)).json() == []
        viewer_like = await notes.post(
            "/webhooks", json={"url": "https://example.com/h"}, headers={"X-API-Key": "nope"}
        )
        assert viewer_like.status_code == 401


async def test_a_unit_has_at_most_its_allowance_of_endpoints(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    # Found by fuzzing: every POST added an endpoint, and each delivery goes to all of them.
    async with services(make_settings, webhook_allow_private_targets=True, webhook_endpoints_per_unit=2) as (
        _,
        notes,
    ):
        first = await register(notes, infra.webhook_url + "/a")
        await register(notes, infra.webhook_url + "/b")
        third = await notes.post("/webhooks", json={"url": infra.webhook_url + "/c"}, headers=RETAIL)
        assert third.status_code == 409, third.text
        assert third.headers["content-type"] == "application/problem+json"
        assert third.json()["type"].endswith("too-many-endpoints")
        assert len((await notes.get("/webhooks", headers=RETAIL)).json()) == 2
        await register(notes, infra.webhook_url + "/w", headers=WHOLESALE)
        deleted = await notes.delete(f"/webhooks/{first['endpoint_id']}", headers=RETAIL)
        assert deleted.status_code == 204, deleted.text
        await register(notes, infra.webhook_url + "/c")
