"""The one mechanism for applying a change once per event key (plumbing.idempotency)."""

from __future__ import annotations

from centricity_plumbing.idempotency import (
    Origin,
    has_seen,
    kept_with_change,
    recent_fact,
    remember,
    seen_keys,
)
from centricity_plumbing.outbox import OUTBOX_FIELD


def entry(fact_id: str) -> dict[str, str]:
    return {"id": fact_id, "topic": "t", "key": "k", "payload": "{}"}


def test_an_http_change_keeps_its_fact_pending_and_a_kafka_change_only_for_redelivery() -> None:
    by_http = kept_with_change(
        None, key="h1", entry=entry("f1"), origin=Origin.HTTP, keys_kept=4, facts_kept=2
    )
    by_kafka = kept_with_change(
        None, key="k1", entry=entry("f2"), origin=Origin.KAFKA, keys_kept=4, facts_kept=2
    )
    assert [e["id"] for e in by_http[OUTBOX_FIELD]] == ["f1"]
    assert by_kafka[OUTBOX_FIELD] == []
    assert recent_fact(by_kafka, "k1") == entry("f2")
    assert recent_fact(by_kafka, None) is None


def test_a_key_is_seen_once_applied_and_the_window_keeps_the_latest() -> None:
    doc: dict[str, object] | None = None
    for n in range(6):
        doc = kept_with_change(
            doc, key=f"k{n}", entry=entry(f"f{n}"), origin=Origin.KAFKA, keys_kept=4, facts_kept=2
        )
    assert seen_keys(doc) == ["k2", "k3", "k4", "k5"]
    assert has_seen(doc, "k5")
    assert not has_seen(doc, "k1")
    assert not has_seen(doc, None), "an unkeyed event is never a redelivery"
    assert recent_fact(doc, "k3") is None
    assert recent_fact(doc, "k5") == entry("f5")


def test_an_unkeyed_change_remembers_nothing_and_keeps_what_was_pending() -> None:
    before = kept_with_change(
        None, key=None, entry=entry("f1"), origin=Origin.HTTP, keys_kept=4, facts_kept=2
    )
    after = kept_with_change(before, key=None, entry=None, origin=Origin.HTTP, keys_kept=4, facts_kept=2)
    assert seen_keys(after) == []
    assert remember([], None, 4) == []
    assert [e["id"] for e in after[OUTBOX_FIELD]] == ["f1"]
