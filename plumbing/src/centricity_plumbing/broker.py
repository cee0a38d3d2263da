"""The Kafka broker every service uses: traced, at-least-once, with dead-lettering of bad input."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import pydantic
from aiokafka import ConsumerRecord
from fast_depends.exceptions import ValidationError as DependencyValidationError
from faststream import AckPolicy, BaseMiddleware
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider

from centricity_contracts.envelope import CloudEvent
from centricity_contracts.posting import SIGNATURE_HEADER as SIGNATURE_HEADER
from centricity_contracts.registry import event_adapter, events_on, type_list
from centricity_contracts.topics import DEAD_LETTER_SUFFIX, dead_letter_topic
from centricity_plumbing.metrics import ServiceMetrics, attach_metrics, metrics_of
from centricity_plumbing.quarantine import quarantine_of
from centricity_plumbing.rules import RuleViolation
from centricity_plumbing.settings import ServiceSettings

log = logging.getLogger(__name__)
E = TypeVar("E")

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
RETRY_DELAY_S = 0.5

DLQ_REASON = "dlq-reason"
# The reason as a stable code (a rule's kind, not-json, invalid-event, unauthorised...) for tools.
DLQ_CODE = "dlq-code"
DLQ_ERRORS = "dlq-errors"
DLQ_SERVICE = "dlq-service"
DLQ_ORIGINAL_TOPIC = "dlq-original-topic"
DLQ_ORIGINAL_PARTITION = "dlq-original-partition"
DLQ_ORIGINAL_OFFSET = "dlq-original-offset"
DLQ_ORIGINAL_SIZE = "dlq-original-size"
DLQ_TRUNCATED = "dlq-truncated"
# The producer refuses records over 1 MB (max_request_size): a larger rejected record is
# dead-lettered as its first bytes, or its dead letter could never be published and the
# partition would stall behind it. Copied header values are capped for the same reason.
DEAD_LETTER_VALUE_MAX = 512 * 1024
DEAD_LETTER_HEADER_MAX = 4096
# A dead-letter publish is tried this often, 0.2 s, 0.4 s... apart, before the record is
# quarantined in the store: about 6 s, so that a broker blip does not quarantine anything.
DEAD_LETTER_ATTEMPTS = 5
DEAD_LETTER_BACKOFF_S = 0.2
DEAD_LETTER_TIMEOUT_S = 5.0


class RejectedEvent(Exception):
    """An intake record that can never be processed, whatever the retries: dead-letter it."""

    def __init__(self, code: str, reason: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.errors = errors or []

    @classmethod
    def for_rule(cls, error: RuleViolation) -> RejectedEvent:
        return cls(error.kind, f"{error.kind}: {error.detail}")

    @classmethod
    def not_json(cls, detail: object) -> RejectedEvent:
        return cls("not-json", f"not JSON: {detail}")


def _validation_summary(error: pydantic.ValidationError) -> RejectedEvent:
    errors = [
        {"loc": ".".join(str(part) for part in e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in error.errors(include_url=False, include_input=False)
    ]
    detail = "; ".join(f"{e['loc'] or '(body)'}: {e['msg']}" for e in errors[:5])
    return RejectedEvent("invalid-event", f"invalid event: {detail}", errors)


def _json_error(raw: bytes | None) -> str | None:
    try:
        json.loads(raw or b"")
    except ValueError as error:
        return str(error)
    return None


def rejection_for(error: BaseException, raw: bytes | None = None) -> RejectedEvent | None:
    """The rejection an exception stands for, or None when retrying may succeed."""
    if isinstance(error, RejectedEvent):
        return error
    if isinstance(error, pydantic.ValidationError | DependencyValidationError) and (
        reason := _json_error(raw)
    ):
        return RejectedEvent.not_json(reason)
    if isinstance(error, DependencyValidationError) and isinstance(
        error.original_error, pydantic.ValidationError
    ):
        return _validation_summary(error.original_error)
    if isinstance(error, pydantic.ValidationError):
        return _validation_summary(error)
    if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):
        return RejectedEvent.not_json(error)
    return None


def dead_letter_headers(
    record: ConsumerRecord[Any, Any], rejection: RejectedEvent, service: str
) -> dict[str, str]:
    """The original headers plus why, where from and who rejected it (Kafka Connect style)."""
    headers = {k: v[:DEAD_LETTER_HEADER_MAX].decode("utf-8", "replace") for k, v in (record.headers or ())}
    size = len(record.value or b"")
    if size > DEAD_LETTER_VALUE_MAX:
        headers.update({DLQ_TRUNCATED: "true", DLQ_ORIGINAL_SIZE: str(size)})
    headers.update(
        {
            DLQ_REASON: rejection.reason[:2000],
            DLQ_CODE: rejection.code,
            DLQ_ERRORS: json.dumps(rejection.errors[:50]),
            DLQ_SERVICE: service,
            DLQ_ORIGINAL_TOPIC: record.topic,
            DLQ_ORIGINAL_PARTITION: str(record.partition),
            DLQ_ORIGINAL_OFFSET: str(record.offset),
        }
    )
    return headers


async def dead_letter(
    broker: KafkaBroker, record: ConsumerRecord[Any, Any], rejection: RejectedEvent, service: str
) -> None:
    """Send a rejected record, unchanged (or its first bytes, if large), to `<topic>.dlq` with the
    reason in its headers; if that keeps failing, quarantine it in the store instead.

    Either way the record is accounted for and the records after it go on; only if the store
    fails too does the error propagate, and the batch is redelivered.
    """
    headers = dead_letter_headers(record, rejection, service)
    if (metrics := metrics_of(broker)) is not None:
        metrics.dead_letters.labels(record.topic, rejection.code).inc()
    failure: BaseException | None = None
    for attempt in range(DEAD_LETTER_ATTEMPTS):
        try:
            await asyncio.wait_for(
                broker.publish(
                    (record.value or b"")[:DEAD_LETTER_VALUE_MAX],
                    topic=dead_letter_topic(record.topic),
                    key=record.key,
                    headers=headers,
                ),
                DEAD_LETTER_TIMEOUT_S,
            )
        except Exception as error:  # noqa: BLE001 - any publish failure counts as a failed try
            failure = error
            await asyncio.sleep(DEAD_LETTER_BACKOFF_S * 2**attempt)
            continue
        log.warning(
            "dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, rejection.reason
        )
        return
    assert failure is not None
    quarantine = quarantine_of(broker)
    if quarantine is None:
        raise failure
    await quarantine.keep(record, headers, failure)
    log.error(
        "quarantined %s[%d]@%d after %d failed dead-letter publishes (%r): %s",
        record.topic,
        record.partition,
        record.offset,
        DEAD_LETTER_ATTEMPTS,
        failure,
        rejection.reason,
    )


def intake_signature(payload: bytes, api_key: str) -> str:
    """What a unit's system puts in the centricity-signature header: an HMAC of the exact body."""
    return "sha256=" + hmac.new(api_key.encode(), payload, hashlib.sha256).hexdigest()


