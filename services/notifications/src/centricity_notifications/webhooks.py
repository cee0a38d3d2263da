"""Webhooks: business units' endpoints, and the delivery of notifications to them.

Each delivery is signed in the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`,
`webhook-signature`; PyPI `standardwebhooks`), with the notification id as `webhook-id`, the
idempotency key a receiver de-duplicates by. A delivery is one document, claimed with a lease
before sending and marked after, so a sender that dies mid-send leaves it to be sent again under
the same id. Anything but a 2xx answer in time is retried with exponential backoff and jitter for
`webhook_retry_for_s`, then dead-lettered (state `dead`), to be replayed by hand. Every attempt is
logged on the delivery. Several deliveries are in flight at once, so a slow or silent endpoint
holds up only its own.

Targets on loopback, private, link-local and other non-public addresses are refused, at
registration and again before every send (a name may resolve elsewhere later), unless
`webhook_allow_private_targets` is set.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

from centricity_notifications.domain import backoff
from centricity_notifications.store import NotificationStore
from centricity_plumbing.clock import utc_now
from centricity_plumbing.mongo import Document
from centricity_plumbing.rules import InvalidInput, RuleViolation

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.5
ERROR_KEPT = 500


class WebhookTargetRefused(InvalidInput):
    kind = "webhook-target-refused"
    status = 422
    title = "Webhook target refused"


class TooManyEndpoints(RuleViolation):
    kind = "too-many-endpoints"
    status = 409
    title = "Too many webhook endpoints"


@dataclass(frozen=True)
class WebhookSettings:
    timeout_s: float = 10.0
    retry_for: timedelta = timedelta(hours=24)
    concurrency: int = 8
    allow_private_targets: bool = False
    endpoints_per_unit: int = 20


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: `whsec_` and 24 random bytes, base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def check_secret(secret: str) -> None:
    try:
        Webhook(secret)
    except Exception as error:  # the library raises plain errors for a bad secret
        raise InvalidInput(
            f"The secret is not a Standard Webhooks secret (whsec_<base64>): {error}"
        ) from error


async def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse URLs that are not http(s), and hosts that resolve to non-public addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookTargetRefused(f"{url!r} is not an http or https URL.")
    if parts.username or parts.password:
        raise WebhookTargetRefused("Put no credentials in the URL; deliveries are signed instead.")
    if allow_private:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise WebhookTargetRefused(f"{parts.hostname!r} does not resolve: {error}") from error
    for *_, address in found:
        ip = ipaddress.ip_address(address[0])
        if not ip.is_global or ip.is_multicast:
            raise WebhookTargetRefused(
                f"{parts.hostname!r} resolves to {ip}, which is not a public address; "
                "such targets are allowed only with CENTRICITY_WEBHOOK_ALLOW_PRIVATE_TARGETS."
            )


def signed_headers(secret: str, message_id: str, payload: str, at: datetime) -> dict[str, str]:
    signature = Webhook(secret).sign(message_id, at, payload)
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


class WebhookSender:
    """Delivers due webhook deliveries, `concurrency` at a time, until cancelled."""

    def __init__(self, store: NotificationStore, settings: WebhookSettings) -> None:
        self.store = store
        self.settings = settings
        self.due = asyncio.Event()

    async def run(self) -> None:
        timeout = httpx.Timeout(self.settings.timeout_s)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            workers = [asyncio.create_task(self._work(client)) for _ in range(self.settings.concurrency)]
            try:
                await asyncio.gather(*workers)
            finally:
                for worker in workers:
                    worker.cancel()

    async def _work(self, client: httpx.AsyncClient) -> None:
        while True:
            try:
                while await self.deliver_one(client):
                    pass
            except Exception:  # the store is away: deliveries stay due
                log.exception("delivering webhooks failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.due.wait(), IDLE_POLL_S)
            self.due.clear()

    async def deliver_one(self, client: httpx.AsyncClient) -> bool:
        now = utc_now()
        lease = timedelta(seconds=self.settings.timeout_s + 30)
        delivery = await self.store.claim_delivery(now=now, lease_until=now + lease)
        if delivery is None:
            return False
        endpoint = await self.store.endpoint(delivery["endpoint_id"])
        if endpoint is None or endpoint.get("deleted"):
            await self.store.delivery_dead(delivery["_id"], entry(now, None, "the endpoint was deleted", 0.0))
            return True
        await self._attempt(client, delivery, endpoint, now)
        return True

    async def _attempt(
        self, client: httpx.AsyncClient, delivery: Document, endpoint: Document, now: datetime
    ) -> None:
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            await check_target(endpoint["url"], allow_private=self.settings.allow_private_targets)
            headers = signed_headers(endpoint["secret"], delivery["message_id"], delivery["payload"], now)
            answer = await client.post(endpoint["url"], content=delivery["payload"].encode(), headers=headers)
            status = answer.status_code
            if not 200 <= status < 300:
                error = f"answered {status}: {answer.text[:200]}"
        except WebhookTargetRefused as refused:
            error = refused.detail
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"[:ERROR_KEPT]
        attempt = entry(now, status, error, time.monotonic() - started)
        if error is None:
            await self.store.delivery_done(delivery["_id"], attempt)
        elif now - datetime.fromisoformat(delivery["first_at"]) > self.settings.retry_for:
            log.warning("webhook delivery %s dead-lettered: %s", delivery["_id"], error)
            await self.store.delivery_dead(delivery["_id"], attempt)
        else:
            next_at = now + backoff(int(delivery.get("attempts", 1)))
            await self.store.delivery_retry(delivery["_id"], attempt, next_at=next_at)


def entry(at: datetime, status: int | None, error: str | None, seconds: float) -> Document:
    """One attempt, as the delivery log shows it."""
    return {"at": at.isoformat(), "status": status, "error": error, "duration_ms": round(seconds * 1000, 1)}
