"""Wiring shared by every service: one runtime (telemetry, broker, store) and its FastAPI app."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi_offline import FastAPIOffline
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI, get_asyncapi_html
from opentelemetry.sdk.trace import TracerProvider

from centricity_plumbing.auth import TokenVerifier
from centricity_plumbing.broker import create_broker
from centricity_plumbing.health import health_router
from centricity_plumbing.input import RequestBodyGuard
from centricity_plumbing.methods import AllowEveryMethod
from centricity_plumbing.metrics import BacklogProbe, ServiceMetrics, instrument_http, metrics_router
from centricity_plumbing.mongo import MongoStore
from centricity_plumbing.problems import NotFoundProblem, install_problem_handlers
from centricity_plumbing.quarantine import QUARANTINE_COLLECTION, Quarantine, attach_quarantine
from centricity_plumbing.ratelimit import WriteLimiter
from centricity_plumbing.settings import ServiceSettings
from centricity_plumbing.signin import install_sessions, signin_router
from centricity_plumbing.telemetry import (
    create_tracer_provider,
    install_global,
    instrument_app,
    instrument_pymongo,
)

Hook = Callable[[], Awaitable[Any]]
Job = Callable[[], Coroutine[Any, Any, Any]]


class ServiceRuntime:
    """What one service process holds: its settings, tracer provider, broker and store."""

    def __init__(self, settings: ServiceSettings, tracer_provider: TracerProvider | None = None) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider or create_tracer_provider(settings.service_name)
        # PyMongo's instrumentation only sees clients created after it.
        instrument_pymongo(self.tracer_provider)
        self.store = MongoStore(settings.mongo_url, settings.database_name(), settings.store_timeout_ms)
        self.metrics = ServiceMetrics(settings.service_name)
        self.broker: KafkaBroker = create_broker(settings, self.tracer_provider, self.metrics)
        self.quarantine = Quarantine(self.store.db[QUARANTINE_COLLECTION])
        self.metrics.count_backlog("quarantined", self.quarantine.count)
        attach_quarantine(self.broker, self.quarantine)
        self.log = logging.getLogger(f"centricity.{settings.service_name}")

    async def broker_ready(self) -> bool:
        return bool(await self.broker.ping(timeout=2.0))

    async def store_ready(self) -> bool:
        await self.store.ping()
        return True


STATIC = Path(str(resources.files("centricity_plumbing") / "static"))
ASYNCAPI_ASSETS = "/asyncapi/static"
ASYNCAPI_JS = "asyncapi-react.standalone.js"
ASYNCAPI_CSS = "asyncapi-react.min.css"


def asyncapi_router(broker: KafkaBroker, *, title: str, version: str, description: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    spec = AsyncAPI(broker, title=title, version=version, description=description)

    @router.get("/asyncapi.json")
    async def asyncapi_json() -> JSONResponse:
        return JSONResponse(spec.to_specification().to_jsonable())

    @router.get("/asyncapi")
    async def asyncapi_page() -> HTMLResponse:
        return HTMLResponse(
            get_asyncapi_html(
                spec.to_specification(),
                try_it_out_path=None,
                asyncapi_js_url=f"{ASYNCAPI_ASSETS}/{ASYNCAPI_JS}",
                asyncapi_css_url=f"{ASYNCAPI_ASSETS}/{ASYNCAPI_CSS}",
            )
        )

    @router.get(f"{ASYNCAPI_ASSETS}/{{name}}")
    async def asyncapi_asset(name: str) -> FileResponse:
        # The AsyncAPI page's viewer (@asyncapi/react-component) ships with this package: a closed
        # network has no CDN.
        if name not in (ASYNCAPI_JS, ASYNCAPI_CSS):
            raise NotFoundProblem(f"No file {name!r}.")
        return FileResponse(STATIC / name)

    return router


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    version: str,
    routers: Sequence[APIRouter],
    before_start: Sequence[Hook] = (),
    after_start: Sequence[Hook] = (),
    background: Sequence[Job] = (),
    backlogs: Mapping[str, BacklogProbe] | None = None,
) -> FastAPI:
    """A FastAPI app that starts the store hooks, then the broker, and stops them in reverse.

    The broker is started in the lifespan, so consumers run only while the HTTP side does.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for hook in before_start:
            await hook()
        await runtime.broker.start()
        tasks: list[asyncio.Task[Any]] = []
        try:
            for hook in after_start:
                await hook()
            tasks = [asyncio.create_task(job()) for job in background]
            runtime.log.info("%s started", runtime.settings.service_name)
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runtime.broker.stop()
            await runtime.store.close()
            runtime.tracer_provider.force_flush()
            runtime.log.info("%s stopped", runtime.settings.service_name)

    # Swagger UI and ReDoc from files the package ships: a closed network has no CDN.
    app = FastAPIOffline(title=title, description=description, version=version, lifespan=lifespan)
    app.state.settings = runtime.settings
    app.state.runtime = runtime
    app.state.write_limiter = WriteLimiter(runtime.settings, runtime.store.db["rate_limits"])
    app.state.token_verifier = TokenVerifier(runtime.settings)
    install_problem_handlers(app, runtime.log)
    app.add_middleware(RequestBodyGuard, max_body_bytes=runtime.settings.http_max_body_bytes)
    app.add_middleware(AllowEveryMethod, routes=app.router.routes)
    install_sessions(app, runtime.settings)
    app.include_router(signin_router(runtime.settings))
    app.include_router(
        health_router(
            {"broker": runtime.broker_ready, "store": runtime.store_ready},
            {"quarantined": runtime.quarantine.count},
        )
    )
    app.include_router(asyncapi_router(runtime.broker, title=title, version=version, description=description))
    for kind, probe in (backlogs or {}).items():
        runtime.metrics.count_backlog(kind, probe)
    app.include_router(metrics_router(runtime.metrics))
    for router in routers:
        app.include_router(router)
    instrument_app(app, runtime.tracer_provider)
    instrument_http(app, runtime.metrics)
    return app


def serve(app_factory: Callable[[], FastAPI], settings: ServiceSettings) -> None:
    """Run a service until SIGTERM or SIGINT; uvicorn then drains requests and runs the lifespan's exit."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = app_factory()
    install_global(app.state.runtime.tracer_provider)
    # What imports and wiring made lives as long as the process. Without this, every full
    # collection walks it again (about 90 ms each, several times per second under load).
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="info",
        timeout_graceful_shutdown=20,
    )