def authorise_intake(
    settings: ServiceSettings, businessunit: str | None, payload: bytes, headers: Sequence[tuple[str, bytes]]
) -> None:
    """Accept an intake event only from a configured unit, signed with that unit's key.

    Kafka does not tell a consumer who produced a record, so the signature is what binds an event
    to the unit it claims to come from.
    """
    unit = settings.business_units.get(businessunit or "")
    if unit is None:
        raise RejectedEvent("unknown-businessunit", f"unknown business unit {businessunit!r}")
    signature = next((v.decode("utf-8", "replace") for k, v in headers if k == SIGNATURE_HEADER), None)
    if signature is None:
        if settings.intake_signatures == "required":
            raise RejectedEvent("unauthorised", f"unauthorised: no {SIGNATURE_HEADER} header")
        return
    expected = intake_signature(payload, unit.api_key.get_secret_value())
    if not hmac.compare_digest(signature, expected):
        raise RejectedEvent(
            "unauthorised", f"unauthorised: {SIGNATURE_HEADER} does not match business unit {businessunit!r}"
        )


STRICT_INPUT = {"strict-input": True}


async def parse_intake(
    broker: KafkaBroker, records: Sequence[ConsumerRecord[Any, Any]], settings: ServiceSettings
) -> list[tuple[ConsumerRecord[Any, Any], CloudEvent[Any]]]:
    """Validate a batch of intake records one by one, as strictly as the published schemas (an
    unknown type or field is refused); dead-letter the bad ones, keep the rest in order."""
    accepted = []
    for record in records:
        try:
            event: CloudEvent[Any] = event_adapter(record.topic).validate_json(
                record.value or b"", context=STRICT_INPUT
            )
            authorise_intake(
                settings, getattr(event, "businessunit", None), record.value or b"", record.headers or ()
            )
        except (pydantic.ValidationError, RejectedEvent) as error:
            rejection = rejection_for(error, record.value)
            assert rejection is not None
            await dead_letter(broker, record, rejection, settings.service_name)
            continue
        accepted.append((record, event))
    return accepted


def dead_letter_middleware(service: str) -> type[BaseMiddleware]:
    """A middleware that sends rejected records to `<topic>.dlq` and lets the consumer go on.

    Any other failure is left to the ack policy, which redelivers the record after a pause.
    """

    class DeadLetterMiddleware(BaseMiddleware):
        trace_context: otel_context.Context | None = None

        async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: Any) -> Any:
            self.trace_context = otel_context.get_current()
            return await call_next(msg)

        async def after_processed(
            self,
            exc_type: type[BaseException] | None = None,
            exc_val: BaseException | None = None,
            exc_tb: TracebackType | None = None,
        ) -> bool:
            if exc_val is None or not isinstance(self.msg, ConsumerRecord):
                return False
            rejection = rejection_for(exc_val, self.msg.value)
            if rejection is None or self.msg.topic.endswith(DEAD_LETTER_SUFFIX):
                log.warning("handling failed, will retry: %r", exc_val)
                await asyncio.sleep(RETRY_DELAY_S)
                return False
            await self._dead_letter(self.msg, rejection)
            return True

        async def _dead_letter(self, record: ConsumerRecord[Any, Any], rejection: RejectedEvent) -> None:
            token = otel_context.attach(self.trace_context) if self.trace_context else None
            try:
                await dead_letter(self.context.get("broker"), record, rejection, service)
            finally:
                if token is not None:
                    otel_context.detach(token)

    return DeadLetterMiddleware


