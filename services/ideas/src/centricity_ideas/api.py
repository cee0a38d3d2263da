"""HTTP routes of the ideas service."""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, ValidationError

from centricity_contracts.campaigns import CampaignLaunch, CampaignRecord
from centricity_contracts.customers import Actor, Customer, CustomerType
from centricity_contracts.envelope import BusinessUnitId
from centricity_contracts.ideas import (
    DESCRIPTION_MAX,
    TAGS_MAX,
    AttestationGiving,
    Comment,
    CommentBody,
    CommentPosting,
    DuplicateFlag,
    IdeaId,
    IdeaRevision,
    IdeaStatus,
    IdeaSubmission,
    IdeaWithdrawal,
    StatusDecision,
    Tags,
    Title,
)
from centricity_contracts.model import STRICT_INPUT_KEY, ContractModel
from centricity_ideas.domain import Idea, LinkUsed
from centricity_ideas.service import IdeaOperations
from centricity_ideas.store import IdeaFilter, IdeaSort
from centricity_plumbing.auth import Principal, PrincipalKind
from centricity_plumbing.input import StrictBodyRoute
from centricity_plumbing.pages import form_fields, page_or_problem, simple_page
from centricity_plumbing.paths import UUID_PATTERN
from centricity_plumbing.permissions import (
    Action,
    NotPermitted,
    actor_for,
    as_themselves,
    customer_of,
    permitted,
)
from centricity_plumbing.problems import Problem
from centricity_plumbing.rules import InvalidInput, RuleViolation
from centricity_plumbing.visibility import CurrentViewer, Viewer, viewer_for

STAFF = {"actor_id": "pm-anna", "display_name": "Anna, product manager"}
SUBMISSION_EXAMPLE = {
    "reference": "CRM-2291",
    "title": "Let me save my basket for later",
    "description": "I build a basket on my phone and want to finish on my laptop.",
    "tags": ["checkout", "mobile"],
    "author": {"customer_id": "c-1042", "customer_type": "external", "display_name": "Ada"},
}
IdempotencyKey = Annotated[
    str | None,
    Header(max_length=200, description="Send the same key again to retry safely: the change happens once."),
]
# Ideas' ids are UUIDs (contracts.ids); the route segment matches nothing else.
IdeaIdPath = Annotated[str, Path(max_length=64, pattern=f"^{UUID_PATTERN}$")]
BY = (
    "Who acted, as a business unit's system names them; a signed-in person is always recorded as "
    "themselves, and a system that names nobody as itself."
)


class CommentBeingStored(Problem):
    def __init__(self) -> None:
        super().__init__(
            "Comment being stored",
            type_="comment-being-stored",
            detail="The comment is taken and counted; a crash held up storing it, which is under way. "
            "Retry with the same Idempotency-Key: it takes effect once.",
            status=503,
            headers={"Retry-After": "1"},
        )


class IdeaView(Idea):
    """An idea with its whole story: status history, edits, merges and the customers' attestations."""

    helped: int = Field(description="Customers who attested that the delivered idea helped them.")
    did_not_help: int = Field(description="Customers who attested that it did not.")


