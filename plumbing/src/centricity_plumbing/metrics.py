"""Prometheus metrics of one service process, served at `GET /metrics`.

- Kafka handling: FastStream's `KafkaPrometheusMiddleware` (received, processed, published,
  their sizes and durations, by topic and status).
- HTTP: `prometheus-fastapi-instrumentator` (requests by route template, method and status, and
  their latency).
- The platform's own figures: dead-lettered records by topic and code, and backlogs the store
  holds (outbox facts, parked votes, quarantined records, notification and webhook deliveries),
  counted at each scrape, each within a time budget so a slow store does not stall the scrape.

Each app has a registry of its own: tests and the local runner hold several in one process.

`/metrics` is for Prometheus inside the cluster, never for the public: a request that came
through a proxy (the ingress adds `X-Forwarded-For`) is answered 404, as if there were no such
path.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import Response
from faststream.kafka import KafkaBroker
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_fastapi_instrumentator import Instrumentator

log = logging.getLogger(__name__)

PROBE_BUDGET_S = 5.0
BacklogProbe = Callable[[], Awaitable[int]]
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


class ServiceMetrics:
    """The metrics one service process exports."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        self.dead_letters = Counter(
            "centricity_dead_letters",
            "Records a consumer refused, by consumed topic and refusal code: sent to the topic's "
            "dead-letter topic or, if that kept failing, kept in quarantine.",
            ["topic", "code"],
            registry=self.registry,
        )
        self.backlog = Gauge(
            "centricity_backlog",
            "Work waiting in the store, by kind, counted at the scrape.",
            ["kind"],
            registry=self.registry,
        )
        self.probe_failures = Counter(
            "centricity_backlog_probe_failures",
            "Backlog counts that failed or took longer than their budget, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self._probes: dict[str, BacklogProbe] = {}

    def histogram(self, name: str, documentation: str, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(name, documentation, buckets=buckets, registry=self.registry)

    def count_backlog(self, kind: str, probe: BacklogProbe) -> None:
        """Export `probe()` as the backlog of `kind` at each scrape."""
        self._probes[kind] = probe
        self.backlog.labels(kind)

    async def refresh(self) -> None:
        await asyncio.gather(*(self._refresh(kind, probe) for kind, probe in self._probes.items()))

    async def _refresh(self, kind: str, probe: BacklogProbe) -> None:
        try:
            self.backlog.labels(kind).set(await asyncio.wait_for(probe(), PROBE_BUDGET_S))
        except Exception as error:  # noqa: BLE001 - the scrape still answers; the failure is counted
            log.warning("counting the %s backlog failed: %r", kind, error)
            self.probe_failures.labels(kind).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_router(metrics: ServiceMetrics) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/metrics")
    async def scrape(request: Request) -> Response:
        if any(header in request.headers for header in PROXY_HEADERS):
            raise HTTPException(status_code=404)  # the same answer as an unknown path
        await metrics.refresh()
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return router


def instrument_http(app: FastAPI, metrics: ServiceMetrics) -> None:
    """Count requests by route template (never the raw path, whose ids would explode the series)."""
    Instrumentator(
        should_group_status_codes=False,
        should_ignore_untemplated=True,
        excluded_handlers=["/metrics"],
        registry=metrics.registry,
    ).instrument(app)


_metrics: weakref.WeakKeyDictionary[KafkaBroker, ServiceMetrics] = weakref.WeakKeyDictionary()


def attach_metrics(broker: KafkaBroker, metrics: ServiceMetrics) -> None:
    """Make `metrics` count this broker's dead letters."""
    _metrics[broker] = metrics


def metrics_of(broker: KafkaBroker) -> ServiceMetrics | None:
    return _metrics.get(broker)
