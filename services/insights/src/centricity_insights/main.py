"""Wiring of the insights service."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from pydantic import Field

from centricity_contracts.insights import UnitKind
from centricity_insights.api import audit_router, insights_router
from centricity_insights.consumers import FactConsumer, register_subscribers
from centricity_insights.domain import ENTERPRISE, unit_key
from centricity_insights.projection import InsightProjection, LiveHub, SnapshotPublisher
from centricity_insights.service import AuditTrail, InsightQueries
from centricity_insights.store import AuditStore, InsightStore
from centricity_plumbing.app import ServiceRuntime, create_service_app, serve
from centricity_plumbing.settings import ServiceSettings


class InsightsSettings(ServiceSettings):
    service_name: str = "insights"
    http_port: int = 8103
    snapshot_window_ms: int = Field(
        default=200, ge=0, description="At most one snapshot per idea or unit per this many milliseconds."
    )
    audit_retention_days: int = Field(
        default=400, ge=1, description="How long the audit trail keeps an entry, from when it was recorded."
    )


def create_app(
    settings: InsightsSettings | None = None, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    settings = settings or InsightsSettings()
    runtime = ServiceRuntime(settings, tracer_provider)
    store = InsightStore(runtime.store.db)
    hub = LiveHub()
    publisher = SnapshotPublisher(
        store,
        runtime.broker,
        source=settings.fact_source(),
        window_s=settings.snapshot_window_ms / 1000,
        latency=runtime.metrics.histogram(
            "centricity_snapshot_latency_seconds",
            "From a change of insights to the broker's acknowledgement of its snapshot.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        ),
    )
    projection = InsightProjection(store, on_change=publisher.mark)
    consumer = FactConsumer(projection, runtime.broker, settings.service_name, publisher)
    audit = AuditStore(runtime.store.db)
    trail = AuditTrail(audit, retention=timedelta(days=settings.audit_retention_days))
    register_subscribers(runtime.broker, consumer, hub, trail, settings)
    return create_service_app(
        runtime,
        title="Centricity insights",
        description="Turns idea and vote facts into insights per idea, business unit, campaign, customer "
        "type and the enterprise, served over HTTP, server-sent events, Kafka and a live dashboard "
        "(/dashboard).",
        version="0.2.0",
        routers=[insights_router(InsightQueries(store, hub)), audit_router(trail)],
        before_start=[
            store.ensure_indexes,
            audit.ensure_indexes,
            lambda: store.name_units(configured_titles(settings)),
            projection.recover_all,
        ],
        after_start=[publisher.recover],
        background=[publisher.run, projection.tend],
        backlogs={
            "snapshots_unpublished": store.snapshots_waiting,
            "unit_effects_unapplied": store.batches_unapplied,
        },
    )


def configured_titles(settings: InsightsSettings) -> dict[str, str]:
    """The enterprise's and each configured business unit's title, as people call them."""
    units = {
        unit_key(UnitKind.BUSINESSUNIT, unit): config.name for unit, config in settings.business_units.items()
    }
    return {ENTERPRISE: "Enterprise", **units}


def run() -> None:
    settings = InsightsSettings()
    serve(lambda: create_app(settings), settings)


if __name__ == "__main__":
    run()
