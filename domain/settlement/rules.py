"""The settlement rule engine: what one item pays, component by component, and why.

A rule set (configuration, versioned in `RuleSet`) lists named components in the order they
apply. Pricing an item walks them in that order; each that applies becomes one line with its
amount, a sentence for the payee ("区域系数1.2") and the inputs that decided it. Amounts add to
the running subtotal; coefficients (region, difficulty, time of day, surge) turn the subtotal
so far into a line of its own (subtotal × (c − 1)), so their order is the rule set's to state and
the lines always sum exactly to the total. Every line is rounded on its own (money.ROUNDING).

Volume-dependent components are priced from counts the caller gathers (`Volumes`) and records
with the line, so pricing is a pure function of the facts, the counts and the rule set version:
the same inputs give the same lines years later. Two components only make sense once a period
is over, and are priced by `close`: the top-up of a retroactive commission tier, and the
volume-step bonus.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.money import parse_fen, parse_rate, scale, split, yuan
from domain.shared import DomainError, InvalidInput, require_slug

ITEM_KINDS = ("service", "rating", "sale", "invite")
DEFAULT_TIMEZONE = "Asia/Shanghai"
MAX_COMPONENTS = 40
PAYEE = "$payee"  # in a split's parties: the item's own payee
SUPPLIERS = {"customer": "客户", "installer": "师傅", "company": "公司", "store": "门店"}


class Unpriceable(DomainError):
    """The rule set has no price for this item (a service type it does not list): the item is
    held with this reason rather than paid nothing."""

    code = "unpriceable"


# --- what is priced -----------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What one item pays on: facts of the job or sale, never its price."""

    kind: str
    payee_id: str
    occurred_at: datetime
    service_type: str | None = None
    template: str | None = None
    region: str | None = None
    distance_km: Decimal | None = None
    urgency: str | None = None
    rating: int | None = None
    materials_supplied_by: str | None = None
    materials_fee: int | None = None
    amount: int | None = None  # a sale's amount, fen
    order_id: str | None = None  # the order a sale was paid on: its refunds claw back

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "payee_id": self.payee_id,
            "occurred_at": self.occurred_at.isoformat(),
        }
        for name in (
            "service_type",
            "template",
            "region",
            "urgency",
            "rating",
            "materials_supplied_by",
            "materials_fee",
            "amount",
            "order_id",
        ):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.distance_km is not None:
            out["distance_km"] = str(self.distance_km)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Facts:
        km = d.get("distance_km")
        return cls(
            kind=d["kind"],
            payee_id=d["payee_id"],
            occurred_at=datetime.fromisoformat(d["occurred_at"]).astimezone(UTC),
            service_type=d.get("service_type"),
            template=d.get("template"),
            region=d.get("region"),
            distance_km=Decimal(str(km)) if km is not None else None,
            urgency=d.get("urgency"),
            rating=d.get("rating"),
            materials_supplied_by=d.get("materials_supplied_by"),
            materials_fee=d.get("materials_fee"),
            amount=d.get("amount"),
            order_id=d.get("order_id"),
        )


@dataclass(frozen=True)
class Volumes:
    """Counts the volume components price by, this item included; recorded with its lines."""

    region_window: int = 0  # items in the item's region within the surge window
    sales: int = 0  # the payee's sale items in the period
    invites: int = 0  # the payee's successful invitations in the period
    services: int = 0  # the payee's completed jobs in the period
    sales_amount: int = 0  # fen of the payee's sales in the period
    parents: tuple[str, ...] = ()  # the payee's agent chain, nearest first

    def count(self, by: str) -> int:
        return {
            "sales": self.sales,
            "invites": self.invites,
            "services": self.services,
            "amount": self.sales_amount,
        }[by]

    def as_dict(self) -> dict[str, Any]:
        return {
            "region_window": self.region_window,
            "sales": self.sales,
            "invites": self.invites,
            "services": self.services,
            "sales_amount": self.sales_amount,
            "parents": list(self.parents),
        }


