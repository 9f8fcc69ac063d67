"""Health, readiness (stores, bus, projection lag) and Prometheus metrics. No token needed."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily

from api.responses import OrjsonResponse
from infra.bootstrap import Container

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz() -> object:
    return {"status": "ok"}


async def _bus_reachable(url: str) -> bool:
    import nats

    try:
        nc = await asyncio.wait_for(
            nats.connect(url, connect_timeout=1, max_reconnect_attempts=0, allow_reconnect=False),
            2,
        )
    except Exception:  # refused, timed out, or not a NATS server: all "unreachable"
        return False
    await nc.close()
    return True


def _stores(c: Container) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    try:
        checks["head"] = c.head()
        checks["event_store"] = "ok"
    except Exception as exc:
        checks["event_store"] = f"unreachable: {type(exc).__name__}"
    try:
        checks["projections"] = c.projection_lag()
        checks["read_store"] = "ok"
    except Exception as exc:
        checks["read_store"] = f"unreachable: {type(exc).__name__}"
    return checks


@router.get("/readyz")
async def readyz(request: Request) -> object:
    c: Container = request.app.state.container
    checks = await run_in_threadpool(_stores, c)
    bus_ok = True
    if c.settings.nats_url:
        bus_ok = await _bus_reachable(c.settings.nats_url)
        checks["bus"] = "ok" if bus_ok else "unreachable"
    else:
        checks["bus"] = "not configured (projections run in-process)"
        follower = c.follower
        checks["follower"] = (
            "stopped"
            if follower is None
            else (f"error: {type(follower.error).__name__}" if follower.error else "running")
        )
    ready = bus_ok and checks["event_store"] == "ok" and checks["read_store"] == "ok"
    checks["mode"] = "embedded" if c.settings.embedded else "server"
    checks["status"] = "ready" if ready else "not ready"
    return OrjsonResponse(checks, status_code=200 if ready else 503)


class ProjectionCollector:
    def __init__(self, container: Container):
        self.c = container

    def collect(self) -> Any:
        head = GaugeMetricFamily("scrm_store_head_position", "Last position in the event store")
        pos = GaugeMetricFamily(
            "scrm_projection_position", "Last position applied", labels=["projection"]
        )
        lag = GaugeMetricFamily(
            "scrm_projection_lag_events", "Events not yet applied", labels=["projection"]
        )
        try:
            head_value = self.c.head()
            positions = self.c.engine.positions()
        except Exception:
            return
        head.add_metric([], head_value)
        for name, p in positions.items():
            pos.add_metric([name], p)
            lag.add_metric([name], max(head_value - p, 0))
        yield head
        yield pos
        yield lag


@router.get("/metrics")
def metrics(request: Request) -> Response:
    c: Container = request.app.state.container
    return Response(generate_latest(c.registry), media_type=CONTENT_TYPE_LATEST)
