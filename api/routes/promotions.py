"""Coupons, points and membership (docs/promotions.md): issue, redeem (核销), revoke and expire
coupons; earn, spend and exchange points; the loyalty program; a customer's coupons, balance
and tier as of any date.

Staff issue coupons to customers and redeem them against orders; admins and managers revoke
and sweep; HQ (the admin role) publishes the loyalty program; every reader sees coupons,
balances and tiers. Every change answers the position of its last event (read-your-writes
with `min_position`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import (
    CommandMeta,
    ContainerDep,
    CurrentScope,
    ManagerScope,
    ReaderScope,
    ReadYourWrites,
    WriterScope,
)
from api.schemas.customers import ConfigChange
from api.schemas.promotions import (
    CouponIssue,
    CouponTerms,
    PointsExchange,
    PointsMove,
    Redemption,
    Revocation,
)
from domain.promotions.application import CouponSpec
from domain.shared import Forbidden, Meta, NotFound
from infra.promotions import review_tiers, sweep_expired
from projections.promotions import promotions as read

router = APIRouter(prefix="/v1", tags=["promotions"])


def _spec(terms: CouponTerms, meta: Meta) -> CouponSpec:
    return CouponSpec.parse(
        terms.kind,
        terms.value,
        terms.min_spend,
        terms.valid_from or meta.occurred_at,
        terms.expires_at,
    )


@router.post("/coupons", status_code=201)
def issue_coupon(
    body: CouponIssue, c: ContainerDep, scope: WriterScope, meta: CommandMeta
) -> object:
    r = c.promotions.issue_coupon(
        body.customer_id,
        _spec(body, meta),
        issued_by=body.issued_by,
        issuer_ref=body.issuer_ref or scope.actor,
        code=body.code,
        meta=meta,
    )
    return {"code": r.id, "position": r.position}


@router.get("/coupons", dependencies=[ReadYourWrites])
def list_coupons(
    c: ContainerDep,
    _: ReaderScope,
    customer_id: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> object:
    return {"items": read.coupons(c.read_db, customer_id=customer_id, status=status, limit=limit)}


@router.get("/coupons/{code}", dependencies=[ReadYourWrites])
def coupon(code: str, c: ContainerDep, _: ReaderScope, as_of: datetime | None = None) -> object:
    """The coupon, its history, and with `as_of` its state at that time."""
    found = read.find_coupon(c.read_db, code)
    if found is None:
        raise NotFound(f"coupon {code} not found")
    if as_of is not None:
        found["status_as_of"] = {
            "as_of": as_of.isoformat(),
            "status": read.coupon_status_as_of(c.read_db, code, as_of),
        }
    return found


@router.post("/coupons/{code}/redemptions")
def redeem(
    code: str, body: Redemption, c: ContainerDep, _: WriterScope, meta: CommandMeta
) -> object:
    discount, position = c.promotions.redeem_coupon(
        code, order_ref=body.order_ref, order_total=body.order_total, meta=meta
    )
    return {
        "code": code,
        "order_ref": body.order_ref,
        "discount": discount,
        "to_pay": body.order_total - discount,
        "position": position,
    }


@router.post("/coupons/{code}/revocation")
def revoke(
    code: str, body: Revocation, c: ContainerDep, _: ManagerScope, meta: CommandMeta
) -> object:
    r = c.promotions.revoke_coupon(code, reason=body.reason, meta=meta)
    return {"code": code, "status": "revoked", "position": r.position}


@router.post("/coupons/expiry-sweep", dependencies=[ReadYourWrites])
def expire(c: ContainerDep, _: ManagerScope, meta: CommandMeta) -> object:
    """Record `CouponExpired` for coupons that lapsed unused, up to 1,000 a call (a coupon
    past its time is refused at redemption either way)."""
    return {"expired": sweep_expired(c, meta)}


@router.post("/customers/{customer_id}/points/earnings")
def earn(
    customer_id: str, body: PointsMove, c: ContainerDep, _: WriterScope, meta: CommandMeta
) -> object:
    r = c.promotions.earn_points(
        customer_id, body.points, reason=body.reason, ref=body.ref, meta=meta
    )
    return {"customer_id": r.customer_id, "balance": r.balance, "position": r.position}


@router.post("/customers/{customer_id}/points/spendings")
def spend(
    customer_id: str, body: PointsMove, c: ContainerDep, _: WriterScope, meta: CommandMeta
) -> object:
    r = c.promotions.spend_points(
        customer_id, body.points, reason=body.reason, ref=body.ref, meta=meta
    )
    return {"customer_id": r.customer_id, "balance": r.balance, "position": r.position}


@router.post("/customers/{customer_id}/points/coupon-exchanges", status_code=201)
def exchange(
    customer_id: str, body: PointsExchange, c: ContainerDep, _: WriterScope, meta: CommandMeta
) -> object:
    r = c.promotions.exchange_points_for_coupon(
        customer_id, body.points, _spec(body.coupon, meta), meta=meta
    )
    return {"code": r.code, "balance": r.balance, "position": r.position}


@router.get("/customers/{customer_id}/points", dependencies=[ReadYourWrites])
def balance(
    customer_id: str, c: ContainerDep, _: ReaderScope, as_of: datetime | None = None
) -> Any:
    """The balance as of a time (default now) and the movements that made it."""
    return read.points(c.read_db, customer_id, as_of or datetime.now(UTC))


# --- the loyalty program: points by orders, tiers by spend ---------------------------------


@router.put("/loyalty/program", status_code=201)
def publish_program(
    body: ConfigChange, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """The next version of the loyalty program: points per yuan of a completed order, the
    period spend counts over, and the tiers (docs/promotions.md)."""
    if scope.role != "admin":
        raise Forbidden("only HQ (the admin role) sets the loyalty program")
    r = c.promotions.publish_program(
        body.definition,
        effective_from=body.effective_from or meta.occurred_at,
        expected_version=body.expected_version,
        meta=meta,
    )
    return {"program_version": r.version, "position": r.position}


@router.get("/loyalty/program")
def program(c: ContainerDep, _: ReaderScope, as_of: datetime | None = None) -> object:
    """Every version on record and the one in force at `as_of` (default now)."""
    at = as_of or datetime.now(UTC)
    found = c.promotions.program()
    in_force = found.in_force(at)
    return {
        "as_of": at.isoformat(),
        "in_force": in_force["program_version"] if in_force else None,
        "versions": found.versions,
    }


@router.get("/customers/{customer_id}/membership", dependencies=[ReadYourWrites])
def membership(
    customer_id: str, c: ContainerDep, _: ReaderScope, as_of: datetime | None = None
) -> object:
    """The customer's tier as of a time (default now), what it gives, and every change that
    led to it with the spend and program version that decided it."""
    found = read.membership(c.read_db, customer_id, as_of or datetime.now(UTC))
    found["terms"] = (
        c.promotions.tier_terms(found["program_version"], found["tier"])
        if found["tier"] is not None
        else None
    )
    return found


@router.post("/memberships/tier-review", dependencies=[ReadYourWrites])
def tier_review(c: ContainerDep, _: ManagerScope, meta: CommandMeta) -> object:
    """Every member's tier again at this moment, so spend that left the period lowers a tier
    when no order comes (a scheduler may call it daily; a second call changes nothing)."""
    return review_tiers(c, meta)
