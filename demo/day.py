"""`make demo`: four business units' systems post a day of activity over Kafka, as they would.

Ideas, a campaign, votes from every unit, comments, status decisions, deliveries and the
customers' attestations go to the intake topics of the system `make run` started. Everything is
signed with the unit's development key. Open the dashboard to watch it come alive.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tqdm import tqdm

from centricity_contracts.topics import IDEAS_EVENTS, IDEAS_INTAKE, NOTIFICATIONS_INTAKE, VOTES_INTAKE
from centricity_plumbing.localinfra import DEFAULT_KAFKA_PORT, LOOPBACK
from centricity_plumbing.localrun import DEFAULT_SERVICES, DEV_BUSINESS_UNITS

IDEAS_BY_UNIT = {
    "retail": [
        "Save my basket across devices",
        "Show the card's real-time balance in the app",
        "Let me freeze a lost card myself",
        "Round up purchases into savings",
        "Split a bill with friends from the transaction list",
        "Notify me before a direct debit bounces",
        "Explain fees before I confirm a transfer",
        "Dark mode for the mobile app",
        "Book a branch appointment online",
        "Export statements as CSV",
        "Set spending limits per category",
        "Voice login for the phone app",
    ],
    "wholesale": [
        "Sign the account agreement online",
        "Pay supplier invoices by company card",
        "Bulk payments from a spreadsheet upload",
        "Multi-user approval for large transfers",
        "API access to intraday balances",
        "Faster KYC for existing subsidiaries",
        "FX rates locked for 24 hours",
        "One login for all group entities",
        "Trade finance status tracking",
        "Cash-pooling dashboard",
    ],
    "support": [
        "Callback instead of waiting on hold",
        "Chat history visible to every agent",
        "Status page for outages",
        "Let customers upload documents in the chat",
        "Proactive message when a payment is stuck",
        "Self-service password reset without a call",
        "Show the expected wait time",
        "Agents can see the customer's last app screen",
    ],
    "hq": [
        "One customer profile across units",
        "Quarterly roadmap shared with key clients",
        "Accessible website (WCAG 2.2 AA)",
        "Plain-language letters",
        "Carbon footprint per transaction",
        "Single sign-on for staff tools",
    ],
}
CUSTOMER_TYPES = ["external"] * 6 + ["partner"] * 2 + ["internal"] * 2
COMMENTS = [
    "We need this badly, it costs us hours every week.",
    "Our competitors already offer this.",
    "Would this also work for joint accounts?",
    "+1, asked for by three of our largest clients.",
    "Please keep it simple, no extra passwords.",
    "This would cut our support calls noticeably.",
]
OFFICIAL = [
    "Thanks, we are looking into it.",
    "Planned for the next release.",
    "Shipped today, tell us if it helps!",
]


@dataclass
class Idea:
    unit: str
    reference: str
    title: str
    author: dict[str, str]
    campaign: bool
    idea_id: str = ""
    popularity: float = 1.0
    voters: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def signed(event: dict[str, Any]) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The event's bytes and its signature header, made with the unit's key as the unit's system would."""
    body = json.dumps(event).encode()
    key = DEV_BUSINESS_UNITS[event["businessunit"]]["api_key"].encode()
    signature = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    return body, [("centricity-signature", signature.encode())]


def event(unit: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"/bu/{unit}/demo",
        "type": event_type,
        "time": datetime.now(UTC).isoformat(),
        "businessunit": unit,
        "data": data,
    }


class Poster:
    def __init__(self, bootstrap: str, bar: tqdm[Any]) -> None:
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
        self.bar = bar

    async def post(self, topic: str, key: str, body: dict[str, Any]) -> None:
        payload, headers = signed(body)
        await self.producer.send_and_wait(topic, payload, key=key.encode(), headers=headers)
        self.bar.update(1)


