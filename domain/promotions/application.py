"""Promotions' service layer: issue, redeem, revoke and expire coupons; earn and spend points;
exchange points for a coupon in one transaction."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.customers.aggregates import Customer
from domain.money import parse_fen, parse_rate
from domain.promotions.aggregates import COUPON_KINDS, ISSUERS, Coupon, Points
from domain.promotions.loyalty import PROGRAM, LoyaltyProgram, Membership, Program
from domain.shared import (
    Conflict,
    InvalidInput,
    Meta,
    NotFound,
    Recorded,
    require_aware,
    require_slug,
    require_text,
)
from domain.store import ScrmApplication

MAX_COUPON_DAYS = 3660


@dataclass(frozen=True)
class PointsMoved:
    """What a points command answers: the balance after it, and the position of its last
    event (None when the reference had been taken already: nothing new was recorded)."""

    customer_id: str
    balance: int
    position: int | None
    code: str | None = None  # the coupon an exchange issued


@dataclass(frozen=True)
class CouponSpec:
    """What a coupon gives, checked: `amount_off` fen, or `percent_off` a rate in (0, 1)."""

    kind: str
    value: str
    min_spend: int
    valid_from: datetime
    expires_at: datetime

    @classmethod
    def parse(
        cls, kind: str, value: Any, min_spend: Any, valid_from: datetime, expires_at: datetime
    ) -> CouponSpec:
        if kind not in COUPON_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(COUPON_KINDS)}", field="kind")
        if kind == "amount_off":
            amount = parse_fen(value, "value")
            if amount <= 0:
                raise InvalidInput("an amount off is more than 0 fen", field="value")
            shown = str(amount)
        else:
            rate = parse_rate(value, "value")
            if not 0 < rate < 1:
                raise InvalidInput(
                    'a percentage off is a rate in (0, 1), e.g. "0.5"', field="value"
                )
            shown = str(rate)
        spend = parse_fen(min_spend, "min_spend")
        starts = require_aware(valid_from, "valid_from")
        ends = require_aware(expires_at, "expires_at")
        assert starts is not None and ends is not None
        if ends <= starts:
            raise InvalidInput("expires_at must be after valid_from", field="expires_at")
        if (ends - starts).days > MAX_COUPON_DAYS:
            raise InvalidInput("a coupon is valid for at most ten years", field="expires_at")
        return cls(kind, shown, spend, starts, ends)


class PromotionsApp(ScrmApplication):
    def __init__(self, env: dict[str, str] | None = None, *, share_with: Any = None):
        super().__init__(env, share_with=share_with)
        # program version -> its parsed rules. A recorded version never changes.
        self._programs: dict[int, Program] = {}

    def _customer(self, customer_id: str) -> str:
        try:
            ident = UUID(customer_id)
        except (ValueError, AttributeError, TypeError):
            raise InvalidInput("customer_id must be a customer's id", field="customer_id") from None
        if self.find(Customer, ident) is None:
            raise NotFound(f"customer {customer_id} not found")
        return str(ident)

    # --- coupons -------------------------------------------------------------------------

    def issue_coupon(
        self,
        customer_id: str,
        spec: CouponSpec,
        *,
        issued_by: str,
        issuer_ref: str,
        meta: Meta,
        code: str | None = None,
    ) -> Recorded:
        """A coupon for a customer, from a campaign, a rule or a member of staff. Its code is
        made here unless given (a campaign's own codes); an existing code is a 409."""
        if issued_by not in ISSUERS:
            raise InvalidInput(f"issued_by must be one of {', '.join(ISSUERS)}", field="issued_by")
        require_text(issuer_ref, "issuer_ref", max_len=120)
        customer = self._customer(customer_id)
        code = require_slug(code, "code") if code else new_code()
        coupon = self._new_coupon(code, customer, spec, issued_by, issuer_ref, meta)
        return Recorded(code, self.save_all(coupon), coupon.version)

    def _new_coupon(
        self,
        code: str,
        customer: str,
        spec: CouponSpec,
        issued_by: str,
        issuer_ref: str,
        meta: Meta,
    ) -> Coupon:
        if self.find(Coupon, Coupon.create_id(code)) is not None:
            raise Conflict(f"coupon {code} exists already", code="coupon_exists")
        return Coupon(
            code=code,
            customer_id=customer,
            kind=spec.kind,
            value=spec.value,
            min_spend=spec.min_spend,
            valid_from=spec.valid_from,
            expires_at=spec.expires_at,
            issued_by=issued_by,
            issuer_ref=issuer_ref,
            meta=meta,
        )

    def coupon(self, code: str) -> Coupon:
        require_slug(code, "code")
        return self.load(Coupon, Coupon.create_id(code), f"coupon {code}")

    def redeem_coupon(
        self, code: str, *, order_ref: str, order_total: Any, meta: Meta
    ) -> tuple[int, int | None]:
        """(discount, position): the coupon taken off an order of `order_total` fen, at the
        command's business time."""
        require_text(order_ref, "order_ref", max_len=120)
        total = parse_fen(order_total, "order_total")

        def attempt() -> tuple[int, int | None]:
            coupon = self.coupon(code)
            before = coupon.version
            discount = coupon.redeem(order_ref, total, meta.occurred_at, meta)
            position = self.save_all(coupon) if coupon.version != before else None
            return discount, position

        return self.retrying(attempt)

    def revoke_coupon(self, code: str, *, reason: str, meta: Meta) -> Recorded:
        require_text(reason, "reason", max_len=500)

        def attempt() -> Recorded:
            coupon = self.coupon(code)
            coupon.revoke(reason, meta.occurred_at, meta)
            return Recorded(code, self.save_all(coupon), coupon.version)

        return self.retrying(attempt)

    def expire_coupons(self, codes: Iterable[str], *, meta: Meta) -> list[str]:
        """Record `CouponExpired` for each of these coupons that lapsed unused by the
        command's time (the sweep passes the read model's candidates; each is checked here)."""
        done = []
        for code in codes:

            def attempt(code: str = code) -> bool:
                coupon = self.coupon(code)
                if not coupon.expire(meta.occurred_at, meta):
                    return False
                self.save_all(coupon)
                return True

            if self.retrying(attempt):
                done.append(code)
        return done

    # --- points --------------------------------------------------------------------------

    def _points(self, customer: str, meta: Meta) -> Points:
        found = self.find(Points, Points.create_id(customer))
        return found if found is not None else Points(customer_id=customer, meta=meta)

    def earn_points(
        self, customer_id: str, points: Any, *, reason: str, ref: str, meta: Meta
    ) -> PointsMoved:
        """Points for an order or an action, once per `ref`."""
        return self._move(customer_id, points, reason, ref, meta, earn=True)

    def spend_points(
        self, customer_id: str, points: Any, *, reason: str, ref: str, meta: Meta
    ) -> PointsMoved:
        """Points for a gift, once per `ref`; more than the balance is a 409."""
        return self._move(customer_id, points, reason, ref, meta, earn=False)

    def _move(
        self, customer_id: str, points: Any, reason: str, ref: str, meta: Meta, *, earn: bool
    ) -> PointsMoved:
        amount = _points_amount(points)
        require_text(reason, "reason", max_len=200)
        require_text(ref, "ref", max_len=120)
        customer = self._customer(customer_id)

        def attempt() -> PointsMoved:
            account = self._points(customer, meta)
            moved = (account.earn if earn else account.spend)(amount, reason, ref, meta)
            position = self.save_all(account) if moved else None  # a retried ref: nothing new
            return PointsMoved(customer, account.balance, position)

        return self.retrying(attempt)

    def exchange_points_for_coupon(
        self, customer_id: str, points: Any, spec: CouponSpec, *, meta: Meta
    ) -> PointsMoved:
        """Spend points on a coupon: both recorded in one transaction, or neither."""
        amount = _points_amount(points)
        customer = self._customer(customer_id)
        code = new_code()

        def attempt() -> PointsMoved:
            account = self._points(customer, meta)
            account.spend(amount, "exchanged for a coupon", f"coupon:{code}", meta)
            coupon = self._new_coupon(code, customer, spec, "points", f"points:{amount}", meta)
            return PointsMoved(customer, account.balance, self.save_all(account, coupon), code)

        return self.retrying(attempt)

    # --- the loyalty program: points by orders, tiers by spend ------------------------------

    def publish_program(
        self,
        definition: Any,
        *,
        effective_from: datetime,
        expected_version: int | None,
        meta: Meta,
    ) -> Recorded:
        """The next version of the loyalty program; `expected_version` as for strategies."""
        return self.publish_version(
            LoyaltyProgram,
            PROGRAM,
            definition,
            parse=Program.parse,
            effective_from=effective_from,
            expected_version=expected_version,
            meta=meta,
        )

    def program(self) -> LoyaltyProgram:
        return self.load(LoyaltyProgram, LoyaltyProgram.create_id(PROGRAM), "loyalty program")

    def program_at(self, at: datetime) -> tuple[int, Program] | None:
        """The version in force at `at` and its rules; None before the first (no points, no
        tiers yet)."""
        found = self.find(LoyaltyProgram, LoyaltyProgram.create_id(PROGRAM))
        version = found.in_force(at) if found is not None else None
        if version is None:
            return None
        number = int(version["program_version"])
        if number not in self._programs:
            self._programs[number] = Program.parse(version["definition"])
        return number, self._programs[number]

    def tier_terms(self, program_version: int, tier: str) -> dict[str, Any] | None:
        """What a tier gives under a program version (its name, price rate, adviser)."""
        versions = self.program().versions
        if not 0 < program_version <= len(versions):
            return None
        found = Program.parse(versions[program_version - 1]["definition"]).tier(tier)
        return found.as_dict() if found is not None else None

    def credit_order(
        self, customer_id: str, order_ref: str, worth: int, *, change_ref: str, meta: Meta
    ) -> PointsMoved | None:
        """Bring the points an order gave its buyer to what it is worth now (`worth` points):
        earned once (ref: the order), then clawed back as it is refunded (ref: the refund).
        None when nothing changed."""

        def attempt() -> PointsMoved | None:
            account = self._points(customer_id, meta)
            held = account.credited(order_ref)
            if worth > held and order_ref not in account.refs:
                moved = account.earn(worth, "order completed", order_ref, meta)
            elif worth < held:
                moved = account.claw_back(
                    held - worth, "order refunded", change_ref, order_ref, meta
                )
            else:
                moved = False
            if not moved:
                return None
            return PointsMoved(customer_id, account.balance, self.save_all(account))

        return self.retrying(attempt)

    def review_membership(
        self, customer_id: str, spend: int, *, meta: Meta, enrol: bool = True
    ) -> str | None:
        """Put the customer in the tier `spend` decides under the program in force at the
        command's time: their first tier (`enrol`) or a change. Answers the tier recorded,
        None when nothing was."""
        found = self.program_at(meta.occurred_at)
        if found is None:
            return None
        version, program = found
        tier = program.tier_for(spend)

        def attempt() -> str | None:
            member = self.find(Membership, Membership.create_id(customer_id))
            if member is None:
                if not enrol:
                    return None
                member = Membership(
                    customer_id=customer_id,
                    tier=tier.key,
                    spend=spend,
                    period_days=program.period_days,
                    program_version=version,
                    meta=meta,
                )
            elif not member.review(tier, spend, program.period_days, version, meta):
                return None
            self.save_all(member)
            return tier.key

        return self.retrying(attempt)


def _points_amount(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10**9:
        raise InvalidInput("points must be a whole number from 1 to 1,000,000,000", field="points")
    return value


def new_code() -> str:
    """A coupon code people can read out: CP- and 10 characters without 0/O or 1/I."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return "CP-" + "".join(secrets.choice(alphabet) for _ in range(10))
