"""A fission campaign's rules (营销裂变): its period, what counts as a successful invitation,
the reward tiers, the budget cap and the thresholds of the fraud rules. Pure: parsed from the
published definition, errors naming the part at fault (HTTP 422)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.money import parse_fen, parse_rate
from domain.shared import InvalidInput, require_slug

SUCCESS = ("contact_added", "first_order")  # the invitee adds a staff member / orders
# Why an invitation is held for review, each with its evidence.
FLAGS = ("self_invite", "cycle", "device_burst", "ip_burst", "quick_leave")
MAX_TIERS = 20
FIELDS = {"name", "starts_at", "ends_at", "success", "budget", "tiers", "fraud", "landing_url"}
FRAUD_DEFAULTS = {
    "window_minutes": 10,  # a burst: this many minutes
    "device_burst": 3,  # invitees from one device fingerprint in the window
    "ip_burst": 5,  # invitees from one IP in the window
    "quick_leave_minutes": 1440,  # an invitee who leaves within this of adding staff
}


@dataclass(frozen=True)
class Reward:
    """A coupon (its terms, `valid_days` from issue) or a gift to be fulfilled; `cost` is
    what it costs the company in fen (an amount off's value unless stated)."""

    kind: str  # coupon | gift
    terms: dict[str, Any]
    cost: int

    def as_dict(self) -> dict[str, Any]:
        return {self.kind: self.terms, "cost": self.cost}


@dataclass(frozen=True)
class Tier:
    invites: int  # successful invitations that reach the tier
    reward: Reward


@dataclass(frozen=True)
class Fraud:
    window_minutes: int
    device_burst: int
    ip_burst: int
    quick_leave_minutes: int

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)