@dataclass(frozen=True)
class Line:
    payee_id: str
    component: str  # the component's name in the rule set
    type: str  # the component's type
    amount: int  # fen, signed
    explanation: str  # for the payee, in the business's words
    inputs: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "payee_id": self.payee_id,
            "component": self.component,
            "type": self.type,
            "amount": self.amount,
            "explanation": self.explanation,
            "inputs": self.inputs,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Line:
        return cls(
            payee_id=d["payee_id"],
            component=d["component"],
            type=d["type"],
            amount=int(d["amount"]),
            explanation=d["explanation"],
            inputs=dict(d.get("inputs") or {}),
        )


@dataclass(frozen=True)
class PeriodSale:
    """One sale of a closing period as priced: its amount and the commission it got."""

    source: str
    amount: int
    commission: int


@dataclass(frozen=True)
class PeriodFacts:
    """What `close` prices by: the payee's period at its end."""

    volumes: Volumes
    sales: tuple[PeriodSale, ...] = ()


@dataclass
class _Pricing:
    facts: Facts
    volumes: Volumes
    local: datetime
    subtotal: int = 0  # the payee's own lines so far
    lines: list[Line] = field(default_factory=list)

    def add(self, component: Component, amount: int, explanation: str, **inputs: Any) -> None:
        self.add_for(self.facts.payee_id, component, amount, explanation, **inputs)

    def add_for(
        self, payee: str, component: Component, amount: int, explanation: str, **inputs: Any
    ) -> None:
        if payee == self.facts.payee_id:
            self.subtotal += amount
        self.lines.append(Line(payee, component.name, component.type, amount, explanation, inputs))


# --- reading a rule set -------------------------------------------------------------------


class _Raw:
    """One JSON object of the definition, with its path for errors (`components[2].tiers`)."""

    def __init__(self, raw: Any, path: str):
        if not isinstance(raw, Mapping):
            raise InvalidInput(f"{path} must be an object", field=path)
        self.raw = raw
        self.path = path
        self.read: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.raw.get(key, default)

    def need(self, key: str) -> Any:
        self.read.add(key)
        if key not in self.raw:
            raise InvalidInput(f"{self.at(key)} is required", field=self.at(key))
        return self.raw[key]

    def fen(self, key: str, default: int | None = None, *, signed: bool = False) -> int:
        value = self.get(key, default)
        if value is None:
            raise InvalidInput(f"{self.at(key)} is required", field=self.at(key))
        return parse_fen(value, self.at(key), signed=signed)

    def rate(self, key: str, default: str | None = None) -> Decimal:
        value = self.get(key, default)
        if value is None:
            raise InvalidInput(f"{self.at(key)} is required", field=self.at(key))
        return parse_rate(value, self.at(key))

    def mapping(self, key: str, parse: Callable[[Any, str], Any]) -> dict[str, Any]:
        value = self.get(key, {})
        if not isinstance(value, Mapping):
            raise InvalidInput(f"{self.at(key)} must be an object", field=self.at(key))
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k.strip():
                raise InvalidInput(f"{self.at(key)} has an empty key", field=self.at(key))
            out[k] = parse(v, f"{self.at(key)}.{k}")
        return out

    def items(self, key: str, *, required: bool = True) -> list[_Raw]:
        value = self.get(key, [] if not required else None)
        if not isinstance(value, list) or (required and not value):
            raise InvalidInput(f"{self.at(key)} must be a non-empty list", field=self.at(key))
        return [_Raw(v, f"{self.at(key)}[{i}]") for i, v in enumerate(value)]

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self.read)
        if unknown:
            where = self.at(unknown[0])
            raise InvalidInput(f"{where} is not a setting of this component", field=where)


def _fen(value: Any, path: str) -> int:
    return parse_fen(value, path)


def _rate(value: Any, path: str) -> Decimal:
    return parse_rate(value, path)


def _steps(
    raw: _Raw, key: str, value_key: str, parse: Callable[[Any, str], Any], *extras: str
) -> list[tuple[int, Any, dict[str, Any]]]:
    """Ascending `from` thresholds, each with its value: `[{"from": 50, "percent": "5"}]`."""
    steps: list[tuple[int, Any, dict[str, Any]]] = []
    for step in raw.items(key):
        threshold = step.fen("from")
        if steps and threshold <= steps[-1][0]:
            where = step.at("from")
            raise InvalidInput(f"{where} must be above the step before", field=where)
        value = parse(step.need(value_key), step.at(value_key))
        found = {name: (step.get(name), step.at(name)) for name in extras}
        step.done()
        steps.append((threshold, value, found))
    return steps


