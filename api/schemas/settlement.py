"""Request shapes of the settlement context. Rule sets are JSON the domain validates itself,
so its errors name the exact path inside them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from api.schemas.customers import Strict

Slug = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


class GroupCreate(Strict):
    key: str = Slug
    name: str = Field(min_length=1, max_length=80)
    cycle: Literal["daily", "weekly", "monthly"]
    timezone: str | None = Field(default=None, max_length=64)


class PayeeCreate(Strict):
    payee_id: str = Slug
    kind: str = Field(min_length=1, max_length=20)
    name: str = Field(min_length=1, max_length=80)
    group: str = Slug
    rule_set: str | None = Field(default=None, max_length=64)
    region: str | None = Field(default=None, max_length=80)
    parent: str | None = Field(default=None, max_length=64)
    staff_id: str | None = Field(default=None, max_length=64)
    shops: list[str] = Field(default_factory=list, max_length=100)
    account: str | None = Field(default=None, max_length=128)  # payout account, sealed


class PayeeChange(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=80)
    group: str | None = Field(default=None, max_length=64)
    rule_set: str | None = Field(default=None, max_length=64)
    region: str | None = Field(default=None, max_length=80)
    parent: str | None = Field(default=None, max_length=64)
    staff_id: str | None = Field(default=None, max_length=64)
    shops: list[str] | None = Field(default=None, max_length=100)
    account: str | None = Field(default=None, max_length=128)


class ItemCreate(Strict):
    """A fact settlement pays on, from outside scrm (a distributor's sale, a host's sale, a
    successful invitation). Completed jobs and paid orders of payees' shops come by themselves."""

    source: str = Field(min_length=1, max_length=200)  # unique: a source is paid once
    kind: Literal["service", "sale", "invite"]
    payee_id: str = Slug
    occurred_at: datetime
    service_type: str | None = Field(default=None, max_length=64)
    template: str | None = Field(default=None, max_length=64)
    region: str | None = Field(default=None, max_length=80)
    distance_km: str | None = Field(default=None, max_length=12, pattern=r"^\d+(\.\d+)?$")
    urgency: str | None = Field(default=None, max_length=20)
    rating: int | None = Field(default=None, ge=1, le=5)
    materials_supplied_by: str | None = Field(default=None, max_length=20)
    materials_fee: int | None = Field(default=None, ge=0)
    amount: int | None = Field(default=None, ge=0, le=10**14)  # a sale's amount, fen


class CorrectionCreate(Strict):
    source: str = Field(min_length=1, max_length=200)
    # The version to price by; default: the version in force now for the item's business time.
    rule_version: int | None = Field(default=None, ge=1)
    reason: str = Field(min_length=1, max_length=500)


class DisputeCreate(Strict):
    line_id: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=500)


class DisputeResolution(Strict):
    outcome: Literal["adjusted", "rejected"]
    amount: int = Field(default=0, ge=-(10**12), le=10**12)  # fen; non-zero when adjusted
    note: str = Field(min_length=1, max_length=500)
