"""The dashboard in a real headless Chromium (Debian's): votes posted over HTTP change the page
live, over server-sent events, without a reload; so does a delivery, whose author and voters are
asked whether it helped, and an answer."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from centricity_plumbing.localrun import DEV_BUSINESS_UNITS, LocalSystem
from tests.e2e.pages import assert_readable_by_everyone

RETAIL_KEY = {"X-API-Key": DEV_BUSINESS_UNITS["retail"]["api_key"]}
WAIT_MS = 30_000


def launch_campaign(system: LocalSystem) -> str:
    now = datetime.now(UTC)
    answer = httpx.post(
        f"{system.url('ideas')}/campaigns",
        json={
            "reference": f"DASH-{uuid.uuid4().hex[:8]}",
            "title": "Dashboard check",
            "opens_at": (now - timedelta(days=1)).isoformat(),
            "closes_at": (now + timedelta(days=30)).isoformat(),
        },
        headers=RETAIL_KEY,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["campaign_id"])


def submit_idea(system: LocalSystem, campaign_id: str) -> str:
    answer = httpx.post(
        f"{system.url('ideas')}/ideas",
        json={
            "reference": f"DASH-{uuid.uuid4().hex[:8]}",
            "title": "Show the delivery slot on the order page",
            "author": {"customer_id": "c-dash", "customer_type": "external"},
            "campaign_id": campaign_id,
        },
        headers=RETAIL_KEY,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["idea_id"])


def vote(system: LocalSystem, idea_id: str, voter: str, unit: str = "wholesale") -> None:
    """Vote over HTTP; the votes service answers 404 until it has seen the idea's creation fact."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        answer = httpx.post(
            f"{system.url('votes')}/votes",
            json={
                "idea_id": idea_id,
                "voter": {"customer_id": voter, "customer_type": "partner"},
                "value": 1,
            },
            headers={"X-API-Key": DEV_BUSINESS_UNITS[unit]["api_key"]},
            timeout=10,
        )
        if answer.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answer.status_code in (200, 201), answer.text


def follows(system: LocalSystem, customer: str, unit: str, idea_id: str) -> None:
    """Wait until the notifications service counts the customer among the idea's followers."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        answer = httpx.get(
            f"{system.url('notifications')}/customers/{customer}/subscriptions",
            headers={"X-API-Key": DEV_BUSINESS_UNITS[unit]["api_key"]},
            timeout=10,
        )
        if answer.status_code == 200 and any(s["idea_id"] == idea_id for s in answer.json()):
            return
        time.sleep(0.2)
    raise AssertionError(f"{customer} never followed {idea_id}")


def deliver_and_answer(system: LocalSystem, idea_id: str) -> None:
    """Deliver the idea (its author and three voters are asked), and the author answers."""
    for customer, unit in (
        ("c-dash", "retail"),
        ("p-1", "wholesale"),
        ("p-2", "wholesale"),
        ("r-3", "retail"),
    ):
        follows(system, customer, unit, idea_id)
    delivered = httpx.post(
        f"{system.url('ideas')}/ideas/{idea_id}/status",
        json={"status": "delivered", "reason": "On the order page now.", "by": {"actor_id": "pm-dash"}},
        headers=RETAIL_KEY,
        timeout=10,
    )
    assert delivered.status_code == 200, delivered.text


def text(page: Page, selector: str) -> Any:
    return page.locator(selector).inner_text()


CROSS_FIGURE_IS_67 = """
    document.querySelector('#units .unit-row[data-unit="businessunit:retail"] .metric.cross .figure')
        ?.textContent === '67 %'
