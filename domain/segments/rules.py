"""The rule language of segments (智能分组): small, pure, validated JSON.

    {"all": [rule, ...]}   {"any": [rule, ...]}   {"not": rule}
    {"field": "lifetime_value", "op": ">=", "value": 500000}
    {"bought_category": "smart-locks", "within_days": 90}

Fields come from the customer's portrait and purchase profile (see `FIELDS`). A value that is
missing (no orders yet, so no `days_since_last_order`) makes every comparison false except
`!=`, which is defined as `not =`. Logic is two-valued, so `not` is plain negation.

Parsing names the JSON path of the first bad part (`rule.all[1].op`), so the API answers 422
with that `field`. Evaluation reads a features mapping and `now`, nothing else.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.shared import InvalidInput

NUMBER, TEXT, LIST = "number", "text", "list"
FIELDS: dict[str, str] = {
    "days_silent": NUMBER,  # whole days since the customer's last activity
    "days_since_last_order": NUMBER,
    "order_count": NUMBER,  # purchases: paid, not cancelled, not refunded in full
    "lifetime_value": NUMBER,  # fen, paid minus refunded
    "refunded": NUMBER,  # fen
    "rfm.r": NUMBER,  # scores 1-5
    "rfm.f": NUMBER,
    "rfm.m": NUMBER,
    "source_channel_code": TEXT,
    "owner": TEXT,
    "province": TEXT,  # of the latest order's receiver
    "city": TEXT,
    "tags": LIST,
    "platforms": LIST,
}
SCORES = ("rfm.r", "rfm.f", "rfm.m")
OPS: dict[str, tuple[str, ...]] = {
    NUMBER: ("=", "!=", ">", ">=", "<", "<=", "in"),
    TEXT: ("=", "!=", "in", "contains"),  # contains: a substring (city contains 杭州)
    LIST: ("contains", "in"),  # contains: has this one; in: has any of these
}
MAX_DEPTH = 8
MAX_NODES = 100
MAX_VALUES = 200  # in a list value
MAX_DAYS = 3650


@dataclass(frozen=True)
class All:
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class AnyOf:
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Not:
    rule: Rule


@dataclass(frozen=True)
class Compare:
    field: str
    op: str
    value: Any  # int, str, or a tuple of them for `in`


@dataclass(frozen=True)
class BoughtCategory:
    """Bought something of this category (and kept it) within the last N days, or ever."""

    category: str
    within_days: int | None = None


Rule = All | AnyOf | Not | Compare | BoughtCategory


# --- parsing -------------------------------------------------------------------------------


def parse(raw: Any, path: str = "rule") -> Rule:
    """A validated rule, or InvalidInput naming the JSON path of the first bad part."""
    counter = [0]
    return _parse(raw, path, 1, counter)


def _parse(raw: Any, path: str, depth: int, counter: list[int]) -> Rule:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise InvalidInput(f"a rule may have at most {MAX_NODES} parts", field=path)
    if depth > MAX_DEPTH:
        raise InvalidInput(f"a rule may nest at most {MAX_DEPTH} levels", field=path)
    if not isinstance(raw, Mapping):
        raise InvalidInput("a rule must be a JSON object", field=path)
    keys = set(raw)
    if keys in ({"all"}, {"any"}):
        (key,) = keys
        items = raw[key]
        if not isinstance(items, list) or not items:
            raise InvalidInput(f"{key} needs a non-empty list of rules", field=f"{path}.{key}")
        parts = tuple(
            _parse(item, f"{path}.{key}[{n}]", depth + 1, counter) for n, item in enumerate(items)
        )
        return All(parts) if key == "all" else AnyOf(parts)
    if keys == {"not"}:
        return Not(_parse(raw["not"], f"{path}.not", depth + 1, counter))
    if "bought_category" in keys:
        return _bought_category(raw, path)
    if "field" in keys or "op" in keys:
        return _compare(raw, path)
    shown = ", ".join(sorted(map(str, keys))) or "nothing"
    raise InvalidInput(
        "a rule is one of all, any, not, a field condition (field, op, value) or"
        f" bought_category; this one has {shown}",
        field=path,
    )


def _bought_category(raw: Mapping[str, Any], path: str) -> BoughtCategory:
    extra = sorted(set(raw) - {"bought_category", "within_days"})
    if extra:
        raise InvalidInput(f"unexpected key {extra[0]!r}", field=f"{path}.{extra[0]}")
    category = raw["bought_category"]
    if not isinstance(category, str) or not category.strip() or len(category) > 100:
        raise InvalidInput(
            "bought_category must be a category id of 1-100 characters",
            field=f"{path}.bought_category",
        )
    days = raw.get("within_days")
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS
    ):
        raise InvalidInput(
            f"within_days must be a whole number from 1 to {MAX_DAYS}",
            field=f"{path}.within_days",
        )
    return BoughtCategory(category.strip(), days)


def _compare(raw: Mapping[str, Any], path: str) -> Compare:
    for key in ("field", "op", "value"):
        if key not in raw:
            raise InvalidInput(f"a field condition needs {key}", field=f"{path}.{key}")
    extra = sorted(set(raw) - {"field", "op", "value"})
    if extra:
        raise InvalidInput(f"unexpected key {extra[0]!r}", field=f"{path}.{extra[0]}")
    name, op, value = raw["field"], raw["op"], raw["value"]
    if not isinstance(name, str) or name not in FIELDS:
        raise InvalidInput(f"field must be one of {', '.join(FIELDS)}", field=f"{path}.field")
    kind = FIELDS[name]
    if not isinstance(op, str) or op not in OPS[kind]:
        raise InvalidInput(f"{name} takes the operators {' '.join(OPS[kind])}", field=f"{path}.op")
    at = f"{path}.value"
    if op == "in":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_VALUES:
            raise InvalidInput(f"in needs a list of 1 to {MAX_VALUES} values", field=at)
        wanted = NUMBER if kind == NUMBER else TEXT
        items = tuple(_scalar(v, wanted, name, f"{at}[{n}]") for n, v in enumerate(value))
        return Compare(name, op, tuple(dict.fromkeys(items)))
    return Compare(name, op, _scalar(value, NUMBER if kind == NUMBER else TEXT, name, at))


def _scalar(value: Any, kind: str, name: str, at: str) -> Any:
    if kind == NUMBER:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{name} is compared with whole numbers", field=at)
        if name in SCORES and not 1 <= value <= 5:
            raise InvalidInput(f"{name} is a score from 1 to 5", field=at)
        return value
    if not isinstance(value, str) or not value or len(value) > 200:
        raise InvalidInput(f"{name} is compared with text of 1-200 characters", field=at)
    return value


def to_json(rule: Rule) -> dict[str, Any]:
    """The canonical JSON of a rule: what events store and `parse` reads back."""
    if isinstance(rule, All):
        return {"all": [to_json(r) for r in rule.rules]}
    if isinstance(rule, AnyOf):
        return {"any": [to_json(r) for r in rule.rules]}
    if isinstance(rule, Not):
        return {"not": to_json(rule.rule)}
    if isinstance(rule, BoughtCategory):
        out: dict[str, Any] = {"bought_category": rule.category}
        if rule.within_days is not None:
            out["within_days"] = rule.within_days
        return out
    value = list(rule.value) if isinstance(rule.value, tuple) else rule.value
    return {"field": rule.field, "op": rule.op, "value": value}


# --- evaluation ----------------------------------------------------------------------------

Features = Mapping[str, Any]


def matches(rule: Rule, features: Features, now: datetime) -> bool:
    if isinstance(rule, All):
        return all(matches(r, features, now) for r in rule.rules)
    if isinstance(rule, AnyOf):
        return any(matches(r, features, now) for r in rule.rules)
    if isinstance(rule, Not):
        return not matches(rule.rule, features, now)
    if isinstance(rule, BoughtCategory):
        last = _last_bought(features, rule.category)
        if last is None:
            return False
        return rule.within_days is None or last >= now - timedelta(days=rule.within_days)
    return _compare_value(rule, features.get(rule.field))


_ORDER = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _compare_value(rule: Compare, actual: Any) -> bool:
    op, value = rule.op, rule.value
    if op == "!=":
        return not _compare_value(Compare(rule.field, "=", value), actual)
    if FIELDS[rule.field] == LIST:
        have = set(actual or ())
        return value in have if op == "contains" else bool(have.intersection(value))
    if actual is None:
        return False
    if op == "=":
        return bool(actual == value)
    if op == "in":
        return actual in value
    if op == "contains":
        return isinstance(actual, str) and value in actual
    if isinstance(actual, bool) or not isinstance(actual, int):
        return False
    return bool(_ORDER[op](actual, value))


def _last_bought(features: Features, category: str) -> datetime | None:
    for entry in features.get("categories") or ():
        if entry.get("category") == category:
            return _moment(entry.get("last_bought_at"))
    return None


def _moment(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def facts(rule: Rule, features: Features) -> dict[str, Any]:
    """What the rule read, as plain JSON: recorded with each decision so an auditor sees why
    (`lifetime_value: 612000`, `bought_category:smart-locks: 2025-03-01T...`)."""
    out: dict[str, Any] = {}
    _collect(rule, features, out)
    return out


def _collect(rule: Rule, features: Features, out: dict[str, Any]) -> None:
    if isinstance(rule, All | AnyOf):
        for r in rule.rules:
            _collect(r, features, out)
    elif isinstance(rule, Not):
        _collect(rule.rule, features, out)
    elif isinstance(rule, BoughtCategory):
        last = _last_bought(features, rule.category)
        out[f"bought_category:{rule.category}"] = _plain(last)
    else:
        out[rule.field] = _plain(features.get(rule.field))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, tuple | set | frozenset):
        return sorted(value)
    return value