def _match_region(table: Mapping[str, Any], region: str | None) -> tuple[str, Any] | None:
    """The longest key the region names: "杭州市" and "浙江省" both match "浙江省杭州市西湖区"
    (regions are written the way people write addresses: province, city, district)."""
    if not region:
        return None
    found = [k for k in table if k in region]
    if not found:
        return None
    best = max(found, key=len)
    return best, table[best]


def _percent(c: Decimal) -> str:
    p = (c - 1) * 100
    return f"{p.normalize():f}%"


# --- components ---------------------------------------------------------------------------


class Component:
    type: str = ""
    kinds: tuple[str, ...] = ("service",)
    close_only = False

    def __init__(self, raw: _Raw):
        self.name = require_slug(raw.need("name"), raw.at("name"))
        self.label: str | None = raw.get("label")
        if self.label is not None and not isinstance(self.label, str):
            raise InvalidInput(f"{raw.at('label')} must be text", field=raw.at("label"))
        raw.get("type")
        kinds = raw.get("for")
        if kinds is not None:
            if (
                not isinstance(kinds, list)
                or not kinds
                or not all(isinstance(k, str) for k in kinds)
                or set(kinds) - set(ITEM_KINDS)
            ):
                raise InvalidInput(
                    f"{raw.at('for')} must list item kinds of {', '.join(ITEM_KINDS)}",
                    field=raw.at("for"),
                )
            self.kinds = tuple(kinds)

    def words(self, default: str) -> str:
        return self.label or default

    def price(self, p: _Pricing) -> None:
        """Add this component's lines for one item (if it applies)."""

    def close(self, payee: str, period: PeriodFacts) -> list[Line]:
        return []

    def coefficient(self, p: _Pricing, c: Decimal, explanation: str, **inputs: Any) -> None:
        if c == 1:
            return
        p.add(self, scale(p.subtotal, c) - p.subtotal, explanation, coefficient=str(c), **inputs)


class BaseFee(Component):
    """Base fee by service type, usually through grades (the seeds: six base grades)."""

    type = "base_fee"

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.grades = raw.mapping("grades", _fen)
        self.by_type = raw.mapping("by_service_type", self._price_or_grade)
        self.default = raw.get("default")
        if self.default is not None:
            self.default = self._price_or_grade(self.default, raw.at("default"))

    def _price_or_grade(self, value: Any, path: str) -> tuple[str | None, int]:
        if isinstance(value, str):
            if value not in self.grades:
                raise InvalidInput(f"{path}: no grade {value!r} in grades", field=path)
            return value, self.grades[value]
        return None, parse_fen(value, path)

    def price(self, p: _Pricing) -> None:
        found = self.by_type.get(p.facts.service_type or "", self.default)
        if found is None:
            raise Unpriceable(
                f"the rule set has no base fee for service type {p.facts.service_type!r}",
                field="service_type",
            )
        grade, amount = found
        what = f"{grade}档 " if grade else ""
        p.add(
            self,
            amount,
            self.words(f"基础服务费 {what}{yuan(amount)}元"),
            service_type=p.facts.service_type,
            grade=grade,
        )


