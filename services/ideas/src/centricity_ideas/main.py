"""Wiring of the ideas service."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from pydantic import Field

from centricity_ideas.api import answer_links_router, ideas_router
from centricity_ideas.consumers import register_subscribers
from centricity_ideas.domain import FollowUpPolicy
from centricity_ideas.service import IdeaOperations
from centricity_ideas.similarity import SimilarityIndex
from centricity_ideas.store import IdeaStore
from centricity_plumbing.app import ServiceRuntime, create_service_app, serve
from centricity_plumbing.outbox import Outbox
from centricity_plumbing.settings import ServiceSettings


class IdeasSettings(ServiceSettings):
    service_name: str = "ideas"
    http_port: int = 8101
    follow_up_min_answers: int = Field(
        default=3, ge=1, description="Follow up a delivered idea once this many customers answered, and"
    )
    follow_up_not_helped_share: float = Field(
        default=0.34, gt=0, le=1, description="at least this share said it did not help;"
    )
    follow_up_not_helped_count: int = Field(
        default=10, ge=1, description="or once this many said it did not help, whatever the share."
    )

    def follow_up_policy(self) -> FollowUpPolicy:
        return FollowUpPolicy(
            min_answers=self.follow_up_min_answers,
            not_helped_share=self.follow_up_not_helped_share,
            not_helped_count=self.follow_up_not_helped_count,
        )


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

    ops = IdeaOperations(
        store,
        Outbox(store.ideas, runtime.broker),
        index,
        settings,
        follow_up_policy=settings.follow_up_policy(),
    )
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
        backlogs={"outbox": ops.outbox.waiting},
    )


def run() -> None:
    settings = IdeasSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    run()
