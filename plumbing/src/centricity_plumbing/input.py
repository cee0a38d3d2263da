"""What every HTTP request body must be before anything parses it: JSON, within a size limit, and
as strict as the published schema (an unknown field is refused, never dropped)."""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from centricity_contracts.model import strict_input
from centricity_plumbing.problems import PROBLEM_TYPE_URI

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
PROBLEM_CONTENT_TYPE = b"application/problem+json"


# Pages that customers reach from a mail post plain HTML forms (and mail clients post RFC 8058
# one-click unsubscribes) there; everything else takes JSON only.
FORM_PATH_PREFIXES = ("/attestation-links/", "/unsubscribe-links/")
FORM_CONTENT_TYPE = b"application/x-www-form-urlencoded"


def is_form(content_type: bytes) -> bool:
    return content_type.split(b";", 1)[0].strip().lower() == FORM_CONTENT_TYPE


def is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class RequestBodyGuard:
    """ASGI middleware: 415 for a body that is not JSON, 413 for one over `max_body_bytes` (from
    Content-Length before reading, or while reading), and strict validation of what passes."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        has_body = b"transfer-encoding" in headers or (length is not None and length != b"0")
        content_type = headers.get(b"content-type", b"")
        form_allowed = str(scope.get("path", "")).startswith(FORM_PATH_PREFIXES) and is_form(content_type)
        if has_body and not (is_json(content_type) or form_allowed):
            await self._refuse(
                send,
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "Send the body as application/json.",
            )
            return
        if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
            await self._refuse_too_large(send)
            return
        body = await self._read(receive)
        if body is None:
            await self._refuse_too_large(send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        token = strict_input.set(True)
        try:
            await self.app(scope, replay, send)
        finally:
            strict_input.reset(token)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it grows past the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse_too_large(self, send: Send) -> None:
        await self._refuse(
            send,
            413,
            "body-too-large",
            "Request body too large",
            f"A request body may have at most {self.max_body_bytes} bytes.",
        )

    @staticmethod
    async def _refuse(send: Send, status: int, kind: str, title: str, detail: str) -> None:
        problem = {
            "type": PROBLEM_TYPE_URI.format(type=kind),
            "title": title,
            "status": status,
            "detail": detail,
        }
        payload = json.dumps(problem).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_CONTENT_TYPE),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


class StrictBodyRoute(APIRoute):
    """A route whose request body is validated strictly (the middleware turns strictness on), and
    whose endpoint runs with it off, so that what a use case reads back from its store is read as
    tolerantly as facts are. Every service router uses it."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        if set(options.get("methods") or ()) & BODY_METHODS and inspect.iscoroutinefunction(endpoint):
            endpoint = _lenient(endpoint)
        super().__init__(path, endpoint, **options)


def _lenient(endpoint: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(endpoint)
    async def call(**values: Any) -> Any:
        token = strict_input.set(False)
        try:
            return await endpoint(**values)
        finally:
            strict_input.reset(token)

    return call
