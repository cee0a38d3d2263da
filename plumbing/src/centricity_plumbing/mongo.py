"""The process's MongoDB client, and document patterns that keep handling idempotent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

Document = dict[str, Any]

_clients: dict[str, tuple[AsyncMongoClient[Document], int]] = {}
# How long an operation waits for a reachable server: PyMongo's 30 s default would hold HTTP
# requests that long during an outage, where an answer of 503 within seconds is what callers need.
SERVER_SELECTION_TIMEOUT_MS = 2000


def acquire_client(url: str, timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS) -> AsyncMongoClient[Document]:
    """The one client of this process for `url`; pair every call with `release_client`.

    Services in one process (as in tests) share the client and its pool; the last to
    release it closes it.
    """
    client, users = _clients.get(url, (None, 0))
    if client is None:
        client = AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=timeout_ms)
    _clients[url] = (client, users + 1)
    return client


async def release_client(url: str) -> None:
    client, users = _clients[url]
    if users > 1:
        _clients[url] = (client, users - 1)
        return
    del _clients[url]
    await client.close()


class MongoStore:
    """One service's database on the process's shared client."""

    def __init__(self, url: str, database: str, timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS) -> None:
        self.url = url
        self.client = acquire_client(url, timeout_ms)
        self.db: AsyncDatabase[Document] = self.client[database]

    async def ping(self) -> None:
        await self.client.admin.command("ping")

    async def close(self) -> None:
        await release_client(self.url)


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


def remember(seen: list[str], key: str, keep: int) -> list[str]:
    """Append an event key to a bounded list of recently applied keys."""
    return [*seen, key][-keep:]
