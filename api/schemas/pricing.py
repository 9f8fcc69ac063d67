"""Request shapes of the pricing context. Strategies and baskets are JSON the domain validates
itself, so its errors name the exact path inside them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.schemas.customers import Strict

Slug = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
Region = Field(pattern=r"^[1-9][0-9]{5}$", description="6-digit administrative division code")


class FloatChange(Strict):
    # A share above or below HQ's price, within the strategy's band, e.g. "-0.03".
    float: str = Field(min_length=1, max_length=12)
    effective_from: datetime | None = None


class OverrideCreate(Strict):
    override_id: str = Slug
    scope: str = Region  # a region, or a province (its code ends in 0000)
    factor: str = Field(min_length=1, max_length=12)  # e.g. "0.8": prices times 0.8
    reason: str = Field(min_length=1, max_length=500)
    starts_at: datetime | None = None  # default: now
    expires_at: datetime


class OverrideLift(Strict):
    reason: str = Field(min_length=1, max_length=500)


class QuoteRequest(Strict):
    strategy: str = Slug
    region: str = Region
    at: datetime | None = None  # default: now; an order is quoted at its placed time
    # A member's quote: their tier's price rate at `at` comes off (docs/promotions.md).
    customer_id: str | None = Field(default=None, min_length=1, max_length=64)
    lines: list[dict[str, Any]] = Field(min_length=1, max_length=200)
