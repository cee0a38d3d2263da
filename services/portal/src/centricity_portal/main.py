"""Wiring of the portal: the customer portal and the staff console, on the services' public APIs.

It has no broker and no store of its own, so its rooms are `api.py` (pages), `service.py` (use
cases), `domain.py` (rules) and `upstream.py` (the services it calls, in place of a store).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from pydantic import Field

from centricity_plumbing.auth import TokenVerifier
from centricity_plumbing.health import ReadinessCheck, health_router
from centricity_plumbing.metrics import ServiceMetrics, instrument_http, metrics_router
from centricity_plumbing.problems import install_problem_handlers
from centricity_plumbing.settings import ServiceSettings
from centricity_plumbing.signin import install_sessions, signin_router
from centricity_portal.api import install_page_errors, portal_router
from centricity_portal.service import Portal
from centricity_portal.upstream import Api, Upstreams


class PortalSettings(ServiceSettings):
    service_name: str = "portal"
    http_port: int = 8105
    ideas_url: str = Field(default="http://127.0.0.1:8101", description="The ideas service's API.")
    votes_url: str = Field(default="http://127.0.0.1:8102", description="The votes service's API.")
    insights_url: str = Field(default="http://127.0.0.1:8103", description="The insights service's API.")
    notifications_url: str = Field(
        default="http://127.0.0.1:8104", description="The notifications service's API."
    )
    upstream_timeout_s: float = Field(default=10.0, gt=0, description="How long a page waits for a service.")

    def upstream_urls(self) -> dict[Api, str]:
        return {
            Api.IDEAS: self.ideas_url,
            Api.VOTES: self.votes_url,
            Api.INSIGHTS: self.insights_url,
            Api.NOTIFICATIONS: self.notifications_url,
        }


def create_app(settings: PortalSettings | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    upstreams = Upstreams(settings.upstream_urls(), settings.upstream_timeout_s)
    portal = Portal(upstreams, TokenVerifier(settings))
    log = logging.getLogger("centricity.portal")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("portal started")
        yield
        await upstreams.close()

    app = FastAPI(
        title="Centricity portal", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.portal = portal
    app.state.settings = settings
    install_problem_handlers(app, log)
    install_page_errors(app)
    install_sessions(app, settings)
    app.include_router(signin_router(settings))
    app.include_router(health_router({api.value: _ready(upstreams, api) for api in Api}))
    app.include_router(portal_router(portal))
    metrics = ServiceMetrics("portal")
    app.include_router(metrics_router(metrics))
    instrument_http(app, metrics)
    return app


def _ready(upstreams: Upstreams, api: Api) -> ReadinessCheck:
    async def check() -> bool:
        return await upstreams.ready(api)

    return check


def run() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = PortalSettings()
    uvicorn.run(create_app(settings), host=settings.http_host, port=settings.http_port, log_level="info")


if __name__ == "__main__":
    run()
