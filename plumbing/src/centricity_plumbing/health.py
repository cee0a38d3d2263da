"""Liveness and readiness endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from centricity_plumbing.problems import PROBLEM_TYPE_URI

CHECK_TIMEOUT_S = 2.0

ReadinessCheck = Callable[[], Awaitable[bool]]
# How many things need an operator (quarantined records...): non-zero is "degraded", still ready.
Degradation = Callable[[], Awaitable[int]]


async def _passes(check: ReadinessCheck) -> bool:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - any failure means "not ready", never a crash
        return False


async def _count(degradation: Degradation) -> int | None:
    try:
        return await asyncio.wait_for(degradation(), CHECK_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - unknown, and the store check says why
        return None


def health_router(
    checks: dict[str, ReadinessCheck], degradations: dict[str, Degradation] | None = None
) -> APIRouter:
    degradations = degradations or {}
    router = APIRouter(tags=["health"])

    @router.get("/health", summary="The process is alive")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/ready",
        summary="The broker and the store answer",
        description="200 with `status` `ready`, or `degraded` while something needs an operator "
        "(`quarantined`: records whose dead letter could not be published); 503 if a dependency "
        "does not answer.",
        responses={503: {"description": "A dependency does not answer"}},
    )
    async def ready() -> JSONResponse:
        results = dict(zip(checks, await asyncio.gather(*(_passes(c) for c in checks.values())), strict=True))
        counts = dict(
            zip(degradations, await asyncio.gather(*(_count(d) for d in degradations.values())), strict=True)
        )
        if all(results.values()):
            status = "degraded" if any(counts.values()) else "ready"
            return JSONResponse({"status": status, "checks": results, **counts})
        failing = ", ".join(name for name, ok in results.items() if not ok)
        return JSONResponse(
            {
                "type": PROBLEM_TYPE_URI.format(type="not-ready"),
                "title": "Not ready",
                "status": 503,
                "detail": f"Not answering: {failing}.",
                "checks": results,
            },
            status_code=503,
            media_type="application/problem+json",
        )

    return router
