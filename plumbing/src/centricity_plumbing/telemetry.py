"""OpenTelemetry for a service: one tracer provider, instrumented FastAPI, PyMongo and Kafka."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from opentelemetry import propagate, trace
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


@contextlib.contextmanager
def record_spans(records: Sequence[ConsumerRecord[Any, Any]], provider: TracerProvider) -> Iterator[None]:
    """One `<topic> process` span per record of a batch, each in the trace its record came from.

    FastStream gives a batch one span in a new trace, linked to its records. For facts that
    belong to a request's story (an idea's creation read by another service), a span in that
    request's own trace keeps the story in one trace. Cheap enough for low-volume topics only.
    """
    tracer = trace.get_tracer(__name__, tracer_provider=provider)
    batch = [trace.Link(trace.get_current_span().get_span_context())]
    spans = [
        tracer.start_span(
            f"{record.topic} process",
            context=propagate.extract({k: v.decode("utf-8", "replace") for k, v in record.headers or ()}),
            kind=trace.SpanKind.CONSUMER,
            links=batch,
            attributes={"messaging.system": "kafka", "messaging.destination.name": record.topic},
        )
        for record in records
    ]
    try:
        yield
    finally:
        for span in spans:
            span.end()
