"""Regional price strategies as data, and pricing a basket by them (docs/pricing.md).

A strategy is HQ's: list prices, a price factor per region tier (first-tier cities, third and
fourth-tier, counties), which tier each region is in, the band within which a region may float
its own prices, and promotions (threshold discounts, time-limited percentage discounts,
trade-in subsidies). Regions set their float within the band; HQ may declare an emergency
override for a province or region, which expires by itself. Everything here is pure: the
aggregate (aggregates.py) records who decided what and when, and `quote` prices by whatever
was in force at the moment asked.

Money is integer fen, rounded half away from zero once per step (domain/money.py); rates are
decimal strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.money import parse_fen, parse_rate, scale, split
from domain.shared import InvalidInput

TIERS = ("first", "third_fourth", "county")
PROMOTION_KINDS = ("threshold", "percent_off", "trade_in")
_REGION = re.compile(r"^[1-9][0-9]{5}$")  # GB/T 2260 administrative division code
_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MAX_LINES = 200
MAX_QUANTITY = 10_000


def require_region(value: Any, field: str) -> str:
    """A region is its 6-digit administrative division code (330100 Hangzhou); its province
    is the code's first two digits followed by zeros (330000 Zhejiang)."""
    if not isinstance(value, str) or not _REGION.match(value):
        raise InvalidInput(
            f"{field} must be a 6-digit administrative division code such as 330100",
            field=field,
        )
    return value


def province_of(region: str) -> str:
    return region[:2] + "0000"


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be an ISO-8601 time with a timezone", field=field)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{field} is not an ISO-8601 time: {value!r}", field=field) from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{field} must include a timezone", field=field)
    return moment


def _names(value: Any, field: str, pattern: re.Pattern[str] | None = None) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{field} must be a list of strings", field=field)
    if pattern is not None:
        for i, v in enumerate(value):
            if not pattern.match(v):
                raise InvalidInput(
                    f"{field}[{i}] is not a valid code: {v!r}", field=f"{field}[{i}]"
                )
    return frozenset(value)


@dataclass(frozen=True)
class Promotion:
    """One promotion of a strategy. It applies to a line or basket when the time is within
    [starts, ends) and the region, its tier and the SKU are among those it names (an empty list
    names all)."""

    id: str
    kind: str  # threshold | percent_off | trade_in
    starts: datetime | None
    ends: datetime | None
    tiers: frozenset[str]
    regions: frozenset[str]
    skus: frozenset[str]
    threshold: int = 0  # threshold: a basket of at least this much...
    off: int = 0  # ...takes this much off
    rate: Decimal = Decimal(0)  # percent_off: the share taken off a unit price
    subsidy: int = 0  # trade_in: per unit traded in...
    cap_rate: Decimal = Decimal(1)  # ...at most this share of the line

    @property
    def worth(self) -> Decimal | int:
        """What makes one promotion of a kind better than another: its rate, subsidy or off."""
        if self.kind == "percent_off":
            return self.rate
        return self.subsidy if self.kind == "trade_in" else self.off

    def applies(self, at: datetime, region: str, tier: str, sku: str | None = None) -> bool:
        if self.starts is not None and at < self.starts:
            return False
        if self.ends is not None and at >= self.ends:
            return False
        if self.tiers and tier not in self.tiers:
            return False
        if self.regions and region not in self.regions and province_of(region) not in self.regions:
            return False
        return not (sku is not None and self.skus and sku not in self.skus)