class IdeaPage(BaseModel):
    items: list[IdeaView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


class SearchHit(BaseModel):
    score: float
    idea: IdeaView


class BusinessUnitView(BaseModel):
    businessunit: str
    name: str
    enterprise: bool


class StatusRequest(ContractModel):
    status: IdeaStatus
    reason: str | None = Field(default=None, max_length=2000)
    by: Actor | None = Field(default=None, description=BY)


class RevisionRequest(ContractModel):
    title: Title | None = None
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    tags: Tags | None = Field(default=None, max_length=TAGS_MAX)
    by: Actor | None = Field(default=None, description=BY)


class CommentRequest(ContractModel):
    body: CommentBody
    author: Customer | None = None
    staff: Actor | None = None
    official: bool = False


class WithdrawalRequest(ContractModel):
    reason: str | None = Field(default=None, max_length=2000)
    by: Actor | None = Field(default=None, description=BY)
    author: Customer | None = None


class MergeRequest(ContractModel):
    into_idea_id: IdeaId
    by: Actor | None = Field(default=None, description=BY)


class AttestationRequest(ContractModel):
    customer: Customer
    helped: bool
    comment: str | None = Field(default=None, max_length=2000)


def view(idea: Idea) -> IdeaView:
    return IdeaView(**idea.model_dump(), helped=idea.helped_count, did_not_help=idea.did_not_help_count)


def request_key(businessunit: str, key: str | None, action: str) -> str | None:
    """The dedup key of an HTTP write: a key counts once per unit and per kind of change."""
    return f"http {businessunit} {action} {key}" if key else None


def examples(**named: dict[str, Any]) -> dict[str, Any]:
    return {name: {"value": value} for name, value in named.items()}


READS = permitted(Action.READ)
Reader = Annotated[Viewer, viewer_for(Action.READ)]


async def shown(ops: IdeaOperations, viewer: Viewer, idea: Idea) -> IdeaView:
    """A write's answer: the idea as the writer may see it."""
    (seen,) = await ops.seen([idea], viewer)
    return view(seen)


def unit_of(principal: Principal) -> str:
    """The unit a write acts for (`authorise` refused writes of principals without one)."""
    assert principal.businessunit is not None
    return principal.businessunit


def commenter(principal: Principal, posting: CommentRequest) -> dict[str, Any]:
    """A comment's author: a customer themselves, never as staff nor officially; staff signed in
    as themselves."""
    values = posting.model_dump()
    if posting.author is not None:
        as_themselves(principal, posting.author.customer_id, posting.author.customer_type)
    if principal.kind is PrincipalKind.CUSTOMER:
        if posting.staff is not None or posting.official:
            raise NotPermitted("Customers comment as themselves: not as staff, and not officially.")
        if (themselves := customer_of(principal)) is not None:
            values["author"] = themselves.model_dump()
    if posting.staff is not None or principal.kind.value == "staff":
        values["staff"] = actor_for(principal, posting.staff).model_dump()
    return values


LinkToken = Annotated[str, Path(min_length=1, max_length=4096)]


def ideas_router(ops: IdeaOperations) -> APIRouter:
    router = APIRouter(route_class=StrictBodyRoute)

    @router.get(
        "/businessunits",
        tags=["business units"],
        summary="The configured business units",
        dependencies=[READS],
    )
    async def business_units(request: Request) -> list[BusinessUnitView]:
        units = request.app.state.settings.business_units
        return [
            BusinessUnitView(businessunit=k, name=v.name, enterprise=v.enterprise) for k, v in units.items()
        ]

    @router.post(
        "/campaigns",
        tags=["campaigns"],
        status_code=201,
        summary="Launch a campaign",
        description="The same reference twice is one campaign (200 the second time).",
        responses={200: {"description": "This unit already launched it", "model": CampaignRecord}},
    )
    async def launch_campaign(
        launch: Annotated[
            CampaignLaunch,
            Body(
                openapi_examples=examples(
                    campaign={
                        "reference": "Q1-ONBOARD",
                        "title": "Cut onboarding time",
                        "goal": "New business customers trade within 2 days instead of 10.",
                        "scope": "businessunit",
                        "opens_at": "2026-11-01T00:00:00Z",
                        "closes_at": "2027-01-31T00:00:00Z",
                    }
                )
            ),
        ],
        principal: Annotated[Principal, permitted(Action.LAUNCH_CAMPAIGN)],
        response: Response,
    ) -> CampaignRecord:
        campaign, created = await ops.launch_campaign(launch, businessunit=unit_of(principal))
        if not created:
            response.status_code = status.HTTP_200_OK
        return campaign

    @router.get(
        "/campaigns", tags=["campaigns"], summary="Campaigns open to a unit (or all)", dependencies=[READS]
    )
    async def campaigns(
        businessunit: Annotated[BusinessUnitId | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500, description="At most this many, newest first.")] = 100,
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    ) -> list[CampaignRecord]:
        return await ops.campaigns(businessunit, limit=limit, offset=offset)

    @router.get("/campaigns/{campaign_id}", tags=["campaigns"], summary="One campaign", dependencies=[READS])
    async def campaign(campaign_id: Annotated[str, Path(max_length=64)]) -> CampaignRecord:
        return await ops.campaign(campaign_id)

    @router.post(
        "/ideas",
        tags=["ideas"],
        status_code=status.HTTP_201_CREATED,
        summary="Submit an idea for the calling business unit",
        description="The answer lists likely duplicates among every unit's ideas. The same reference "
        "twice is one idea (200 the second time).",
        responses={200: {"description": "This unit already submitted this reference"}},
    )
    async def submit_idea(
        submission: Annotated[IdeaSubmission, Body(openapi_examples=examples(idea=SUBMISSION_EXAMPLE))],
        principal: Annotated[Principal, permitted(Action.SUBMIT_IDEA)],
        viewer: CurrentViewer,
        request: Request,
        response: Response,
    ) -> IdeaView:
        as_themselves(principal, submission.author.customer_id, submission.author.customer_type)
        idea, created = await ops.submit(submission, businessunit=unit_of(principal))
        response.headers["Location"] = str(request.url_for("get_idea", idea_id=idea.idea_id))
        if not created:
            response.status_code = status.HTTP_200_OK
        return await shown(ops, viewer, idea)

    @router.get("/ideas", tags=["ideas"], summary="List ideas: filter, sort, page with cursors")
    async def list_ideas(
        viewer: Reader,
        businessunit: Annotated[BusinessUnitId | None, Query()] = None,
        campaign_id: Annotated[str | None, Query(max_length=64)] = None,
        status_: Annotated[IdeaStatus | None, Query(alias="status")] = None,
        tag: Annotated[str | None, Query(max_length=40)] = None,
        customer_type: Annotated[CustomerType | None, Query(description="The author's type")] = None,
        sort: IdeaSort = IdeaSort.NEWEST,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=500)] = None,
    ) -> IdeaPage:
        where = IdeaFilter(businessunit, campaign_id, status_, tag.lower() if tag else None, customer_type)
        ideas, next_cursor = await ops.page(where=where, sort=sort, limit=limit, cursor=cursor, viewer=viewer)
        return IdeaPage(items=[view(i) for i in ideas], next_cursor=next_cursor)

    @router.get(
        "/ideas/search",
        tags=["ideas"],
        summary="Full-text search over titles and descriptions",
    )
    async def search(
        viewer: Reader,
        q: Annotated[str, Query(min_length=2, max_length=500)],
        limit: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> list[SearchHit]:
        return [
            SearchHit(score=score, idea=view(idea))
            for idea, score in await ops.search(q, limit=limit, viewer=viewer)
        ]

    @router.get("/ideas/{idea_id:uuidtext}", tags=["ideas"], summary="One idea and its story")
    async def get_idea(idea_id: IdeaIdPath, viewer: Reader) -> IdeaView:
        return view(await ops.seen_idea(idea_id, viewer))

    @router.patch(
        "/ideas/{idea_id:uuidtext}",
        tags=["ideas"],
        summary="Edit an idea (its own unit only); history is kept",
    )
    async def revise(
        idea_id: IdeaIdPath,
        revision: Annotated[
            RevisionRequest,
            Body(openapi_examples=examples(retitle={"title": "Save my basket across devices", "by": STAFF})),
        ],
        principal: Annotated[Principal, permitted(Action.REVISE_IDEA)],
        viewer: CurrentViewer,
        idempotency_key: IdempotencyKey = None,
    ) -> IdeaView:
        businessunit = unit_of(principal)
        change = IdeaRevision(
            idea_id=idea_id, **{**revision.model_dump(), "by": actor_for(principal, revision.by).model_dump()}
        )
        return await shown(
            ops,
            viewer,
            await ops.revise(
                change,
                businessunit=businessunit,
                request_key=request_key(businessunit, idempotency_key, "revise"),
            ),
        )

    @router.post(
        "/ideas/{idea_id:uuidtext}/status", tags=["workflow"], summary="Move an idea on, or decline it"
    )
    async def set_status(
        idea_id: IdeaIdPath,
        decision: Annotated[
            StatusRequest,
            Body(
                openapi_examples=examples(
                    plan={"status": "planned", "reason": "In the Q1 checkout release.", "by": STAFF},
                    decline={
                        "status": "declined",
                        "reason": "Regulation forbids storing baskets.",
                        "by": STAFF,
                    },
                )
            ),
        ],
        principal: Annotated[Principal, permitted(Action.CHANGE_STATUS)],
        viewer: CurrentViewer,
        idempotency_key: IdempotencyKey = None,
    ) -> IdeaView:
        businessunit = unit_of(principal)
        change = StatusDecision(
            idea_id=idea_id, **{**decision.model_dump(), "by": actor_for(principal, decision.by).model_dump()}
        )
        return await shown(
            ops,
            viewer,
            await ops.set_status(
                change,
                businessunit=businessunit,
                request_key=request_key(businessunit, idempotency_key, "set_status"),
            ),
        )

    @router.post(
        "/ideas/{idea_id:uuidtext}/comments",
        tags=["comments"],
        status_code=201,
        summary="Comment on an idea",
        responses={503: {"description": "Counted, not stored yet (after a crash): retry with the same key"}},
    )
    async def comment(
        idea_id: IdeaIdPath,
        posting: Annotated[
            CommentRequest,
            Body(
                openapi_examples=examples(
                    customer={
                        "body": "This would save me ten minutes a day.",
                        "author": {"customer_id": "c-9", "customer_type": "external"},
                    },
                    official={"body": "We start on this in January.", "staff": STAFF, "official": True},
                )
            ),
        ],
        principal: Annotated[Principal, permitted(Action.COMMENT)],
        viewer: CurrentViewer,
        idempotency_key: IdempotencyKey = None,
    ) -> Comment:
        businessunit = unit_of(principal)
        if principal.kind is PrincipalKind.CUSTOMER:
            await ops.seen_idea(idea_id, viewer)  # an idea hidden from them does not exist for them
        change = CommentPosting(idea_id=idea_id, **commenter(principal, posting))
        comment = await ops.comment(
            change,
            businessunit=businessunit,
            request_key=request_key(businessunit, idempotency_key, "comment"),
        )
        if comment is None:
            raise CommentBeingStored()
        return comment

    @router.get(
        "/ideas/{idea_id:uuidtext}/comments",
        tags=["comments"],
        summary="An idea's comments, oldest first",
    )
    async def comments(
        idea_id: IdeaIdPath,
        viewer: Reader,
        limit: Annotated[int, Query(ge=1, le=1000, description="Comments per page, oldest first.")] = 500,
        offset: Annotated[int, Query(ge=0, le=1_000_000, description="Comments to skip.")] = 0,
    ) -> list[Comment]:
        return await ops.comments(idea_id, viewer, offset=offset, limit=limit)

    @router.post(
        "/ideas/{idea_id:uuidtext}/withdrawal",
        tags=["workflow"],
        summary="Withdraw an open idea, for its author or by its own unit",
        description="The idea closes for good, and voting on it with it. Give `author` when the author "
        "asked: it must be the idea's author.",
    )
    async def withdraw(
        idea_id: IdeaIdPath,
        request: Annotated[
            WithdrawalRequest,
            Body(
                openapi_examples=examples(
                    author={
                        "reason": "Solved by the new app.",
                        "by": STAFF,
                        "author": {"customer_id": "c-1042", "customer_type": "external"},
                    }
                )
            ),
        ],
        principal: Annotated[Principal, permitted(Action.WITHDRAW_IDEA)],
        viewer: CurrentViewer,
        idempotency_key: IdempotencyKey = None,
    ) -> IdeaView:
        businessunit = unit_of(principal)
        withdrawal = IdeaWithdrawal(
            idea_id=idea_id, **{**request.model_dump(), "by": actor_for(principal, request.by).model_dump()}
        )
        return await shown(
            ops,
            viewer,
            await ops.withdraw(
                withdrawal,
                businessunit=businessunit,
                request_key=request_key(businessunit, idempotency_key, "withdraw"),
            ),
        )

    @router.post(
        "/ideas/{idea_id:uuidtext}/merge",
        tags=["workflow"],
        summary="Close an idea as a duplicate of another",
    )
    async def merge(
        idea_id: IdeaIdPath,
        request: Annotated[
            MergeRequest,
            Body(
                openapi_examples=examples(
                    merge={"into_idea_id": "7d4c8a0e-3f0b-5b6e-9c1a-2e4f6a8b0c2d", "by": STAFF}
                )
            ),
        ],
        principal: Annotated[Principal, permitted(Action.MERGE_IDEAS)],
        viewer: CurrentViewer,
        idempotency_key: IdempotencyKey = None,
    ) -> IdeaView:
        businessunit = unit_of(principal)
        flag = DuplicateFlag(
            idea_id=idea_id, **{**request.model_dump(), "by": actor_for(principal, request.by).model_dump()}
        )
        return await shown(
            ops,
            viewer,
            await ops.merge(
                flag,
                businessunit=businessunit,
                request_key=request_key(businessunit, idempotency_key, "merge"),
            ),
        )

    @router.put(
        "/ideas/{idea_id:uuidtext}/attestation",
        tags=["closing the loop"],
        summary="A customer of the calling unit says whether the delivered idea helped",
        description="Open to the idea's author and its voters; one answer per customer, "
        "which they may change.",
    )
    async def attest(
        idea_id: IdeaIdPath,
        attestation: Annotated[
            AttestationRequest,
            Body(
                openapi_examples=examples(
                    helped={
                        "customer": {"customer_id": "c-1042", "customer_type": "external"},
                        "helped": True,
                        "comment": "Works great.",
                    }
                )
            ),
        ],
        principal: Annotated[Principal, permitted(Action.ATTEST)],
        viewer: CurrentViewer,
        idempotency_key: IdempotencyKey = None,
    ) -> IdeaView:
        businessunit = unit_of(principal)
        as_themselves(principal, attestation.customer.customer_id, attestation.customer.customer_type)
        giving = AttestationGiving(idea_id=idea_id, **attestation.model_dump())
        return await shown(
            ops,
            viewer,
            await ops.attest(
                giving,
                businessunit=businessunit,
                request_key=request_key(businessunit, idempotency_key, "attest"),
            ),
        )

    return router


class LinkAnswer(ContractModel):
    helped: bool = Field(description="Did the delivered idea help you?")
    comment: str | None = Field(default=None, max_length=2000)


class LinkAnswered(BaseModel):
    idea_id: str
    helped: bool
    recorded: bool = Field(description="Always true: the answer is the customer's now.")


ANSWER_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: page_or_problem("The link was altered or has expired"),
    403: page_or_problem("The customer neither wrote nor voted on the idea"),
    404: page_or_problem("The idea of the link is not known"),
    409: page_or_problem("The link was used already, or the idea is not delivered"),
    422: page_or_problem("The answer is neither yes nor no", schema="HTTPValidationError"),
}


