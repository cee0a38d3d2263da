"""A 405 answer lists every method of its path in `Allow` (RFC 9110, section 15.5.6)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def methods_of_path(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """The methods some route answers on this request's path. Each method is tried as a request of
    its own, because included routers hide their routes' methods until they match in full."""
    return [
        method
        for method in METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]


class AllowEveryMethod:
    """Starlette fills `Allow` from the first route whose path matched, so a path served by two
    routes (GET and PATCH) would name only one of them."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                allowed = ", ".join(methods_of_path(self.routes, scope))
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                message = {**message, "headers": [*headers, (b"allow", allowed.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_allow)