async def created_ids(bootstrap: str, ideas: list[Idea], campaign_ref: str, timeout_s: float = 90) -> str:
    """Wait for the ideas service's facts; fills each idea's id and returns the campaign's."""
    wanted = {(idea.unit, idea.reference): idea for idea in ideas}
    campaign_id = ""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(IDEAS_EVENTS, p) for p in consumer.partitions_for_topic(IDEAS_EVENTS) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while any(not i.idea_id for i in ideas) or not campaign_id:
            if time.monotonic() > deadline:
                raise SystemExit("The ideas service did not record the demo's ideas: is `make run` running?")
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    fact = json.loads(record.value or b"{}")
                    data = fact.get("data", {})
                    if (
                        fact.get("type") == "centricity.campaign.created.v1"
                        and data.get("reference") == campaign_ref
                    ):
                        campaign_id = data["campaign_id"]
                    elif idea := wanted.get((data.get("businessunit"), data.get("reference"))):
                        idea.idea_id = data.get("idea_id", "")
    finally:
        await consumer.stop()
    return campaign_id


def plan_ideas(run: str, rng: random.Random) -> list[Idea]:
    ideas = []
    for unit, titles in IDEAS_BY_UNIT.items():
        for n, title in enumerate(titles):
            author = {
                "customer_id": f"{unit[:2]}-{rng.randint(100, 999)}",
                "customer_type": rng.choice(CUSTOMER_TYPES),
            }
            idea = Idea(unit, f"DEMO-{run}-{unit}-{n}", title, author, campaign=n % 3 == 0)
            idea.popularity = rng.paretovariate(1.3)  # a few ideas draw most of the votes
            ideas.append(idea)
    return ideas


def votes(
    ideas: list[Idea], count: int, rng: random.Random
) -> Iterator[tuple[Idea, str, dict[str, str], int]]:
    units = list(IDEAS_BY_UNIT)
    weights = [idea.popularity for idea in ideas]
    for _ in range(count):
        idea = rng.choices(ideas, weights)[0]
        # Most votes come from the idea's own unit; the rest cross the silos.
        unit = idea.unit if rng.random() < 0.6 else rng.choice(units)
        voter = {
            "customer_id": f"{unit[:2]}-v{rng.randint(1, 400)}",
            "customer_type": rng.choice(CUSTOMER_TYPES),
        }
        value = 1 if rng.random() < 0.85 else -1
        idea.voters.append((unit, voter))
        yield idea, unit, voter, value


async def a_day(bootstrap: str, *, vote_count: int, pace_s: float, seed: int) -> None:
    rng = random.Random(seed)
    run = datetime.now(UTC).strftime("%H%M%S")
    ideas = plan_ideas(run, rng)
    comments = len(ideas) * 2
    total = 1 + len(ideas) * 2 + vote_count + comments + len(ideas) * 2 + len(ideas) // 2
    with tqdm(total=total, unit="event", desc="A day in four business units") as bar:
        poster = Poster(bootstrap, bar)
        await poster.producer.start()
        try:
            await post_day(poster, bar, bootstrap, ideas, run, rng, vote_count=vote_count, pace_s=pace_s)
        finally:
            await poster.producer.stop()


