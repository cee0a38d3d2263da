"""The portal's pages: server-rendered HTML, forms that post back here, and htmx for what updates
in place (likely duplicates while a title is typed, the console's live queue).

Every page needs a signed-in person. Each form's handler calls the services as that person and
comes back to the page with what happened, in words: a service's refusal is shown, never a trace.
Forms are protected from other sites by the session cookie's SameSite=Lax.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from centricity_contracts.customers import CustomerType
from centricity_contracts.ideas import IdeaStatus
from centricity_plumbing.auth import InvalidCredentials, session_token
from centricity_plumbing.pages import form_fields
from centricity_plumbing.problems import NotFoundProblem
from centricity_portal import domain
from centricity_portal.domain import SORT_LABELS, BrowseSort
from centricity_portal.service import BrowseQuery, Person, Portal
from centricity_portal.upstream import Refused

STATIC = Path(str(resources.files("centricity_portal") / "static"))
STATIC_FILES = frozenset({"portal.css", "htmx.min.js", "htmx.LICENSE.txt"})
FLASH = "flash"
TEMPLATES = Environment(
    loader=PackageLoader("centricity_portal", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.globals |= {
    "status_label": domain.status_label,
    "statuses": list(IdeaStatus),
    "settable_statuses": domain.SET_BY_STATUS_CHANGE,
    "customer_types": list(CustomerType),
    "sort_labels": SORT_LABELS,
    "headlines": domain.NOTICE_HEADLINES,
    "asks_for_answer": domain.ASKS_FOR_ANSWER,
    "moderates": domain.moderates,
    "may_vote_on": domain.may_vote_on,
    "may_attest": domain.may_attest,
    "is_customer": domain.is_customer,
    "is_staff": domain.is_staff,
    "waiting": domain.waiting,
    "quote": quote,
}
TEMPLATES.filters["todatetime"] = lambda text: datetime.fromisoformat(str(text).replace("Z", "+00:00"))


class SignInNeeded(Exception):
    def __init__(self, target: str) -> None:
        self.target = target


def here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def flash(request: Request, kind: str, text: str) -> None:
    request.session[FLASH] = [kind, text]


def page(
    request: Request, template: str, person: Person | None, status_code: int = 200, **values: Any
) -> HTMLResponse:
    shown = request.session.pop(FLASH, None)
    html = TEMPLATES.get_template(template).render(
        person=person,
        principal=person.principal if person else None,
        flash=shown,
        path=request.url.path,
        **values,
    )
    return HTMLResponse(html, status_code=status_code)


def fragment(template: str, **values: Any) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template(template).render(**values))


def back_to(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)


def local_path(target: str | None, default: str) -> str:
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def as_int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def as_utc(local: str) -> str:
    """A datetime-local field's value (the form says it is UTC), as an ISO 8601 instant."""
    return f"{local}:00+00:00" if len(local) == 16 else local


