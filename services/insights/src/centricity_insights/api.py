"""HTTP routes of the insights service: ideas, units, a time series, a live stream, the dashboard,
and the audit trail."""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import AwareDatetime
from rfc9457.openapi import problem_response

from centricity_contracts.envelope import BusinessUnitId
from centricity_contracts.insights import IdeaInsight, UnitInsight, UnitKind
from centricity_insights.audit import AuditPage, AuditQuery, BadCursor
from centricity_insights.dashboard import STATIC, Snapshot
from centricity_insights.dashboard import render as render_dashboard
from centricity_insights.domain import ENTERPRISE, unit_key
from centricity_insights.series import Bucket, SeriesPoint
from centricity_insights.service import AuditTrail, InsightQueries
from centricity_insights.store import Ranking
from centricity_plumbing.auth import InvalidCredentials, Principal, TokenVerifier, session_token
from centricity_plumbing.input import StrictBodyRoute
from centricity_plumbing.pages import simple_page
from centricity_plumbing.permissions import Action, NotPermitted, may, permitted
from centricity_plumbing.problems import PROBLEM_TYPE_URI, NotFoundProblem, Problem, UnprocessableProblem
from centricity_plumbing.visibility import Viewer, viewer_for

STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".txt": "text/plain"}
LEADERBOARD_SIZE = 10
TREND_DAYS = 7  # the dashboard's chart: hourly points of the last week
NAVIGABLE = frozenset({UnitKind.BUSINESSUNIT, UnitKind.CAMPAIGN})


class InsightNotFound(NotFoundProblem):
    title = "No insight for this idea"


class UnitNotFound(NotFoundProblem):
    title = "No metrics for this unit"


class ScopeProblem(UnprocessableProblem):
    title = "Choose one scope"


def problem_doc(example: Problem) -> dict[str, Any]:
    """An OpenAPI response of a problem+json answer, with `example` as its example."""
    return problem_response(example.title, [example.marshal(uri=PROBLEM_TYPE_URI)])


def scope_unit(businessunit: str | None, campaign_id: str | None) -> str:
    if businessunit and campaign_id:
        raise ScopeProblem("Give a businessunit, a campaign_id or neither (the enterprise), not both.")
    if businessunit:
        return unit_key(UnitKind.BUSINESSUNIT, businessunit)
    if campaign_id:
        return unit_key(UnitKind.CAMPAIGN, campaign_id)
    return ENTERPRISE


@dataclass(frozen=True)
class DashboardScope:
    """What a dashboard or a leaderboard looks at: one unit, a campaign or the enterprise."""

    unit: str
    businessunit: str | None
    campaign_id: str | None

    @property
    def query(self) -> str:
        """The scope's query string, as dashboard.js writes it ("" for the enterprise)."""
        if self.businessunit:
            return f"businessunit={quote(self.businessunit, safe='')}"
        return f"campaign_id={quote(self.campaign_id, safe='')}" if self.campaign_id else ""


def in_scope(insight: IdeaInsight | UnitInsight, unit: str) -> bool:
    """What a dashboard of `unit` shows: its ideas, its own metrics, and for the enterprise every unit."""
    if isinstance(insight, UnitInsight):
        # Every view offers the way to the other units and campaigns, so it gets their metrics too.
        return unit in (ENTERPRISE, insight.unit) or insight.kind in NAVIGABLE
    if insight.businessunit is None:
        return False
    return unit in (
        ENTERPRISE,
        unit_key(UnitKind.BUSINESSUNIT, insight.businessunit),
        unit_key(UnitKind.CAMPAIGN, insight.campaign_id or ""),
    )


async def refused_reader(request: Request) -> Response | None:
    """The answer for someone who may not read the dashboard (sign in first, or not for their
    role); None for a signed-in person who may."""
    token = session_token(request)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if token is None:
        return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        principal = verifier.principal(await verifier.claims(token))
    except InvalidCredentials:  # the session outlived its token: sign in again
        return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)
    if not may(principal, Action.READ_INSIGHTS):
        return simple_page(
            "Not for your role",
            f"<p>You are signed in as {html.escape(principal.name or principal.subject)}. The dashboard "
            "shows business units' metrics to staff and analysts; your role does not include them.</p>"
            "<form method='post' action='/signout'><button type='submit'>Sign out</button></form>",
            status_code=403,
        )
    return None


