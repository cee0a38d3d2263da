"""The shared MongoDB client is per event loop: a service whose start failed, and never released
its client, cannot hand a client bound to a finished loop to the next one (a clean-clone run lost
40 tests that way after one start timed out)."""

from __future__ import annotations

import asyncio

from pymongo import AsyncMongoClient

from centricity_plumbing.mongo import Document, MongoStore

URL = "mongodb://127.0.0.1:9/?directConnection=true"


async def leaked_store() -> MongoStore:
    return MongoStore(URL, "t")  # never closed, as after a failed start


async def store_pair() -> tuple[AsyncMongoClient[Document], AsyncMongoClient[Document]]:
    first, second = MongoStore(URL, "a"), MongoStore(URL, "b")
    try:
        return first.client, second.client
    finally:
        await first.close()
        await second.close()


def test_each_event_loop_gets_its_own_client_and_services_in_one_loop_share_it() -> None:
    leaked = asyncio.run(leaked_store())
    first, second = asyncio.run(store_pair())
    assert first is second, "services in one loop share a client"
    assert first is not leaked.client, "a later loop never gets a client bound to an earlier one"