async def decode_cloudevent(msg: KafkaMessage, original: Callable[..., Awaitable[Any]]) -> Any:
    """Decode structured-mode CloudEvents JSON, which FastStream would pass on as bytes."""
    if isinstance(msg.body, bytes) and (msg.content_type or "").startswith("application/cloudevents+json"):
        return json.loads(msg.body)
    return await original(msg)


_SASL = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}


def kafka_security(settings: ServiceSettings) -> BaseSecurity | None:
    """TLS and SASL for the Kafka client, from the settings; None for plain PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    use_ssl = protocol.endswith("SSL")
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None) if use_ssl else None
    if protocol.startswith("SASL_"):
        return _SASL[settings.kafka_sasl_mechanism](
            settings.kafka_sasl_username,
            settings.kafka_sasl_password.get_secret_value(),
            ssl_context=context,
            use_ssl=use_ssl,
        )
    return BaseSecurity(ssl_context=context, use_ssl=True)


def create_broker(
    settings: ServiceSettings, tracer_provider: TracerProvider, metrics: ServiceMetrics
) -> KafkaBroker:
    broker = KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=kafka_security(settings),
        client_id=f"centricity-{settings.service_name}",
        # Tansu (the local broker) rejects idempotent producers; acks=all keeps writes durable.
        enable_idempotence=False,
        acks="all",
        decoder=decode_cloudevent,
        middlewares=(
            KafkaTelemetryMiddleware(tracer_provider=tracer_provider),
            KafkaPrometheusMiddleware(registry=metrics.registry, app_name=settings.service_name),
            dead_letter_middleware(settings.service_name),
        ),
        allow_auto_create_topics=False,
        graceful_timeout=15.0,
    )
    attach_metrics(broker, metrics)
    return broker


def consumer_options(settings: ServiceSettings, purpose: str | None = None) -> dict[str, Any]:
    """At-least-once: offsets are committed only after a record was handled.

    Each subscriber of a service needs a group of its own (`purpose`): members of one group
    that subscribe to different topics rebalance each other forever.
    """
    group = settings.consumer_group()
    return {
        "group_id": f"{group}-{purpose}" if purpose else group,
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
        "max_poll_records": settings.kafka_max_poll_records,
    }


async def publish_payload(broker: KafkaBroker, payload: bytes, *, topic: str, key: str) -> None:
    """Publish a serialised CloudEvent in structured JSON mode, keyed to keep related events in order."""
    await broker.publish(
        payload, topic=topic, key=key.encode(), headers={"content-type": CLOUDEVENTS_CONTENT_TYPE}
    )


async def enqueue_payload(
    broker: KafkaBroker, payload: bytes, *, topic: str, key: str
) -> asyncio.Future[Any]:
    """Like `publish_payload`, but returns once the record is queued; await the future to know
    the broker has it. Queuing many and then awaiting them all lets the producer batch them."""
    return await broker.publish(
        payload,
        topic=topic,
        key=key.encode(),
        headers={"content-type": CLOUDEVENTS_CONTENT_TYPE},
        no_confirm=True,
    )


async def publish_event(broker: KafkaBroker, event: CloudEvent[Any], *, topic: str, key: str) -> None:
    await publish_payload(broker, event.to_json_bytes(), topic=topic, key=key)


def document_dead_letters(broker: KafkaBroker, *consumed_topics: str) -> None:
    """Show in the AsyncAPI document where this service sends the records it rejects."""
    for topic in consumed_topics:
        broker.publisher(
            dead_letter_topic(topic),
            title=f"{dead_letter_topic(topic)}:publish",
            description=f"Records of {topic} this service rejected, unchanged, with the reason in the "
            f"{DLQ_REASON} header (as a code in {DLQ_CODE}) and the origin in "
            f"{DLQ_ORIGINAL_TOPIC}/-partition/-offset. A record over {DEAD_LETTER_VALUE_MAX} bytes "
            f"comes as its first {DEAD_LETTER_VALUE_MAX} bytes, with {DLQ_TRUNCATED}: true and its size in "
            f"{DLQ_ORIGINAL_SIZE}.",
        )


def document_facts(broker: KafkaBroker, topic: str) -> None:
    """Show in the AsyncAPI document every fact type this service publishes on `topic`."""
    for fact_class in events_on(topic):
        broker.publisher(
            topic,
            title=f"{topic}:{fact_class.event_type()}",
            schema=fact_class,
            description=(fact_class.__doc__ or "").strip(),
        )


def intake_description(topic: str, keys: str) -> str:
    """What an intake subscriber takes, from the registry, for the AsyncAPI document."""
    return (
        f"CloudEvents from business-unit systems: {type_list(events_on(topic))} (schemas in "
        f"contracts/schemas). {keys} Handled in order, idempotently by source and id; rejected records "
        f"go to {dead_letter_topic(topic)} with the reason."
    )