def insights_router(queries: InsightQueries) -> APIRouter:
    router = APIRouter(route_class=StrictBodyRoute, tags=["insights"])
    metrics = [permitted(Action.READ_INSIGHTS)]

    async def dashboard_scope(
        request: Request,
        businessunit: Annotated[BusinessUnitId | None, Query(description="Only this unit's")] = None,
        campaign_id: Annotated[str | None, Query(max_length=64, description="Only this campaign's")] = None,
    ) -> DashboardScope:
        """The scope asked for, checked before anything is answered (a stream cannot answer a
        problem once it has started): one scope at most, and one that exists."""
        unit = scope_unit(businessunit, campaign_id)
        configured = businessunit is not None and businessunit in request.app.state.settings.business_units
        if unit != ENTERPRISE and not configured and await queries.unit(unit) is None:
            raise UnitNotFound(f"No business unit or campaign {unit!r} is known.")
        return DashboardScope(unit, businessunit, campaign_id)

    # A default, not an Annotated alias: the alias would be local, which FastAPI cannot resolve.
    in_dashboard_scope = Depends(dashboard_scope)

    @router.get("/ideas/top", summary="The best-received ideas", dependencies=metrics)
    async def top_ideas(
        ranking: Annotated[
            Ranking,
            Query(
                description="score: up - down; wilson: confidence in the up share; trending: decayed "
                "weighted score (τ = 7 days); weighted: Σ value * points * weight"
            ),
        ] = Ranking.SCORE,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
        scope: DashboardScope = in_dashboard_scope,
    ) -> list[IdeaInsight]:
        return await queries.top(
            ranking=ranking, limit=limit, businessunit=scope.businessunit, campaign_id=scope.campaign_id
        )

    @router.get(
        "/ideas/{idea_id}",
        summary="One idea's insight",
        responses={404: {"description": "No facts seen for it"}},
    )
    async def idea_insight(
        idea_id: Annotated[str, Path(max_length=64)], viewer: Annotated[Viewer, viewer_for(Action.READ)]
    ) -> IdeaInsight:
        insight = await queries.idea(idea_id)
        # An internal-only idea does not exist for readers who may not see it.
        if insight is None or (insight.internal_only and not viewer.sees_internal_only):
            raise InsightNotFound(f"No fact about idea {idea_id!r} has been seen.")
        return insight

    @router.get(
        "/units",
        summary="Metrics of every unit, or of one kind",
        description="Ordered by unit key, a page at a time: pass the last key of a page as `after`.",
        dependencies=metrics,
    )
    async def units(
        kind: Annotated[UnitKind | None, Query()] = None,
        after: Annotated[
            str | None, Query(max_length=100, description="Only units whose key sorts after this one")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="Units per page")] = 500,
    ) -> list[UnitInsight]:
        return await queries.units(kind, after=after, limit=limit)

    @router.get(
        "/units/{unit}",
        summary="One unit's metrics",
        description="`enterprise`, `businessunit:<id>`, `campaign:<id>` or `customer_type:<type>`.",
        responses={404: {"description": "No fact about this unit has been seen"}},
        dependencies=metrics,
    )
    async def unit_metrics(unit: Annotated[str, Path(max_length=100)]) -> UnitInsight:
        found = await queries.unit(unit)
        if found is None:
            raise UnitNotFound(f"No fact about unit {unit!r} has been seen.")
        return found

    @router.get(
        "/units/{unit}/series",
        summary="A unit's metrics over time, per hour or per day",
        description="One point per hour or day in which something changed, oldest first, from the "
        "hourly counters the projection keeps for every unit (each fact counted once).",
        responses={404: problem_doc(UnitNotFound("No fact about unit 'campaign:x' has been seen."))},
        dependencies=metrics,
    )
    async def unit_series(
        unit: Annotated[str, Path(max_length=100)],
        bucket: Annotated[Bucket, Query()] = Bucket.DAY,
        days: Annotated[int, Query(ge=1, le=366, description="How far back")] = 30,
    ) -> list[SeriesPoint]:
        # A unit with no point yet answers an empty list; a name nobody knows is a mistake.
        if await queries.unit(unit) is None:
            raise UnitNotFound(f"No fact about unit {unit!r} has been seen.")
        return await queries.series(unit, bucket=bucket, days=days)

    @router.get(
        "/stream",
        response_class=EventSourceResponse,
        summary="Live updates for a dashboard (server-sent events)",
        description="For one business unit, one campaign, or the enterprise (no parameter). First the "
        "unit's metrics and its top ideas, then `unit` and `idea` events as they change.",
        dependencies=metrics,
    )
    async def stream(
        request: Request, scope: DashboardScope = in_dashboard_scope
    ) -> AsyncIterable[ServerSentEvent]:
        unit, businessunit, campaign_id = scope.unit, scope.businessunit, scope.campaign_id
        with queries.live_updates() as queue:
            for known in await queries.all_units():
                if in_scope(known, unit):
                    yield ServerSentEvent(event="unit", data=known)
            top = await queries.top(
                ranking=Ranking.SCORE,
                limit=LEADERBOARD_SIZE,
                businessunit=businessunit,
                campaign_id=campaign_id,
            )
            for idea in top:
                yield ServerSentEvent(event="idea", data=idea)
            while not await request.is_disconnected():
                try:
                    insight = await asyncio.wait_for(queue.get(), timeout=5.0)
                except TimeoutError:
                    continue
                if in_scope(insight, unit):
                    kind = "unit" if isinstance(insight, UnitInsight) else "idea"
                    yield ServerSentEvent(event=kind, data=insight)

    @router.get(
        "/dashboard",
        response_class=HTMLResponse,
        summary="The live dashboard (a page); sends people who have not signed in to sign in",
        responses={
            303: {"description": "Sign in first"},
            403: {"description": "The role may not see unit metrics"},
        },
    )
    async def dashboard(
        request: Request,
        businessunit: Annotated[BusinessUnitId | None, Query(description="Only this unit's")] = None,
        campaign_id: Annotated[str | None, Query(max_length=64, description="Only this campaign's")] = None,
    ) -> Response:
        refused = await refused_reader(request)
        if refused is not None:
            return refused
        try:
            scope = await dashboard_scope(request, businessunit, campaign_id)
        except (UnitNotFound, ScopeProblem) as problem:
            return simple_page(problem.title, f"<p>{html.escape(problem.detail or '')}</p>", problem.status)
        return HTMLResponse(render_dashboard(await snapshot_of(scope)))

    async def snapshot_of(scope: DashboardScope) -> Snapshot:
        """What the stream would send first, and the chart's history: the page's first paint."""
        units = [u for u in await queries.all_units() if in_scope(u, scope.unit)]
        top = await queries.top(
            ranking=Ranking.SCORE,
            limit=LEADERBOARD_SIZE,
            businessunit=scope.businessunit,
            campaign_id=scope.campaign_id,
        )
        series = await queries.series(scope.unit, bucket=Bucket.HOUR, days=TREND_DAYS)
        return Snapshot(scope.unit, scope.query, units, top, series, datetime.now(UTC))

    @router.get("/dashboard/static/{name}", include_in_schema=False)
    async def dashboard_file(name: Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]+$")]) -> FileResponse:
        path = STATIC / name
        if name.startswith(".") or not path.is_file():
            raise NotFoundProblem(f"No file {name!r}.")
        return FileResponse(path, media_type=STATIC_TYPES.get(path.suffix, "application/octet-stream"))

    return router


