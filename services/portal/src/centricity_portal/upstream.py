"""The services' public APIs, called as the signed-in person: their ID token is the bearer.

The portal keeps no data of its own. Whatever a service refuses comes back as `Refused`, with the
title and detail of its problem+json, so a page can say it in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx


class Api(StrEnum):
    IDEAS = "ideas"
    VOTES = "votes"
    INSIGHTS = "insights"
    NOTIFICATIONS = "notifications"


@dataclass
class Refused(Exception):
    """A service said no (4xx), or did not answer (503)."""

    status: int
    title: str
    detail: str = ""
    problems: list[str] = field(default_factory=list)

    def message(self) -> str:
        said = " ".join(part for part in (self.title.rstrip(".") + ".", self.detail) if part)
        return f"{said} {' '.join(self.problems)}".strip()


def _field_problem(error: dict[str, Any]) -> str:
    where = [str(part) for part in error.get("loc", []) if part not in ("body", "query", "path")]
    return f"{'.'.join(where) or 'input'}: {error.get('msg', 'invalid')}."


def refused(api: Api, answer: httpx.Response) -> Refused:
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return Refused(answer.status_code, f"The {api} service answered {answer.status_code}")
    listed = body.get("errors")
    errors: list[Any] = listed if isinstance(listed, list) else []
    return Refused(
        status=answer.status_code,
        title=str(body.get("title") or f"The {api} service answered {answer.status_code}"),
        detail=str(body.get("detail") or ""),
        problems=[_field_problem(e) for e in errors if isinstance(e, dict)],
    )


class Upstreams:
    """One HTTP client per service."""

    def __init__(self, urls: dict[Api, str], timeout_s: float) -> None:
        self.clients = {api: httpx.AsyncClient(base_url=url, timeout=timeout_s) for api, url in urls.items()}

    async def call(
        self,
        api: Api,
        method: str,
        path: str,
        token: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            answer = await self.clients[api].request(
                method, path, params=query, json=body, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError:
            raise Refused(503, f"The {api} service did not answer", "Try again in a moment.") from None
        if answer.is_success:
            return answer.json() if answer.content else None
        if answer.status_code >= 500:
            raise Refused(
                503, f"The {api} service could not answer ({answer.status_code})", "Try again in a moment."
            )
        raise refused(api, answer)

    async def get(self, api: Api, path: str, token: str, **params: Any) -> Any:
        return await self.call(api, "GET", path, token, params=params)

    async def ready(self, api: Api) -> bool:
        answer = await self.clients[api].get("/ready")
        return answer.status_code == 200

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()
