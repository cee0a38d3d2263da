"""People sign in with the enterprise's OpenID provider (#14): the permission matrix, cell by cell,
and the OWASP API Security Top 10 boundaries, on the three services and the real local provider.

Tokens come from the provider's own authorization form and token endpoint (`sign_in`); only the
negative tests forge tokens, to show they are refused.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from centricity_ideas.main import IdeasSettings
from centricity_ideas.main import create_app as create_ideas
from centricity_insights.main import InsightsSettings
from centricity_insights.main import create_app as create_insights
from centricity_notifications.main import NotificationsSettings
from centricity_notifications.main import create_app as create_notifications
from centricity_plumbing.devusers import DEV_USERS
from centricity_plumbing.localinfra import LocalInfrastructure, free_port
from centricity_plumbing.permissions import GRANTEES, PERMISSIONS, SYSTEM, Action, Grant, permission_table
from centricity_votes.main import VotesSettings
from centricity_votes.main import create_app as create_votes
from tests.integration.conftest import API_KEYS, SettingsFactory, running, unique
from tests.support import eventually, sign_in

ROOT = Path(__file__).resolve().parents[2]
# The development user who holds each grant (README: Sign-in and roles).
HOLDER: dict[Grant, str] = {
    "admin": "retail-admin",
    "moderator": "retail-moderator",
    "viewer": "retail-viewer",
    "enterprise_admin": "enterprise-admin",
    "analyst": "analyst",
    "customer": "alice",
}
ALICE = {"customer_id": "alice", "customer_type": "external"}
SOMEONE = {"customer_id": "c-1", "customer_type": "external"}
NO_IDEA = "00000000-0000-5000-8000-000000000000"


@dataclass
class Services:
    ideas: httpx.AsyncClient
    votes: httpx.AsyncClient
    insights: httpx.AsyncClient
    notifications: httpx.AsyncClient


@pytest.fixture
async def services(make_settings: SettingsFactory) -> AsyncIterator[Services]:
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(running(create(make_settings(settings)), reader=None))
            for create, settings in (
                (create_ideas, IdeasSettings),
                (create_votes, VotesSettings),
                (create_insights, InsightsSettings),
                (create_notifications, NotificationsSettings),
            )
        ]
        yield Services(*clients)


def credentials(infra: LocalInfrastructure, grant: Grant, tokens: dict[str, str]) -> dict[str, str]:
    if grant == SYSTEM:
        return {"X-API-Key": API_KEYS["retail"]}
    user = HOLDER[grant]
    if user not in tokens:
        tokens[user] = sign_in(infra.oidc_issuer, user)
    return {"Authorization": f"Bearer {tokens[user]}"}


def me(grant: Grant) -> dict[str, str]:
    return ALICE if grant == "customer" else SOMEONE


async def attempt(
    services: Services, action: Action, grant: Grant, headers: dict[str, str]
) -> httpx.Response:
    """One request that takes `action`; its target need not exist (refusals come first)."""
    idea = f"/ideas/{NO_IDEA}"
    calls: dict[Action, tuple[httpx.AsyncClient, str, str, dict[str, Any] | None]] = {
        Action.READ: (services.ideas, "GET", "/ideas", None),
        Action.READ_VOTERS: (services.votes, "GET", f"{idea}/votes", None),
        Action.READ_INSIGHTS: (services.insights, "GET", "/units", None),
        Action.READ_AUDIT: (services.insights, "GET", "/audit", None),
        Action.SUBMIT_IDEA: (
            services.ideas,
            "POST",
            "/ideas",
            {"reference": unique("R"), "title": "A signed-in idea", "author": me(grant)},
        ),
        Action.REVISE_IDEA: (services.ideas, "PATCH", idea, {"title": "Better title"}),
        Action.CHANGE_STATUS: (services.ideas, "POST", f"{idea}/status", {"status": "planned"}),
        Action.MERGE_IDEAS: (services.ideas, "POST", f"{idea}/merge", {"into_idea_id": NO_IDEA}),
        Action.WITHDRAW_IDEA: (services.ideas, "POST", f"{idea}/withdrawal", {}),
        Action.COMMENT: (services.ideas, "POST", f"{idea}/comments", {"body": "Me too", "author": me(grant)}),
        Action.ATTEST: (
            services.ideas,
            "PUT",
            f"{idea}/attestation",
            {"customer": me(grant), "helped": True},
        ),
        Action.LAUNCH_CAMPAIGN: (
            services.ideas,
            "POST",
            "/campaigns",
            {
                "reference": unique("C"),
                "title": "A campaign",
                "goal": "Learn",
                "scope": "businessunit",
                "opens_at": "2026-11-01T00:00:00Z",
                "closes_at": "2027-11-01T00:00:00Z",
            },
        ),
        Action.VOTE: (services.votes, "POST", "/votes", {"idea_id": NO_IDEA, "voter": me(grant), "value": 1}),
        Action.READ_NOTIFICATIONS: (
            services.notifications,
            "GET",
            f"/customers/{me(grant)['customer_id']}/subscriptions?businessunit=retail",
            None,
        ),
        Action.MANAGE_WEBHOOKS: (services.notifications, "GET", "/webhooks", None),
        Action.SUBSCRIBE: (
            services.notifications,
            "PUT",
            f"{idea}/subscription",
            {"subscribed": True, "customer": me(grant)},
        ),
    }
    client, method, path, body = calls[action]
    return await client.request(method, path, json=body, headers=headers)


async def test_every_cell_of_the_permission_matrix(services: Services, infra: LocalInfrastructure) -> None:
    tokens: dict[str, str] = {}
    wrong: list[str] = []
    for action in Action:
        for grant in GRANTEES:
            answer = await attempt(services, action, grant, credentials(infra, grant, tokens))
            allowed = grant in PERMISSIONS[action]
            if answer.status_code == 401 or (answer.status_code == 403) == allowed:
                wrong.append(f"{action.name} by {grant}: {answer.status_code} {answer.text[:200]}")
    assert wrong == []


def test_the_readme_shows_the_permission_matrix_the_code_enforces() -> None:
    assert permission_table() in (ROOT / "README.md").read_text()


def test_every_grant_has_a_development_user() -> None:
    users = {user["sub"]: user for user in DEV_USERS}
    for grant, user in HOLDER.items():
        assert grant in users[user]["centricity_roles"]


async def test_customers_act_only_as_themselves(services: Services, infra: LocalInfrastructure) -> None:
    alice = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, 'alice')}"}
    as_bob = await services.ideas.post(
        "/ideas", json={"reference": unique("R"), "title": "Not mine", "author": SOMEONE}, headers=alice
    )
    as_alice = await services.ideas.post(
        "/ideas", json={"reference": unique("R"), "title": "Mine, signed in", "author": ALICE}, headers=alice
    )
    proxy = await services.votes.post(
        "/votes",
        json={"idea_id": NO_IDEA, "voter": ALICE, "value": 1, "proxy": {"actor_id": "me"}},
        headers=alice,
    )
    budget_of_other = await services.votes.get(
        "/customers/c-1/allocation", params={"campaign_id": "x"}, headers=alice
    )
    assert as_bob.status_code == 403
    assert as_bob.json()["detail"] == "Customers act only as themselves."
    assert as_alice.status_code == 201, as_alice.text
    assert as_alice.json()["businessunit"] == "retail", "a customer's unit comes from their token"
    assert proxy.status_code == 403
    assert budget_of_other.status_code == 403


async def test_staff_act_in_their_own_unit_and_are_recorded_as_themselves(
    services: Services, infra: LocalInfrastructure
) -> None:
    retail_key = {"X-API-Key": API_KEYS["retail"]}
    submitted = await services.ideas.post(
        "/ideas",
        json={"reference": unique("R"), "title": "Retail's idea", "author": SOMEONE},
        headers=retail_key,
    )
    idea_id = submitted.json()["idea_id"]
    wholesale = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, 'wholesale-moderator')}"}
    retail = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, 'retail-moderator')}"}
    viewer = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, 'retail-viewer')}"}
    by_wholesale = await services.ideas.post(
        f"/ideas/{idea_id}/status", json={"status": "under_review"}, headers=wholesale
    )
    by_viewer = await services.ideas.post(
        f"/ideas/{idea_id}/status", json={"status": "under_review"}, headers=viewer
    )
    by_retail = await services.ideas.post(
        f"/ideas/{idea_id}/status",
        json={"status": "under_review", "by": {"actor_id": "someone-else"}},
        headers=retail,
    )
    assert by_wholesale.status_code in (403, 409), by_wholesale.text
    assert by_viewer.status_code == 403
    assert by_retail.status_code == 200, by_retail.text
    change = by_retail.json()["status_history"][-1]
    assert change["by"]["actor_id"] == "staff:retail-moderator", (
        "the actor comes from the token, not the body"
    )


async def test_other_units_voters_appear_under_stable_pseudonyms(
    services: Services, infra: LocalInfrastructure
) -> None:
    retail_key, wholesale_key = ({"X-API-Key": API_KEYS[u]} for u in ("retail", "wholesale"))
    submitted = await services.ideas.post(
        "/ideas",
        json={"reference": unique("R"), "title": "Voted from afar", "author": SOMEONE},
        headers=retail_key,
    )
    idea_id = submitted.json()["idea_id"]
    voter = {"customer_id": "w-42", "customer_type": "partner"}
    cast = await vote_once_known(services, {"idea_id": idea_id, "voter": voter, "value": 1}, wholesale_key)
    assert cast.status_code in (200, 201), cast.text
    seen_by_retail = (await services.votes.get(f"/ideas/{idea_id}/votes", headers=retail_key)).json()
    again = (await services.votes.get(f"/ideas/{idea_id}/votes", headers=retail_key)).json()
    seen_by_wholesale = (await services.votes.get(f"/ideas/{idea_id}/votes", headers=wholesale_key)).json()
    assert [v["voter"]["customer_id"] for v in seen_by_wholesale] == ["w-42"]
    (pseudonymous,) = seen_by_retail
    assert pseudonymous["voter"]["customer_id"].startswith("anon-")
    assert "w-42" not in json.dumps(seen_by_retail)
    assert again == seen_by_retail, "the pseudonym is stable"
    # Pages: a bounded number of votes per request.
    second = {"customer_id": "w-43", "customer_type": "external"}
    cast = await vote_once_known(services, {"idea_id": idea_id, "voter": second, "value": -1}, wholesale_key)
    assert cast.status_code in (200, 201), cast.text
    pages = [
        (await services.votes.get(f"/ideas/{idea_id}/votes?limit=1&offset={n}", headers=wholesale_key)).json()
        for n in (0, 1, 2)
    ]
    assert [[v["voter"]["customer_id"] for v in page] for page in pages] == [["w-42"], ["w-43"], []]
    too_many = await services.votes.get(f"/ideas/{idea_id}/votes?limit=100000", headers=wholesale_key)
    assert too_many.status_code == 422


async def vote_once_known(
    services: Services, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """Cast a vote as soon as the votes service knows the idea: it learns of it from the idea's
    created fact, a moment after the ideas service answered."""
    deadline = time.monotonic() + 60
    while True:
        cast = await services.votes.post("/votes", json=body, headers=headers)
        if cast.status_code != 404 or time.monotonic() > deadline:
            return cast
        await asyncio.sleep(0.3)


def forged(claims: dict[str, Any], *, key: Any = None, algorithm: str = "RS256") -> str:
    signer = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, signer, algorithm=algorithm)


def claims_for(infra: LocalInfrastructure, **overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "iss": infra.oidc_issuer,
        "aud": "centricity",
        "sub": "retail-admin",
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "centricity_roles": ["admin"],
        "centricity_businessunit": "retail",
        **overrides,
    }


async def test_bad_tokens_get_401_saying_what_is_wrong(
    services: Services, infra: LocalInfrastructure
) -> None:
    unsigned = jwt.encode(claims_for(infra), key="", algorithm="none")
    symmetric = jwt.encode(claims_for(infra), "a-shared-secret-of-32-bytes-or-more!!", algorithm="HS256")
    other_audience = sign_in(infra.oidc_issuer, "retail-admin", client_id="another-app")
    cases = {
        "forged": forged(claims_for(infra)),
        "alg none": unsigned,
        "HS256 with a guessed key": symmetric,
        "another audience": other_audience,
        "garbage": "not.a.token",
    }
    answers = {
        name: await services.ideas.get("/ideas", headers={"Authorization": f"Bearer {token}"})
        for name, token in cases.items()
    }
    for name, answer in answers.items():
        assert answer.status_code == 401, f"{name}: {answer.status_code}"
        assert answer.headers["content-type"] == "application/problem+json"
    assert answers["another audience"].json()["detail"] == "The token is not meant for this service."
    nobody = await services.ideas.get("/ideas")
    assert nobody.status_code == 401
    # A bad credential is refused even beside a good one: no guessing which one counts.
    key = {"X-API-Key": API_KEYS["retail"]}
    for token in (cases["garbage"], cases["forged"]):
        both = await services.ideas.get("/ideas", headers={**key, "Authorization": f"Bearer {token}"})
        assert both.status_code == 401, both.text
    good_token = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, 'alice')}"}
    for bad_key in ("", "not-a-key"):
        both = await services.ideas.get("/ideas", headers={"X-API-Key": bad_key, **good_token})
        assert both.status_code == 401, (bad_key, both.text)


async def test_customers_comment_as_themselves_never_as_staff_or_officially(
    services: Services, infra: LocalInfrastructure
) -> None:
    alice = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, 'alice')}"}
    submitted = await services.ideas.post(
        "/ideas", json={"reference": unique("R"), "title": "Clearer fees", "author": ALICE}, headers=alice
    )
    idea_id = submitted.json()["idea_id"]
    for body in (
        {"body": "OFFICIAL: shipped next week", "staff": {"actor_id": "pm-anna"}, "official": True},
        {"body": "Shipped next week", "staff": {"actor_id": "pm-anna"}},
        {"body": "Shipped next week", "author": ALICE, "official": True},
    ):
        answer = await services.ideas.post(f"/ideas/{idea_id}/comments", json=body, headers=alice)
        assert answer.status_code == 403, (body, answer.text)
    plain = await services.ideas.post(f"/ideas/{idea_id}/comments", json={"body": "Me too"}, headers=alice)
    assert plain.status_code == 201, plain.text
    assert (plain.json()["author"]["customer_id"], plain.json()["staff"], plain.json()["official"]) == (
        "alice",
        None,
        False,
    )


@pytest.fixture
def short_lived_provider() -> Iterator[str]:
    """A second local provider whose tokens live 3 s."""
    port = free_port()
    users = [arg for user in DEV_USERS[:1] for arg in ("--user-claims", json.dumps(user))]
    provider = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--port", str(port), "--token-max-age", "3", *users],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield issuer
    finally:
        provider.terminate()
        provider.wait()


async def test_an_expired_token_gets_401(make_settings: SettingsFactory, short_lived_provider: str) -> None:
    settings = make_settings(IdeasSettings, oidc_issuer=short_lived_provider, oidc_leeway_s=0)
    async with running(create_ideas(settings), reader=None) as ideas:
        token = await asyncio.to_thread(sign_in, short_lived_provider, DEV_USERS[0]["sub"])
        fresh = await ideas.get("/ideas", headers={"Authorization": f"Bearer {token}"})
        await asyncio.sleep(4)
        stale = await ideas.get("/ideas", headers={"Authorization": f"Bearer {token}"})
    assert fresh.status_code == 200, fresh.text
    assert stale.status_code == 401
    assert stale.json()["detail"] == "The token has expired."


async def test_mass_assignment_of_unit_or_status_is_refused(
    services: Services, infra: LocalInfrastructure
) -> None:
    alice = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, 'alice')}"}
    body = {"reference": unique("R"), "title": "Sneaky", "author": ALICE}
    for extra in ({"businessunit": "wholesale"}, {"status": "delivered"}, {"by": {"actor_id": "x"}}):
        answer = await services.ideas.post("/ideas", json={**body, **extra}, headers=alice)
        assert answer.status_code == 422, (extra, answer.status_code)


async def test_ideas_show_other_customers_under_pseudonyms(
    services: Services, infra: LocalInfrastructure
) -> None:
    """Authors and commenters: staff of the idea's unit see who they are, a customer sees only
    themselves, other units and analysts see stable pseudonyms."""
    alice = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, 'alice')}"}
    submitted = await services.ideas.post(
        "/ideas",
        json={"reference": unique("R"), "title": "Alice wants dark mode", "author": ALICE},
        headers=alice,
    )
    idea_id = submitted.json()["idea_id"]
    commented = await services.ideas.post(
        f"/ideas/{idea_id}/comments", json={"body": "Please", "author": ALICE}, headers=alice
    )
    assert commented.status_code == 201, commented.text

    async def seen_by(user: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        headers = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, user)}"}
        idea = (await services.ideas.get(f"/ideas/{idea_id}", headers=headers)).json()
        comments = (await services.ideas.get(f"/ideas/{idea_id}/comments", headers=headers)).json()
        listed = (await services.ideas.get("/ideas", params={"limit": 100}, headers=headers)).json()
        (in_list,) = [i for i in listed["items"] if i["idea_id"] == idea_id]
        assert in_list["author"] == idea["author"]
        return idea, comments

    for user in ("alice", "retail-moderator", "enterprise-admin"):
        idea, comments = await seen_by(user)
        assert idea["author"]["customer_id"] == "alice", user
        assert comments[0]["author"]["customer_id"] == "alice", user
    pseudonyms = set()
    for user in ("bob", "wholesale-moderator", "analyst"):
        idea, comments = await seen_by(user)
        assert "alice" not in json.dumps([idea["author"], comments]), user
        assert idea["author"]["customer_id"] == comments[0]["author"]["customer_id"], "one person, one name"
        pseudonyms.add(idea["author"]["customer_id"])
    assert len(pseudonyms) == 1, "the pseudonym is stable across readers"


async def test_internal_only_ideas_are_for_internal_customers_and_staff(
    services: Services, infra: LocalInfrastructure
) -> None:
    erin = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, 'erin')}"}
    alice = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, 'alice')}"}
    title = f"Staff canteen opens earlier {unique('t')}"
    employee = {"customer_id": "erin", "customer_type": "internal"}
    body = {"reference": unique("R"), "title": title, "author": employee, "internal_only": True}
    submitted = await services.ideas.post("/ideas", json=body, headers=erin)
    assert submitted.status_code == 201, submitted.text
    idea_id = submitted.json()["idea_id"]
    external_author = await services.ideas.post(
        "/ideas", json={**body, "reference": unique("R"), "author": ALICE}, headers=alice
    )
    assert external_author.status_code == 422, "an internal-only idea has an internal author"

    for user, sees in (("erin", True), ("retail-viewer", True), ("analyst", True), ("alice", False)):
        headers = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, user)}"}
        one = await services.ideas.get(f"/ideas/{idea_id}", headers=headers)
        listed = (await services.ideas.get("/ideas", params={"limit": 100}, headers=headers)).json()
        comments = await services.ideas.get(f"/ideas/{idea_id}/comments", headers=headers)
        assert one.status_code == (200 if sees else 404), (user, one.text)
        assert comments.status_code == (200 if sees else 404), user
        assert (idea_id in [i["idea_id"] for i in listed["items"]]) is sees, user

    # To an external customer the idea does not exist, whichever service is asked.
    comment = await services.ideas.post(
        f"/ideas/{idea_id}/comments", json={"body": "Me too", "author": ALICE}, headers=alice
    )
    assert comment.status_code == 404, comment.text
    for voter, headers, expected in ((employee, erin, 200), (ALICE, alice, 404)):
        cast = await vote_once_known(services, {"idea_id": idea_id, "voter": voter, "value": 1}, headers)
        assert cast.status_code in ((200, 201) if expected == 200 else (expected,)), (voter, cast.text)
    for user, sees in (("erin", True), ("retail-viewer", True), ("alice", False), ("bob", False)):
        headers = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, user)}"}
        votes = await services.votes.get(f"/ideas/{idea_id}/votes", headers=headers)
        assert votes.status_code == (200 if sees else 404), (user, votes.text)

        async def insight(headers: dict[str, str] = headers, sees: bool = sees) -> httpx.Response | None:
            answer = await services.insights.get(f"/ideas/{idea_id}", headers=headers)
            return answer if answer.status_code != 404 or not sees else None

        seen = await eventually(insight, what=f"the insight as {user}")
        assert seen.status_code == (200 if sees else 404), (user, seen.text)
        top = (await services.insights.get("/ideas/top", params={"limit": 100}, headers=headers)).json()
        if top and isinstance(top, list):
            assert (idea_id in [i["idea_id"] for i in top]) is sees, user
    # A system may still tell apart "internal-only" from "no such idea".
    unknown = await services.votes.get(f"/ideas/{NO_IDEA}/votes", headers=alice)
    assert unknown.status_code == 404


async def test_no_read_of_any_service_shows_a_customer_to_those_who_may_not_know_them(
    services: Services, infra: LocalInfrastructure
) -> None:
    """Property level, across every read a reader can make about one idea: its author, commenter
    and voter (Alice, with a display name of her own) appear to other units' customers and staff
    and to analysts under a pseudonym only, never by id, name or address."""
    display_name = f"Alice {unique('Surname')}"
    me = {**ALICE, "display_name": display_name}
    alice = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, 'alice')}"}
    title = f"Night mode for the statements page {unique('t')}"
    submitted = await services.ideas.post(
        "/ideas", json={"reference": unique("R"), "title": title, "author": me}, headers=alice
    )
    assert submitted.status_code == 201, submitted.text
    idea_id = submitted.json()["idea_id"]
    comment = {"body": "I read statements at night", "author": me}
    assert (
        await services.ideas.post(f"/ideas/{idea_id}/comments", json=comment, headers=alice)
    ).status_code == 201
    cast = await vote_once_known(services, {"idea_id": idea_id, "voter": me, "value": 1}, alice)
    assert cast.status_code in (200, 201), cast.text

    reads: list[tuple[httpx.AsyncClient, str, dict[str, Any]]] = [
        (services.ideas, "/ideas", {"limit": 100}),
        (services.ideas, f"/ideas/{idea_id}", {}),
        (services.ideas, f"/ideas/{idea_id}/comments", {}),
        (services.ideas, "/ideas/search", {"q": title}),
        (services.votes, f"/ideas/{idea_id}/votes", {}),
        (services.insights, f"/ideas/{idea_id}", {}),
        (services.insights, "/ideas/top", {"limit": 100}),
        (services.insights, "/units/retail", {}),
        (services.notifications, "/customers/alice/subscriptions", {"businessunit": "retail"}),
        (services.notifications, "/customers/alice/notifications", {"businessunit": "retail"}),
        (services.notifications, "/customers/alice/contact", {"businessunit": "retail"}),
    ]
    secrets = ('"alice"', display_name, "alice@", "Alice (retail customer)")

    async def insight_ready() -> bool | None:
        answer = await services.insights.get(f"/ideas/{idea_id}", headers=alice)
        return True if answer.status_code == 200 and answer.json().get("voters") else None

    await eventually(insight_ready, what="the idea's insight with its vote")
    seen_some = 0
    for user in ("bob", "wholesale-moderator", "analyst"):
        headers = {"Authorization": f"Bearer {sign_in(infra.oidc_issuer, user)}"}
        for client, path, params in reads:
            answer = await client.get(path, params=params, headers=headers)
            assert answer.status_code < 500, (user, path, answer.text)
            for secret in secrets:
                assert secret not in answer.text, (user, path, secret, answer.text[:400])
            seen_some += answer.status_code == 200 and idea_id in answer.text
    assert seen_some >= 3 * 5, "the readers did see the idea itself, only not who is behind it"
