"""OpenTelemetry for a service: one tracer provider, instrumented FastAPI, PyMongo and Kafka."""

from __future__ import annotations

import os
import threading

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_pymongo_lock = threading.Lock()
_pymongo_instrumented = False


def otlp_configured() -> bool:
    return any(os.environ.get(name) for name in OTLP_ENDPOINT_VARIABLES)


def create_tracer_provider(service_name: str, exporter: SpanExporter | None = None) -> TracerProvider:
    """A provider for one service, exporting to `exporter` or, if configured, over OTLP.

    With neither, spans still carry trace context between services but are not exported.
    """
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    if exporter is None and otlp_configured():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def instrument_pymongo(provider: TracerProvider) -> None:
    """Instrument PyMongo once per process; it must happen before any client is created."""
    global _pymongo_instrumented
    with _pymongo_lock:
        if not _pymongo_instrumented:
            PymongoInstrumentor().instrument(tracer_provider=provider)
            _pymongo_instrumented = True


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="/health,/ready")


def install_global(provider: TracerProvider) -> None:
    """Make `provider` the process-wide default, as a service process does at start."""
    trace.set_tracer_provider(provider)