async def post_day(
    poster: Poster,
    bar: tqdm[Any],
    bootstrap: str,
    ideas: list[Idea],
    run: str,
    rng: random.Random,
    *,
    vote_count: int,
    pace_s: float,
) -> None:
    now = datetime.now(UTC)
    campaign_ref = f"DEMO-{run}"
    bar.set_description("HQ opens a campaign, units submit ideas")
    launch = {
        "reference": campaign_ref,
        "title": "Make onboarding effortless",
        "goal": "New customers trade within 2 days instead of 10.",
        "scope": "enterprise",
        "opens_at": (now - timedelta(days=1)).isoformat(),
        "closes_at": (now + timedelta(days=60)).isoformat(),
    }
    await poster.post(IDEAS_INTAKE, campaign_ref, event("hq", "centricity.campaign.launched.v1", launch))
    campaign_id = await created_ids(bootstrap, [], campaign_ref)
    for idea in ideas:
        submission = {"reference": idea.reference, "title": idea.title, "author": idea.author}
        if idea.campaign:
            submission["campaign_id"] = campaign_id
        await poster.post(
            IDEAS_INTAKE, idea.reference, event(idea.unit, "centricity.idea.submitted.v1", submission)
        )
    bar.set_description("units share their authors' mail addresses")
    for idea in ideas:
        customer_id = idea.author["customer_id"]
        contact = {"customer": idea.author, "email": f"{customer_id}@{idea.unit}.example"}
        await poster.post(
            NOTIFICATIONS_INTAKE, customer_id, event(idea.unit, "centricity.contact.set.v1", contact)
        )
    bar.set_description("waiting for the ideas service")
    await created_ids(bootstrap, ideas, campaign_ref)

    planned = sorted(ideas, key=lambda i: -i.popularity)
    delivered, in_progress, reviewed = planned[:4], planned[4:9], planned[9 : len(ideas) // 2]
    half = vote_count // 2
    await post_votes(poster, bar, ideas, half, rng, pace_s, "customers vote")
    bar.set_description("units answer and customers comment")
    for idea in reviewed + in_progress + delivered:
        await set_status(poster, idea, "under_review" if idea in reviewed else "planned")
        await asyncio.sleep(rng.uniform(0, pace_s * 25))  # some units answer faster than others
    for n in range(len(ideas) * 2):
        idea = rng.choice(ideas)
        if n % 5 == 0:
            body = {
                "idea_id": idea.idea_id,
                "body": rng.choice(OFFICIAL[:2]),
                "staff": {"actor_id": "pm"},
                "official": True,
            }
            await poster.post(
                IDEAS_INTAKE, idea.reference, event(idea.unit, "centricity.comment.posted.v1", body)
            )
            continue
        unit = rng.choice(list(IDEAS_BY_UNIT))
        author = {
            "customer_id": f"{unit[:2]}-c{rng.randint(1, 200)}",
            "customer_type": rng.choice(CUSTOMER_TYPES),
        }
        body = {"idea_id": idea.idea_id, "body": rng.choice(COMMENTS), "author": author}
        await poster.post(IDEAS_INTAKE, idea.reference, event(unit, "centricity.comment.posted.v1", body))
        await asyncio.sleep(pace_s / 4)
    await post_votes(poster, bar, ideas, vote_count - half, rng, pace_s, "more votes come in")
    bar.set_description("delivery")
    for idea in in_progress + delivered:
        await set_status(poster, idea, "in_progress")
    for idea in delivered:
        await set_status(poster, idea, "delivered")
    await asyncio.sleep(3)  # the ideas service learns each idea's voters from the vote facts
    bar.set_description("customers say whether it helped")
    for idea in delivered:
        distinct = {(unit, voter["customer_id"]): (unit, voter) for unit, voter in idea.voters}
        attesters = [(idea.unit, idea.author), *distinct.values()][:6]
        for unit, customer in attesters:
            helped = rng.random() < 0.8
            body = {"idea_id": idea.idea_id, "customer": customer, "helped": helped}
            await poster.post(
                IDEAS_INTAKE, idea.reference, event(unit, "centricity.attestation.given.v1", body)
            )
            await asyncio.sleep(pace_s)
    bar.update(max(0, (bar.total or 0) - bar.n))  # the plan's estimate of status changes and attestations
    bar.set_description("done")


async def post_votes(
    poster: Poster,
    bar: tqdm[Any],
    ideas: list[Idea],
    count: int,
    rng: random.Random,
    pace_s: float,
    what: str,
) -> None:
    bar.set_description(what)
    for idea, unit, voter, value in votes(ideas, count, rng):
        ballot = {"idea_id": idea.idea_id, "voter": voter, "value": value}
        await poster.post(VOTES_INTAKE, idea.idea_id, event(unit, "centricity.vote.cast.v1", ballot))
        await asyncio.sleep(pace_s)


async def set_status(poster: Poster, idea: Idea, status: str) -> None:
    decision = {"reference": idea.reference, "status": status, "by": {"actor_id": f"pm-{idea.unit}"}}
    await poster.post(
        IDEAS_INTAKE, idea.reference, event(idea.unit, "centricity.idea.status_set.v1", decision)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Post a day of business-unit activity to a running Centricity."
    )
    parser.add_argument("--bootstrap", default=f"{LOOPBACK}:{DEFAULT_KAFKA_PORT}", help="Kafka of `make run`")
    parser.add_argument("--votes", type=int, default=900)
    parser.add_argument("--pace", type=float, default=0.04, help="seconds between votes, to watch it live")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    print(f"Watch it live: http://{LOOPBACK}:{DEFAULT_SERVICES['insights']}/dashboard")
    seed = args.seed if args.seed is not None else random.SystemRandom().randint(0, 10**6)
    asyncio.run(a_day(args.bootstrap, vote_count=args.votes, pace_s=args.pace, seed=seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
