"""Coupons and points (docs/promotions.md): issue, redeem (核销), revoke and expire coupons;
earn, spend and exchange points; a customer's coupons and balance as of any date.

Staff issue coupons to customers and redeem them against orders; admins and managers revoke
and sweep; every reader sees coupons and balances. Every change answers the position of its
last event (read-your-writes with `min_position`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import (
    CommandMeta,
    ContainerDep,
    ManagerScope,
    ReaderScope,
    ReadYourWrites,
    WriterScope,
)
from api.schemas.promotions import (
    CouponIssue,
    CouponTerms,
    PointsExchange,
    PointsMove,
    Redemption,
    Revocation,
)
from domain.promotions.application import CouponSpec
from domain.shared import Meta, NotFound
from infra.promotions import sweep_expired
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
