"""Regional price strategies (多区域价格策略) and quotes (docs/pricing.md).

HQ (the admin role) publishes strategy versions and declares emergency overrides; admins and
managers set a region's float within HQ's band; anyone who reads prices a basket. Every change
answers the position of its last event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CommandMeta, ContainerDep, CurrentScope, ManagerScope, ReaderScope
from api.schemas.customers import ConfigChange
from api.schemas.pricing import (
    FloatChange,
    OverrideCreate,
    OverrideLift,
    QuoteRequest,
)
from domain.scope import Scope
from domain.shared import Forbidden
from infra.promotions import member_rate

router = APIRouter(prefix="/v1", tags=["pricing"])


def _hq(scope: Scope) -> None:
    if scope.role != "admin":
        raise Forbidden("only HQ (the admin role) sets price strategies and overrides")


@router.put("/pricing/strategies/{key}", status_code=201)
def publish_strategy(
    key: str, body: ConfigChange, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """The next version of a price strategy (see docs/pricing.md for its parts)."""
    _hq(scope)
    r = c.pricing.publish(
        key,
        body.definition,
        effective_from=body.effective_from or meta.occurred_at,
        expected_version=body.expected_version,
        meta=meta,
    )
    return {"strategy": key, "strategy_version": r.version, "position": r.position}


@router.get("/pricing/strategies/{key}")
def strategy(
    key: str,
    c: ContainerDep,
    _: ReaderScope,
    as_of: Annotated[datetime | None, Query()] = None,
) -> object:
    """Every version, float and override on record, and the version in force at `as_of`
    (default now)."""
    return c.pricing.describe(key, as_of or datetime.now(UTC))


@router.put("/pricing/strategies/{key}/regions/{region}/float")
def set_float(
    key: str, region: str, body: FloatChange, c: ContainerDep, _: ManagerScope, meta: CommandMeta
) -> object:
    r = c.pricing.set_float(
        key, region, body.float, effective_from=body.effective_from or meta.occurred_at, meta=meta
    )
    return {"strategy": key, "region": region, "float": body.float, "position": r.position}


@router.post("/pricing/strategies/{key}/overrides", status_code=201)
def declare_override(
    key: str, body: OverrideCreate, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """An emergency override: a province's or region's prices times `factor` until it
    expires (at most 90 days) or is lifted."""
    _hq(scope)
    r = c.pricing.declare_override(
        key,
        override_id=body.override_id,
        scope=body.scope,
        factor=body.factor,
        reason=body.reason,
        starts_at=body.starts_at or meta.occurred_at,
        expires_at=body.expires_at,
        meta=meta,
    )
    return {"strategy": key, "override_id": r.id, "position": r.position}


@router.post("/pricing/strategies/{key}/overrides/{override_id}/lift")
def lift_override(
    key: str,
    override_id: str,
    body: OverrideLift,
    c: ContainerDep,
    scope: CurrentScope,
    meta: CommandMeta,
) -> object:
    _hq(scope)
    r = c.pricing.lift_override(key, override_id, reason=body.reason, meta=meta)
    return {"strategy": key, "override_id": r.id, "position": r.position}


@router.post("/quotes")
def quote(body: QuoteRequest, c: ContainerDep, _: ReaderScope) -> object:
    """A basket priced for a region at a time, line by line, naming the strategy version, the
    region's float and any override that priced it; with `customer_id`, the member's tier
    rate at that time too (404 for an unknown customer)."""
    at = body.at or datetime.now(UTC)
    member = member_rate(c, body.customer_id, at) if body.customer_id else None
    return c.pricing.quote(
        body.strategy, region=body.region, at=at, lines=body.lines, member=member
    )