class UnknownCursor(UnprocessableProblem):
    title = "Unknown cursor"


class ForeignBusinessUnit(NotPermitted):
    title = "Not your unit's trail"


def audit_router(trail: AuditTrail) -> APIRouter:
    router = APIRouter(route_class=StrictBodyRoute, tags=["audit"])

    @router.get(
        "/audit",
        summary="The audit trail: who changed what, when, from where",
        description="Every change of every service, newest first: the authenticated principal, the "
        "unit, the origin (http or kafka), the request or intake event, and the trace. Built from "
        "the facts, so it covers history; entries are kept for the configured retention "
        "(`CENTRICITY_AUDIT_RETENTION_DAYS`). A unit's system and admins read their own unit's; "
        "enterprise admins read every unit's.",
        responses={
            403: problem_doc(ForeignBusinessUnit("Read your own unit's audit trail.")),
            422: problem_doc(UnknownCursor("The cursor is not one this service gave.")),
        },
    )
    async def audit(
        reader: Annotated[Principal, permitted(Action.READ_AUDIT)],
        principal: Annotated[
            str | None, Query(max_length=300, description="Only this principal's, e.g. staff:retail-admin")
        ] = None,
        idea_id: Annotated[str | None, Query(max_length=64, description="Only changes of this idea")] = None,
        businessunit: Annotated[BusinessUnitId | None, Query(description="Only this unit's")] = None,
        since: Annotated[AwareDatetime | None, Query(description="From this time on")] = None,
        until: Annotated[AwareDatetime | None, Query(description="Before this time")] = None,
        cursor: Annotated[str | None, Query(max_length=600, description="From a page's next_cursor")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> AuditPage:
        if reader.businessunit is not None:
            if businessunit not in (None, reader.businessunit):
                raise ForeignBusinessUnit("Read your own unit's audit trail.")
            businessunit = reader.businessunit
        query = AuditQuery(
            principal=principal, idea_id=idea_id, businessunit=businessunit, since=since, until=until
        )
        try:
            return await trail.page(query, cursor=cursor, limit=limit)
        except BadCursor as error:
            raise UnknownCursor(str(error)) from error

    return router
