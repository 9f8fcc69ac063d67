"""Coupons and points (券与积分): every movement is an event, so a balance or a coupon's state can
be shown as of any date (docs/promotions.md).

Public methods decide (and raise); the private `@event` methods only assign state. Money is
integer fen; points are whole numbers.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.money import scale
from domain.shared import Conflict, Gone, InvalidInput, Meta, ScrmAggregate, derived_id

COUPON_KINDS = ("amount_off", "percent_off")
ISSUERS = ("campaign", "rule", "staff", "points")  # who or what issued a coupon


class Coupon(ScrmAggregate):
    """One coupon, issued to one customer: redeemed (核销) once against an order, or revoked,
    or expired."""

    @staticmethod
    def create_id(code: str) -> UUID:
        return derived_id("coupon", code)

    @event("Issued")
    def __init__(
        self,
        code: str,
        customer_id: str,
        kind: str,
        value: str,
        min_spend: int,
        valid_from: datetime,
        expires_at: datetime,
        issued_by: str,
        issuer_ref: str,
        meta: Meta,
    ):
        self.code = code
        self.customer_id = customer_id
        self.kind = kind
        self.value = value  # fen for amount_off, a rate for percent_off: a string either way
        self.min_spend = min_spend
        self.valid_from = valid_from
        self.expires_at = expires_at
        self.issued_by = issued_by
        self.issuer_ref = issuer_ref
        self.status = "issued"
        self.redemption: dict[str, Any] | None = None

    def discount_on(self, order_total: int) -> int:
        if self.kind == "amount_off":
            return min(int(self.value), order_total)
        return scale(order_total, Decimal(self.value))

    def redeem(self, order_ref: str, order_total: int, at: datetime, meta: Meta) -> int:
        """Take the coupon off an order; answers the discount. Redeeming it again for the same
        order answers the same (a retry); for another order it is refused."""
        if self.redemption is not None:
            if self.redemption["order_ref"] == order_ref:
                return int(self.redemption["discount"])
            raise Conflict(
                f"coupon {self.code} was redeemed against order {self.redemption['order_ref']}",
                code="coupon_redeemed",
            )
        self._usable(at)
        if at < self.valid_from:
            raise Conflict(
                f"coupon {self.code} is valid from {self.valid_from.isoformat()}",
                code="coupon_not_yet_valid",
            )
        if order_total < self.min_spend:
            raise Conflict(
                f"coupon {self.code} needs an order of at least {self.min_spend} fen",
                code="below_min_spend",
            )
        discount = self.discount_on(order_total)
        self._redeemed(
            code=self.code,
            customer_id=self.customer_id,
            order_ref=order_ref,
            order_total=order_total,
            discount=discount,
            meta=meta,
        )
        return discount

    # Every event names the coupon (or points) and the customer: read alone (an audit, an
    # export), each says whose it is.
    @event("Redeemed")
    def _redeemed(
        self,
        code: str,
        customer_id: str,
        order_ref: str,
        order_total: int,
        discount: int,
        meta: Meta,
    ) -> None:
        self.status = "redeemed"
        self.redemption = {"order_ref": order_ref, "discount": discount, "at": meta.occurred_at}

    def _usable(self, at: datetime) -> None:
        if self.status == "revoked":
            raise Gone(f"coupon {self.code} was revoked", code="coupon_revoked")
        if self.status == "expired" or at >= self.expires_at:
            raise Gone(
                f"coupon {self.code} expired at {self.expires_at.isoformat()}",
                code="coupon_expired",
            )

    def revoke(self, reason: str, at: datetime, meta: Meta) -> None:
        if self.status == "redeemed":
            raise Conflict(f"coupon {self.code} was redeemed already", code="coupon_redeemed")
        self._usable(at)
        self._revoked(code=self.code, customer_id=self.customer_id, reason=reason, meta=meta)

    @event("Revoked")
    def _revoked(self, code: str, customer_id: str, reason: str, meta: Meta) -> None:
        self.status = "revoked"

    def expire(self, at: datetime, meta: Meta) -> bool:
        """Record that it lapsed unused (the expiry sweep); False when there is nothing to."""
        if self.status != "issued" or at < self.expires_at:
            return False
        self._expired(code=self.code, customer_id=self.customer_id, meta=meta)
        return True

    @event("Expired")
    def _expired(self, code: str, customer_id: str, meta: Meta) -> None:
        self.status = "expired"


class Points(ScrmAggregate):
    """One customer's points. Each earning and spending names what it is for (`ref`: an order,
    an action, a coupon); the same ref is taken once, so a retried request changes nothing."""

    @staticmethod
    def create_id(customer_id: str) -> UUID:
        return derived_id("points", customer_id)

    @event("Opened")
    def __init__(self, customer_id: str, meta: Meta):
        self.customer_id = customer_id
        self.balance = 0
        self.refs: set[str] = set()
        self.credits: dict[str, int] = {}  # what each earning still holds, after clawbacks

    def earn(self, points: int, reason: str, ref: str, meta: Meta) -> bool:
        if points <= 0:
            raise InvalidInput("points earned must be more than 0", field="points")
        if ref in self.refs:
            return False
        self._earned(self.customer_id, points, reason, ref, self.balance + points, meta)
        return True

    @event("Earned")
    def _earned(
        self, customer_id: str, points: int, reason: str, ref: str, balance: int, meta: Meta
    ) -> None:
        self.balance = balance
        self.refs = self.refs | {ref}
        self.credits = {**self.credits, ref: points}

    def credited(self, ref: str) -> int:
        return self.credits.get(ref, 0)

    def claw_back(self, points: int, reason: str, ref: str, of_ref: str, meta: Meta) -> bool:
        """Take back points an earning gave (its order refunded), at most what it still holds.
        Unlike spending this may leave the balance below 0: the customer spent points an order
        no longer pays for, and later earnings make up for them first."""
        points = min(points, self.credited(of_ref))
        if points <= 0 or ref in self.refs:
            return False
        self._clawed_back(
            self.customer_id, points, reason, ref, of_ref, self.balance - points, meta
        )
        return True

    @event("ClawedBack")
    def _clawed_back(
        self,
        customer_id: str,
        points: int,
        reason: str,
        ref: str,
        of_ref: str,
        balance: int,
        meta: Meta,
    ) -> None:
        self.balance = balance
        self.refs = self.refs | {ref}
        self.credits = {**self.credits, of_ref: self.credits.get(of_ref, 0) - points}

    def spend(self, points: int, reason: str, ref: str, meta: Meta) -> bool:
        if points <= 0:
            raise InvalidInput("points spent must be more than 0", field="points")
        if ref in self.refs:
            return False
        if points > self.balance:
            raise Conflict(
                f"{points} points asked, {self.balance} available", code="insufficient_points"
            )
        self._spent(self.customer_id, points, reason, ref, self.balance - points, meta)
        return True

    @event("Spent")
    def _spent(
        self, customer_id: str, points: int, reason: str, ref: str, balance: int, meta: Meta
    ) -> None:
        self.balance = balance
        self.refs = self.refs | {ref}
