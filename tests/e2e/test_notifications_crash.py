"""The notifications service SIGKILLed twice while it tells an idea's delivery to its voters (#15):
once while it records and publishes the notifications, once while it mails them, with the webhook
deliveries to each unit's endpoint under way throughout. Every voter still ends with exactly one
notification (one id, on the topic and in the store), one mail (one Message-ID) and one webhook
delivery (one webhook-id); a kill costs at most what was in flight when it struck (the one mail
being sent, the deliveries being posted), sent again under the same id.

The idea and the votes go straight onto the fact topics with kcat, as the ideas and votes services
would publish them, and the units post their customers' addresses, signed, on the intake topic.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from typing import Any

import httpx
from pymongo import MongoClient
from pymongo.database import Database

from centricity_contracts.topics import IDEAS_EVENTS, NOTIFICATIONS, NOTIFICATIONS_INTAKE, VOTES_EVENTS
from centricity_plumbing.localrun import LocalSystem
from centricity_plumbing.mailbox import read_messages
from centricity_plumbing.settings import ServiceSettings
from centricity_plumbing.webhookbin import received
from tests.e2e.kcat import Kcat, produce_signed_burst
from tests.e2e.test_insights_crash import vote_recorded
from tests.support import idea_created_fact, status_changed_fact

VOTERS = 1500
TIMEOUT_S = 240.0
# The webhook workers of one process (WebhookSettings.concurrency): what one kill can leave in flight.
WEBHOOK_WORKERS = 8


def delivered_fact(idea_id: str) -> str:
    fact = status_changed_fact(
        idea_id,
        "delivered",
        from_status="in_progress",
        reason="Released in 26.12",
        changed_at="2026-12-07T09:00:00Z",
    )
    return json.dumps(fact)


def contact_set(voter: str, unit: str) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": f"contact-{voter}",
            "source": f"/bu/{unit}/crm",
            "type": "centricity.contact.set.v1",
            "businessunit": unit,
            "data": {
                "customer": {"customer_id": voter, "customer_type": "external"},
                "email": f"{voter}@mail.example",
            },
        }
    )


def wait(what: str, done: Any) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_notifications_killed_twice_while_telling_still_tell_each_voter_once(
    system: LocalSystem, kcat: Kcat
) -> None:
    run = uuid.uuid4().hex[:8]
    idea_id = f"{run}-idea"
    units = ("retail", "wholesale")
    voters = [(f"{run}-v{n}", units[n % 2]) for n in range(VOTERS)]
    database = ServiceSettings.model_construct(service_name="notifications").database_name()
    client: MongoClient[dict[str, Any]]
    endpoints = {unit: register_endpoint(system, unit, f"/crash-{run}/{unit}") for unit in units}
    ours = {"endpoint_id": {"$in": list(endpoints.values())}}
    with MongoClient(system.infra.mongo_url) as client:
        store: Database[dict[str, Any]] = client[database]
        # make run requires signed intake, as production does: each unit signs its addresses.
        produce_signed_burst(
            system.infra.kafka_bootstrap,
            NOTIFICATIONS_INTAKE,
            [(voter, contact_set(voter, unit)) for voter, unit in voters],
        )
        kcat.produce_lines(IDEAS_EVENTS, [(idea_id, json.dumps(idea_created_fact(idea_id)))])
        kcat.produce_lines(
            VOTES_EVENTS, [(idea_id, vote_recorded(idea_id, voter, unit)) for voter, unit in voters]
        )
        wait(
            "every voter to follow",
            lambda: store.subscriptions.count_documents({"idea_id": idea_id}) == VOTERS + 1,
        )
        wait(
            "every address",
            lambda: store.contacts.count_documents({"_id": {"$regex": f"^[a-z]+:{run}-"}}) == VOTERS,
        )

        kcat.produce_lines(IDEAS_EVENTS, [(idea_id, delivered_fact(idea_id))])
        told = store.notifications
        wait("telling to start", lambda: told.count_documents({"idea_id": idea_id}) > 0)
        system.kill_service("notifications")
        recorded_at_first_kill = told.count_documents({"idea_id": idea_id})
        delivered_at_kills = [store.webhook_deliveries.count_documents({**ours, "state": "delivered"})]

        system.restart_service("notifications", wait_until_ready=False)
        wait("mail to start", lambda: told.count_documents({"idea_id": idea_id, "mail.state": "sent"}) > 0)
        system.kill_service("notifications")
        sent_at_second_kill = told.count_documents({"idea_id": idea_id, "mail.state": "sent"})
        delivered_at_kills.append(store.webhook_deliveries.count_documents({**ours, "state": "delivered"}))
        system.restart_service("notifications")

        wait(
            "every mail sent",
            lambda: told.count_documents({"idea_id": idea_id, "mail.state": "sent"}) == VOTERS,
        )
        # One notification per follower: the voters, and the author (who has no address, so no mail).
        assert told.count_documents({"idea_id": idea_id}) == VOTERS + 1
        wait(
            "every webhook delivered",
            lambda: store.webhook_deliveries.count_documents({**ours, "state": "delivered"}) == VOTERS + 1,
        )
        assert store.webhook_deliveries.count_documents(ours) == VOTERS + 1, "one delivery per notification"

    print(
        f"first kill after {recorded_at_first_kill} notifications, second after {sent_at_second_kill} mails"
    )
    assert recorded_at_first_kill < VOTERS or sent_at_second_kill < VOTERS, "both kills came too late"

    facts = [
        m for m in kcat.consume_all(NOTIFICATIONS) if json.loads(m["payload"])["data"]["idea_id"] == idea_id
    ]
    per_customer: dict[str, set[str]] = {}
    for message in facts:
        event = json.loads(message["payload"])
        per_customer.setdefault(message["key"], set()).add(event["id"])
    expected_keys = {f"{unit}:{voter}" for voter, unit in voters} | {"retail:c"}
    assert set(per_customer) == expected_keys
    assert all(len(ids) == 1 for ids in per_customer.values()), "one notification id per customer"

    mails = [m for m in read_messages(system.infra.maildir) if m["X-Centricity-Idea-Id"] == idea_id]
    by_message_id = Counter(m["Message-ID"] for m in mails)
    assert len(by_message_id) == VOTERS, "one mail per voter"
    resent = sum(by_message_id.values()) - VOTERS
    print(f"{len(facts)} notification records for {len(per_customer)} customers; {resent} mails sent twice")
    assert resent <= 1, "at most the mail in flight at the kill is sent again, under the same Message-ID"

    notification_ids = {event_id for ids in per_customer.values() for event_id in ids}
    posted = [r for r in received(system.infra.webhook_log) if r["path"].startswith(f"/crash-{run}/")]
    by_webhook_id = Counter(r["headers"]["webhook-id"] for r in posted)
    assert set(by_webhook_id) == notification_ids, "each notification reached its unit's endpoint"
    assert all(r["path"].endswith("/" + json.loads(r["body"])["businessunit"]) for r in posted), (
        "each unit's endpoint hears only of its own customers"
    )
    reposted = sum(by_webhook_id.values()) - len(by_webhook_id)
    print(f"webhooks delivered at the kills: {delivered_at_kills}")
    print(f"{len(posted)} webhook posts for {len(by_webhook_id)} notifications; {reposted} posted twice")
    assert reposted <= 2 * WEBHOOK_WORKERS, "at most the deliveries in flight at each kill are posted again"


def register_endpoint(system: LocalSystem, unit: str, path: str) -> str:
    answer = httpx.post(
        f"{system.url('notifications')}/webhooks",
        json={"url": system.infra.webhook_url + path, "description": "CRM"},
        headers={"X-API-Key": system.business_units[unit]["api_key"]},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["endpoint_id"])
