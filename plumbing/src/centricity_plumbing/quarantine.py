"""Where a rejected record goes when its dead letter cannot be published: the service's store.

A dead-letter publish that keeps failing (the dead-letter topic refuses it, is missing, or the
service may not write to it) must not stall the partition behind it. After a bounded number of
tries the record is kept in the `quarantined_records` collection instead, with the reason and
the publish error, and the service's `/ready` reports itself degraded until an operator has
dealt with it (see the README's "Quarantined records").
"""

from __future__ import annotations

import base64
import weakref
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from pymongo.asynchronous.collection import AsyncCollection

from centricity_plumbing.clock import utc_now
from centricity_plumbing.mongo import Document

QUARANTINE_COLLECTION = "quarantined_records"
# Records are kept whole up to this size; the rest is the first bytes, like a dead letter.
QUARANTINED_VALUE_MAX = 512 * 1024


class Quarantine:
    """The quarantined records of one service."""

    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self.collection = collection

    async def keep(
        self, record: ConsumerRecord[Any, Any], headers: dict[str, str], publish_error: BaseException
    ) -> None:
        """Keep a record, once however often it is redelivered (its id is its position)."""
        value: bytes = record.value or b""
        await self.collection.update_one(
            {"_id": f"{record.topic}:{record.partition}:{record.offset}"},
            {
                "$setOnInsert": {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "key": (record.key or b"").decode("utf-8", "replace"),
                    "value_base64": base64.b64encode(value[:QUARANTINED_VALUE_MAX]).decode(),
                    "size": len(value),
                    "headers": headers,
                    "quarantined_at": utc_now().isoformat(),
                },
                "$set": {"publish_error": repr(publish_error)[:2000]},
            },
            upsert=True,
        )

    async def count(self) -> int:
        return await self.collection.count_documents({})


_quarantines: weakref.WeakKeyDictionary[KafkaBroker, Quarantine] = weakref.WeakKeyDictionary()


def attach_quarantine(broker: KafkaBroker, quarantine: Quarantine) -> None:
    """Make `quarantine` the place for this broker's dead letters that cannot be published."""
    _quarantines[broker] = quarantine


def quarantine_of(broker: KafkaBroker) -> Quarantine | None:
    return _quarantines.get(broker)