@dataclass(frozen=True)
class Rules:
    name: str
    starts_at: datetime
    ends_at: datetime
    success: str
    budget: int | None  # fen; None: no cap
    tiers: tuple[Tier, ...]  # by invites, ascending
    fraud: Fraud
    landing_url: str | None

    def open_at(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def tier(self, invites: int) -> Tier | None:
        return next((t for t in self.tiers if t.invites == invites), None)

    @classmethod
    def parse(cls, raw: Any) -> Rules:
        if not isinstance(raw, Mapping):
            raise InvalidInput("a campaign is an object", field="definition")
        unknown = sorted(set(raw) - FIELDS)
        if unknown:
            raise InvalidInput(f"unknown field {unknown[0]!r}", field=unknown[0])
        name = raw.get("name")
        if not isinstance(name, str) or not 0 < len(name.strip()) <= 100:
            raise InvalidInput("name is 1 to 100 characters", field="name")
        starts, ends = (
            _time(raw.get("starts_at"), "starts_at"),
            _time(raw.get("ends_at"), "ends_at"),
        )
        if ends <= starts:
            raise InvalidInput("ends_at must be after starts_at", field="ends_at")
        success = raw.get("success", "contact_added")
        if success not in SUCCESS:
            raise InvalidInput(f"success is one of {', '.join(SUCCESS)}", field="success")
        budget = raw.get("budget")
        cap = None if budget is None else parse_fen(budget, "budget")
        tiers_raw = raw.get("tiers")
        if not isinstance(tiers_raw, list) or not 1 <= len(tiers_raw) <= MAX_TIERS:
            raise InvalidInput(f"tiers is a list of 1 to {MAX_TIERS} tiers", field="tiers")
        tiers = [_tier(t, f"tiers[{i}]") for i, t in enumerate(tiers_raw)]
        for i in range(1, len(tiers)):
            if tiers[i].invites <= tiers[i - 1].invites:
                raise InvalidInput(
                    "tiers go up by invites, each above the one before",
                    field=f"tiers[{i}].invites",
                )
        url = raw.get("landing_url")
        if url is not None and (
            not isinstance(url, str)
            or not url.startswith(("https://", "http://"))
            or len(url) > 500
        ):
            raise InvalidInput("landing_url is an http(s) URL", field="landing_url")
        return cls(
            name.strip(), starts, ends, success, cap, tuple(tiers), _fraud(raw.get("fraud")), url
        )


def _time(value: Any, field: str) -> datetime:
    try:
        found = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        found = None
    if found is None or found.tzinfo is None:
        raise InvalidInput(f"{field} is an ISO-8601 time with a timezone", field=field)
    return found.astimezone(UTC)


def _count(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{field} is a whole number from {low} to {high}", field=field)
    return value


def _tier(raw: Any, where: str) -> Tier:
    if not isinstance(raw, Mapping):
        raise InvalidInput("a tier is an object", field=where)
    unknown = sorted(set(raw) - {"invites", "reward"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=f"{where}.{unknown[0]}")
    invites = _count(raw.get("invites"), f"{where}.invites", 1, 10_000)
    reward = raw.get("reward")
    if (
        not isinstance(reward, Mapping)
        or len(reward) != 1
        or next(iter(reward))
        not in (
            "coupon",
            "gift",
        )
    ):
        raise InvalidInput(
            'a reward is {"coupon": {...}} or {"gift": {...}}', field=f"{where}.reward"
        )
    kind = next(iter(reward))
    terms = reward[kind]
    at = f"{where}.reward.{kind}"
    if not isinstance(terms, Mapping):
        raise InvalidInput(f"{kind} is an object", field=at)
    return Tier(invites, _coupon(terms, at) if kind == "coupon" else _gift(terms, at))


def _coupon(raw: Mapping[str, Any], at: str) -> Reward:
    unknown = sorted(set(raw) - {"kind", "value", "min_spend", "valid_days", "cost"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=f"{at}.{unknown[0]}")
    kind = raw.get("kind", "amount_off")
    if kind == "amount_off":
        value: str = str(parse_fen(raw.get("value"), f"{at}.value"))
        if int(value) <= 0:
            raise InvalidInput("an amount off is more than 0 fen", field=f"{at}.value")
    elif kind == "percent_off":
        rate = parse_rate(raw.get("value"), f"{at}.value")
        if not 0 < rate < 1:
            raise InvalidInput(
                'a percentage off is a rate in (0, 1), e.g. "0.5"', field=f"{at}.value"
            )
        value = str(rate)
    else:
        raise InvalidInput("kind is amount_off or percent_off", field=f"{at}.kind")
    min_spend = parse_fen(raw.get("min_spend", 0), f"{at}.min_spend")
    days = _count(raw.get("valid_days", 30), f"{at}.valid_days", 1, 3650)
    if "cost" in raw:
        cost = parse_fen(raw["cost"], f"{at}.cost")
    elif kind == "amount_off":
        cost = int(Decimal(value))
    else:
        raise InvalidInput("a percentage coupon states its cost in fen", field=f"{at}.cost")
    terms = {"kind": kind, "value": value, "min_spend": min_spend, "valid_days": days}
    return Reward("coupon", terms, cost)


def _gift(raw: Mapping[str, Any], at: str) -> Reward:
    unknown = sorted(set(raw) - {"sku", "name", "cost"})
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=f"{at}.{unknown[0]}")
    sku = require_slug(raw.get("sku", ""), f"{at}.sku")
    name = raw.get("name", sku)
    if not isinstance(name, str) or not 0 < len(name) <= 100:
        raise InvalidInput("a gift's name is 1 to 100 characters", field=f"{at}.name")
    return Reward("gift", {"sku": sku, "name": name}, parse_fen(raw.get("cost"), f"{at}.cost"))


def _fraud(raw: Any) -> Fraud:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidInput("fraud is an object", field="fraud")
    unknown = sorted(set(raw) - set(FRAUD_DEFAULTS))
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=f"fraud.{unknown[0]}")
    values = {**FRAUD_DEFAULTS, **raw}
    return Fraud(
        _count(values["window_minutes"], "fraud.window_minutes", 1, 10_080),
        _count(values["device_burst"], "fraud.device_burst", 2, 10_000),
        _count(values["ip_burst"], "fraud.ip_burst", 2, 10_000),
        _count(values["quick_leave_minutes"], "fraud.quick_leave_minutes", 0, 43_200),
    )
