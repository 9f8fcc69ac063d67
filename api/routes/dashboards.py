"""The dashboards (docs/dashboards.md). Each answers from read models and states `as_of`: the
log position every event up to is counted in it, beside the head, so a dashboard user sees
how fresh it is."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from api.deps import ContainerDep, ReadDb, ReaderScope, ReadYourWrites
from domain.scope import Scope
from domain.shared import Forbidden, InvalidInput
from infra.events import sortable_time
from projections.campaigns.campaigns import campaigns as all_campaigns
from projections.campaigns.campaigns import stats as campaign_stats
from projections.channels.anomalies import alerts_by_code
from projections.conversations.alerts import compliance_dashboard
from projections.customers.channel_stats import channels_dashboard
from projections.dashboards import queries
from projections.orders.dashboards import orders_dashboard
from projections.orders.orders import identity_match_rates

router = APIRouter(prefix="/v1/dashboards", tags=["dashboards"])


@router.get("/channels", dependencies=[ReadYourWrites])
def channels(
    c: ContainerDep,
    db: ReadDb,
    scope: ReaderScope,
    since: Annotated[date | None, Query(alias="from")] = None,
    until: Annotated[date | None, Query(alias="to")] = None,
) -> object:
    """Scans, adds and refusals per code and per day (UTC days, `from` and `to` inclusive; by
    default the last 30 days up to today, at most 366); per code its unresolved anomaly
    alerts (docs/channel-anomalies.md)."""
    last = until or max(datetime.now(UTC).date(), since or date.min)
    first = since or last - timedelta(days=29)
    if (last - first).days >= queries.MAX_DAYS:
        raise InvalidInput(f"a window is at most {queries.MAX_DAYS} days", field="from")
    found = channels_dashboard(db, datetime.now(UTC), first.isoformat(), last.isoformat())
    alerts = alerts_by_code(db)
    none = {"open": 0, "acknowledged": 0, "latest": []}
    for code in found["codes"]:
        code["alerts"] = alerts.get(code["id"], none)
    found["alerts"] = {
        status: sum(a[status] for a in alerts.values()) for status in ("open", "acknowledged")
    }
    return {"as_of": c.as_of("channel_stats", "channel_anomalies"), **found}


@router.get("/compliance", dependencies=[ReadYourWrites])
def compliance(
    c: ContainerDep,
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
    found = compliance_dashboard(
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
    return {"as_of": c.as_of("compliance", "staff"), **found}


@router.get("/identity", dependencies=[ReadYourWrites])
def identity(c: ContainerDep, db: ReadDb, scope: ReaderScope) -> object:
    """Per platform: buyers seen in orders, how many are linked to a customer (by unionid,
    phone hash or staff binding), how many wait, and the match rate."""
    if scope.role not in ("admin", "auditor", "manager"):
        raise Forbidden("the identity dashboard is for admins, managers and auditors")
    return {"as_of": c.as_of("orders", "portrait"), "platforms": identity_match_rates(db)}


@router.get("/orders", dependencies=[ReadYourWrites])
def orders(
    c: ContainerDep,
    db: ReadDb,
    scope: ReaderScope,
    by: Literal["platform", "region", "channel_code", "day"],
    level: Literal["province", "city"] = "province",
    since: Annotated[AwareDatetime | None, Query(description="inclusive, on placed_at")] = None,
    until: Annotated[AwareDatetime | None, Query(description="exclusive, on placed_at")] = None,
    platform: Literal["taobao", "jd", "pdd", "douyin", "youzan"] | None = None,
    buyers: Annotated[
        bool, Query(description="also distinct buyers and the repurchase rate (reads orders)")
    ] = False,
) -> object:
    """Orders placed in the window per platform, region (province, or city with level=city),
    the source channel code of the linked customer (null: unattributed) or UTC day: orders,
    gmv (payable of paid orders), refunds, net and cancelled, in fen, from the daily rollup;
    with `buyers=true` also distinct buyers per row and, in the totals, the repurchase rate of
    the window's paying customers (counted over the window's orders: slower on long ones)."""
    if scope.role not in ("admin", "auditor", "manager"):
        raise Forbidden("the orders dashboard is for admins, managers and auditors")
    found = orders_dashboard(
        db,
        by,
        level=level,
        since=sortable_time(since) if since else None,
        until=sortable_time(until) if until else None,
        platform=platform,
        buyers=buyers,
    )
    return {"as_of": c.as_of("orders", "portrait"), **found}


# --- the rollups (projections/dashboards) ---------------------------------------------------

Since = Annotated[date | None, Query(alias="from", description="inclusive; default 30 days ago")]
Until = Annotated[date | None, Query(alias="to", description="exclusive; default tomorrow")]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _managers(scope: Scope, what: str) -> None:
    if scope.role not in ("admin", "auditor", "manager"):
        raise Forbidden(f"the {what} dashboard is for admins, managers and auditors")


@router.get("/funnel", dependencies=[ReadYourWrites])
def funnel(
    c: ContainerDep,
    scope: ReaderScope,
    by: queries.FunnelBy = "code",
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
) -> object:
    """Channel funnel and ROI: scans → adds → first orders → GMV per channel code, member of
    staff (who the code gave the customer to) or UTC day, with the rates between the steps
    and GMV per add."""
    _managers(scope, "channel funnel")
    first, last = queries.days(since, until)
    return {
        "as_of": c.as_of("dashboards"),
        "from": first,
        "to": last,
        "by": by,
        **queries.funnel(c.read_db, by, first, last, limit),
    }


@router.get("/regions", dependencies=[ReadYourWrites])
def regions(
    c: ContainerDep,
    scope: ReaderScope,
    level: Literal["province", "city"] = "province",
    since: Since = None,
    until: Until = None,
    limit: Limit = 500,
) -> object:
    """Regional heat per province or city, by whole months: new buyers (at their first paid
    order), paid orders, GMV net of refunds, refunds, tickets opened."""
    _managers(scope, "regional heat")
    first, last = queries.months(since, until)
    items = queries.regions(c.read_db, level, first, last, limit)
    return {"as_of": c.as_of("dashboards"), "from": first, "to": last, "items": items}


@router.get("/staff", dependencies=[ReadYourWrites])
def staff_ranking(
    c: ContainerDep,
    scope: ReaderScope,
    order_by: queries.StaffOrder = "conversions",
    since: Since = None,
    until: Until = None,
    limit: Limit = 100,
) -> object:
    """Staff ranking: adds, conversions, GMV and the average wait before they answered a
    customer (from the conversation archive). Managers see the whole ranking too: it is how
    a team compares."""
    _managers(scope, "staff ranking")
    first, last = queries.days(since, until)
    items = queries.staff_ranking(c.read_db, first, last, order_by, limit)
    return {"as_of": c.as_of("dashboards", "staff"), "from": first, "to": last, "items": items}


@router.get("/promotions", dependencies=[ReadYourWrites])
def promotions(
    c: ContainerDep,
    scope: ReaderScope,
    by: Literal["region", "month"] = "region",
    since: Since = None,
    until: Until = None,
    limit: Limit = 500,
) -> object:
    """Promotion cost per province of the customer (or per month): coupon discounts given and
    points earned and spent."""
    _managers(scope, "promotion cost")
    first, last = queries.months(since, until)
    items = queries.promotions(c.read_db, by, first, last, limit)
    return {"as_of": c.as_of("dashboards"), "from": first, "to": last, "items": items}


@router.get("/coupons", dependencies=[ReadYourWrites])
def coupons(
    c: ContainerDep,
    scope: ReaderScope,
    by: Literal["issuer", "month"] = "issuer",
    since: Since = None,
    until: Until = None,
) -> object:
    """Coupon redemption: issued, redeemed, revoked, expired and the redemption rate per
    issuer (campaign, rule, staff, points) or month."""
    _managers(scope, "coupon")
    first, last = queries.months(since, until)
    items = queries.coupons(c.read_db, by, first, last)
    return {"as_of": c.as_of("dashboards"), "from": first, "to": last, "items": items}


@router.get("/campaigns", dependencies=[ReadYourWrites])
def campaign_performance(c: ContainerDep, scope: ReaderScope) -> object:
    """Every fission campaign's funnel (views → joins → invitees → successful invites →
    rewards), how deep and wide it spread, fraud flags and cost per acquired customer."""
    _managers(scope, "campaign")
    items = [campaign_stats(c.read_db, k["campaign"]) for k in all_campaigns(c.read_db)]
    return {"as_of": c.as_of("campaigns"), "items": items}
