"""Fixtures shared by every kind of test."""

from __future__ import annotations

import os

import pytest

# Tansu holds a consumer group's first join for half the session timeout; keep it short.
os.environ.setdefault("CENTRICITY_KAFKA_SESSION_TIMEOUT_MS", "2000")
os.environ.setdefault("CENTRICITY_KAFKA_HEARTBEAT_INTERVAL_MS", "500")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = str(item.path)
        if "/integration/" in path:
            item.add_marker(pytest.mark.integration)
        elif "/e2e/" in path:
            item.add_marker(pytest.mark.e2e)
