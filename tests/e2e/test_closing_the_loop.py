"""Closing the loop as the people in it would: a BU system posts an idea and its customers' mail
addresses, staff deliver it, the customer finds the question in their mailbox (the local SMTP
server's), opens its link in Chromium, and answers without signing in."""

from __future__ import annotations

import re
import time
import uuid
from email.message import EmailMessage

import httpx
import pytest
from playwright.sync_api import Browser

from centricity_plumbing.localrun import DEV_BUSINESS_UNITS, LocalSystem
from centricity_plumbing.mailbox import read_messages
from tests.e2e.pages import assert_readable_by_everyone
from tests.e2e.test_dashboard import WAIT_MS

RETAIL = {"X-API-Key": DEV_BUSINESS_UNITS["retail"]["api_key"]}
WHOLESALE = {"X-API-Key": DEV_BUSINESS_UNITS["wholesale"]["api_key"]}
TIMEOUT_S = 60


def wait_for_mail(system: LocalSystem, to: str, count: int) -> list[EmailMessage]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        found = [m for m in read_messages(system.infra.maildir) if m["To"] == to]
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {count} mails to {to} in {TIMEOUT_S} s")


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_link(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    found = re.search(r'href="([^"]+/attestation-links/[^"]+)"', str(part.get_content()))
    assert found, "the HTML mail has a one-click answer link"
    return found.group(1)


def until(call: object, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if call():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.e2e
def test_a_customer_answers_from_their_mail_in_a_browser(
    system: LocalSystem, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ideas, votes, notifications = (system.url(s) for s in ("ideas", "votes", "notifications"))
    author, voter = f"c-{uuid.uuid4().hex[:8]}", f"w-{uuid.uuid4().hex[:8]}"
    idea = httpx.post(
        f"{ideas}/ideas",
        json={
            "reference": f"CRM-{uuid.uuid4().hex[:8]}",
            "title": "Show my card's PIN in the app",
            "author": {"customer_id": author, "customer_type": "external", "display_name": "Ada"},
        },
        headers=RETAIL,
        timeout=30,
    ).json()
    idea_id = idea["idea_id"]
    for customer, headers in ((author, RETAIL), (voter, WHOLESALE)):
        answer = httpx.put(
            f"{notifications}/customers/{customer}/contact",
            json={"email": f"{customer}@mail.example"},
            headers=headers,
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
    ballot = {"idea_id": idea_id, "voter": {"customer_id": voter, "customer_type": "external"}, "value": 1}
    until(
        lambda: httpx.post(f"{votes}/votes", json=ballot, headers=WHOLESALE, timeout=10).status_code == 200,
        "a vote",
    )
    until(
        lambda: any(
            s["idea_id"] == idea_id
            for s in httpx.get(f"{notifications}/customers/{voter}/subscriptions", headers=WHOLESALE).json()
        ),
        "the voter to follow the idea",
    )
    delivered = httpx.post(
        f"{ideas}/ideas/{idea_id}/status",
        json={"status": "delivered", "reason": "In app version 9.2.", "by": {"actor_id": "pm-anna"}},
        headers=RETAIL,
        timeout=10,
    )
    assert delivered.status_code == 200, delivered.text

    [mail] = wait_for_mail(system, f"{author}@mail.example", 1)
    assert mail["Subject"] == "Delivered: \u201cShow my card's PIN in the app\u201d. Did it help you?"
    assert "In app version 9.2." in text_of(mail)
    link = html_link(mail)
    assert link.startswith(f"{ideas}/attestation-links/")

    page = browser.new_page()
    page.goto(link)
    assert page.locator("h1").text_content() == "Did it help you?"
    assert "Show my card's PIN in the app" in (page.locator("main").text_content() or "")
    shot = tmp_path_factory.mktemp("answer") / "answer-page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"answer page screenshot: {shot}")
    assert_readable_by_everyone(page, "the answer page")
    page.get_by_label("Yes, it helped").check()
    page.locator("textarea[name=comment]").fill("Found it under Cards.")
    page.get_by_role("button", name="Send my answer").click()
    page.locator("h1", has_text="Thank you").wait_for(timeout=WAIT_MS)
    assert_readable_by_everyone(page, "the thank-you page")

    stored = httpx.get(f"{ideas}/ideas/{idea_id}", headers=RETAIL, timeout=10).json()
    assert [(a["helped"], a["comment"]) for a in stored["attestations"].values()] == [
        (True, "Found it under Cards.")
    ]
    # The link worked once; opening it again says so, in the page.
    page.goto(link)
    assert page.locator("h1").text_content() == "This link was used already"
    assert_readable_by_everyone(page, "the used-link page")
    page.close()
    # The voter was asked too, and the mail's one-click unsubscribe works as a mail client sends it.
    [voter_mail] = wait_for_mail(system, f"{voter}@mail.example", 1)
    unsubscribe = voter_mail["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith(f"{notifications}/unsubscribe-links/")
    # Opening the link in a browser changes nothing, and the page offers the button.
    page = browser.new_page()
    page.goto(unsubscribe)
    assert page.get_by_role("button", name="Unsubscribe").is_visible()
    assert_readable_by_everyone(page, "the unsubscribe page")
    page.close()
    one_click = httpx.post(
        unsubscribe,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert one_click.status_code == 200, one_click.text
    followed = httpx.get(
        f"{notifications}/customers/{voter}/subscriptions", headers=WHOLESALE, timeout=10
    ).json()
    assert [(s["idea_id"], s["subscribed"]) for s in followed] == [(idea_id, False)]
