"""A price strategy: HQ's versions, the regions' floats and emergency overrides, each an event.

Public methods decide (and raise); the private `@event` methods only assign state. A quote is
priced by what was in force at the moment asked (`in_force`), so an order placed last month is
priced by last month's version, float and overrides.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.pricing.rules import Override, Strategy, parse_float, province_of, require_region
from domain.shared import Conflict, Gone, InvalidInput, Meta, ScrmAggregate, Versions, derived_id

MAX_OVERRIDE_DAYS = 90


class PriceStrategy(Versions, ScrmAggregate):
    VERSION, WHAT, NOT_IN_FORCE = "strategy_version", "price strategy", "no_strategy_in_force"

    @staticmethod
    def create_id(key: str) -> UUID:
        return derived_id("price-strategy", key)

    @event("Published")
    def __init__(self, key: str, definition: dict[str, Any], effective_from: datetime, meta: Meta):
        self.key = key
        self.versions = []
        self.floats: dict[str, list[dict[str, Any]]] = {}  # region -> changes, oldest first
        self.overrides: dict[str, dict[str, Any]] = {}
        self._add(definition, effective_from, meta)

    # --- HQ's versions -------------------------------------------------------------------

    def revise(self, definition: dict[str, Any], effective_from: datetime, meta: Meta) -> int:
        self._revised(
            definition=definition,
            effective_from=effective_from,
            strategy_version=len(self.versions) + 1,
            meta=meta,
        )
        return len(self.versions)

    @event("Revised")
    def _revised(
        self,
        definition: dict[str, Any],
        effective_from: datetime,
        strategy_version: int,
        meta: Meta,
    ) -> None:
        self._add(definition, effective_from, meta)

    def _add(self, definition: dict[str, Any], effective_from: datetime, meta: Meta) -> None:
        self._add_version(
            effective_from, definition=definition, recorded_at=meta.occurred_at, by=meta.actor
        )

    # --- a region's float, within HQ's band ----------------------------------------------

    def set_float(self, region: str, value: Any, effective_from: datetime, meta: Meta) -> str:
        """A region prices above or below HQ by a share within the band of the version in
        force when the float takes effect (a later, narrower band clamps it at quote time)."""
        require_region(region, "region")
        band = Strategy.parse(self.version_at(effective_from)["definition"]).band
        rate = parse_float(value, band)
        self._float_set(region=region, rate=str(rate), effective_from=effective_from, meta=meta)
        return str(rate)

    @event("RegionalFloatSet")
    def _float_set(self, region: str, rate: str, effective_from: datetime, meta: Meta) -> None:
        changes = self.floats.get(region, [])
        self.floats = {
            **self.floats,
            region: [*changes, {"rate": rate, "effective_from": effective_from, "by": meta.actor}],
        }

    def float_at(self, region: str, at: datetime) -> Decimal:
        found = [f for f in self.floats.get(region, []) if f["effective_from"] <= at]
        return Decimal(found[-1]["rate"]) if found else Decimal(0)

    # --- emergency overrides -------------------------------------------------------------

    def declare_override(
        self,
        override_id: str,
        scope: str,
        factor: Decimal,
        reason: str,
        starts: datetime,
        expires: datetime,
        meta: Meta,
    ) -> None:
        require_region(scope, "scope")
        if override_id in self.overrides:
            raise Conflict(f"override {override_id} exists already", code="override_exists")
        if not 0 < factor <= 10:
            raise InvalidInput("factor must be in (0, 10]", field="factor")
        if expires <= starts:
            raise InvalidInput("expires_at must be after starts_at", field="expires_at")
        if (expires - starts).days > MAX_OVERRIDE_DAYS:
            raise InvalidInput(
                f"an emergency override lasts at most {MAX_OVERRIDE_DAYS} days: revise the"
                " strategy for anything longer",
                field="expires_at",
            )
        self._declared(
            override_id=override_id,
            scope=scope,
            factor=str(factor),
            reason=reason,
            starts=starts,
            expires=expires,
            meta=meta,
        )

    @event("EmergencyOverrideDeclared")
    def _declared(
        self,
        override_id: str,
        scope: str,
        factor: str,
        reason: str,
        starts: datetime,
        expires: datetime,
        meta: Meta,
    ) -> None:
        self.overrides = {
            **self.overrides,
            override_id: {
                "override_id": override_id,
                "scope": scope,
                "province": province_of(scope),
                "factor": factor,
                "reason": reason,
                "starts": starts,
                "expires": expires,
                "declared_by": meta.actor,
                "lifted": None,
            },
        }

    def lift_override(self, override_id: str, at: datetime, reason: str, meta: Meta) -> None:
        """End an override early; it stays on record, in force until `at`."""
        found = self.overrides.get(override_id)
        if found is None:
            raise InvalidInput(f"no override {override_id}", field="override_id")
        if found["lifted"] is not None or found["expires"] <= at:
            raise Gone(f"override {override_id} has already ended", code="override_ended")
        self._lifted(override_id=override_id, at=at, reason=reason, meta=meta)

    @event("EmergencyOverrideLifted")
    def _lifted(self, override_id: str, at: datetime, reason: str, meta: Meta) -> None:
        lifted = {**self.overrides[override_id], "lifted": {"at": at, "reason": reason}}
        lifted["expires"] = min(lifted["expires"], at)
        self.overrides = {**self.overrides, override_id: lifted}

    def overrides_at(self, at: datetime) -> list[Override]:
        return [
            Override(
                id=o["override_id"],
                scope=o["scope"],
                factor=Decimal(o["factor"]),
                reason=o["reason"],
                starts=o["starts"],
                expires=o["expires"],
            )
            for o in self.overrides.values()
            if o["starts"] <= at < o["expires"]
        ]
