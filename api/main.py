"""create_app(): the FastAPI application over one Container."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

from fastapi import FastAPI, Request, Response

from api import errors
from api.responses import OrjsonResponse
from api.routes import (
    channel_codes,
    compliance,
    conversations,
    customers,
    dashboards,
    groups,
    orders,
    privacy,
    rfm,
    staff,
    system,
    wechat_oa,
    wecom,
)
from infra.bootstrap import Container, bootstrap
from infra.jobs import Scheduler, apply_erasures, link_pending_buyers
from infra.settings import Settings


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    owned = container is None
    c = container or bootstrap(settings or Settings())
    c.registry.register(system.ProjectionCollector(c))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if c.in_process_projections:
            c.start_follower()
        scheduler = None
        if c.settings.scheduler_interval_seconds > 0:
            scheduler = Scheduler(
                [
                    ("privacy", lambda: apply_erasures(c)),
                    ("identity", lambda: link_pending_buyers(c)),
                ],
                c.settings.scheduler_interval_seconds,
            )
            scheduler.start()
        yield
        if scheduler is not None:
            scheduler.stop()
        if owned:
            c.close()

    app = FastAPI(
        title="scrm",
        summary="Event-sourced social CRM: channel codes, customers, staff",
        version="0.1.0",
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
    )
    app.state.container = c
    errors.install(app)

    @app.middleware("http")
    async def correlation(request: Request, call_next):  # type: ignore[no-untyped-def]
        # One id per incoming request, echoed on every answer (401s and queries too) and
        # stamped on every event the request records.
        given = request.headers.get("x-correlation-id", "")
        request.state.correlation_id = given if 0 < len(given) <= 100 else str(uuid4())
        response: Response = await call_next(request)
        response.headers["X-Correlation-Id"] = request.state.correlation_id
        return response

    for module in (
        system,
        staff,
        channel_codes,
        customers,
        dashboards,
        groups,
        wecom,
        wechat_oa,
        conversations,
        compliance,
        privacy,
        orders,
        rfm,
    ):
        app.include_router(module.router)
    return app
