"""The portal's use cases: each one a few calls to the services' public APIs, as the person."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from centricity_contracts.ideas import IdeaStatus
from centricity_plumbing.auth import Principal, TokenVerifier
from centricity_portal.domain import BrowseSort, Tally, needs_follow_up, tags_from
from centricity_portal.upstream import Api, Refused, Upstreams

TRIAGE_PAGE = 50
FOLLOW_UP_SCAN = 100
FOLLOWED_SHOWN = 50


@dataclass(frozen=True)
class Person:
    """Who is signed in, and the token the services are called with."""

    principal: Principal
    token: str

    @property
    def me(self) -> dict[str, Any]:
        """The person as a customer, as the services name customers."""
        return {"customer_id": self.principal.customer_id, "customer_type": self.principal.customer_type}


@dataclass(frozen=True)
class BrowseQuery:
    q: str = ""
    status: str = ""
    businessunit: str = ""
    campaign_id: str = ""
    sort: BrowseSort = BrowseSort.NEWEST
    cursor: str = ""


@dataclass
class Browse:
    ideas: list[dict[str, Any]]
    next_cursor: str | None
    units: list[dict[str, Any]]
    campaigns: list[dict[str, Any]]


@dataclass
class IdeaStory:
    idea: dict[str, Any]
    comments: list[dict[str, Any]]
    tally: Tally
    following: bool | None = None
    duplicate_of: dict[str, Any] | None = None


@dataclass
class MyPage:
    notifications: list[dict[str, Any]]
    followed: list[dict[str, Any]]


@dataclass
class Console:
    waiting: list[dict[str, Any]]
    more_waiting: bool
    follow_up: list[dict[str, Any]]


class Portal:
    def __init__(self, upstreams: Upstreams, verifier: TokenVerifier) -> None:
        self.api = upstreams
        self.verifier = verifier

    async def person(self, token: str) -> Person:
        """The signed-in person, from a token checked again on every request."""
        return Person(self.verifier.principal(await self.verifier.claims(token)), token)

    # Customers and everyone who reads

    async def browse(self, person: Person, query: BrowseQuery) -> Browse:
        units, campaigns = await asyncio.gather(
            self.api.get(Api.IDEAS, "/businessunits", person.token),
            self.api.get(Api.IDEAS, "/campaigns", person.token, limit=20),
        )
        if query.q:
            hits = await self.api.get(Api.IDEAS, "/ideas/search", person.token, q=query.q, limit=50)
            return Browse([hit["idea"] for hit in hits], None, units, campaigns)
        page = await self.api.get(
            Api.IDEAS,
            "/ideas",
            person.token,
            status=query.status,
            businessunit=query.businessunit,
            campaign_id=query.campaign_id,
            sort=query.sort.value,
            cursor=query.cursor,
            limit=20,
        )
        return Browse(page["items"], page["next_cursor"], units, campaigns)

    async def story(self, person: Person, idea_id: str) -> IdeaStory:
        idea, comments, insight = await asyncio.gather(
            self.api.get(Api.IDEAS, f"/ideas/{idea_id}", person.token),
            self.api.get(Api.IDEAS, f"/ideas/{idea_id}/comments", person.token),
            self._insight(person, idea_id),
        )
        story = IdeaStory(idea, comments, Tally.of(insight))
        if idea.get("duplicate_of"):
            story.duplicate_of = await self._idea_or_none(person, idea["duplicate_of"])
        return story

    async def suggestions(self, person: Person, title: str) -> list[dict[str, Any]]:
        """Ideas a title may duplicate, so the person can vote for one instead."""
        if len(title.strip()) < 3:
            return []
        hits = await self.api.get(Api.IDEAS, "/ideas/search", person.token, q=title.strip(), limit=5)
        return [hit["idea"] for hit in hits]

    async def submit(
        self, person: Person, *, title: str, description: str, tags: str, internal_only: bool
    ) -> str:
        idea = await self.api.call(
            Api.IDEAS,
            "POST",
            "/ideas",
            person.token,
            body={
                # A person's submission has no reference in another system: one made here keeps it unique.
                "reference": f"portal-{uuid.uuid4()}",
                "title": title,
                "description": description,
                "tags": tags_from(tags),
                "author": person.me,
                "internal_only": internal_only,
            },
        )
        return str(idea["idea_id"])

    async def vote(self, person: Person, idea_id: str, value: int) -> str:
        body = {"idea_id": idea_id, "voter": person.me, "value": value}
        outcome = await self.api.call(Api.VOTES, "POST", "/votes", person.token, body=body)
        return str(outcome.get("outcome", "recorded"))

    async def withdraw_vote(self, person: Person, idea_id: str) -> None:
        body = {"idea_id": idea_id, "voter": person.me}
        await self.api.call(Api.VOTES, "POST", "/votes/withdrawals", person.token, body=body)

    async def comment(self, person: Person, idea_id: str, text: str, *, official: bool = False) -> None:
        body: dict[str, Any] = {"body": text}
        if person.principal.customer_id:
            body["author"] = person.me
        if official:
            body["official"] = True
        await self.api.call(Api.IDEAS, "POST", f"/ideas/{idea_id}/comments", person.token, body=body)

    async def follow(self, person: Person, idea_id: str, subscribed: bool) -> None:
        body = {"subscribed": subscribed, "customer": person.me}
        await self.api.call(
            Api.NOTIFICATIONS, "PUT", f"/ideas/{idea_id}/subscription", person.token, body=body
        )

    async def attest(self, person: Person, idea_id: str, helped: bool, comment: str) -> None:
        body = {"customer": person.me, "helped": helped, "comment": comment or None}
        await self.api.call(Api.IDEAS, "PUT", f"/ideas/{idea_id}/attestation", person.token, body=body)

    async def my_page(self, person: Person) -> MyPage:
        customer = person.principal.customer_id
        unit = person.principal.businessunit
        notifications, followed = await asyncio.gather(
            self.api.get(
                Api.NOTIFICATIONS, f"/customers/{customer}/notifications", person.token, businessunit=unit
            ),
            self.api.get(
                Api.NOTIFICATIONS, f"/customers/{customer}/subscriptions", person.token, businessunit=unit
            ),
        )
        following = [s for s in followed if s["subscribed"]][:FOLLOWED_SHOWN]
        ideas = await asyncio.gather(*(self._idea_or_none(person, s["idea_id"]) for s in following))
        titled = [
            s | {"title": idea["title"] if idea else None} for s, idea in zip(following, ideas, strict=True)
        ]
        return MyPage([told["notification"] | {"mail": told["mail"]} for told in notifications], titled)

    # Staff

    async def console(self, person: Person) -> Console:
        waiting, delivered = await asyncio.gather(
            self._unit_ideas(person, IdeaStatus.SUBMITTED, BrowseSort.OLDEST, TRIAGE_PAGE),
            self._unit_ideas(person, IdeaStatus.DELIVERED, BrowseSort.RECENTLY_UPDATED, FOLLOW_UP_SCAN),
        )
        follow_up = [idea for idea in delivered["items"] if needs_follow_up(idea)]
        return Console(waiting["items"], waiting["next_cursor"] is not None, follow_up)

    async def _unit_ideas(self, person: Person, status: IdeaStatus, sort: BrowseSort, limit: int) -> Any:
        """A page of the person's own unit's ideas in one status."""
        return await self.api.get(
            Api.IDEAS,
            "/ideas",
            person.token,
            businessunit=person.principal.businessunit,
            status=status.value,
            sort=sort.value,
            limit=limit,
        )

    async def change_status(self, person: Person, idea_id: str, status: str, reason: str) -> None:
        body = {"status": status, "reason": reason or None}
        await self.api.call(Api.IDEAS, "POST", f"/ideas/{idea_id}/status", person.token, body=body)

    async def merge(self, person: Person, idea_id: str, into_idea_id: str) -> None:
        body = {"into_idea_id": into_idea_id}
        await self.api.call(Api.IDEAS, "POST", f"/ideas/{idea_id}/merge", person.token, body=body)

    async def proxy_vote(
        self, person: Person, idea_id: str, *, customer_id: str, customer_type: str, value: int
    ) -> str:
        body = {
            "idea_id": idea_id,
            "voter": {"customer_id": customer_id, "customer_type": customer_type},
            "value": value,
        }
        outcome = await self.api.call(Api.VOTES, "POST", "/votes", person.token, body=body)
        return str(outcome.get("outcome", "recorded"))

    async def launch_campaign(
        self, person: Person, *, title: str, goal: str, opens_at: str, closes_at: str, vote_budget: int | None
    ) -> str:
        body: dict[str, Any] = {
            "reference": f"portal-{uuid.uuid4()}",
            "title": title,
            "goal": goal,
            "opens_at": opens_at,
            "closes_at": closes_at,
        }
        if vote_budget is not None:
            body["vote_budget"] = vote_budget
        campaign = await self.api.call(Api.IDEAS, "POST", "/campaigns", person.token, body=body)
        return str(campaign["campaign_id"])

    async def _insight(self, person: Person, idea_id: str) -> dict[str, Any] | None:
        try:
            insight: dict[str, Any] = await self.api.get(Api.INSIGHTS, f"/ideas/{idea_id}", person.token)
        except Refused as refusal:
            if refusal.status == 404:  # no vote or fact seen yet
                return None
            raise
        return insight

    async def _idea_or_none(self, person: Person, idea_id: str) -> dict[str, Any] | None:
        try:
            idea: dict[str, Any] = await self.api.get(Api.IDEAS, f"/ideas/{idea_id}", person.token)
        except Refused:
            return None
        return idea