def portal_router(portal: Portal) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    async def signed_in(request: Request) -> Person:
        token = session_token(request)
        if token is None:
            raise SignInNeeded(here(request))
        try:
            return await portal.person(token)
        except InvalidCredentials:
            request.session.clear()
            raise SignInNeeded(here(request)) from None

    async def acted(
        request: Request, done: str, action: Callable[[], Awaitable[str | None]], *, back: str
    ) -> RedirectResponse:
        """Runs a form's action and comes back to `back` saying how it went."""
        try:
            said = await action()
        except Refused as refusal:
            flash(request, "error", refusal.message())
        else:
            flash(request, "ok", said or done)
        return back_to(back)

    @router.get("/", response_class=HTMLResponse)
    async def browse(
        request: Request,
        q: Annotated[str, Query(max_length=500)] = "",
        status: Annotated[IdeaStatus | None, Query()] = None,
        businessunit: Annotated[str, Query(max_length=63)] = "",
        campaign_id: Annotated[str, Query(max_length=64)] = "",
        sort: BrowseSort = BrowseSort.NEWEST,
        cursor: Annotated[str, Query(max_length=500)] = "",
    ) -> HTMLResponse:
        person = await signed_in(request)
        query = BrowseQuery(
            q=q.strip() if len(q.strip()) >= 2 else "",
            status=status.value if status else "",
            businessunit=businessunit,
            campaign_id=campaign_id,
            sort=sort,
            cursor=cursor,
        )
        listing = await portal.browse(person, query)
        more = None
        if listing.next_cursor:
            kept = {k: v for k, v in request.query_params.items() if k != "cursor"}
            more = "/?" + urlencode({**kept, "cursor": listing.next_cursor})
        return page(
            request, "browse.html", person, listing=listing, query=query, more=more, sorts=list(BrowseSort)
        )

    @router.get("/ideas/{idea_id}", response_class=HTMLResponse)
    async def idea_page(request: Request, idea_id: str) -> HTMLResponse:
        person = await signed_in(request)
        story = await portal.story(person, idea_id)
        return page(request, "idea.html", person, story=story, idea=story.idea, now=datetime.now(UTC))

    @router.post("/ideas/{idea_id}/vote")
    async def vote(request: Request, idea_id: str) -> RedirectResponse:
        person = await signed_in(request)
        form = form_fields(await request.body())
        back = f"/ideas/{quote(idea_id)}"
        if form.get("value") == "withdraw":

            async def withdraw() -> str:
                await portal.withdraw_vote(person, idea_id)
                return "Your vote is withdrawn."

            return await acted(request, "", withdraw, back=back)
        value = as_int(form.get("value"))

        async def cast() -> str:
            outcome = await portal.vote(person, idea_id, value if value in (1, -1) else 0)
            return f"Your vote is {outcome}."

        return await acted(request, "", cast, back=back)

    @router.post("/ideas/{idea_id}/comment")
    async def comment(request: Request, idea_id: str) -> RedirectResponse:
        person = await signed_in(request)
        form = form_fields(await request.body())

        async def send() -> None:
            await portal.comment(person, idea_id, form.get("body", ""), official=form.get("official") == "on")

        return await acted(request, "Your comment is posted.", send, back=f"/ideas/{quote(idea_id)}#comments")

    @router.post("/ideas/{idea_id}/follow")
    async def follow(request: Request, idea_id: str) -> RedirectResponse:
        person = await signed_in(request)
        form = form_fields(await request.body())
        subscribed = form.get("subscribed") != "false"

        async def send() -> str:
            await portal.follow(person, idea_id, subscribed)
            return "You follow this idea." if subscribed else "You no longer follow this idea."

        back = local_path(form.get("back"), f"/ideas/{quote(idea_id)}")
        return await acted(request, "", send, back=back)

    @router.post("/ideas/{idea_id}/attestation")
    async def attest(request: Request, idea_id: str) -> RedirectResponse:
        person = await signed_in(request)
        form = form_fields(await request.body())

        async def send() -> None:
            await portal.attest(person, idea_id, form.get("helped") == "yes", form.get("comment", "").strip())

        return await acted(
            request, "Thank you: your answer is recorded.", send, back=f"/ideas/{quote(idea_id)}"
        )

    @router.get("/submit", response_class=HTMLResponse)
    async def submit_page(request: Request) -> HTMLResponse:
        person = await signed_in(request)
        return page(request, "submit.html", person, form={})

    @router.get("/suggestions", response_class=HTMLResponse)
    async def suggestions(
        request: Request, title: Annotated[str, Query(max_length=200)] = ""
    ) -> HTMLResponse:
        person = await signed_in(request)
        try:
            likely = await portal.suggestions(person, title)
        except Refused:
            likely = []
        return fragment("_suggestions.html", likely=likely)

    @router.post("/submit", response_class=HTMLResponse, response_model=None)
    async def submit(request: Request) -> Response:
        person = await signed_in(request)
        form = form_fields(await request.body())
        try:
            idea_id = await portal.submit(
                person,
                title=form.get("title", "").strip(),
                description=form.get("description", "").strip(),
                tags=form.get("tags", ""),
                internal_only=form.get("internal_only") == "on",
            )
        except Refused as refusal:
            request.session[FLASH] = ["error", refusal.message()]
            return page(request, "submit.html", person, status_code=refusal.status, form=form)
        flash(request, "ok", "Thank you: your idea is submitted. You will hear when it moves.")
        return back_to(f"/ideas/{idea_id}")

    @router.get("/me", response_class=HTMLResponse)
    async def my_page(request: Request) -> HTMLResponse:
        person = await signed_in(request)
        if not domain.is_customer(person.principal):
            return page(request, "not_customer.html", person)
        mine = await portal.my_page(person)
        return page(request, "me.html", person, mine=mine)

    # Staff console

    async def staff(request: Request) -> Person:
        person = await signed_in(request)
        if not domain.is_staff(person.principal):
            raise Refused(
                403, "The console is for staff of a business unit", "Sign in as a unit's staff member."
            )
        return person

    @router.get("/console", response_class=HTMLResponse)
    async def console(request: Request) -> HTMLResponse:
        person = await staff(request)
        desk = await portal.console(person)
        return page(request, "console.html", person, desk=desk, now=datetime.now(UTC))

    @router.get("/console/queue", response_class=HTMLResponse)
    async def console_queue(request: Request) -> HTMLResponse:
        person = await staff(request)
        desk = await portal.console(person)
        return fragment("_queue.html", desk=desk, now=datetime.now(UTC), principal=person.principal)

    @router.post("/console/ideas/{idea_id}/status")
    async def change_status(request: Request, idea_id: str) -> RedirectResponse:
        person = await staff(request)
        form = form_fields(await request.body())
        status = form.get("status", "")

        async def send() -> str:
            await portal.change_status(person, idea_id, status, form.get("reason", "").strip())
            return f"The idea is now {domain.status_label(status).lower()}."

        return await acted(request, "", send, back=local_path(form.get("back"), f"/ideas/{quote(idea_id)}"))

    @router.post("/console/ideas/{idea_id}/merge")
    async def merge(request: Request, idea_id: str) -> RedirectResponse:
        person = await staff(request)
        form = form_fields(await request.body())

        async def send() -> None:
            await portal.merge(person, idea_id, form.get("into_idea_id", "").strip())

        done = "Merged: its votes, followers and comments now count for the surviving idea."
        return await acted(request, done, send, back=local_path(form.get("back"), "/console"))

    @router.post("/console/ideas/{idea_id}/proxy-vote")
    async def proxy_vote(request: Request, idea_id: str) -> RedirectResponse:
        person = await staff(request)
        form = form_fields(await request.body())

        async def send() -> str:
            outcome = await portal.proxy_vote(
                person,
                idea_id,
                customer_id=form.get("customer_id", "").strip(),
                customer_type=form.get("customer_type", "external"),
                value=as_int(form.get("value")) or 1,
            )
            return f"The customer's vote is {outcome}."

        return await acted(request, "", send, back=f"/ideas/{quote(idea_id)}")

    @router.post("/console/campaigns")
    async def launch_campaign(request: Request) -> RedirectResponse:
        person = await staff(request)
        form = form_fields(await request.body())

        async def send() -> str:
            await portal.launch_campaign(
                person,
                title=form.get("title", "").strip(),
                goal=form.get("goal", "").strip(),
                opens_at=as_utc(form.get("opens_at", "")),
                closes_at=as_utc(form.get("closes_at", "")),
                vote_budget=as_int(form.get("vote_budget")),
            )
            return f"The campaign {form.get('title', '').strip()!r} is launched."

        return await acted(request, "", send, back="/console#campaigns")

    @router.get("/static/{name}")
    async def static(name: str) -> FileResponse:
        if name not in STATIC_FILES:
            raise NotFoundProblem(f"No file {name!r}.")
        return FileResponse(STATIC / name, headers={"Cache-Control": "public, max-age=3600"})

    return router


def install_page_errors(app: FastAPI) -> None:
    """A person who needs to sign in is sent to; a refusal becomes a page that says it."""

    async def to_sign_in(request: Request, error: Exception) -> Response:
        assert isinstance(error, SignInNeeded)
        if request.headers.get("HX-Request"):
            # htmx would swap the provider's page into a fragment: have it load the whole page.
            return Response(status_code=204, headers={"HX-Redirect": "/signin?next=" + quote(error.target)})
        return RedirectResponse("/signin?next=" + quote(error.target), status_code=303)

    async def refused_page(request: Request, error: Exception) -> Response:
        assert isinstance(error, Refused)
        token = session_token(request)
        person = None
        if token is not None:
            try:
                person = await request.app.state.portal.person(token)
            except InvalidCredentials:
                person = None
        return page(request, "error.html", person, status_code=error.status, refusal=error)

    app.add_exception_handler(SignInNeeded, to_sign_in)
    app.add_exception_handler(Refused, refused_page)
