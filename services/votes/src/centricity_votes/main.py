"""Wiring of the votes service."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from pydantic import Field

from centricity_plumbing.app import ServiceRuntime, create_service_app, serve
from centricity_plumbing.outbox import Outbox
from centricity_plumbing.settings import ServiceSettings
from centricity_votes.api import votes_router
from centricity_votes.consumers import IdeaFactsProgress, register_subscribers
from centricity_votes.domain import WeightPolicy
from centricity_votes.service import VoteLedger
from centricity_votes.store import VoteStore


class VotesSettings(ServiceSettings):
    service_name: str = "votes"
    http_port: int = 8102
    unknown_idea_grace_s: float = Field(
        default=30.0,
        description="How long a Kafka vote for an idea not yet seen is parked before it is dead-lettered.",
    )
    new_idea_wait_s: float = Field(
        default=3.0,
        ge=0,
        description="Longest an HTTP vote for an idea not yet seen waits for its creation before its "
        "404; none at all once this service has stored every idea fact published.",
    )
    tier_weights: dict[str, float] = Field(
        default_factory=lambda: dict(WeightPolicy().tier_weights),
        description="Vote weight per customer tier, before the annual-value factor.",
    )
    value_unit: float = Field(
        default=10_000.0,
        gt=0,
        description="Annual value that adds log10(2) to the value factor 1 + log10(1 + value/unit).",
    )

    def weight_policy(self) -> WeightPolicy:
        return WeightPolicy(tier_weights=self.tier_weights, value_unit=self.value_unit)


def create_app(
    settings: VotesSettings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    settings = settings or VotesSettings()
    runtime = ServiceRuntime(settings, tracer_provider)
    store = VoteStore(runtime.store.db)
    outbox = Outbox(store.votes, runtime.broker)
    idea_facts = IdeaFactsProgress()
    ledger = VoteLedger(
        store,
        outbox,
        source=settings.fact_source(),
        weights=settings.weight_policy(),
        new_idea_wait_s=settings.new_idea_wait_s,
        idea_facts_caught_up=idea_facts.caught_up,
    )
    intake = register_subscribers(
        runtime.broker,
        ledger,
        settings,
        runtime.tracer_provider,
        unknown_idea_grace_s=settings.unknown_idea_grace_s,
        idea_facts=idea_facts,
    )
    return create_service_app(
        runtime,
        title="Centricity votes",
        description="Records one weighted vote per customer per idea, from HTTP and Kafka, moves votes "
        "when ideas merge, enforces campaign vote budgets, and publishes vote facts.",
        version="0.2.0",
        routers=[votes_router(ledger)],
        before_start=[store.create_indexes],
        after_start=[outbox.deliver_all_pending],
        background=[intake.keep_releasing],
        backlogs={"outbox": outbox.waiting, "parked_votes": store.parked_count},
    )


def run() -> None:
    settings = VotesSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    run()
