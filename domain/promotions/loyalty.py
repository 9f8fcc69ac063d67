"""Membership (会员等级) and points earned by orders: the loyalty program.

The program is versioned configuration: how many points a yuan paid earns, and the tiers by
spend over a rolling period (ordinary 9.5折, silver 9折, gold 8折 with a personal adviser). A
customer's tier is a `Membership` whose every change is an event naming the program version
and the spend that decided it, so an auditor can see why a customer had gold on 30 September.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.money import parse_fen, parse_rate
from domain.shared import InvalidInput, Meta, ScrmAggregate, Versions, derived_id, require_slug

MAX_PERIOD_DAYS = 3660
MAX_TIERS = 20
PROGRAM = "loyalty"  # the program's key: one per tenant, like the RFM model


@dataclass(frozen=True)
class Tier:
    key: str
    name: str
    min_spend: int  # fen spent over the period to hold the tier
    price_rate: Decimal  # what a member pays of the price: 0.95 is 9.5折
    adviser: bool  # a personal adviser comes with the tier

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "min_spend": self.min_spend,
            "price_rate": str(self.price_rate),
            "adviser": self.adviser,
        }


@dataclass(frozen=True)
class Program:
    points_per_yuan: Decimal  # points for each 100 fen an order is worth, rounded down
    period_days: int  # spend counts over this many days before the moment asked
    tiers: tuple[Tier, ...]  # by min_spend, the first from 0

    def points_for(self, fen: int) -> int:
        if fen <= 0:
            return 0
        return int((Decimal(fen) * self.points_per_yuan / 100).to_integral_value(ROUND_FLOOR))

    def tier_for(self, spend: int) -> Tier:
        return [t for t in self.tiers if t.min_spend <= spend][-1]

    def tier(self, key: str) -> Tier | None:
        return next((t for t in self.tiers if t.key == key), None)

    @classmethod
    def parse(cls, raw: Any) -> Program:
        """A checked definition; an error names the part at fault (HTTP 422)."""
        if not isinstance(raw, Mapping):
            raise InvalidInput("a loyalty program is an object", field="definition")
        unknown = sorted(set(raw) - {"points_per_yuan", "period_days", "tiers"})
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])
        rate = parse_rate(raw.get("points_per_yuan", "1"), "points_per_yuan")
        if not 0 <= rate <= 1000:
            raise InvalidInput("points_per_yuan is from 0 to 1000", field="points_per_yuan")
        days = raw.get("period_days", 365)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_PERIOD_DAYS:
            raise InvalidInput(
                f"period_days is a whole number from 1 to {MAX_PERIOD_DAYS}", field="period_days"
            )
        tiers_raw = raw.get("tiers")
        if not isinstance(tiers_raw, list) or not 1 <= len(tiers_raw) <= MAX_TIERS:
            raise InvalidInput(f"tiers is a list of 1 to {MAX_TIERS} tiers", field="tiers")
        tiers = [_tier(t, f"tiers[{i}]") for i, t in enumerate(tiers_raw)]
        if tiers[0].min_spend != 0:
            raise InvalidInput("the first tier starts at a spend of 0", field="tiers[0].min_spend")
        for i in range(1, len(tiers)):
            if tiers[i].min_spend <= tiers[i - 1].min_spend:
                raise InvalidInput(
                    "tiers go up by min_spend, each above the one before",
                    field=f"tiers[{i}].min_spend",
                )
        keys = [t.key for t in tiers]
        for i, key in enumerate(keys):
            if key in keys[:i]:
                raise InvalidInput(f"tier {key!r} appears twice", field=f"tiers[{i}].key")
        return cls(rate, days, tuple(tiers))


def _tier(raw: Any, where: str) -> Tier:
    if not isinstance(raw, Mapping):
        raise InvalidInput("a tier is an object", field=where)
    unknown = sorted(set(raw) - {"key", "name", "min_spend", "price_rate", "adviser"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=f"{where}.{unknown[0]}")
    key = require_slug(raw.get("key", ""), f"{where}.key")
    name = raw.get("name", key)
    if not isinstance(name, str) or not 0 < len(name) <= 40:
        raise InvalidInput("a tier's name is 1 to 40 characters", field=f"{where}.name")
    rate = parse_rate(raw.get("price_rate", "1"), f"{where}.price_rate")
    if not 0 < rate <= 1:
        raise InvalidInput(
            'price_rate is what a member pays, in (0, 1]: "0.9" is 9折', field=f"{where}.price_rate"
        )
    adviser = raw.get("adviser", False)
    if not isinstance(adviser, bool):
        raise InvalidInput("adviser is true or false", field=f"{where}.adviser")
    return Tier(key, name, parse_fen(raw.get("min_spend"), f"{where}.min_spend"), rate, adviser)


class LoyaltyProgram(Versions, ScrmAggregate):
    """The tenant's one program (key PROGRAM); none published: no points, no tiers."""

    VERSION, WHAT, NOT_IN_FORCE = "program_version", "loyalty program", "no_program_in_force"

    @staticmethod
    def create_id(key: str) -> UUID:
        return derived_id("loyalty-program", key)

    @event("Published")
    def __init__(self, key: str, definition: dict[str, Any], effective_from: Any, meta: Meta):
        self.key = key
        self.versions = []
        self._add(definition, effective_from, meta)

    def revise(self, definition: dict[str, Any], effective_from: Any, meta: Meta) -> int:
        self._revised(
            definition=definition,
            effective_from=effective_from,
            program_version=len(self.versions) + 1,
            meta=meta,
        )
        return len(self.versions)

    @event("Revised")
    def _revised(
        self, definition: dict[str, Any], effective_from: Any, program_version: int, meta: Meta
    ) -> None:
        self._add(definition, effective_from, meta)

    def _add(self, definition: dict[str, Any], effective_from: Any, meta: Meta) -> None:
        self._add_version(
            effective_from, definition=definition, recorded_at=meta.occurred_at, by=meta.actor
        )


class Membership(ScrmAggregate):
    """One customer's tier. It changes only when the spend over the period says
    so: each change names the spend, the period and the program version that decided it."""

    @staticmethod
    def create_id(customer_id: str) -> UUID:
        return derived_id("membership", customer_id)

    @event("Enrolled")
    def __init__(
        self,
        customer_id: str,
        tier: str,
        spend: int,
        period_days: int,
        program_version: int,
        meta: Meta,
    ):
        self.customer_id = customer_id
        self.tier = tier

    def review(
        self, tier: Tier, spend: int, period_days: int, program_version: int, meta: Meta
    ) -> bool:
        """Move to the tier the spend decides; False (nothing recorded) when it is the same."""
        if tier.key == self.tier:
            return False
        self._tier_changed(
            customer_id=self.customer_id,
            from_tier=self.tier,
            tier=tier.key,
            spend=spend,
            period_days=period_days,
            program_version=program_version,
            meta=meta,
        )
        return True

    @event("TierChanged")
    def _tier_changed(
        self,
        customer_id: str,
        from_tier: str,
        tier: str,
        spend: int,
        period_days: int,
        program_version: int,
        meta: Meta,
    ) -> None:
        self.tier = tier
