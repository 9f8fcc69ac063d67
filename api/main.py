"""create_app(): the FastAPI application over one Container."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import errors
from api.correlation import CorrelationId
from api.responses import OrjsonResponse
from api.routes import (
    audit,
    automation,
    campaigns,
    channel_anomalies,
    channel_codes,
    compliance,
    conversations,
    customers,
    dashboards,
    exports,
    groups,
    handover,
    orders,
    pricing,
    privacy,
    promotions,
    reconciliation,
    rfm,
    segments,
    settlement,
    staff,
    system,
    tickets,
    wechat_oa,
    wecom,
)
from infra.automation import sweep as sweep_automation
from infra.bootstrap import Container, bootstrap
from infra.jobs import Scheduler, apply_erasures, link_pending_buyers, sweep_segments
from infra.settings import Settings
from infra.tickets import breach_overdue_tickets, hand_over_departed


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    owned = container is None
    c = container or bootstrap(settings or Settings())
    c.registry.register(system.ProjectionCollector(c))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if c.in_process_projections:
            c.start_follower()
            c.start_log_processes()  # segments and routing follow the follower's batches
        scheduler = None
        if c.settings.scheduler_interval_seconds > 0:
            scheduler = Scheduler(
                [
                    ("privacy", lambda: apply_erasures(c)),
                    ("identity", lambda: link_pending_buyers(c)),
                    ("segments", lambda: sweep_segments(c)),
                    ("sla", lambda: breach_overdue_tickets(c)),
                    ("handover", lambda: hand_over_departed(c)),
                    ("automation", lambda: sweep_automation(c)),
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

    # One id per incoming request, echoed on every answer (401s and queries too) and
    # stamped on every event the request records.
    app.add_middleware(CorrelationId)

    # The platforms' pushes and callbacks first: they are most of the traffic, and each
    # request is matched against the routes in this order (~0.3 ms of CPU an order push
    # spent walking past the routers before it). No other router's paths overlap theirs.
    for module in (
        orders,
        wecom,
        wechat_oa,
        system,
        staff,
        channel_codes,
        customers,
        dashboards,
        groups,
        conversations,
        compliance,
        privacy,
        rfm,
        segments,
        tickets,
        settlement,
        pricing,
        promotions,
        handover,
        channel_anomalies,
        campaigns,
        automation,
        reconciliation,
        audit,
        exports,
    ):
        app.include_router(module.router)
    return app
