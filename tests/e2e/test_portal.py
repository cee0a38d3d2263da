"""The customer portal and the staff console in Chromium (Debian's), on the system `make run`
starts: a customer finds or submits an idea, votes, is told of the delivery and answers whether it
helped; staff triage, merge, respond and deliver; every page passes axe-core at 375 and 1,400 px."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response

from centricity_plumbing.localrun import DEV_BUSINESS_UNITS, LocalSystem
from tests.e2e.pages import assert_readable_by_everyone

RETAIL_KEY = {"X-API-Key": DEV_BUSINESS_UNITS["retail"]["api_key"]}
WAIT_MS = 30_000
JS_BUDGET_BYTES = 300_000


@pytest.fixture
def people(browser: Browser) -> Iterator[list[BrowserContext]]:
    contexts: list[BrowserContext] = []
    yield contexts
    for context in contexts:
        context.close()


def signed_in(
    browser: Browser, people: list[BrowserContext], system: LocalSystem, user: str, path: str
) -> Page:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    people.append(context)
    page = context.new_page()
    page.goto(system.url("portal") + path)
    # The local provider asks who is signing in; the enterprise's would ask for a password.
    page.locator(f'form[aria-labelledby="heading-auth-predefined"] button[value="{user}"]').click()
    page.wait_for_url(system.url("portal") + path, timeout=WAIT_MS)
    return page


def flash(page: Page) -> str:
    return str(page.locator(".flash").inner_text())


def idea_via_api(system: LocalSystem, idea_id: str) -> dict[str, Any]:
    answer = httpx.get(f"{system.url('ideas')}/ideas/{idea_id}", headers=RETAIL_KEY, timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def submit_via_api(system: LocalSystem, title: str) -> str:
    answer = httpx.post(
        f"{system.url('ideas')}/ideas",
        json={
            "reference": f"PORTAL-{uuid.uuid4().hex[:8]}",
            "title": title,
            "author": {"customer_id": "c-phone", "customer_type": "external"},
        },
        headers=RETAIL_KEY,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["idea_id"])


def reload_until(page: Page, selector: str, what: str) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while page.locator(selector).count() == 0:
        assert time.monotonic() < deadline, f"never saw {what}"
        page.wait_for_timeout(500)
        page.reload()


def test_a_customer_submits_finds_votes_is_told_of_the_delivery_and_answers(
    system: LocalSystem, browser: Browser, people: list[BrowserContext]
) -> None:
    alice = signed_in(browser, people, system, "alice", "/")
    assert_readable_by_everyone(alice, "the ideas page")

    alice.goto(system.url("portal") + "/submit")
    assert_readable_by_everyone(alice, "the submit page")
    alice.fill("#title", "Dark mode for the mobile banking app")
    alice.fill("#description", "The white screen hurts at night.")
    alice.fill("#tags", "app, accessibility")
    alice.get_by_role("button", name="Submit").click()
    assert flash(alice).startswith("Thank you: your idea is submitted"), flash(alice)
    idea_id = alice.url.rsplit("/", 1)[-1]

    # Finding it again: while a title is typed, likely duplicates appear (htmx, no reload).
    alice.goto(system.url("portal") + "/submit")
    alice.fill("#title", "dark mode banking app")
    alice.locator(f'#likely a[href="/ideas/{idea_id}"]').click(timeout=WAIT_MS)
    alice.get_by_role("button", name="Vote up").click()
    assert flash(alice) == "Your vote is recorded.", flash(alice)
    alice.fill("#comment-body", "Please, soon.")
    alice.get_by_role("button", name="Comment", exact=True).click()
    assert flash(alice) == "Your comment is posted."
    assert_readable_by_everyone(alice, "an idea's page")

    moderator = signed_in(browser, people, system, "retail-moderator", f"/ideas/{idea_id}")
    assert_readable_by_everyone(moderator, "an idea's page for its moderator")
    moderator.fill("#official-body", "It is coming in the next release.")
    moderator.get_by_role("button", name="Post the official response").click()
    assert flash(moderator) == "Your comment is posted."
    moderator.select_option("#status", "delivered")
    moderator.fill("#reason", "Shipped in 4.2: Settings, Appearance.")
    moderator.get_by_role("button", name="Change status").click()
    assert flash(moderator) == "The idea is now delivered.", flash(moderator)

    alice.goto(system.url("portal") + "/me")
    reload_until(
        alice, f'.notice.asks a[href="/ideas/{idea_id}#ask-heading"]', "the delivery notice on My page"
    )
    assert "Shipped in 4.2" in alice.locator(".notice.asks").first.inner_text()
    assert_readable_by_everyone(alice, "My page")
    alice.locator(f'.notice.asks a[href="/ideas/{idea_id}#ask-heading"]').first.click()
    alice.check("input[name=helped][value=yes]")
    alice.fill("#attest-comment", "Much better at night.")
    alice.get_by_role("button", name="Send my answer").click()
    assert flash(alice) == "Thank you: your answer is recorded.", flash(alice)

    stored = idea_via_api(system, idea_id)
    assert stored["status"] == "delivered"
    assert stored["helped"] == 1
    assert stored["did_not_help"] == 0


def test_staff_see_new_ideas_arrive_live_and_merge_a_suggested_duplicate(
    system: LocalSystem, browser: Browser, people: list[BrowserContext]
) -> None:
    original = submit_via_api(system, "Save my basket across my devices")
    moderator = signed_in(browser, people, system, "retail-moderator", "/console")
    assert_readable_by_everyone(moderator, "the console")

    # Submitted while the console is open: it appears without a reload, with its suggestion.
    twin = submit_via_api(system, "Keep my basket saved across devices")
    merge = moderator.locator(f'form[action="/console/ideas/{twin}/merge"]').filter(
        has=moderator.locator(f'input[value="{original}"]')
    )
    merge.get_by_role("button", name="Merge into it").click(timeout=WAIT_MS * 2)
    assert flash(moderator).startswith("Merged"), flash(moderator)
    assert idea_via_api(system, twin)["duplicate_of"] == original


def test_pages_need_a_signed_in_person_and_say_what_is_refused_in_words(
    system: LocalSystem, browser: Browser, people: list[BrowserContext]
) -> None:
    anonymous = httpx.get(system.url("portal") + "/me", timeout=10)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/signin?next=/me"

    alice = signed_in(browser, people, system, "alice", "/")
    refused = alice.goto(system.url("portal") + "/console")
    assert refused is not None
    assert refused.status == 403
    assert alice.locator("h1").inner_text() == "The console is for staff of a business unit"
    missing = alice.goto(system.url("portal") + f"/ideas/{uuid.uuid4()}")
    assert missing is not None
    assert missing.status == 404
    assert "Traceback" not in alice.content()
    assert alice.locator("h1").inner_text()
    assert_readable_by_everyone(alice, "a refusal's page")

    # Another unit's moderator reads a retail idea but gets none of its staff controls.
    idea_id = submit_via_api(system, "Let me pick a branch appointment online")
    wendy = signed_in(browser, people, system, "wholesale-moderator", f"/ideas/{idea_id}")
    assert wendy.locator("h1").inner_text() == "Let me pick a branch appointment online"
    assert wendy.locator("#staff-heading").count() == 0


def test_each_page_carries_less_than_300_kb_of_javascript(
    system: LocalSystem, browser: Browser, people: list[BrowserContext]
) -> None:
    signed_in(browser, people, system, "retail-moderator", "/console")
    for path in ("/", "/submit", "/console"):
        page = people[0].new_page()
        scripts: list[int] = []

        def weigh(response: Response, scripts: list[int] = scripts) -> None:
            if response.request.resource_type == "script":
                scripts.append(len(response.body()))

        page.on("response", weigh)
        page.goto(system.url("portal") + path, wait_until="networkidle")
        assert 0 < sum(scripts) < JS_BUDGET_BYTES, (path, scripts)
        page.close()
