"""Closing the loop on the real local broker, store and SMTP server: followers are told when an
idea moves, once each, by a fact and by mail; authors and voters of a delivered idea are asked
whether it helped, answer with the link in their mail, and only those who have not are reminded."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx

from centricity_contracts.topics import NOTIFICATIONS
from centricity_ideas.main import IdeasSettings
from centricity_ideas.main import create_app as create_ideas
from centricity_notifications.main import NotificationsSettings
from centricity_notifications.main import create_app as create_notifications
from centricity_plumbing.localinfra import LocalInfrastructure
from centricity_plumbing.mailbox import read_messages
from centricity_votes.main import VotesSettings
from centricity_votes.main import create_app as create_votes
from tests.integration.conftest import API_KEYS, SettingsFactory, running, unique
from tests.support import eventually, read_topic

RETAIL = {"X-API-Key": API_KEYS["retail"]}
# Each test's services read the fact topics from their start, earlier tests' facts included: on a
# busy machine they take a while to reach this test's own.
CATCH_UP_S = 120.0
WHOLESALE = {"X-API-Key": API_KEYS["wholesale"]}
STAFF = {"actor_id": "pm-anna"}


@dataclass
class Loop:
    ideas: httpx.AsyncClient
    votes: httpx.AsyncClient
    notifications: httpx.AsyncClient
    infra: LocalInfrastructure


@asynccontextmanager
async def the_loop(
    make_settings: SettingsFactory,
    infra: LocalInfrastructure,
    ideas_settings: dict[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[Loop]:
    ideas_app = create_ideas(make_settings(IdeasSettings, **(ideas_settings or {})))
    votes_app = create_votes(make_settings(VotesSettings))
    notifications_app = create_notifications(
        make_settings(NotificationsSettings, answer_base_url="http://ideas.test", **settings)
    )
    async with (
        running(ideas_app) as ideas,
        running(votes_app) as votes,
        running(notifications_app) as notifications,
    ):
        yield Loop(ideas, votes, notifications, infra)


def customer(customer_id: str, customer_type: str = "external") -> dict[str, str]:
    return {"customer_id": customer_id, "customer_type": customer_type}


async def contact(loop: Loop, headers: dict[str, str], customer_id: str) -> str:
    email = f"{customer_id}@mail.example"
    answer = await loop.notifications.put(
        f"/customers/{customer_id}/contact", json={"email": email}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    return email


async def move(loop: Loop, idea_id: str, status: str, reason: str | None = None) -> None:
    body = {"status": status, "reason": reason, "by": STAFF}
    answer = await loop.ideas.post(f"/ideas/{idea_id}/status", json=body, headers=RETAIL)
    assert answer.status_code == 200, answer.text


def raw_mail(infra: LocalInfrastructure, message_id: str) -> bytes:
    found = [
        f.read_bytes() for f in (infra.maildir / "new").iterdir() if message_id.encode() in f.read_bytes()
    ]
    assert len(found) == 1, message_id
    return found[0]


def mail_to(infra: LocalInfrastructure, address: str) -> list[EmailMessage]:
    return [m for m in read_messages(infra.maildir) if m["To"] == address]


async def mails(infra: LocalInfrastructure, address: str, count: int) -> list[EmailMessage]:
    async def arrived() -> list[EmailMessage] | None:
        found = mail_to(infra, address)
        return found if len(found) >= count else None

    return await eventually(arrived, timeout=CATCH_UP_S, what=f"{count} mails to {address}")


async def notification_facts(infra: LocalInfrastructure, idea_id: str) -> list[dict[str, Any]]:
    records = await read_topic(infra.kafka_bootstrap, NOTIFICATIONS)
    return [r.json() for r in records if r.json()["data"]["idea_id"] == idea_id]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def answer_link(message: EmailMessage) -> str:
    found = re.search(r"http://ideas\.test(/attestation-links/\S+)", text_of(message))
    assert found, text_of(message)
    return found.group(1)


async def subscribed_voter(loop: Loop, idea_id: str, voter: str) -> None:
    ballot = {"idea_id": idea_id, "voter": customer(voter), "value": 1}

    async def recorded() -> bool | None:
        answer = await loop.votes.post("/votes", json=ballot, headers=WHOLESALE)
        return True if answer.status_code == 200 else None

    await eventually(recorded, timeout=CATCH_UP_S, what="the votes service knows the idea")


async def following(loop: Loop, headers: dict[str, str], customer_id: str, idea_id: str) -> None:
    async def follows() -> bool | None:
        answer = await loop.notifications.get(f"/customers/{customer_id}/subscriptions", headers=headers)
        return True if any(s["idea_id"] == idea_id for s in answer.json()) else None

    await eventually(follows, timeout=CATCH_UP_S, what=f"{customer_id} follows {idea_id}")


async def test_followers_are_told_once_asked_on_delivery_and_answer_with_their_link(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    author, voter, commenter, quitter = (unique(n) for n in ("author", "voter", "commenter", "quitter"))
    async with the_loop(make_settings, infra) as loop:
        submitted = await loop.ideas.post(
            "/ideas",
            json={"reference": unique("REF"), "title": "Save my basket", "author": customer(author)},
            headers=RETAIL,
        )
        idea_id = submitted.json()["idea_id"]
        author_mail = await contact(loop, RETAIL, author)
        voter_mail = await contact(loop, WHOLESALE, voter)
        commenter_mail = await contact(loop, RETAIL, commenter)
        quitter_mail = await contact(loop, RETAIL, quitter)
        await subscribed_voter(loop, idea_id, voter)
        comment = {"body": "Me too", "author": customer(commenter)}
        assert (
            await loop.ideas.post(f"/ideas/{idea_id}/comments", json=comment, headers=RETAIL)
        ).status_code == 201
        await following(loop, RETAIL, author, idea_id)
        await following(loop, WHOLESALE, voter, idea_id)
        await following(loop, RETAIL, commenter, idea_id)
        for subscribed in (True, False):
            body = {"subscribed": subscribed, "customer": customer(quitter)}
            answer = await loop.notifications.put(f"/ideas/{idea_id}/subscription", json=body, headers=RETAIL)
            assert answer.status_code == 200, answer.text
            assert answer.json()["subscribed"] is subscribed

        await move(loop, idea_id, "planned", reason="In the Q1 checkout release.")
        planned = await mails(infra, author_mail, 1)
        assert "planned" in planned[0]["Subject"]
        assert "In the Q1 checkout release." in text_of(planned[0])
        assert planned[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        # As sent: one line, `<url>`, which mail clients read as a link (not RFC 2047 words).
        raw = raw_mail(infra, planned[0]["Message-ID"])
        assert re.search(
            rb"\r?\nList-Unsubscribe: <http://127\.0\.0\.1:\d+/unsubscribe-links/[\w.-]+>\r?\n", raw
        )

        await move(loop, idea_id, "delivered", reason="Shipped in 26.12.")
        author_mails = await mails(infra, author_mail, 2)
        voter_mails = await mails(infra, voter_mail, 2)
        commenter_mails = await mails(infra, commenter_mail, 2)
        facts = await eventually(
            lambda: _at_least(notification_facts(infra, idea_id), 6), what="six notification facts"
        )

        # One notification per follower and change, as a fact and as a mail with the same id.
        told = {(f["data"]["customer"]["customer_id"], f["data"]["kind"]) for f in facts}
        assert told == {
            (who, kind) for who in (author, voter, commenter) for kind in ("status_changed", "delivered")
        }
        assert len({f["id"] for f in facts}) == len(facts) == 6
        assert mail_to(infra, quitter_mail) == []
        fact_ids = {f["id"] for f in facts}
        for message in [*author_mails, *voter_mails, *commenter_mails]:
            assert message["X-Centricity-Notification-Id"] in fact_ids
        # Authors and voters are asked; a commenter, who may not attest, is only told.
        delivered_to = {
            f["data"]["customer"]["customer_id"]: f["data"] for f in facts if f["data"]["kind"] == "delivered"
        }
        assert delivered_to[author]["attestation"] is not None
        assert delivered_to[voter]["attestation"] is not None
        assert delivered_to[commenter].get("attestation") is None
        assert "/attestation-links/" not in text_of(commenter_mails[-1])

        link = answer_link(author_mails[-1])
        page = await loop.ideas.get(link)
        assert page.status_code == 200
        assert "Did it help you?" in page.text
        assert "Save my basket" in page.text
        # Opening the page records nothing.
        assert (await loop.ideas.get(f"/ideas/{idea_id}")).json()["attestations"] == {}

        answered = await loop.ideas.post(
            link,
            content="helped=yes&comment=Works+well",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answered.status_code == 200, answered.text
        assert "Thank you" in answered.text
        attestations = (await loop.ideas.get(f"/ideas/{idea_id}")).json()["attestations"]
        assert [(a["customer"]["customer_id"], a["helped"], a["comment"]) for a in attestations.values()] == [
            (author, True, "Works well")
        ]
        again = await loop.ideas.post(link, json={"helped": False})
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")
        assert again.json()["type"].endswith("link-used")

        voter_link = answer_link(voter_mails[-1])
        by_api = await loop.ideas.post(voter_link, json={"helped": False, "comment": "Still slow"})
        assert by_api.status_code == 200, by_api.text
        assert by_api.json() == {"idea_id": idea_id, "helped": False, "recorded": True}


async def _at_least(found: Any, count: int) -> list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = await found
    return items if len(items) >= count else None


async def test_altered_expired_and_foreign_links_are_refused(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    from datetime import timedelta

    from centricity_contracts.customers import Customer
    from centricity_plumbing.answerlinks import UNSUBSCRIBE, AnswerLink
    from centricity_plumbing.clock import utc_now

    async with the_loop(make_settings, infra) as loop:
        link = AnswerLink(
            "n-1",
            unique("idea"),
            "retail",
            Customer(customer_id="c-1", customer_type="external"),
            utc_now() + timedelta(days=1),
        )
        secret = "dev-answer-links-not-for-production"
        good = link.encode(secret)
        altered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
        expired = AnswerLink(
            link.link_id, link.idea_id, "retail", link.customer, utc_now() - timedelta(seconds=5)
        ).encode(secret)
        forged = link.encode("another-secret-of-at-least-32-bytes")
        unsubscribe = AnswerLink(
            link.link_id, link.idea_id, "retail", link.customer, link.expires_at, UNSUBSCRIBE
        ).encode(secret)
        for token, detail in (
            (altered, "not a valid"),
            (expired, "expired"),
            (forged, "not a valid"),
            (unsubscribe, "not a valid"),
        ):
            answer = await loop.ideas.post(f"/attestation-links/{token}", json={"helped": True})
            assert answer.status_code == 400, (token, answer.text)
            assert detail in answer.json()["detail"]
            page = await loop.ideas.get(f"/attestation-links/{token}")
            assert page.status_code == 400
            assert page.headers["content-type"].startswith("text/html")
        # The answer link is not an unsubscribe link either.
        refused = await loop.notifications.post(f"/unsubscribe-links/{good}")
        assert refused.status_code == 400
        # A link for an idea that does not exist.
        missing = await loop.ideas.post(f"/attestation-links/{good}", json={"helped": True})
        assert missing.status_code == 404
        bad_body = await loop.ideas.post(f"/attestation-links/{good}", json={"helped": "maybe", "extra": 1})
        assert bad_body.status_code == 422


async def test_only_those_who_have_not_answered_are_reminded_and_unsubscribing_stops_mail(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    author, voter = unique("author"), unique("voter")
    async with the_loop(make_settings, infra, reminder_after_s=10.0, reminders_at_most=2) as loop:
        submitted = await loop.ideas.post(
            "/ideas",
            json={"reference": unique("REF"), "title": "Faster refunds", "author": customer(author)},
            headers=RETAIL,
        )
        idea_id = submitted.json()["idea_id"]
        author_mail = await contact(loop, RETAIL, author)
        voter_mail = await contact(loop, WHOLESALE, voter)
        await subscribed_voter(loop, idea_id, voter)
        await following(loop, WHOLESALE, voter, idea_id)
        await move(loop, idea_id, "delivered")
        [asked] = await mails(infra, author_mail, 1)
        answered = await loop.ideas.post(answer_link(asked), json={"helped": True})
        assert answered.status_code == 200, answered.text

        # The voter does not answer: the first request, then two reminders, then no more.
        voter_mails = await mails(infra, voter_mail, 3)
        assert [m["Subject"].startswith("Reminder") for m in voter_mails] == [False, True, True]
        assert len({answer_link(m) for m in voter_mails}) == 1, "one link per question, reminders included"
        told = (await loop.notifications.get(f"/customers/{voter}/notifications", headers=WHOLESALE)).json()
        assert [n["notification"]["kind"] for n in told] == [
            "attestation_reminder",
            "attestation_reminder",
            "delivered",
        ]
        assert all(n["mail"]["state"] == "sent" for n in told)
        # The author answered before any reminder was due.
        assert len(mail_to(infra, author_mail)) == 1

        # One-click unsubscribe from the voter's mail: then nothing more about the idea.
        unsubscribe_url = voter_mails[0]["List-Unsubscribe"].strip("<>")
        path = unsubscribe_url.split("//", 1)[1].split("/", 1)[1]
        page = await loop.notifications.get(f"/{path}")
        assert page.status_code == 200
        assert "Unsubscribe" in page.text
        assert "Faster refunds" in page.text
        one_click = await loop.notifications.post(
            f"/{path}",
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert one_click.status_code == 200, one_click.text
        subscriptions = (
            await loop.notifications.get(f"/customers/{voter}/subscriptions", headers=WHOLESALE)
        ).json()
        assert [(s["idea_id"], s["subscribed"]) for s in subscriptions] == [(idea_id, False)]
        comment = {"body": "Official follow-up", "staff": STAFF, "official": True}
        assert (
            await loop.ideas.post(f"/ideas/{idea_id}/comments", json=comment, headers=RETAIL)
        ).status_code == 201
        await mails(infra, author_mail, 2)
        assert len(mail_to(infra, voter_mail)) == 3


async def attest(
    loop: Loop, idea_id: str, who: dict[str, str], headers: dict[str, str], helped: bool
) -> None:
    async def recorded() -> bool | None:
        body = {"customer": who, "helped": helped}
        answer = await loop.ideas.put(f"/ideas/{idea_id}/attestation", json=body, headers=headers)
        return True if answer.status_code == 200 else None

    await eventually(recorded, timeout=CATCH_UP_S, what=f"{who['customer_id']}'s attestation")


async def test_when_too_many_say_it_did_not_help_the_unit_is_told_and_the_loop_opens_again(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    from standardwebhooks import Webhook

    from centricity_contracts.topics import IDEAS_EVENTS
    from centricity_plumbing.webhookbin import received

    author, voter, run = unique("author"), unique("voter"), unique("run")
    policy = {"follow_up_min_answers": 2, "follow_up_not_helped_share": 0.5, "follow_up_not_helped_count": 50}
    async with the_loop(
        make_settings, infra, ideas_settings=policy, webhook_allow_private_targets=True
    ) as loop:
        endpoint = await loop.notifications.post(
            "/webhooks",
            json={
                "url": f"{infra.webhook_url}/{run}",
                "event_types": ["centricity.idea.follow_up_needed.v1"],
            },
            headers=RETAIL,
        )
        assert endpoint.status_code == 201, endpoint.text
        submitted = await loop.ideas.post(
            "/ideas",
            json={"reference": unique("REF"), "title": "Instant transfers", "author": customer(author)},
            headers=RETAIL,
        )
        idea_id = submitted.json()["idea_id"]
        await subscribed_voter(loop, idea_id, voter)
        await move(loop, idea_id, "delivered")
        reopen = {"status": "in_progress", "reason": "Customers say it did not help", "by": STAFF}
        early = await loop.ideas.post(f"/ideas/{idea_id}/status", json=reopen, headers=RETAIL)
        assert early.status_code == 409, "a delivered idea reopens only to follow up"

        await attest(loop, idea_id, customer(author), RETAIL, helped=True)
        assert (await loop.ideas.get(f"/ideas/{idea_id}")).json()["follow_up_needed_at"] is None
        await attest(loop, idea_id, customer(voter), WHOLESALE, helped=False)
        flagged = (await loop.ideas.get(f"/ideas/{idea_id}")).json()
        assert flagged["follow_up_needed_at"] is not None

        async def follow_up_fact() -> list[dict[str, Any]] | None:
            records = await read_topic(infra.kafka_bootstrap, IDEAS_EVENTS)
            found = [
                r.json()
                for r in records
                if r.key == idea_id and r.json()["type"].endswith("follow_up_needed.v1")
            ]
            return found or None

        [fact] = await eventually(follow_up_fact, timeout=CATCH_UP_S, what="the follow-up fact")
        assert (fact["data"]["attested"], fact["data"]["not_helped"], fact["data"]["not_helped_share"]) == (
            2,
            1,
            0.5,
        )

        async def told() -> list[dict[str, Any]] | None:
            return [r for r in received(infra.webhook_log) if r["path"] == f"/{run}"] or None

        [delivery] = await eventually(told, timeout=CATCH_UP_S, what="the unit's webhook told")
        payload = Webhook(endpoint.json()["secret"]).verify(delivery["body"], delivery["headers"])
        assert payload["id"] == fact["id"]
        assert delivery["headers"]["webhook-id"] == fact["id"]

        again = await loop.ideas.post(f"/ideas/{idea_id}/status", json=reopen, headers=RETAIL)
        assert again.status_code == 200, again.text
        reopened = again.json()
        assert (reopened["status"], reopened["follow_up_needed_at"]) == ("in_progress", None)


async def test_mail_the_server_refuses_is_recorded_and_other_mail_goes_on(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    from centricity_plumbing.localinfra import REFUSED_MAIL_DOMAIN

    author, voter = unique("author"), unique("voter")
    async with the_loop(make_settings, infra) as loop:
        submitted = await loop.ideas.post(
            "/ideas",
            json={"reference": unique("REF"), "title": "Paper statements", "author": customer(author)},
            headers=RETAIL,
        )
        idea_id = submitted.json()["idea_id"]
        refused = f"{author}@{REFUSED_MAIL_DOMAIN}"
        body = {"email": refused}
        assert (
            await loop.notifications.put(f"/customers/{author}/contact", json=body, headers=RETAIL)
        ).status_code == 200
        voter_mail = await contact(loop, WHOLESALE, voter)
        await subscribed_voter(loop, idea_id, voter)
        await following(loop, WHOLESALE, voter, idea_id)
        await move(loop, idea_id, "planned")
        await mails(infra, voter_mail, 1)

        async def failed() -> dict[str, Any] | None:
            told = (await loop.notifications.get(f"/customers/{author}/notifications", headers=RETAIL)).json()
            return told[0] if told and told[0]["mail"]["state"] == "failed" else None

        outcome = await eventually(failed, timeout=CATCH_UP_S, what="the refused mail recorded")
        assert "550" in outcome["mail"]["error"]
        assert outcome["mail"]["attempts"] == 1, "a refusal is final: not retried"
        assert mail_to(infra, refused) == []


async def test_a_customer_reads_what_they_follow_a_page_at_a_time_by_its_link(
    make_settings: SettingsFactory, infra: LocalInfrastructure
) -> None:
    author = unique("prolific")
    async with the_loop(make_settings, infra) as loop:
        ideas = [
            (
                await loop.ideas.post(
                    "/ideas",
                    json={
                        "reference": unique("REF"),
                        "title": f"Idea number {n}",
                        "author": customer(author),
                    },
                    headers=RETAIL,
                )
            ).json()["idea_id"]
            for n in range(5)
        ]
        for idea_id in ideas:
            await following(loop, RETAIL, author, idea_id)
        pages: list[list[str]] = []
        url: str | None = f"/customers/{author}/subscriptions?limit=2"
        while url is not None:
            answer = await loop.notifications.get(url, headers=RETAIL)
            assert answer.status_code == 200, answer.text
            pages.append([s["idea_id"] for s in answer.json()])
            url = answer.links.get("next", {}).get("url")
        everything = (
            await loop.notifications.get(f"/customers/{author}/subscriptions", headers=RETAIL)
        ).json()
        too_many = await loop.notifications.get(
            f"/customers/{author}/subscriptions?limit=501", headers=RETAIL
        )
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [i for page in pages for i in page] == sorted(ideas)
    assert [s["idea_id"] for s in everything] == sorted(ideas)
    assert too_many.status_code == 422
