"""Wiring of the ideas service."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from centricity_ideas.api import ideas_router
from centricity_ideas.messaging import IdeaIntake, register_subscribers
from centricity_ideas.store import IdeaStore
from centricity_plumbing.app import ServiceRuntime, create_service_app, serve
from centricity_plumbing.outbox import Outbox
from centricity_plumbing.settings import ServiceSettings


class IdeasSettings(ServiceSettings):
    service_name: str = "ideas"
    http_port: int = 8101


def create_app(
    settings: IdeasSettings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    settings = settings or IdeasSettings()
    runtime = ServiceRuntime(settings, tracer_provider)
    store = IdeaStore(runtime.store.db)
    outbox = Outbox(store.ideas, runtime.broker)
    intake = IdeaIntake(store, outbox, source=settings.fact_source())
    register_subscribers(runtime.broker, intake, settings)
    return create_service_app(
        runtime,
        title="Centricity ideas",
        description="Takes ideas in from business units over HTTP and Kafka, and publishes idea facts.",
        version="0.1.0",
        routers=[ideas_router(intake, store)],
        after_start=[outbox.deliver_all_pending],
    )


def run() -> None:
    settings = IdeasSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    run()