"""


def assert_hourly_trend(page: Page, *, votes: int, points: int = 1) -> None:
    """The chart has the hours the server counted: every point on a whole hour but the last,
    which is now, with the votes so far."""
    times, drawn_votes = page.evaluate("[chart.data[0], chart.data[1]]")
    assert len(times) >= points, times
    assert all(t % 3600 == 0 for t in times[:-1]), times
    assert times[-1] <= time.time() + 1
    assert drawn_votes[-1] == votes, drawn_votes


def test_votes_change_the_dashboard_live(
    system: LocalSystem, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    campaign_id = launch_campaign(system)
    idea_id = submit_idea(system, campaign_id)
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(f"{system.url('insights')}/dashboard?campaign_id={campaign_id}")
    # Not signed in: the enterprise's provider (here the local one) asks who is signing in.
    page.locator('form[aria-labelledby="heading-auth-predefined"] button[value="analyst"]').click()
    page.wait_for_url(f"{system.url('insights')}/dashboard?campaign_id={campaign_id}", timeout=WAIT_MS)
    row = page.locator(f'#leaderboard li[data-idea-id="{idea_id}"]')
    row.wait_for(timeout=WAIT_MS)
    assert row.get_attribute("data-score") == "0"
    page.wait_for_function("document.getElementById('live').textContent === 'live'", timeout=WAIT_MS)
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    # Votes need the votes service to know the idea; it learns it from the ideas service's fact.
    vote(system, idea_id, "p-1")
    vote(system, idea_id, "p-2")
    vote(system, idea_id, "r-3", unit="retail")

    page.wait_for_function(
        f"document.querySelector('#leaderboard li[data-idea-id=\"{idea_id}\"]').dataset.score === '3'",
        timeout=WAIT_MS,
    )
    page.wait_for_function("document.getElementById('kpi-votes').textContent === '3'", timeout=WAIT_MS)
    assert page.evaluate("window.loadedOnce") is True, "the page updated without a reload"
    assert text(page, "#kpi-cross") == "67 %", "two of three votes came from another unit"
    retail = page.locator('#units .unit-row[data-unit="businessunit:retail"]')
    page.wait_for_function(CROSS_FIGURE_IS_67, timeout=WAIT_MS)
    assert retail.locator(".metric.cross .figure").is_visible(), "the figure is text beside its bar"
    assert retail.locator(".metric.cross").inner_text().split() == ["67", "%", "cross-BU"]
    assert_hourly_trend(page, votes=3)
    assert "Show the delivery slot" in text(page, "#leaderboard")
    assert text(page, "#kpi-asked") == "0"
    assert text(page, "#kpi-response-rate") == "\N{EN DASH}", "nobody asked yet"

    deliver_and_answer(system, idea_id)
    page.wait_for_function("document.getElementById('kpi-asked').textContent === '4'", timeout=WAIT_MS)
    answered = httpx.put(
        f"{system.url('ideas')}/ideas/{idea_id}/attestation",
        json={"customer": {"customer_id": "c-dash", "customer_type": "external"}, "helped": True},
        headers=RETAIL_KEY,
        timeout=10,
    )
    assert answered.status_code == 200, answered.text
    page.wait_for_function(
        "document.getElementById('kpi-response-rate').textContent === '25 %'", timeout=WAIT_MS
    )
    assert text(page, "#kpi-answered") == "1 of 4 answered"
    assert text(page, "#kpi-answer-time").endswith((" s", " min")), "answered within the test"
    assert text(page, "#kpi-helpfulness") == "100 %"
    assert page.evaluate("window.loadedOnce") is True
    page.wait_for_timeout(600)  # the meters' transitions end
    shot = tmp_path_factory.mktemp("dashboard") / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"dashboard screenshot: {shot}")
    assert_readable_by_everyone(page, "the dashboard")
    first_paint_shows_the_figures(page, idea_id)
    page.close()


def first_paint_shows_the_figures(page: Page, idea_id: str) -> None:
    """The page loaded again without its stream: what it shows came with the page itself."""
    page.route("**/stream*", lambda route: route.abort())
    page.reload()
    assert page.evaluate("window.loadedOnce") is None, "a new page"
    assert text(page, "#kpi-votes") == "3"
    assert text(page, "#kpi-cross") == "67 %"
    assert page.locator(f'#leaderboard li[data-idea-id="{idea_id}"]').get_attribute("data-score") == "3"
    assert page.evaluate(CROSS_FIGURE_IS_67) is True
    assert_hourly_trend(page, votes=3, points=2)  # the hour's start and now, from the server's series


def test_the_first_html_has_the_figures_without_javascript(system: LocalSystem, browser: Browser) -> None:
    campaign_id = launch_campaign(system)
    idea_id = submit_idea(system, campaign_id)
    vote(system, idea_id, "p-9")
    unit = f"{system.url('insights')}/units/campaign:{campaign_id}"
    deadline = time.monotonic() + WAIT_MS / 1000
    while httpx.get(unit, headers=RETAIL_KEY, timeout=10).json().get("votes") != 1:
        assert time.monotonic() < deadline, "insights never counted the vote"
        time.sleep(0.2)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{system.url('insights')}/dashboard?campaign_id={campaign_id}")
    page.locator('form[aria-labelledby="heading-auth-predefined"] button[value="analyst"]').click()
    page.wait_for_url(f"{system.url('insights')}/dashboard?campaign_id={campaign_id}", timeout=WAIT_MS)
    assert (text(page, "#kpi-ideas"), text(page, "#kpi-votes"), text(page, "#kpi-participants")) == (
        "1",
        "1",
        "2",
    )
    assert text(page, "#kpi-coverage") == "0 %", "demand, none of it planned yet"
    assert text(page, "#kpi-cross") == "100 %"
    assert "Show the delivery slot" in text(page, "#leaderboard")
    assert text(page, f'#leaderboard li[data-idea-id="{idea_id}"] .num') == "+1"
    assert text(page, '#units .unit-row[data-unit="businessunit:retail"] .metric.coverage .figure').endswith(
        " %"
    )
    assert text(page, "#scopes a.on") == "Dashboard check"
    assert "connecting" not in text(page, "header")
    assert text(page, "#live").startswith("as of ")
    context.close()


def test_the_dashboard_and_its_stream_need_a_signed_in_person(system: LocalSystem) -> None:
    page = httpx.get(f"{system.url('insights')}/dashboard", params={"businessunit": "retail"}, timeout=10)
    stream = httpx.get(f"{system.url('insights')}/stream", timeout=10)
    assert page.status_code == 303
    assert page.headers["location"] == "/signin?next=/dashboard%3Fbusinessunit%3Dretail"
    assert stream.status_code == 401
    assert stream.headers["content-type"] == "application/problem+json"


def test_a_customer_signed_in_is_told_the_dashboard_is_not_for_their_role(
    system: LocalSystem, browser: Browser
) -> None:
    page = browser.new_page()
    page.goto(f"{system.url('insights')}/dashboard")
    page.locator('form[aria-labelledby="heading-auth-predefined"] button[value="alice"]').click()
    heading = page.locator("h1")
    heading.wait_for(timeout=WAIT_MS)
    assert heading.text_content() == "Not for your role"
    assert "Alice" in text(page, "main")
    answer = page.request.get(f"{system.url('insights')}/dashboard")
    assert answer.status == 403
    page.close()
