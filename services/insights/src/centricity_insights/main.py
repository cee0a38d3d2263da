"""Wiring of the insights service."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from centricity_insights.api import insights_router
from centricity_insights.messaging import InsightProjection, register_subscribers
from centricity_insights.store import InsightStore
from centricity_plumbing.app import ServiceRuntime, create_service_app, serve
from centricity_plumbing.settings import ServiceSettings


class InsightsSettings(ServiceSettings):
    service_name: str = "insights"
    http_port: int = 8103


def create_app(
    settings: InsightsSettings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    settings = settings or InsightsSettings()
    runtime = ServiceRuntime(settings, tracer_provider)
    store = InsightStore(runtime.store.db)
    projection = InsightProjection(store, runtime.broker, source=settings.fact_source())
    register_subscribers(runtime.broker, projection, settings)
    return create_service_app(
        runtime,
        title="Centricity insights",
        description="Turns idea and vote facts into per-idea insights, served over HTTP and Kafka.",
        version="0.1.0",
        routers=[insights_router(store)],
        before_start=[store.ensure_indexes],
    )


def run() -> None:
    settings = InsightsSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    run()