def answer_form(token: str, idea: Idea) -> str:
    action = f"/attestation-links/{html.escape(token)}"
    return (
        f"<p>You followed <strong>{html.escape(idea.title)}</strong>, and it has been delivered.</p>"
        f"<form method='post' action='{action}'>"
        "<fieldset><legend>Did it help you?</legend>"
        "<label><input type='radio' name='helped' value='yes' required> Yes, it helped</label><br>"
        "<label><input type='radio' name='helped' value='no'> No, it did not</label></fieldset>"
        "<label for='comment'>Anything to add? (optional)</label>"
        "<textarea id='comment' name='comment' maxlength='2000'></textarea>"
        "<p><button type='submit'>Send my answer</button></p></form>"
        "<p class='note'>Only you can answer with this link, once. It needs no sign-in.</p>"
    )


def parse_link_answer(content_type: str, body: bytes) -> LinkAnswer:
    if content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded":
        fields = form_fields(body)
        if fields.get("helped") not in ("yes", "no"):
            raise InvalidAnswer("Choose yes or no.")
        return LinkAnswer(helped=fields["helped"] == "yes", comment=fields.get("comment", "").strip() or None)
    try:
        return LinkAnswer.model_validate_json(body, context={STRICT_INPUT_KEY: True})
    except ValidationError as error:
        raise InvalidAnswer(
            f"Send {{'helped': true|false, 'comment': ...}}: {error.errors()[0]['msg']}"
        ) from error