class Regional(Component):
    """Regional coefficient by region tier, with area overrides."""

    type = "regional"

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.tiers = raw.mapping("tiers", _rate)
        self.regions = raw.mapping("regions", self._tier)
        self.overrides = raw.mapping("overrides", _rate)
        self.default_tier = raw.get("default_tier")
        if self.default_tier is not None:
            self._tier(self.default_tier, raw.at("default_tier"))

    def _tier(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in self.tiers:
            raise InvalidInput(f"{path}: no tier {value!r} in tiers", field=path)
        return str(value)

    def price(self, p: _Pricing) -> None:
        override = _match_region(self.overrides, p.facts.region)
        if override is not None:
            area, c = override
            self.coefficient(p, c, self.words(f"区域系数{c}（{area}）"), area=area)
            return
        matched = _match_region(self.regions, p.facts.region)
        tier = matched[1] if matched else self.default_tier
        if tier is None:
            return
        c = self.tiers[tier]
        self.coefficient(p, c, self.words(f"区域系数{c}"), region=p.facts.region, tier=tier)


class Difficulty(Component):
    type = "difficulty"

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.by_type = raw.mapping("by_service_type", _rate)
        self.by_template = raw.mapping("by_template", _rate)

    def price(self, p: _Pricing) -> None:
        f = p.facts
        if f.template and f.template in self.by_template:
            c, basis = self.by_template[f.template], {"template": f.template}
        elif f.service_type and f.service_type in self.by_type:
            c, basis = self.by_type[f.service_type], {"service_type": f.service_type}
        else:
            return
        words = f"服务难度加成{_percent(c)}" if c > 1 else f"服务难度系数{c}"
        self.coefficient(p, c, self.words(words), **basis)


def _clock(value: Any, path: str) -> time:
    if isinstance(value, str) and len(value) == 5:
        try:
            return time.fromisoformat(value)
        except ValueError:
            pass
    raise InvalidInput(f'{path} must be a time such as "06:00"', field=path)


class TimeOfDay(Component):
    """Coefficients for hours of the local day; a window may run past midnight."""

    type = "time_of_day"

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.windows = []
        for w in raw.items("windows"):
            start, end = _clock(w.need("from"), w.at("from")), _clock(w.need("to"), w.at("to"))
            if start == end:
                raise InvalidInput(f"{w.path} is an empty window", field=w.path)
            self.windows.append((start, end, w.rate("coefficient")))
            w.done()

    def price(self, p: _Pricing) -> None:
        now = p.local.time()
        for start, end, c in self.windows:
            inside = start <= now < end if start < end else (now >= start or now < end)
            if inside:
                span = f"{start:%H:%M}–{end:%H:%M}"
                self.coefficient(
                    p,
                    c,
                    self.words(f"时段系数{c}（{span}）"),
                    window=span,
                    local_time=f"{now:%H:%M}",
                )
                return


class CalendarSubsidy(Component):
    """Weekend or holiday subsidy (a holiday wins over the weekend it falls on), and season
    subsidies by month and region (winter in the north)."""

    type = "calendar_subsidy"

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.weekend = raw.fen("weekend", 0)
        self.holidays = raw.mapping("holidays", _fen)
        for day in self.holidays:
            try:
                date.fromisoformat(day)
            except ValueError:
                where = f"{raw.at('holidays')}.{day}"
                raise InvalidInput(f"{where} is not a date (YYYY-MM-DD)", field=where) from None
        self.seasons = []
        for s in raw.items("seasons", required=False):
            months = s.need("months")
            if (
                not isinstance(months, list)
                or not months
                or not all(
                    isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= 12 for m in months
                )
            ):
                raise InvalidInput(f"{s.at('months')} must list months 1-12", field=s.at("months"))
            regions = s.get("regions", [])
            if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
                raise InvalidInput(f"{s.at('regions')} must list regions", field=s.at("regions"))
            label = s.get("label", "季节补贴")
            self.seasons.append((set(months), regions, s.fen("amount"), str(label)))
            s.done()

    def price(self, p: _Pricing) -> None:
        day = p.local.date()
        holiday = self.holidays.get(day.isoformat())
        if holiday:
            p.add(self, holiday, self.words(f"节假日补贴{yuan(holiday)}元"), date=day.isoformat())
        elif holiday is None and self.weekend and day.isoweekday() >= 6:
            # A day listed at 0 is a working day (调休): no weekend subsidy either.
            p.add(
                self,
                self.weekend,
                self.words(f"周末补贴{yuan(self.weekend)}元"),
                date=day.isoformat(),
            )
        for months, regions, amount, label in self.seasons:
            if day.month in months and (
                not regions or _match_region(dict.fromkeys(regions), p.facts.region)
            ):
                p.add(self, amount, f"{label}{yuan(amount)}元", month=day.month)


class Distance(Component):
    """Beyond a free radius: a flat amount and/or so much per km (0.80 yuan/km = 80)."""

    type = "distance"

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.free_km = raw.rate("free_km", "0")
        self.per_km = raw.fen("per_km", 0)
        self.flat = raw.fen("flat", 0)

    def price(self, p: _Pricing) -> None:
        km = p.facts.distance_km
        if km is None or km <= self.free_km:
            return
        beyond = km - self.free_km
        amount = self.flat + scale(self.per_km, beyond)
        p.add(
            self,
            amount,
            self.words(f"远程补贴：超出{self.free_km}公里{beyond}公里，{yuan(amount)}元"),
            distance_km=str(km),
            free_km=str(self.free_km),
        )


class UrgencyBonus(Component):
    type = "urgency_bonus"

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.amounts = raw.mapping("amounts", _fen)

    def price(self, p: _Pricing) -> None:
        amount = self.amounts.get(p.facts.urgency or "")
        if amount:
            p.add(self, amount, self.words(f"加急奖励{yuan(amount)}元"), urgency=p.facts.urgency)


class RatingBonus(Component):
    """A good rating pays a bonus; a rating given after the job is an item of its own."""

    type = "rating_bonus"
    kinds = ("service", "rating")

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.min_rating = raw.fen("min_rating", 5)
        self.amount = raw.fen("amount")

    def price(self, p: _Pricing) -> None:
        r = p.facts.rating
        if r is not None and r >= self.min_rating:
            p.add(self, self.amount, self.words(f"好评奖励{yuan(self.amount)}元"), rating=r)


class MaterialsDeduction(Component):
    """When someone else supplied the parts the fee includes, their cost comes off: a fixed
    amount, or the item's own materials fee."""

    type = "materials_deduction"

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.supplied_by = str(raw.get("supplied_by", "customer"))
        value = raw.need("amount")
        self.use_fee = value == "materials_fee"
        self.amount = 0 if self.use_fee else parse_fen(value, raw.at("amount"))

    def price(self, p: _Pricing) -> None:
        if p.facts.materials_supplied_by != self.supplied_by:
            return
        amount = (p.facts.materials_fee or 0) if self.use_fee else self.amount
        if amount:
            p.add(
                self,
                -amount,
                self.words(
                    f"材料扣减（{SUPPLIERS.get(self.supplied_by, self.supplied_by)}自备）"
                    f"-{yuan(amount)}元"
                ),
                supplied_by=self.supplied_by,
            )


class Surge(Component):
    """When a region's volume in a window passes thresholds, the unit price steps up."""

    type = "surge"

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.window_hours = raw.fen("window_hours")
        if not 1 <= self.window_hours <= 24 * 31:
            raise InvalidInput(
                f"{raw.at('window_hours')} must be 1 to 744", field=raw.at("window_hours")
            )
        self.steps = [(t, v) for t, v, _ in _steps(raw, "steps", "percent", _rate)]

    def price(self, p: _Pricing) -> None:
        n = p.volumes.region_window
        reached = [pct for threshold, pct in self.steps if n >= threshold]
        if not reached:
            return
        pct = reached[-1]
        c = 1 + pct / 100
        self.coefficient(
            p,
            c,
            self.words(
                f"区域爆单加成{pct.normalize():f}%（{self.window_hours}小时内本区域第{n}单）"
            ),
            region=p.facts.region,
            volume=n,
            window_hours=self.window_hours,
        )


class Commission(Component):
    """A share of the sale by volume tier: each sale at the rate of the tier its count falls
    in (marginal); a tier marked retroactive, once reached, re-prices the period's earlier sales
    at its rate too, paid as a top-up when the period closes."""

    type = "commission"
    kinds = ("sale",)

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.tier_by = raw.get("tier_by", "sales")
        if self.tier_by not in ("sales", "invites", "amount"):
            raise InvalidInput(
                f"{raw.at('tier_by')} must be sales, invites or amount", field=raw.at("tier_by")
            )
        self.tiers = []
        for threshold, rate, extras in _steps(raw, "tiers", "rate", _rate, "retroactive"):
            retro, where = extras["retroactive"]
            if retro is None:
                retro = False
            if not isinstance(retro, bool):
                raise InvalidInput(f"{where} must be true or false", field=where)
            self.tiers.append((threshold, rate, retro))

    def _tier(self, count: int) -> tuple[int, Decimal, bool] | None:
        reached = [(i, r, retro) for i, (t, r, retro) in enumerate(self.tiers) if count >= t]
        return reached[-1] if reached else None

    def price(self, p: _Pricing) -> None:
        count = p.volumes.count(self.tier_by)
        tier = self._tier(count)
        if tier is None or not p.facts.amount:
            return
        index, rate, _ = tier
        amount = scale(p.facts.amount, rate)
        p.add(
            self,
            amount,
            self.words(f"佣金{(rate * 100).normalize():f}%（第{index + 1}档）"),
            rate=str(rate),
            tier=index + 1,
            tier_by=self.tier_by,
            count=count,
            sale_amount=p.facts.amount,
        )

    def close(self, payee: str, period: PeriodFacts) -> list[Line]:
        """The top-up a retroactive tier owes: every sale of the period at least at the rate
        of the highest retroactive tier reached (a sale priced higher, by a marginal tier
        above it, keeps its price)."""
        count = period.volumes.count(self.tier_by)
        reached = [(i, r) for i, (t, r, retro) in enumerate(self.tiers) if retro and count >= t]
        if not reached or not period.sales:
            return []
        index, rate = reached[-1]
        owed = sum(max(scale(s.amount, rate), s.commission) for s in period.sales)
        paid = sum(s.commission for s in period.sales)
        if owed <= paid:
            return []
        return [
            Line(
                payee,
                self.name,
                self.type,
                owed - paid,
                self.words(f"佣金第{index + 1}档追溯补差（本期{len(period.sales)}单按{rate}）"),
                {
                    "rate": str(rate),
                    "tier": index + 1,
                    "sales": len(period.sales),
                    "owed": owed,
                    "paid": paid,
                },
            )
        ]


class Rebates(Component):
    """Multi-level rebates: the payee's agent, that agent's parent, ... each a rate of the
    sale."""

    type = "rebates"
    kinds = ("sale",)

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        levels = raw.need("levels")
        if not isinstance(levels, list) or not levels or len(levels) > 10:
            raise InvalidInput(f"{raw.at('levels')} must list 1-10 rates", field=raw.at("levels"))
        self.levels = [parse_rate(v, f"{raw.at('levels')}[{i}]") for i, v in enumerate(levels)]

    def price(self, p: _Pricing) -> None:
        if not p.facts.amount:
            return
        for level, (parent, rate) in enumerate(zip(p.volumes.parents, self.levels, strict=False)):
            amount = scale(p.facts.amount, rate)
            p.add_for(
                parent,
                self,
                amount,
                self.words(f"{level + 1}级返利{(rate * 100).normalize():f}%"),
                level=level + 1,
                rate=str(rate),
                seller=p.facts.payee_id,
                sale_amount=p.facts.amount,
            )


class Split(Component):
    """A share of the sale (`rate` of it) split between parties by weight (brand / IP /
    channel), largest remainder, so the shares add up to the pool exactly."""

    type = "split"
    kinds = ("sale",)

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.rate = raw.rate("rate", "1")
        self.parties = raw.mapping("parties", lambda v, path: parse_rate(v, path))
        if not self.parties or sum(self.parties.values()) <= 0:
            raise InvalidInput(
                f"{raw.at('parties')} needs a positive weight", field=raw.at("parties")
            )

    def price(self, p: _Pricing) -> None:
        if not p.facts.amount:
            return
        pool = scale(p.facts.amount, self.rate)
        weights = {(p.facts.payee_id if k == PAYEE else k): w for k, w in self.parties.items()}
        for party, amount in sorted(split(pool, weights).items()):
            p.add_for(
                party,
                self,
                amount,
                self.words(f"分账 {weights[party]}/{sum(weights.values())}"),
                pool=pool,
                weight=str(weights[party]),
            )


class VolumeStepBonus(Component):
    """A lump sum when the period's volume passes steps (hosts' volume bonuses)."""

    type = "volume_step_bonus"
    close_only = True

    def __init__(self, raw: _Raw):
        super().__init__(raw)
        self.by = raw.get("by", "sales")
        if self.by not in ("sales", "invites", "services", "amount"):
            raise InvalidInput(
                f"{raw.at('by')} must be sales, invites, services or amount", field=raw.at("by")
            )
        self.steps = [(t, v) for t, v, _ in _steps(raw, "steps", "amount", _fen)]

    def close(self, payee: str, period: PeriodFacts) -> list[Line]:
        count = period.volumes.count(self.by)
        reached = [(t, a) for t, a in self.steps if count >= t]
        if not reached:
            return []
        threshold, amount = reached[-1]
        return [
            Line(
                payee,
                self.name,
                self.type,
                amount,
                self.words(f"阶梯奖励：本期{count}达到{threshold}档，{yuan(amount)}元"),
                {"by": self.by, "count": count, "threshold": threshold},
            )
        ]


COMPONENTS: dict[str, type[Component]] = {
    c.type: c
    for c in (
        BaseFee,
        Regional,
        Difficulty,
        TimeOfDay,
        CalendarSubsidy,
        Distance,
        UrgencyBonus,
        RatingBonus,
        MaterialsDeduction,
        Surge,
        Commission,
        Rebates,
        Split,
        VolumeStepBonus,
    )
}


# --- the rule set -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """One version of a rule set, parsed: prices items and closes periods."""

    timezone: str
    components: tuple[Component, ...]

    @classmethod
    def parse(cls, definition: Any) -> Rules:
        raw = _Raw(definition, "definition")
        tz = raw.get("timezone", DEFAULT_TIMEZONE)
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise InvalidInput(f"unknown timezone {tz!r}", field="definition.timezone") from None
        parts = raw.items("components")
        if len(parts) > MAX_COMPONENTS:
            raise InvalidInput(
                f"a rule set has at most {MAX_COMPONENTS} components", field="definition.components"
            )
        components: list[Component] = []
        for part in parts:
            kind = part.need("type")
            if not isinstance(kind, str) or kind not in COMPONENTS:
                raise InvalidInput(
                    f"{part.at('type')}: unknown component type {kind!r}; one of "
                    + ", ".join(sorted(COMPONENTS)),
                    field=part.at("type"),
                )
            component = COMPONENTS[kind](part)
            part.done()
            if any(c.name == component.name for c in components):
                raise InvalidInput(
                    f"{part.at('name')}: the name {component.name!r} is used twice",
                    field=part.at("name"),
                )
            components.append(component)
        raw.done()
        return cls(timezone=tz, components=tuple(components))

    @property
    def surge_window_hours(self) -> int | None:
        """How far back the caller must count the region's items, if a surge applies."""
        hours = [c.window_hours for c in self.components if isinstance(c, Surge)]
        return max(hours) if hours else None

    @property
    def volume_by_payee(self) -> bool:
        """Whether pricing needs the payee's counts in the period (commission tiers)."""
        return any(isinstance(c, Commission | VolumeStepBonus) for c in self.components)

    @property
    def uses_parents(self) -> bool:
        return any(isinstance(c, Rebates) for c in self.components)

    def price(self, facts: Facts, volumes: Volumes = Volumes()) -> list[Line]:
        """The item's lines, in the rule set's order; raises Unpriceable."""
        if facts.kind not in ITEM_KINDS:
            raise InvalidInput(f"unknown item kind {facts.kind!r}", field="kind")
        p = _Pricing(facts, volumes, facts.occurred_at.astimezone(ZoneInfo(self.timezone)))
        for component in self.components:
            if not component.close_only and facts.kind in component.kinds:
                component.price(p)
        return p.lines

    def close(self, payee: str, period: PeriodFacts) -> list[Line]:
        """The lines a period earns as a whole, once it is over."""
        return [line for c in self.components for line in c.close(payee, period)]

    @property
    def closes(self) -> bool:
        return any(
            c.close_only or (isinstance(c, Commission) and any(t[2] for t in c.tiers))
            for c in self.components
        )


def payee_total(lines: Sequence[Line], payee: str) -> int:
    return sum(line.amount for line in lines if line.payee_id == payee)