def _promotion(raw: Any, n: int) -> Promotion:
    at = f"promotions[{n}]"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{at} must be an object", field=at)
    pid, kind = raw.get("id"), raw.get("kind")
    if not isinstance(pid, str) or not _SKU.match(pid):
        raise InvalidInput(f"{at}.id must be a short code", field=f"{at}.id")
    if kind not in PROMOTION_KINDS:
        raise InvalidInput(
            f"{at}.kind must be one of {', '.join(PROMOTION_KINDS)}", field=f"{at}.kind"
        )
    starts = _time(raw["starts"], f"{at}.starts") if raw.get("starts") is not None else None
    ends = _time(raw["ends"], f"{at}.ends") if raw.get("ends") is not None else None
    if starts is not None and ends is not None and ends <= starts:
        raise InvalidInput(f"{at}.ends must be after its starts", field=f"{at}.ends")
    tiers = _names(raw.get("tiers"), f"{at}.tiers")
    if tiers - set(TIERS):
        raise InvalidInput(f"{at}.tiers must be among {', '.join(TIERS)}", field=f"{at}.tiers")
    common: dict[str, Any] = {
        "id": pid,
        "kind": kind,
        "starts": starts,
        "ends": ends,
        "tiers": tiers,
        "regions": _names(raw.get("regions"), f"{at}.regions", _REGION),
        "skus": _names(raw.get("skus"), f"{at}.skus", _SKU),
    }
    if kind == "threshold":
        threshold = parse_fen(raw.get("threshold"), f"{at}.threshold")
        off = parse_fen(raw.get("off"), f"{at}.off")
        if not 0 < off < threshold:
            raise InvalidInput(
                f"{at}.off must be more than 0 and less than the threshold", field=f"{at}.off"
            )
        return Promotion(**common, threshold=threshold, off=off)
    if kind == "percent_off":
        rate = parse_rate(raw.get("rate"), f"{at}.rate")
        if not 0 < rate < 1:
            raise InvalidInput(f'{at}.rate must be between 0 and 1, e.g. "0.5"', field=f"{at}.rate")
        return Promotion(**common, rate=rate)
    subsidy = parse_fen(raw.get("subsidy"), f"{at}.subsidy")
    cap = parse_rate(raw.get("cap_rate", "1"), f"{at}.cap_rate")
    if subsidy <= 0 or not 0 < cap <= 1:
        raise InvalidInput(
            f"{at}: a trade-in subsidy is more than 0, capped at a share of the line in (0, 1]",
            field=f"{at}.subsidy",
        )
    return Promotion(**common, subsidy=subsidy, cap_rate=cap)


@dataclass(frozen=True)
class Strategy:
    """One version of a strategy, parsed and checked."""

    band: tuple[Decimal, Decimal]  # a region's float: lowest and highest
    tiers: dict[str, Decimal]  # tier -> price factor
    regions: dict[str, str]  # region code -> tier
    default_tier: str | None  # for a region not listed; None: such a region is refused
    products: dict[str, int]  # sku -> list price, fen
    promotions: tuple[Promotion, ...] = field(default=())

    @classmethod
    def parse(cls, definition: Any) -> Strategy:
        """The strategy, or 422 naming the first part at fault."""
        if not isinstance(definition, dict):
            raise InvalidInput("a price strategy is a JSON object", field="definition")
        unknown = set(definition) - {
            "band", "tiers", "regions", "default_tier", "products", "promotions",
        }  # fmt: skip
        if unknown:
            raise InvalidInput(
                f"unknown part of a price strategy: {', '.join(sorted(unknown))}",
                field=sorted(unknown)[0],
            )
        band_raw = definition.get("band")
        if not isinstance(band_raw, dict):
            raise InvalidInput('band must be {"min": "-0.05", "max": "0.05"}', field="band")
        low = _signed(band_raw.get("min"), "band.min")
        high = _signed(band_raw.get("max"), "band.max")
        if not -1 < low <= 0 <= high < 1:
            raise InvalidInput("band.min must be in (-1, 0] and band.max in [0, 1)", field="band")
        tiers_raw = definition.get("tiers")
        if not isinstance(tiers_raw, dict) or not tiers_raw:
            raise InvalidInput("tiers must name a price factor per tier", field="tiers")
        tiers: dict[str, Decimal] = {}
        for name, factor in tiers_raw.items():
            if name not in TIERS:
                raise InvalidInput(
                    f"tiers: {name!r} is not one of {', '.join(TIERS)}", field=f"tiers.{name}"
                )
            tiers[name] = parse_rate(factor, f"tiers.{name}")
            if not 0 < tiers[name] <= 10:
                raise InvalidInput(f"tiers.{name} must be in (0, 10]", field=f"tiers.{name}")
        regions_raw = definition.get("regions") or {}
        if not isinstance(regions_raw, dict):
            raise InvalidInput("regions must map region codes to tiers", field="regions")
        regions: dict[str, str] = {}
        for code, tier in regions_raw.items():
            require_region(code, f"regions.{code}")
            if tier not in tiers:
                raise InvalidInput(
                    f"regions.{code}: tier {tier!r} has no price factor", field=f"regions.{code}"
                )
            regions[code] = tier
        default_tier = definition.get("default_tier")
        if default_tier is not None and default_tier not in tiers:
            raise InvalidInput(
                f"default_tier {default_tier!r} has no price factor", field="default_tier"
            )
        products_raw = definition.get("products")
        if not isinstance(products_raw, dict) or not products_raw:
            raise InvalidInput(
                "products must give each SKU its list price in fen", field="products"
            )
        products: dict[str, int] = {}
        for sku, price in products_raw.items():
            if not _SKU.match(sku):
                raise InvalidInput(f"products: {sku!r} is not a valid SKU", field=f"products.{sku}")
            products[sku] = parse_fen(price, f"products.{sku}")
        promotions_raw = definition.get("promotions") or []
        if not isinstance(promotions_raw, list):
            raise InvalidInput("promotions must be a list", field="promotions")
        promotions = tuple(_promotion(p, n) for n, p in enumerate(promotions_raw))
        ids = [p.id for p in promotions]
        if len(set(ids)) != len(ids):
            raise InvalidInput("promotion ids must be unique", field="promotions")
        return cls((low, high), tiers, regions, default_tier, products, promotions)

    def best(
        self,
        kind: str,
        at: datetime,
        region: str,
        tier: str,
        sku: str | None = None,
        basket: int | None = None,
    ) -> Promotion | None:
        """The promotion of `kind` worth most that applies here (a threshold one only where the
        basket reaches it); promotions of a kind do not stack."""
        found = [
            p
            for p in self.promotions
            if p.kind == kind
            and p.applies(at, region, tier, sku)
            and (basket is None or basket >= p.threshold)
        ]
        return max(found, key=lambda p: (p.worth, p.id), default=None)

    def tier_of(self, region: str) -> str:
        tier = (
            self.regions.get(region) or self.regions.get(province_of(region)) or self.default_tier
        )
        if tier is None:
            raise InvalidInput(
                f"region {region} is in no tier of this strategy (and it has no default_tier)",
                field="region",
            )
        return tier


