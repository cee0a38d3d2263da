"""Wiring of the ideas service."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from centricity_ideas.api import answer_links_router, ideas_router
from centricity_ideas.consumers import register_subscribers
from centricity_ideas.service import IdeaOperations
from centricity_ideas.similarity import SimilarityIndex
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
    index = SimilarityIndex()
    # The sentence encoder loads (seconds, once per process) while the store and broker start.
    index.encoder.start_loading()

    async def encoder_loaded() -> None:
        await asyncio.to_thread(index.encoder.wait_loaded)

    ops = IdeaOperations(store, Outbox(store.ideas, runtime.broker), index, settings)
    register_subscribers(runtime.broker, ops, settings)
    return create_service_app(
        runtime,
        title="Centricity ideas",
        description="Ideas from every business unit, from submission to the customers' own confirmation "
        "that what was delivered helped them. Over HTTP and as CloudEvents on Kafka.",
        version="0.2.0",
        routers=[ideas_router(ops), answer_links_router(ops)],
        before_start=[store.ensure_indexes, ops.refresh_index],
        after_start=[ops.outbox.deliver_all_pending, encoder_loaded],
        background=[ops.keep_index_fresh],
    )


def run() -> None:
    settings = IdeasSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    run()
