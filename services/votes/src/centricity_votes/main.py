"""Wiring of the votes service."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from pydantic import Field

from centricity_plumbing.app import ServiceRuntime, create_service_app, serve
from centricity_plumbing.outbox import Outbox
from centricity_plumbing.settings import ServiceSettings
from centricity_votes.api import votes_router
from centricity_votes.messaging import VoteIntake, register_subscribers
from centricity_votes.store import VoteStore


class VotesSettings(ServiceSettings):
    service_name: str = "votes"
    http_port: int = 8102
    unknown_idea_grace_s: float = Field(
        default=30.0,
        description="How long a Kafka vote for an idea not yet seen is retried before it is dead-lettered.",
    )


def create_app(
    settings: VotesSettings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    settings = settings or VotesSettings()
    runtime = ServiceRuntime(settings, tracer_provider)
    store = VoteStore(runtime.store.db)
    outbox = Outbox(store.votes, runtime.broker)
    intake = VoteIntake(store, outbox, source=settings.fact_source())
    register_subscribers(runtime.broker, intake, settings, unknown_idea_grace_s=settings.unknown_idea_grace_s)
    return create_service_app(
        runtime,
        title="Centricity votes",
        description="Records one vote per customer per idea, from HTTP and Kafka, and publishes vote facts.",
        version="0.1.0",
        routers=[votes_router(intake)],
        after_start=[outbox.deliver_all_pending],
    )


def run() -> None:
    settings = VotesSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    run()