def _signed(value: Any, field: str) -> Decimal:
    """A signed share as a decimal string ("-0.03"), never a float."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f'{field} must be a decimal string such as "-0.03"', field=field)
    try:
        rate = Decimal(value)
    except ArithmeticError:
        raise InvalidInput(f"{field} is not a decimal number: {value!r}", field=field) from None
    if not rate.is_finite():
        raise InvalidInput(f"{field} is not a decimal number: {value!r}", field=field)
    return rate


def parse_float(value: Any, band: tuple[Decimal, Decimal], field: str = "float") -> Decimal:
    """A region's float, e.g. "-0.03" (3% under HQ's price): within the band."""
    rate = _signed(value, field)
    low, high = band
    if not low <= rate <= high:
        raise InvalidInput(f"{field} {rate} is outside HQ's band [{low}, {high}]", field=field)
    return rate


@dataclass(frozen=True)
class Override:
    """An emergency override in force: a province's or region's prices times `factor`."""

    id: str
    scope: str  # a region code, or a province's (ending 0000)
    factor: Decimal
    reason: str
    starts: datetime
    expires: datetime

    def covers(self, region: str, at: datetime) -> bool:
        return self.starts <= at < self.expires and self.scope in (region, province_of(region))


@dataclass(frozen=True)
class MemberRate:
    """What a customer's membership tier takes off at the quote's time (loyalty program,
    docs/promotions.md): `rate` is what a member pays, 0.9 being 9折."""

    customer_id: str
    tier: str
    rate: Decimal
    program_version: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "tier": self.tier,
            "rate": str(self.rate),
            "program_version": self.program_version,
        }


@dataclass(frozen=True)
class Line:
    sku: str
    quantity: int
    trade_in: int = 0  # units traded in


def parse_basket(raw: Any) -> list[Line]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("lines must be a non-empty list", field="lines")
    if len(raw) > MAX_LINES:
        raise InvalidInput(f"at most {MAX_LINES} lines", field="lines")
    out = []
    for n, item in enumerate(raw):
        at = f"lines[{n}]"
        if not isinstance(item, dict):
            raise InvalidInput(f"{at} must be an object", field=at)
        sku, quantity, trade_in = item.get("sku"), item.get("quantity", 1), item.get("trade_in", 0)
        if not isinstance(sku, str) or not _SKU.match(sku):
            raise InvalidInput(f"{at}.sku must be a SKU", field=f"{at}.sku")
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not 0 < quantity <= MAX_QUANTITY
        ):
            raise InvalidInput(f"{at}.quantity must be 1-{MAX_QUANTITY}", field=f"{at}.quantity")
        if (
            isinstance(trade_in, bool)
            or not isinstance(trade_in, int)
            or not 0 <= trade_in <= quantity
        ):
            raise InvalidInput(
                f"{at}.trade_in must be 0 up to the quantity", field=f"{at}.trade_in"
            )
        out.append(Line(sku, quantity, trade_in))
    return out


def quote(
    strategy: Strategy,
    *,
    region: str,
    at: datetime,
    lines: list[Line],
    regional_float: Decimal,
    overrides: list[Override],
    member: MemberRate | None = None,
) -> dict[str, Any]:
    """A basket priced line by line. Each line: the list price; times the region's tier
    factor and (1 + its float, kept within the band); times an emergency override's factor if
    one covers the region (the newest); less the best percentage promotion for it; times the
    member's tier rate, for a customer with a tier (on the promoted price: a member's
    discount comes on top); times the quantity; less its trade-in subsidy. Then a threshold
    promotion (the largest `off` the basket reaches) comes off the basket, shared between the
    lines by largest remainder.
    Every step is in the answer."""
    tier = strategy.tier_of(region)
    low, high = strategy.band
    floated = min(max(regional_float, low), high)
    factor = strategy.tiers[tier] * (1 + floated)
    override = max(
        (o for o in overrides if o.covers(region, at)), key=lambda o: o.starts, default=None
    )
    priced: list[dict[str, Any]] = []
    for n, line in enumerate(lines):
        listed = strategy.products.get(line.sku)
        if listed is None:
            raise InvalidInput(
                f"lines[{n}].sku {line.sku!r} is not sold under this strategy",
                field=f"lines[{n}].sku",
            )
        unit = scale(listed, factor)
        steps: list[dict[str, Any]] = [
            {
                "step": "regional",
                "tier": tier,
                "factor": str(strategy.tiers[tier]),
                "float": str(floated),
                "unit": unit,
            }
        ]
        if override is not None:
            unit = scale(unit, override.factor)
            steps.append(
                {
                    "step": "override",
                    "override_id": override.id,
                    "factor": str(override.factor),
                    "unit": unit,
                }
            )
        best = strategy.best("percent_off", at, region, tier, line.sku)
        if best is not None:
            unit = scale(unit, 1 - best.rate)
            steps.append(
                {
                    "step": "percent_off",
                    "promotion_id": best.id,
                    "rate": str(best.rate),
                    "unit": unit,
                }
            )
        if member is not None and member.rate != 1:
            unit = scale(unit, member.rate)
            steps.append(
                {
                    "step": "member",
                    "tier": member.tier,
                    "rate": str(member.rate),
                    "program_version": member.program_version,
                    "unit": unit,
                }
            )
        subtotal = unit * line.quantity
        subsidy = 0
        if line.trade_in:
            trade = strategy.best("trade_in", at, region, tier, line.sku)
            if trade is not None:
                subsidy = min(trade.subsidy * line.trade_in, scale(subtotal, trade.cap_rate))
                steps.append(
                    {
                        "step": "trade_in",
                        "promotion_id": trade.id,
                        "units": line.trade_in,
                        "subsidy": subsidy,
                    }
                )
        priced.append(
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "list_price": listed,
                "unit_price": unit,
                "subtotal": subtotal,
                "trade_in_subsidy": subsidy,
                "threshold_share": 0,
                "total": subtotal - subsidy,
                "steps": steps,
            }
        )
    before = sum(p["total"] for p in priced)
    threshold = strategy.best("threshold", at, region, tier, basket=before)
    applied: dict[str, Any] | None = None
    if threshold is not None and before > 0:
        off = min(threshold.off, before)
        shares = split(off, {f"{n:04d}": p["total"] for n, p in enumerate(priced)})
        for n, p in enumerate(priced):
            p["threshold_share"] = shares[f"{n:04d}"]
            p["total"] -= shares[f"{n:04d}"]
        applied = {"promotion_id": threshold.id, "threshold": threshold.threshold, "off": off}
    return {
        "region": region,
        "tier": tier,
        "float": str(floated),
        "override": None
        if override is None
        else {
            "override_id": override.id,
            "scope": override.scope,
            "factor": str(override.factor),
            "reason": override.reason,
            "expires_at": override.expires.isoformat(),
        },
        "member": member.as_dict() if member is not None else None,
        "lines": priced,
        "threshold": applied,
        "subtotal": sum(p["subtotal"] for p in priced),
        "discounts": sum(p["subtotal"] - p["total"] for p in priced),
        "total": sum(p["total"] for p in priced),
        "rounding": "half away from zero to the fen, at each step of each line",
    }
