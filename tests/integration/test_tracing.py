"""One HTTP request that causes events is one trace, across every service that handles them."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from centricity_ideas.main import IdeasSettings
from centricity_ideas.main import create_app as create_ideas
from centricity_insights.main import InsightsSettings
from centricity_insights.main import create_app as create_insights
from centricity_votes.main import VotesSettings
from centricity_votes.main import create_app as create_votes
from tests.integration.conftest import API_KEYS, SettingsFactory, running, unique
from tests.support import eventually

IDEA_SPANS = {
    ("POST /ideas", SpanKind.SERVER),
    ("ideas.events.v1 publish", SpanKind.PRODUCER),
    ("ideas.events.v1 process", SpanKind.CONSUMER),
    ("insights.ideas.v1 publish", SpanKind.PRODUCER),
}
VOTE_SPANS = {
    ("POST /votes", SpanKind.SERVER),
    ("votes.events.v1 publish", SpanKind.PRODUCER),
    ("votes.events.v1 process", SpanKind.CONSUMER),
    ("insights.ideas.v1 publish", SpanKind.PRODUCER),
}


def spans_of_trace(spans: tuple[ReadableSpan, ...], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


def kinds_by_name(spans: list[ReadableSpan]) -> set[tuple[str, SpanKind]]:
    return {(s.name, s.kind) for s in spans}


async def request_trace(
    exporter: InMemorySpanExporter, route: str, expected: set[tuple[str, SpanKind]]
) -> list[ReadableSpan]:
    """The spans of the trace that `route`'s server span started, once `expected` have all ended."""

    async def complete() -> list[ReadableSpan] | None:
        server = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.SERVER and s.name == route]
        if len(server) != 1 or server[0].context is None:
            return None
        spans = spans_of_trace(exporter.get_finished_spans(), server[0].context.trace_id)
        return spans if expected <= kinds_by_name(spans) else None

    try:
        return await eventually(complete, timeout=10, what=f"the spans of {route}")
    except AssertionError:
        spans = list(exporter.get_finished_spans())
        server = [s for s in spans if s.kind == SpanKind.SERVER and s.name == route]
        in_trace = (
            kinds_by_name(spans_of_trace(tuple(spans), server[0].context.trace_id)) if server else set()
        )
        raise AssertionError(
            f"{route}: {len(server)} server spans; missing from its trace: {expected - in_trace}; "
            f"missing anywhere: {expected - kinds_by_name(spans)}"
        ) from None


async def test_a_request_is_one_trace_through_publish_and_every_consumer(
    make_settings: SettingsFactory,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ideas = create_ideas(make_settings(IdeasSettings), provider)
    votes = create_votes(make_settings(VotesSettings), provider)
    insights = create_insights(make_settings(InsightsSettings), provider)
    headers = {"X-API-Key": API_KEYS["retail"]}
    async with running(ideas) as ideas_api, running(votes) as votes_api, running(insights) as insights_api:
        exporter.clear()
        submitted = await ideas_api.post(
            "/ideas",
            json={
                "reference": unique("r"),
                "title": "Traced idea",
                "author": {"customer_id": "c", "customer_type": "partner"},
            },
            headers=headers,
        )
        idea_id = submitted.json()["idea_id"]
        await eventually(lambda: _has_insight(insights_api, idea_id, 1), what="the idea reached insights")
        idea_trace = await request_trace(exporter, "POST /ideas", IDEA_SPANS)
        vote = {"idea_id": idea_id, "voter": {"customer_id": "v", "customer_type": "external"}, "value": 1}

        async def cast_once_known() -> bool:
            # The votes service learns of the idea from its fact; until then it answers 404.
            exporter.clear()
            return (await votes_api.post("/votes", json=vote, headers=headers)).status_code == 200

        await eventually(cast_once_known, what="the votes service to know the idea")
        await eventually(lambda: _has_insight(insights_api, idea_id, 2), what="the vote reached insights")
        vote_trace = await request_trace(exporter, "POST /votes", VOTE_SPANS)

    assert kinds_by_name(idea_trace) >= IDEA_SPANS
    assert kinds_by_name(vote_trace) >= VOTE_SPANS


async def _has_insight(client: object, idea_id: str, revision: int) -> bool:
    answer = await client.get(f"/ideas/{idea_id}")  # type: ignore[attr-defined]
    return bool(answer.status_code == 200 and answer.json()["revision"] >= revision)
