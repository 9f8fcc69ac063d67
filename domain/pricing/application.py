"""Pricing's service layer: publish and revise strategies, floats, overrides, and quotes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.money import parse_rate
from domain.pricing.aggregates import PriceStrategy
from domain.pricing.rules import MemberRate, Strategy, parse_basket, quote, require_region
from domain.shared import (
    Meta,
    Recorded,
    require_aware,
    require_slug,
    require_text,
)
from domain.store import ScrmApplication


class PricingApp(ScrmApplication):
    def __init__(self, env: dict[str, str] | None = None, *, share_with: Any = None):
        super().__init__(env, share_with=share_with)
        # (key, version) -> parsed strategy. A recorded version never changes.
        self._parsed: dict[tuple[str, int], Strategy] = {}

    def publish(
        self,
        key: str,
        definition: Any,
        *,
        effective_from: datetime,
        expected_version: int | None,
        meta: Meta,
    ) -> Recorded:
        """Publish the next version of a strategy. `expected_version` is the version the
        caller last saw (0: none yet); another change in between is a 409."""
        return self.publish_version(
            PriceStrategy,
            key,
            definition,
            parse=Strategy.parse,
            effective_from=effective_from,
            expected_version=expected_version,
            meta=meta,
        )

    def strategy(self, key: str) -> PriceStrategy:
        require_slug(key, "key")
        return self.load(PriceStrategy, PriceStrategy.create_id(key), f"price strategy {key}")

    def parsed(self, key: str, version: dict[str, Any]) -> Strategy:
        at = (key, version["strategy_version"])
        if at not in self._parsed:
            self._parsed[at] = Strategy.parse(version["definition"])
        return self._parsed[at]

    def set_float(
        self, key: str, region: str, rate: Any, *, effective_from: datetime, meta: Meta
    ) -> Recorded:
        when = require_aware(effective_from, "effective_from")
        assert when is not None

        def attempt() -> Recorded:
            found = self.strategy(key)
            found.set_float(region, rate, when, meta)
            return Recorded(key, self.save_all(found), found.current_version)

        return self.retrying(attempt)

    def declare_override(
        self,
        key: str,
        *,
        override_id: str,
        scope: str,
        factor: Any,
        reason: str,
        starts_at: datetime,
        expires_at: datetime,
        meta: Meta,
    ) -> Recorded:
        require_slug(override_id, "override_id")
        require_region(scope, "scope")
        require_text(reason, "reason", max_len=500)
        rate = parse_rate(factor, "factor")
        starts = require_aware(starts_at, "starts_at")
        expires = require_aware(expires_at, "expires_at")
        assert starts is not None and expires is not None

        def attempt() -> Recorded:
            found = self.strategy(key)
            found.declare_override(override_id, scope, rate, reason, starts, expires, meta)
            return Recorded(override_id, self.save_all(found), found.current_version)

        return self.retrying(attempt)

    def lift_override(self, key: str, override_id: str, *, reason: str, meta: Meta) -> Recorded:
        require_text(reason, "reason", max_len=500)

        def attempt() -> Recorded:
            found = self.strategy(key)
            found.lift_override(override_id, meta.occurred_at, reason, meta)
            return Recorded(override_id, self.save_all(found), found.current_version)

        return self.retrying(attempt)

    def quote(
        self,
        key: str,
        *,
        region: str,
        at: datetime,
        lines: Any,
        member: MemberRate | None = None,
    ) -> dict[str, Any]:
        """A basket priced for a region at a time, by the strategy version, the region's
        float and the overrides in force then, and for a member by their tier's rate; the
        answer names each."""
        require_region(region, "region")
        when = require_aware(at, "at")
        assert when is not None
        basket = parse_basket(lines)
        found = self.strategy(key)
        version = found.version_at(when)
        priced = quote(
            self.parsed(key, version),
            region=region,
            at=when,
            lines=basket,
            regional_float=found.float_at(region, when),
            overrides=found.overrides_at(when),
            member=member,
        )
        return {
            "strategy": key,
            "strategy_version": version["strategy_version"],
            "effective_from": version["effective_from"].isoformat(),
            "at": when.isoformat(),
            **priced,
        }

    def describe(self, key: str, as_of: datetime | None = None) -> dict[str, Any]:
        """The strategy's versions, floats and overrides as the store holds them, and which
        version is in force at `as_of` (None when not asked, or before the first)."""
        found = self.strategy(key)
        version = found.in_force(as_of) if as_of is not None else None
        in_force = version["strategy_version"] if version is not None else None
        return {
            "key": key,
            "version": found.current_version,
            "aggregate_version": found.version,
            "in_force": in_force,
            "versions": [
                {
                    **v,
                    "effective_from": v["effective_from"].isoformat(),
                    "recorded_at": v["recorded_at"].isoformat(),
                }
                for v in found.versions
            ],
            "floats": {
                region: [{**c, "effective_from": c["effective_from"].isoformat()} for c in changes]
                for region, changes in sorted(found.floats.items())
            },
            "overrides": [_override(o) for o in found.overrides.values()],
        }


def _override(o: dict[str, Any]) -> dict[str, Any]:
    lifted = o["lifted"]
    return {
        **o,
        "starts": o["starts"].isoformat(),
        "expires": o["expires"].isoformat(),
        "lifted": None
        if lifted is None
        else {"at": lifted["at"].isoformat(), "reason": lifted["reason"]},
    }
