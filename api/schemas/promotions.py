"""Request shapes of the promotions context: coupons and points."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.customers import Strict


class CouponTerms(Strict):
    kind: Literal["amount_off", "percent_off"]
    value: int | str  # fen for amount_off; a rate such as "0.5" for percent_off
    min_spend: int = Field(default=0, ge=0)  # fen
    valid_from: datetime | None = None  # default: now
    expires_at: datetime


class CouponIssue(CouponTerms):
    customer_id: str = Field(min_length=1, max_length=64)
    issued_by: Literal["campaign", "rule", "staff"] = "staff"
    issuer_ref: str = Field(default="", max_length=120)  # the campaign or rule; staff: who
    # A campaign's own code; made here if not given.
    code: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
    )


class Redemption(Strict):
    order_ref: str = Field(min_length=1, max_length=120)
    order_total: int = Field(ge=0)  # fen


class Revocation(Strict):
    reason: str = Field(min_length=1, max_length=500)


class PointsMove(Strict):
    points: int = Field(gt=0, le=10**9)
    reason: str = Field(min_length=1, max_length=200)
    ref: str = Field(min_length=1, max_length=120)  # the order, action or gift: taken once


class PointsExchange(Strict):
    points: int = Field(gt=0, le=10**9)
    coupon: CouponTerms
