"""The process's MongoDB client, and document patterns that keep handling idempotent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

Document = dict[str, Any]

# One client per URL and event loop: an AsyncMongoClient is bound to the loop it first ran on.
# The key holds the loop itself, not its id: a finished loop's id is reused by the next loop,
# which would then be handed a client it cannot run on.
ClientKey = tuple[str, asyncio.AbstractEventLoop | None]
_clients: dict[ClientKey, tuple[AsyncMongoClient[Document], int]] = {}
# How long an operation waits for a reachable server: PyMongo's 30 s default would hold HTTP
# requests that long during an outage, where an answer of 503 within seconds is what callers need.
SERVER_SELECTION_TIMEOUT_MS = 2000


def client_key(url: str) -> ClientKey:
    """The URL, and the running event loop if there is one (a service is wired before its loop
    runs; tests wire services inside theirs, a new loop each)."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    return url, loop


def acquire_client(
    key: ClientKey, timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS
) -> AsyncMongoClient[Document]:
    """The one client of this process for `key`; pair every call with `release_client`.

    Services in one process (as in tests) share the client and its pool; the last to
    release it closes it. A service whose start failed may never release it: being keyed by
    loop, its client is never handed to a later loop it cannot run on.
    """
    client, users = _clients.get(key, (None, 0))
    if client is None:
        client = AsyncMongoClient(key[0], tz_aware=True, serverSelectionTimeoutMS=timeout_ms)
    _clients[key] = (client, users + 1)
    return client


async def release_client(key: ClientKey) -> None:
    client, users = _clients[key]
    if users > 1:
        _clients[key] = (client, users - 1)
        return
    del _clients[key]
    await client.close()


class MongoStore:
    """One service's database on the process's shared client."""

    def __init__(self, url: str, database: str, timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS) -> None:
        self.url = url
        self.key = client_key(url)
        self.client = acquire_client(self.key, timeout_ms)
        self.db: AsyncDatabase[Document] = self.client[database]

    async def ping(self) -> None:
        await self.client.admin.command("ping")

    async def close(self) -> None:
        await release_client(self.key)


class ConcurrentUpdateError(RuntimeError):
    """A document kept changing under an optimistic update; the caller may retry later."""


async def update_versioned(
    collection: AsyncCollection[Document],
    doc_id: str,
    change: Callable[[Document | None], Document | None],
    *,
    attempts: int = 20,
) -> tuple[Document | None, bool]:
    """Read a document, compute its next state, and write it only if nobody else did meanwhile.

    `change` gets the stored document (or None) and returns the next one, or None to leave it
    as it is. Each document carries a `revision` that the write checks and increments, so
    concurrent writers never lose each other's updates. Returns the resulting document and
    whether it was written.
    """
    for _ in range(attempts):
        current = await collection.find_one({"_id": doc_id})
        proposed = change(current)
        if proposed is None:
            return current, False
        revision = (current or {}).get("revision", 0)
        nxt = {**proposed, "_id": doc_id, "revision": revision + 1}
        if current is None:
            try:
                await collection.insert_one(nxt)
            except DuplicateKeyError:
                continue
            return nxt, True
        result = await collection.replace_one({"_id": doc_id, "revision": revision}, nxt)
        if result.matched_count == 1:
            return nxt, True
    raise ConcurrentUpdateError(f"document {doc_id!r} changed {attempts} times under an update")