class InvalidAnswer(InvalidInput):
    kind = "invalid-answer"
    status = 422
    title = "Invalid answer"


def answer_links_router(ops: IdeaOperations) -> APIRouter:
    """The page of the link in an attestation request: no sign-in, the link is the credential."""
    router = APIRouter(route_class=StrictBodyRoute, tags=["closing the loop"])

    @router.get(
        "/attestation-links/{token}",
        summary="The page where a customer answers whether a delivered idea helped",
        description="Opening it records nothing (mail scanners open every link); its form POSTs.",
        response_class=HTMLResponse,
        responses=ANSWER_RESPONSES,
    )
    async def answer_page(token: LinkToken) -> HTMLResponse:
        try:
            link = ops.answer_link(token)
            idea = await ops.idea(link.idea_id)
            if await ops.answer_link_used(link):
                raise LinkUsed("You answered with this link already; to change it, sign in and attest again.")
        except RuleViolation as refusal:
            return simple_page(refusal.title, f"<p>{html.escape(refusal.detail)}</p>", refusal.status)
        return simple_page("Did it help you?", answer_form(token, idea))

    @router.post(
        "/attestation-links/{token}",
        summary="Answer with an attestation link: as a form from its page, or as JSON",
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {"schema": LinkAnswer.model_json_schema()},
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {"helped": {"enum": ["yes", "no"]}, "comment": {"type": "string"}},
                            "required": ["helped"],
                        }
                    },
                },
                "required": True,
            }
        },
        responses=ANSWER_RESPONSES,
    )
    async def answer(token: LinkToken, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        from_page = content_type.startswith("application/x-www-form-urlencoded")
        try:
            answer = parse_link_answer(content_type, await request.body())
            link, _ = await ops.answer_by_link(token, helped=answer.helped, comment=answer.comment)
        except RuleViolation as refusal:
            if not from_page:
                raise
            return simple_page(refusal.title, f"<p>{html.escape(refusal.detail)}</p>", refusal.status)
        if from_page:
            thanks = "Thank you: we are glad it helped." if answer.helped else "Thank you: we will follow up."
            return simple_page("Thank you", f"<p>{thanks}</p>")
        return JSONResponse(
            LinkAnswered(idea_id=link.idea_id, helped=answer.helped, recorded=True).model_dump()
        )

    return router
