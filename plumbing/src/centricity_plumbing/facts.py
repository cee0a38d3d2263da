"""Records of any event topic, turned into contract objects: the one reader of every topic.

A record of a type this version does not know is skipped (facts may gain types), one that is not
JSON or breaks its type's schema is a RejectedEvent, for the dead-letter topic.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pydantic
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from centricity_contracts.envelope import CloudEvent
from centricity_contracts.registry import event_adapter
from centricity_plumbing.broker import STRICT_INPUT, RejectedEvent, dead_letter, rejection_for
from centricity_plumbing.settings import ServiceSettings

UNKNOWN_TYPE = "union_tag_invalid"


def decode_event(raw: bytes | None, *topics: str, strict: bool = False) -> CloudEvent[Any] | None:
    """The event in one record of these topics; None for a type this version does not know.

    `strict` (intake) refuses unknown types and unknown fields, as the published schemas do.
    """
    try:
        event: CloudEvent[Any] = event_adapter(*topics).validate_json(
            raw or b"", context=STRICT_INPUT if strict else None
        )
    except pydantic.ValidationError as error:
        if not strict and _only_unknown_type(error):
            return None
        rejection = rejection_for(error, raw)
        assert rejection is not None
        raise rejection from error
    return event


def _only_unknown_type(error: pydantic.ValidationError) -> bool:
    return all(e["type"] == UNKNOWN_TYPE for e in error.errors(include_url=False, include_input=False))


def decode_records(
    records: Sequence[ConsumerRecord[Any, Any]],
) -> tuple[
    list[tuple[ConsumerRecord[Any, Any], CloudEvent[Any]]],
    list[tuple[ConsumerRecord[Any, Any], RejectedEvent]],
]:
    """The known facts of a batch in order, and the records that cannot be read."""
    facts, broken = [], []
    for record in records:
        try:
            fact = decode_event(record.value, record.topic)
        except RejectedEvent as rejection:
            broken.append((record, rejection))
            continue
        if fact is not None:
            facts.append((record, fact))
    return facts, broken


async def dead_letter_all(
    broker: KafkaBroker,
    broken: Sequence[tuple[ConsumerRecord[Any, Any], RejectedEvent]],
    settings: ServiceSettings,
) -> None:
    for record, rejection in broken:
        await dead_letter(broker, record, rejection, settings.service_name)
