"""The segment rule language: validated with the JSON path of the bad part, and evaluated as
plain two-valued logic over a customer's features."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.segments import rules
from domain.shared import InvalidInput

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
LOYAL = {
    "days_silent": 3,
    "days_since_last_order": 10,
    "order_count": 4,
    "lifetime_value": 612_000,
    "refunded": 0,
    "rfm.r": 5,
    "rfm.f": 3,
    "rfm.m": 5,
    "source_channel_code": "code-1",
    "owner": "zhang.wei",
    "province": "浙江省",
    "city": "杭州市",
    "tags": ["VIP", "门店海报"],
    "platforms": ["jd", "taobao"],
    "categories": [
        {
            "category": "smart-locks",
            "orders": 2,
            "amount": 400_000,
            "last_bought_at": NOW - timedelta(days=10),
        },
        {
            "category": "parts",
            "orders": 1,
            "amount": 5_000,
            "last_bought_at": "2025-01-01T00:00:00.000000Z",
        },
    ],
}
NEW = {"days_silent": 0, "order_count": 0, "lifetime_value": 0, "tags": [], "platforms": []}


def rule(raw: Any) -> rules.Rule:
    return rules.parse(raw)


@pytest.mark.parametrize(
    ("raw", "loyal", "new"),
    [
        ({"field": "lifetime_value", "op": ">=", "value": 500_000}, True, False),
        ({"field": "days_silent", "op": ">=", "value": 30}, False, False),
        ({"field": "tags", "op": "contains", "value": "VIP"}, True, False),
        ({"field": "platforms", "op": "in", "value": ["pdd", "jd"]}, True, False),
        ({"field": "city", "op": "contains", "value": "杭州"}, True, False),
        ({"field": "rfm.r", "op": "in", "value": [4, 5]}, True, False),
        ({"field": "owner", "op": "!=", "value": "li.na"}, True, True),  # no owner is not li.na
        ({"field": "days_since_last_order", "op": "<", "value": 30}, True, False),  # never: false
        ({"bought_category": "smart-locks", "within_days": 90}, True, False),
        ({"bought_category": "parts", "within_days": 90}, False, False),
        ({"bought_category": "parts"}, True, False),
        ({"not": {"field": "order_count", "op": ">", "value": 0}}, False, True),
        (
            {"all": [{"field": "order_count", "op": ">=", "value": 2}, {"bought_category": "x"}]},
            False,
            False,
        ),
        (
            {"any": [{"field": "order_count", "op": ">=", "value": 2}, {"bought_category": "x"}]},
            True,
            False,
        ),
    ],
)
def test_a_rule_matches_the_customers_it_describes(raw: Any, loyal: bool, new: bool) -> None:
    assert rules.matches(rule(raw), LOYAL, NOW) is loyal
    assert rules.matches(rule(raw), NEW, NOW) is new


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([], "rule"),
        ({}, "rule"),
        ({"all": []}, "rule.all"),
        ({"all": [{"field": "ltv", "op": ">", "value": 1}]}, "rule.all[0].field"),
        ({"any": [{"not": {"field": "tags", "op": ">", "value": "a"}}]}, "rule.any[0].not.op"),
        ({"field": "lifetime_value", "op": ">", "value": "100"}, "rule.value"),
        ({"field": "lifetime_value", "op": ">", "value": True}, "rule.value"),
        ({"field": "rfm.m", "op": "=", "value": 6}, "rule.value"),
        ({"field": "owner", "op": "in", "value": ["a", 2]}, "rule.value[1]"),
        ({"field": "owner", "op": "in", "value": []}, "rule.value"),
        ({"field": "owner", "op": "="}, "rule.value"),
        ({"field": "owner", "op": "=", "value": "a", "extra": 1}, "rule.extra"),
        ({"bought_category": "", "within_days": 9}, "rule.bought_category"),
        ({"bought_category": "x", "within_days": 0}, "rule.within_days"),
        ({"all": [{"all": [{"bought_category": "x", "since": 3}]}]}, "rule.all[0].all[0].since"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_json_path_of_the_bad_part(raw: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        rules.parse(raw)
    assert refused.value.field == field


def test_a_rule_too_deep_or_too_large_is_refused() -> None:
    deep: Any = {"field": "order_count", "op": ">", "value": 0}
    for _ in range(rules.MAX_DEPTH):
        deep = {"not": deep}
    with pytest.raises(InvalidInput, match="nest"):
        rules.parse(deep)
    wide = {"any": [{"bought_category": f"c{n}"} for n in range(rules.MAX_NODES)]}
    with pytest.raises(InvalidInput, match="at most"):
        rules.parse(wide)


def test_the_facts_are_what_the_rule_read() -> None:
    r = rule(
        {
            "all": [
                {"field": "lifetime_value", "op": ">=", "value": 1},
                {"bought_category": "smart-locks", "within_days": 90},
                {"bought_category": "tea"},
            ]
        }
    )
    assert rules.facts(r, LOYAL) == {
        "lifetime_value": 612_000,
        "bought_category:smart-locks": (NOW - timedelta(days=10))
        .isoformat()
        .replace("+00:00", "Z"),
        "bought_category:tea": None,
    }


# --- laws, for any rule and any customer ---------------------------------------------------

FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    name: (
        st.integers(1, 5)
        if name in rules.SCORES
        else st.integers(-5, 1_000_000)
        if kind == rules.NUMBER
        else st.sampled_from(["a", "b", "杭州市"])
    )
    for name, kind in rules.FIELDS.items()
}


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        days = draw(st.none() | st.integers(1, 400))
        return {"bought_category": draw(st.sampled_from(["x", "y"]))} | (
            {"within_days": days} if days else {}
        )
    name = draw(st.sampled_from(sorted(rules.FIELDS)))
    op = draw(st.sampled_from(rules.OPS[rules.FIELDS[name]]))
    value = FIELD_VALUES[name]
    return {
        "field": name,
        "op": op,
        "value": draw(st.lists(value, min_size=1, max_size=3)) if op == "in" else draw(value),
    }


raw_rules = st.recursive(
    conditions(),
    lambda inner: st.one_of(
        st.builds(lambda rs: {"all": rs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda rs: {"any": rs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda r: {"not": r}, inner),
    ),
    max_leaves=6,
)


@st.composite
def features(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in rules.FIELDS.items():
        if kind == rules.LIST:
            out[name] = draw(st.lists(st.sampled_from(["a", "b", "杭州市"]), max_size=3))
        else:
            out[name] = draw(st.none() | FIELD_VALUES[name])
    out["categories"] = [
        {"category": c, "last_bought_at": NOW - timedelta(days=draw(st.integers(0, 500)))}
        for c in draw(st.lists(st.sampled_from(["x", "y"]), max_size=2, unique=True))
    ]
    return out


@settings(max_examples=300, deadline=None)
@given(raw_rules, features())
def test_not_not_is_the_rule_itself(raw: Any, f: dict[str, Any]) -> None:
    r = rules.parse(raw)
    assert rules.matches(rules.parse({"not": {"not": raw}}), f, NOW) == rules.matches(r, f, NOW)


@settings(max_examples=300, deadline=None)
@given(raw_rules, raw_rules, features())
def test_all_and_any_obey_de_morgan_and_their_units(a: Any, b: Any, f: dict[str, Any]) -> None:
    def m(raw: Any) -> bool:
        return rules.matches(rules.parse(raw), f, NOW)

    assert m({"all": [a]}) == m(a) == m({"any": [a]})
    assert m({"all": [a, b]}) == (m(a) and m(b))
    assert m({"any": [a, b]}) == (m(a) or m(b))
    assert m({"not": {"all": [a, b]}}) == m({"any": [{"not": a}, {"not": b}]})
    assert m({"not": {"any": [a, b]}}) == m({"all": [{"not": a}, {"not": b}]})


@settings(max_examples=200, deadline=None)
@given(raw_rules)
def test_a_rule_reads_back_from_its_canonical_json(raw: Any) -> None:
    r = rules.parse(raw)
    assert rules.parse(rules.to_json(r)) == r


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["all", "any", "not", "field", "op", "value", "bought_category"]),
                inner,
                max_size=3,
            )
        ),
        max_leaves=10,
    )
)
def test_any_json_is_either_a_rule_or_refused_with_a_path(raw: Any) -> None:
    try:
        rules.parse(raw)
    except InvalidInput as exc:
        assert exc.field is not None and exc.field.startswith("rule")
