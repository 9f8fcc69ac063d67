from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from api.deps import ReadDb, ReaderScope, ReadYourWrites
from domain.shared import Forbidden
from infra.events import sortable_time
from projections.conversations.alerts import compliance_dashboard
from projections.customers.channel_stats import channels_dashboard
from projections.orders.dashboards import orders_dashboard
from projections.orders.orders import identity_match_rates

router = APIRouter(prefix="/v1/dashboards", tags=["dashboards"])


@router.get("/channels", dependencies=[ReadYourWrites])
def channels(
    db: ReadDb,
    scope: ReaderScope,
    since: Annotated[date | None, Query(alias="from")] = None,
    until: Annotated[date | None, Query(alias="to")] = None,
) -> object:
    """Scans, adds and refusals per code and per day (UTC days)."""
    return channels_dashboard(
        db,
        datetime.now(UTC),
        since.isoformat() if since else None,
        until.isoformat() if until else None,
    )


@router.get("/compliance", dependencies=[ReadYourWrites])
def compliance(
    db: ReadDb,
    scope: ReaderScope,
    by: Literal["staff", "department", "rule", "day"],
    since: Annotated[AwareDatetime | None, Query(description="inclusive")] = None,
    until: Annotated[AwareDatetime | None, Query(description="exclusive")] = None,
    severity: Literal["low", "medium", "high", "critical"] | None = None,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    pack_id: Annotated[str | None, Query(max_length=64)] = None,
) -> object:
    """Compliance alerts per staff member, department, rule (pack and word) or UTC day of the
    message: total, open, acknowledged, resolved and per severity, largest first (days in
    order). Each alert counts for its staff member (the sender if staff, else the first staff
    recipient) and that member's department. Admins and auditors see every alert, managers
    their department's, staff their own (by day or by rule)."""
    department = staff_id = None
    if scope.role == "manager":
        department = scope.department
    elif scope.role == "staff":
        if by not in ("day", "rule"):
            raise Forbidden("staff see their own alerts by day or by rule")
        staff_id = scope.staff_id
    return compliance_dashboard(
        db,
        by,
        since=sortable_time(since) if since else None,
        until=sortable_time(until) if until else None,
        severity=severity,
        status=status,
        pack_id=pack_id,
        department=department,
        staff_id=staff_id,
    )


@router.get("/identity", dependencies=[ReadYourWrites])
def identity(db: ReadDb, scope: ReaderScope) -> object:
    """Per platform: buyers seen in orders, how many are linked to a customer (by unionid,
    phone hash or staff binding), how many wait, and the match rate."""
    if scope.role not in ("admin", "auditor", "manager"):
        raise Forbidden("the identity dashboard is for admins, managers and auditors")
    return {"platforms": identity_match_rates(db)}


@router.get("/orders", dependencies=[ReadYourWrites])
def orders(
    db: ReadDb,
    scope: ReaderScope,
    by: Literal["platform", "region", "channel_code", "day"],
    level: Literal["province", "city"] = "province",
    since: Annotated[AwareDatetime | None, Query(description="inclusive, on placed_at")] = None,
    until: Annotated[AwareDatetime | None, Query(description="exclusive, on placed_at")] = None,
    platform: Literal["taobao", "jd", "pdd", "douyin", "youzan"] | None = None,
) -> object:
    """Orders placed in the window per platform, region (province, or city with level=city),
    the source channel code of the linked customer (null: unattributed) or UTC day: orders,
    gmv (payable of paid orders), refunds, net, cancelled and distinct buyers, in fen; the
    totals add the repurchase rate of the window's paying customers."""
    if scope.role not in ("admin", "auditor", "manager"):
        raise Forbidden("the orders dashboard is for admins, managers and auditors")
    return orders_dashboard(
        db,
        by,
        level=level,
        since=sortable_time(since) if since else None,
        until=sortable_time(until) if until else None,
        platform=platform,
    )
