"""The settlement rule engine, component by component, and the aggregates that carry its lines.

Every component type shows the exact lines it makes (fen and the payee's sentence) and a case
where it does not apply; coefficients apply to the subtotal so far, in the rule set's order; each
line is rounded on its own; parse errors name their JSON path. Then the issue's example (15
smart locks), the earning's clawbacks, corrections and disputes, payouts, rule set versions and
settlement cycles. No database, no network."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.money import MAX_FEN, scale, split
from domain.settlement.aggregates import Earning, Payout, RuleSet
from domain.settlement.cycles import period_name, period_named, period_of
from domain.settlement.rules import (
    COMPONENTS,
    Facts,
    Line,
    PeriodFacts,
    PeriodSale,
    Rules,
    Unpriceable,
    Volumes,
    payee_total,
)
from domain.shared import Conflict, Gone, InvalidInput, Meta

SHANGHAI = "Asia/Shanghai"
WED_10AM = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # Wednesday 2026-03-04 10:00 in Shanghai
META = Meta(
    occurred_at=datetime(2026, 3, 10, 1, 0, tzinfo=UTC),
    actor="user:test",
    source="test",
    correlation_id="c",
    causation_id="c",
)

BASE: dict[str, Any] = {
    "type": "base_fee",
    "name": "base",
    "grades": {"A": 8000, "B": 12000},
    "by_service_type": {"smart_lock": "A", "ac_install": "B", "repair": 5000},
}


def rules(*components: dict[str, Any], **top: Any) -> Rules:
    return Rules.parse({"components": list(components), **top})


def service(at: datetime = WED_10AM, **facts: Any) -> Facts:
    facts.setdefault("service_type", "smart_lock")
    return Facts(kind="service", payee_id="inst-1", occurred_at=at, **facts)


def sale(amount: int | None, at: datetime = WED_10AM, **facts: Any) -> Facts:
    return Facts(kind="sale", payee_id="seller-1", occurred_at=at, amount=amount, **facts)


def shown(lines: list[Line]) -> list[tuple[str, str, int, str]]:
    return [(ln.payee_id, ln.component, ln.amount, ln.explanation) for ln in lines]


def local(y: int, mo: int, d: int, h: int = 10, mi: int = 0) -> datetime:
    """A Shanghai wall-clock time as the UTC instant items carry."""
    return datetime(y, mo, d, h, mi, tzinfo=UTC) - timedelta(hours=8)


# --- base_fee -------------------------------------------------------------------------------


def test_base_fee_by_grade_and_by_amount():
    r = rules(BASE)
    assert shown(r.price(service())) == [("inst-1", "base", 8000, "基础服务费 A档 80.00元")]
    assert shown(r.price(service(service_type="ac_install"))) == [
        ("inst-1", "base", 12000, "基础服务费 B档 120.00元")
    ]
    [line] = r.price(service(service_type="repair"))
    assert (line.amount, line.explanation, line.type) == (5000, "基础服务费 50.00元", "base_fee")
    assert line.inputs == {"service_type": "repair", "grade": None}


def test_base_fee_does_not_apply_to_a_sale_or_a_rating():
    r = rules(BASE)
    assert r.price(sale(10000)) == []
    assert r.price(Facts("rating", "inst-1", WED_10AM, service_type="smart_lock", rating=5)) == []


def test_an_unknown_service_type_without_a_default_is_unpriceable():
    r = rules(BASE)
    with pytest.raises(Unpriceable) as e:
        r.price(service(service_type="sauna"))
    assert e.value.code == "unpriceable"
    assert e.value.field == "service_type"
    assert "sauna" in e.value.detail
    with pytest.raises(Unpriceable):
        r.price(service(service_type=None))


def test_an_unknown_service_type_takes_the_default():
    r = rules({**BASE, "default": "B"})
    assert shown(r.price(service(service_type="sauna"))) == [
        ("inst-1", "base", 12000, "基础服务费 B档 120.00元")
    ]
    r = rules({**BASE, "default": 3000, "label": "上门费"})
    assert shown(r.price(service(service_type=None))) == [("inst-1", "base", 3000, "上门费")]


# --- regional -------------------------------------------------------------------------------

REGIONAL: dict[str, Any] = {
    "type": "regional",
    "name": "region",
    "tiers": {"tier1": "1.2", "tier2": "1.1", "tier3": "1"},
    "regions": {"上海市": "tier1", "杭州市": "tier2"},
    "overrides": {"上海市浦东新区": "1.3"},
}


def test_regional_coefficient_by_tier_and_longest_area_override():
    r = rules(BASE, REGIONAL)
    assert shown(r.price(service(region="上海市黄浦区"))) == [
        ("inst-1", "base", 8000, "基础服务费 A档 80.00元"),
        ("inst-1", "region", 1600, "区域系数1.2"),
    ]
    lines = r.price(service(region="上海市浦东新区张江镇"))
    assert shown(lines)[1] == ("inst-1", "region", 2400, "区域系数1.3（上海市浦东新区）")
    assert lines[1].inputs == {"coefficient": "1.3", "area": "上海市浦东新区"}
    assert shown(r.price(service(region="杭州市")))[1] == ("inst-1", "region", 800, "区域系数1.1")


def test_regional_does_not_apply_outside_its_regions_or_at_coefficient_one():
    r = rules(BASE, REGIONAL)
    assert [ln.component for ln in r.price(service(region="成都市"))] == ["base"]
    assert [ln.component for ln in r.price(service(region=None))] == ["base"]
    r = rules(BASE, {**REGIONAL, "default_tier": "tier3"})
    assert [ln.component for ln in r.price(service(region="成都市"))] == ["base"]
    r = rules(BASE, {**REGIONAL, "default_tier": "tier2"})
    assert shown(r.price(service(region="成都市")))[1] == ("inst-1", "region", 800, "区域系数1.1")


# --- difficulty -----------------------------------------------------------------------------

DIFFICULTY: dict[str, Any] = {
    "type": "difficulty",
    "name": "difficulty",
    "by_service_type": {"smart_lock": "1.2", "repair": "0.9"},
    "by_template": {"mortise-lock": "1.5"},
}


def test_difficulty_by_template_before_service_type():
    r = rules(BASE, DIFFICULTY)
    assert shown(r.price(service()))[1] == ("inst-1", "difficulty", 1600, "服务难度加成20%")
    assert shown(r.price(service(template="mortise-lock")))[1] == (
        "inst-1",
        "difficulty",
        4000,
        "服务难度加成50%",
    )
    assert shown(r.price(service(service_type="repair")))[1] == (
        "inst-1",
        "difficulty",
        -500,
        "服务难度系数0.9",
    )


def test_difficulty_does_not_apply_to_other_types():
    r = rules(BASE, DIFFICULTY)
    assert [ln.component for ln in r.price(service(service_type="ac_install"))] == ["base"]
    assert [ln.component for ln in r.price(service(template="other"))] == ["base", "difficulty"]


# --- time_of_day ----------------------------------------------------------------------------

NIGHT: dict[str, Any] = {
    "type": "time_of_day",
    "name": "hours",
    "windows": [
        {"from": "22:00", "to": "06:00", "coefficient": "1.5"},
        {"from": "18:00", "to": "22:00", "coefficient": "1.2"},
    ],
}


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        # occurred_at is UTC; the windows are Shanghai wall-clock (+8)
        (datetime(2026, 3, 4, 15, 30, tzinfo=UTC), (4000, "时段系数1.5（22:00–06:00）", "23:30")),
        (datetime(2026, 3, 4, 14, 0, tzinfo=UTC), (4000, "时段系数1.5（22:00–06:00）", "22:00")),
        (datetime(2026, 3, 4, 16, 10, tzinfo=UTC), (4000, "时段系数1.5（22:00–06:00）", "00:10")),
        (datetime(2026, 3, 4, 21, 59, tzinfo=UTC), (4000, "时段系数1.5（22:00–06:00）", "05:59")),
        (datetime(2026, 3, 4, 13, 59, tzinfo=UTC), (1600, "时段系数1.2（18:00–22:00）", "21:59")),
        (datetime(2026, 3, 4, 10, 0, tzinfo=UTC), (1600, "时段系数1.2（18:00–22:00）", "18:00")),
        (datetime(2026, 3, 4, 22, 0, tzinfo=UTC), None),  # 06:00: the night window has ended
        (datetime(2026, 3, 4, 9, 59, tzinfo=UTC), None),  # 17:59
        (datetime(2026, 3, 4, 2, 0, tzinfo=UTC), None),  # 10:00
    ],
)
def test_time_of_day_windows_wrap_midnight_in_the_rule_sets_timezone(utc, expected):
    lines = rules(BASE, NIGHT).price(service(at=utc))
    if expected is None:
        assert [ln.component for ln in lines] == ["base"]
        return
    amount, explanation, clock = expected
    assert shown(lines)[1] == ("inst-1", "hours", amount, explanation)
    assert lines[1].inputs["local_time"] == clock


def test_time_of_day_follows_the_rule_sets_own_timezone():
    at = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai, 15:30 in UTC
    assert len(rules(BASE, NIGHT).price(service(at=at))) == 2
    assert len(rules(BASE, NIGHT, timezone="UTC").price(service(at=at))) == 1
    at = datetime(2026, 3, 4, 23, 0, tzinfo=UTC)  # 07:00 in Shanghai, 23:00 in UTC
    assert len(rules(BASE, NIGHT).price(service(at=at))) == 1
    assert shown(rules(BASE, NIGHT, timezone="UTC").price(service(at=at)))[1][2] == 4000


# --- calendar_subsidy -----------------------------------------------------------------------

CALENDAR: dict[str, Any] = {
    "type": "calendar_subsidy",
    "name": "calendar",
    "weekend": 2000,
    "holidays": {"2026-10-01": 5000, "2026-10-03": 6000},
    "seasons": [
        {
            "months": [12, 1, 2],
            "regions": ["黑龙江省", "吉林省"],
            "amount": 1000,
            "label": "冬季补贴",
        },
        {"months": [7, 8], "amount": 800, "label": "高温补贴"},
    ],
}


def test_a_holiday_beats_the_weekend_it_falls_on():
    r = rules(BASE, CALENDAR)
    # Saturday 2026-10-03 01:00 in Shanghai is still Friday in UTC
    lines = r.price(service(at=datetime(2026, 10, 2, 17, 0, tzinfo=UTC)))
    assert shown(lines)[1:] == [("inst-1", "calendar", 6000, "节假日补贴60.00元")]
    assert lines[1].inputs == {"date": "2026-10-03"}
    # a holiday on a weekday
    assert shown(r.price(service(at=local(2026, 10, 1))))[1:] == [
        ("inst-1", "calendar", 5000, "节假日补贴50.00元")
    ]


def test_weekend_subsidy_by_the_local_date():
    r = rules(BASE, CALENDAR)
    # Friday 2026-10-09 20:00 UTC is Saturday 04:00 in Shanghai
    assert shown(r.price(service(at=datetime(2026, 10, 9, 20, 0, tzinfo=UTC))))[1:] == [
        ("inst-1", "calendar", 2000, "周末补贴20.00元")
    ]
    assert shown(r.price(service(at=local(2026, 10, 11, 23, 59))))[1:] == [
        ("inst-1", "calendar", 2000, "周末补贴20.00元")
    ]
    # Friday 23:00 in Shanghai is not the weekend; Monday 00:30 is not either
    assert len(r.price(service(at=local(2026, 10, 9, 23, 0)))) == 1
    assert len(r.price(service(at=local(2026, 10, 12, 0, 30)))) == 1


def test_season_by_month_and_region_prefix():
    r = rules(BASE, CALENDAR)
    wed_jan = local(2027, 1, 13)
    lines = r.price(service(at=wed_jan, region="黑龙江省哈尔滨市"))
    assert shown(lines)[1:] == [("inst-1", "calendar", 1000, "冬季补贴10.00元")]
    assert lines[1].inputs == {"month": 1}
    assert shown(r.price(service(at=local(2026, 12, 2), region="吉林省长春市")))[1:] == [
        ("inst-1", "calendar", 1000, "冬季补贴10.00元")
    ]
    # not in the north, or not in winter
    assert len(r.price(service(at=wed_jan, region="上海市"))) == 1
    assert len(r.price(service(at=wed_jan, region=None))) == 1
    assert len(r.price(service(at=local(2026, 3, 4), region="黑龙江省哈尔滨市"))) == 1
    # a season without regions holds everywhere
    assert shown(r.price(service(at=local(2026, 7, 15), region=None)))[1:] == [
        ("inst-1", "calendar", 800, "高温补贴8.00元")
    ]


def test_calendar_does_not_apply_on_an_ordinary_weekday():
    assert len(rules(BASE, CALENDAR).price(service(at=local(2026, 3, 4)))) == 1


def test_a_season_adds_to_a_weekend_subsidy():
    lines = rules(BASE, CALENDAR).price(service(at=local(2027, 1, 16), region="吉林省"))
    assert [(ln.amount, ln.explanation) for ln in lines[1:]] == [
        (2000, "周末补贴20.00元"),
        (1000, "冬季补贴10.00元"),
    ]


# --- distance -------------------------------------------------------------------------------


def test_distance_beyond_the_free_radius_flat_and_per_km():
    r = rules(BASE, {"type": "distance", "name": "far", "free_km": "10", "per_km": 85, "flat": 500})
    lines = r.price(service(distance_km=Decimal("11.5")))
    # 500 + 85 × 1.5 = 627.5 -> 628 (half away from zero)
    assert shown(lines)[1:] == [("inst-1", "far", 628, "远程补贴：超出10公里1.5公里，6.28元")]
    assert lines[1].inputs == {"distance_km": "11.5", "free_km": "10"}


def test_distance_does_not_apply_within_the_free_radius():
    r = rules(BASE, {"type": "distance", "name": "far", "free_km": "10", "flat": 2000})
    assert len(r.price(service(distance_km=Decimal("10")))) == 1
    assert len(r.price(service(distance_km=Decimal("3.2")))) == 1
    assert len(r.price(service(distance_km=None))) == 1
    assert shown(r.price(service(distance_km=Decimal("10.1"))))[1] == (
        "inst-1",
        "far",
        2000,
        "远程补贴：超出10公里0.1公里，20.00元",
    )


# --- urgency_bonus --------------------------------------------------------------------------

URGENCY: dict[str, Any] = {
    "type": "urgency_bonus",
    "name": "urgent",
    "amounts": {"urgent": 3000, "same_day": 1500},
}


def test_urgency_bonus():
    r = rules(BASE, URGENCY)
    lines = r.price(service(urgency="same_day"))
    assert shown(lines)[1:] == [("inst-1", "urgent", 1500, "加急奖励15.00元")]
    assert lines[1].inputs == {"urgency": "same_day"}
    assert len(r.price(service(urgency=None))) == 1
    assert len(r.price(service(urgency="whenever"))) == 1


# --- rating_bonus ---------------------------------------------------------------------------


def test_rating_bonus_on_the_job_or_on_a_later_rating():
    r = rules(BASE, {"type": "rating_bonus", "name": "stars", "amount": 500})
    assert shown(r.price(service(rating=5)))[1:] == [("inst-1", "stars", 500, "好评奖励5.00元")]
    later = Facts("rating", "inst-1", WED_10AM, rating=5)
    assert shown(r.price(later)) == [("inst-1", "stars", 500, "好评奖励5.00元")]


def test_rating_bonus_does_not_apply_below_the_minimum():
    r = rules(BASE, {"type": "rating_bonus", "name": "stars", "amount": 500, "min_rating": 4})
    assert len(r.price(service(rating=4))) == 2
    assert len(r.price(service(rating=3))) == 1
    assert len(r.price(service(rating=None))) == 1
    assert r.price(Facts("rating", "inst-1", WED_10AM, rating=2)) == []


# --- materials_deduction --------------------------------------------------------------------


def test_materials_deduction_fixed_or_the_items_own_fee():
    fixed = rules(BASE, {"type": "materials_deduction", "name": "parts", "amount": 1500})
    lines = fixed.price(service(materials_supplied_by="customer"))
    assert shown(lines)[1:] == [("inst-1", "parts", -1500, "材料扣减（客户自备）-15.00元")]
    fee = rules(
        BASE,
        {
            "type": "materials_deduction",
            "name": "parts",
            "amount": "materials_fee",
            "supplied_by": "store",
            "label": "门店配件扣减",
        },
    )
    lines = fee.price(service(materials_supplied_by="store", materials_fee=2300))
    assert shown(lines)[1:] == [("inst-1", "parts", -2300, "门店配件扣减")]


def test_materials_deduction_does_not_apply_when_the_installer_brought_the_parts():
    r = rules(BASE, {"type": "materials_deduction", "name": "parts", "amount": 1500})
    assert len(r.price(service(materials_supplied_by="installer"))) == 1
    assert len(r.price(service(materials_supplied_by=None))) == 1
    fee = rules(BASE, {"type": "materials_deduction", "name": "parts", "amount": "materials_fee"})
    assert len(fee.price(service(materials_supplied_by="customer", materials_fee=None))) == 1


# --- surge ----------------------------------------------------------------------------------

SURGE: dict[str, Any] = {
    "type": "surge",
    "name": "surge",
    "window_hours": 2,
    "steps": [{"from": 10, "percent": "10"}, {"from": 20, "percent": "12.5"}],
}


def test_surge_by_the_regions_volume_in_the_window():
    r = rules(BASE, SURGE)
    assert r.surge_window_hours == 2
    lines = r.price(service(region="杭州市"), Volumes(region_window=12))
    assert shown(lines)[1:] == [("inst-1", "surge", 800, "区域爆单加成10%（2小时内本区域第12单）")]
    assert lines[1].inputs == {
        "coefficient": "1.1",
        "region": "杭州市",
        "volume": 12,
        "window_hours": 2,
    }
    assert shown(r.price(service(), Volumes(region_window=20)))[1:] == [
        ("inst-1", "surge", 1000, "区域爆单加成12.5%（2小时内本区域第20单）")
    ]


def test_surge_does_not_apply_below_the_first_step():
    r = rules(BASE, SURGE)
    assert len(r.price(service(), Volumes(region_window=9))) == 1
    assert len(r.price(service())) == 1
    assert rules(BASE).surge_window_hours is None


# --- composition ----------------------------------------------------------------------------


def test_a_coefficient_applies_to_the_subtotal_so_far():
    region = {**REGIONAL, "name": "region"}
    far = {"type": "distance", "name": "far", "free_km": "10", "flat": 2000}
    facts = service(region="上海市", distance_km=Decimal("15"))
    before = rules(BASE, region, far).price(facts)
    after = rules(BASE, far, region).price(facts)
    assert [(ln.component, ln.amount) for ln in before] == [
        ("base", 8000),
        ("region", 1600),  # 8000 × 0.2
        ("far", 2000),
    ]
    assert [(ln.component, ln.amount) for ln in after] == [
        ("base", 8000),
        ("far", 2000),
        ("region", 2000),  # (8000 + 2000) × 0.2
    ]
    assert payee_total(before, "inst-1") == 11600
    assert payee_total(after, "inst-1") == 12000


def test_coefficients_compound_and_each_line_is_rounded_on_its_own():
    r = rules(
        {"type": "base_fee", "name": "base", "by_service_type": {"x": 999}},
        {"type": "regional", "name": "region", "tiers": {"t": "1.15"}, "default_tier": "t"},
        {
            "type": "time_of_day",
            "name": "hours",
            "windows": [{"from": "00:00", "to": "23:59", "coefficient": "1.15"}],
        },
        {"type": "materials_deduction", "name": "parts", "amount": 1},
    )
    lines = r.price(service(service_type="x", materials_supplied_by="customer"))
    # 999 × 1.15 = 1148.85 -> 1149 (+150); 1149 × 1.15 = 1321.35 -> 1321 (+172); then -1
    assert [ln.amount for ln in lines] == [999, 150, 172, -1]
    assert [ln.inputs["coefficient"] for ln in lines[1:3]] == ["1.15", "1.15"]
    assert payee_total(lines, "inst-1") == 1320
    halves = rules(
        {"type": "base_fee", "name": "base", "by_service_type": {"x": 1001}},
        {"type": "regional", "name": "region", "tiers": {"t": "1.5"}, "default_tier": "t"},
        {
            "type": "time_of_day",
            "name": "hours",
            "windows": [{"from": "00:00", "to": "23:59", "coefficient": "1.5"}],
        },
    )
    lines = halves.price(service(service_type="x"))
    # 1001 × 1.5 = 1501.5 -> 1502 (+501); 1502 × 1.5 = 2253 (+751): 2253, where rounding
    # the compound coefficient once would give 1001 × 2.25 = 2252.25 -> 2252
    assert [ln.amount for ln in lines] == [1001, 501, 751]
    assert payee_total(lines, "inst-1") == 2253


def _round(x: Fraction) -> int:
    """Half away from zero, independently of money.round_fen."""
    sign = -1 if x < 0 else 1
    return sign * int(abs(x) + Fraction(1, 2))


coefficients = st.decimals(
    min_value=Decimal("0.5"), max_value=3, places=3, allow_nan=False, allow_infinity=False
)
fen = st.integers(min_value=0, max_value=10**7)


@st.composite
def priced_rule_sets(draw):
    """A rule set of amount and coefficient components in any order, with the facts that make
    each apply, and the total a reference model expects."""
    steps: list[tuple[str, Any]] = []
    facts: dict[str, Any] = {"service_type": "x"}
    comps: list[dict[str, Any]] = [
        {"type": "base_fee", "name": "base", "by_service_type": {"x": draw(fen)}}
    ]
    if draw(st.booleans()):
        comps.append(
            {"type": "regional", "name": "region", "tiers": {"t": str(draw(coefficients))}}
        )
        comps[-1]["default_tier"] = "t"
    if draw(st.booleans()):
        comps.append(
            {
                "type": "difficulty",
                "name": "hard",
                "by_service_type": {"x": str(draw(coefficients))},
            }
        )
    if draw(st.booleans()):
        c = str(draw(coefficients))
        comps.append(
            {
                "type": "time_of_day",
                "name": "hours",
                "windows": [{"from": "06:00", "to": "05:00", "coefficient": c}],
            }
        )
    if draw(st.booleans()):
        comps.append(
            {
                "type": "surge",
                "name": "surge",
                "window_hours": 3,
                "steps": [{"from": 1, "percent": str(draw(st.integers(0, 300)))}],
            }
        )
    if draw(st.booleans()):
        comps.append({"type": "distance", "name": "far", "per_km": draw(fen), "flat": draw(fen)})
        facts["distance_km"] = draw(
            st.decimals(min_value=Decimal("0.1"), max_value=500, places=1, allow_nan=False)
        )
    if draw(st.booleans()):
        comps.append({"type": "urgency_bonus", "name": "urgent", "amounts": {"u": draw(fen)}})
        facts["urgency"] = "u"
    if draw(st.booleans()):
        comps.append({"type": "materials_deduction", "name": "parts", "amount": draw(fen)})
        facts["materials_supplied_by"] = "customer"
    comps = draw(st.permutations(comps))
    for comp in comps:
        kind = comp["type"]
        if kind == "base_fee":
            steps.append(("add", comp["by_service_type"]["x"]))
        elif kind == "regional":
            steps.append(("times", Decimal(comp["tiers"]["t"])))
        elif kind == "difficulty":
            steps.append(("times", Decimal(comp["by_service_type"]["x"])))
        elif kind == "time_of_day":
            steps.append(("times", Decimal(comp["windows"][0]["coefficient"])))
        elif kind == "surge":
            steps.append(("times", 1 + Decimal(comp["steps"][0]["percent"]) / 100))
        elif kind == "distance":
            km = facts["distance_km"]
            steps.append(("add", comp["flat"] + _round(Fraction(comp["per_km"]) * Fraction(km))))
        elif kind == "urgency_bonus":
            steps.append(("add", comp["amounts"]["u"]))
        else:
            steps.append(("add", -comp["amount"]))
    return comps, facts, steps


@settings(max_examples=300)
@given(priced_rule_sets())
def test_the_lines_of_an_item_always_sum_to_the_payee_total(case):
    comps, facts, steps = case
    lines = rules(*comps).price(service(**facts), Volumes(region_window=1))
    subtotal = 0
    for kind, value in steps:
        subtotal = (
            subtotal + value if kind == "add" else _round(Fraction(subtotal) * Fraction(value))
        )
    assert all(isinstance(ln.amount, int) for ln in lines)
    assert all(ln.payee_id == "inst-1" for ln in lines)
    assert sum(ln.amount for ln in lines) == payee_total(lines, "inst-1") == subtotal


# --- commission -----------------------------------------------------------------------------

MARGINAL: dict[str, Any] = {
    "type": "commission",
    "name": "commission",
    "tiers": [
        {"from": 1, "rate": "0.03"},
        {"from": 11, "rate": "0.05"},
        {"from": 21, "rate": "0.08"},
    ],
}
RETRO: dict[str, Any] = {
    "type": "commission",
    "name": "commission",
    "tiers": [{"from": 1, "rate": "0.03"}, {"from": 4, "rate": "0.05", "retroactive": True}],
}


@pytest.mark.parametrize(
    ("count", "amount", "explanation"),
    [
        (1, 300, "佣金3%（第1档）"),
        (10, 300, "佣金3%（第1档）"),
        (11, 500, "佣金5%（第2档）"),
        (21, 800, "佣金8%（第3档）"),
        (500, 800, "佣金8%（第3档）"),
    ],
)
def test_commission_marginal_tiers_by_sales_count(count, amount, explanation):
    lines = rules(MARGINAL).price(sale(10000), Volumes(sales=count))
    assert shown(lines) == [("seller-1", "commission", amount, explanation)]
    assert lines[0].inputs["count"] == count
    assert lines[0].inputs["tier_by"] == "sales"
    assert lines[0].inputs["sale_amount"] == 10000


def test_commission_does_not_apply_before_the_first_tier_or_without_an_amount():
    r = rules(MARGINAL)
    assert r.price(sale(10000), Volumes(sales=0)) == []
    assert r.price(sale(0), Volumes(sales=5)) == []
    assert r.price(sale(None), Volumes(sales=5)) == []
    assert r.price(service(), Volumes(sales=5)) == []  # a job is no sale
    by_amount = rules({**MARGINAL, "tier_by": "amount"})
    assert shown(by_amount.price(sale(10000), Volumes(sales=50, sales_amount=15)))[0][2] == 500


def test_close_pays_the_retroactive_top_up_exactly():
    r = rules(RETRO)
    assert r.closes
    amounts = [1000, 2050, 3333, 999, 10000]
    paid = []
    for n, amount in enumerate(amounts, start=1):
        [line] = r.price(sale(amount), Volumes(sales=n))
        paid.append(line.amount)
    assert paid == [30, 62, 100, 50, 500]  # 30, 61.5, 99.99 at 3%; 49.95, 500 at 5%
    period = PeriodFacts(
        Volumes(sales=5),
        tuple(
            PeriodSale(f"sale:{i}", a, c)
            for i, (a, c) in enumerate(zip(amounts, paid, strict=True))
        ),
    )
    owed = sum(scale(a, Decimal("0.05")) for a in amounts)
    assert owed == 50 + 103 + 167 + 50 + 500
    [top_up] = r.close("seller-1", period)
    assert top_up.amount == owed - sum(paid) == 128
    assert top_up.explanation == "佣金第2档追溯补差（本期5单按0.05）"
    assert (top_up.payee_id, top_up.component, top_up.type) == (
        "seller-1",
        "commission",
        "commission",
    )
    assert top_up.inputs == {"rate": "0.05", "tier": 2, "sales": 5, "owed": 870, "paid": 742}


def test_close_pays_nothing_below_the_retroactive_tier_or_for_a_marginal_top_tier():
    r = rules(RETRO)
    three = PeriodFacts(Volumes(sales=3), tuple(PeriodSale(f"s{i}", 1000, 30) for i in range(3)))
    assert r.close("seller-1", three) == []
    marginal = rules(MARGINAL)
    assert not marginal.closes
    many = PeriodFacts(Volumes(sales=25), tuple(PeriodSale(f"s{i}", 1000, 30) for i in range(25)))
    assert marginal.close("seller-1", many) == []
    # already paid at the retroactive rate: nothing more
    paid_up = PeriodFacts(Volumes(sales=4), tuple(PeriodSale(f"s{i}", 1000, 50) for i in range(4)))
    assert r.close("seller-1", paid_up) == []


# --- rebates --------------------------------------------------------------------------------


def test_rebates_go_to_parents_nearest_first():
    r = rules({"type": "rebates", "name": "rebates", "levels": ["0.05", "0.02", "0.01"]})
    lines = r.price(sale(10000), Volumes(parents=("agent-a", "agent-b")))
    assert shown(lines) == [
        ("agent-a", "rebates", 500, "1级返利5%"),
        ("agent-b", "rebates", 200, "2级返利2%"),
    ]
    assert lines[1].inputs == {
        "level": 2,
        "rate": "0.02",
        "seller": "seller-1",
        "sale_amount": 10000,
    }
    assert payee_total(lines, "seller-1") == 0
    assert payee_total(lines, "agent-a") == 500
    many = r.price(sale(10000), Volumes(parents=("a", "b", "c", "d", "e")))
    assert [(ln.payee_id, ln.amount) for ln in many] == [("a", 500), ("b", 200), ("c", 100)]


def test_rebates_do_not_apply_without_parents_or_amount():
    r = rules({"type": "rebates", "name": "rebates", "levels": ["0.05"]})
    assert r.price(sale(10000)) == []
    assert r.price(sale(None), Volumes(parents=("agent-a",))) == []


# --- split ----------------------------------------------------------------------------------


def test_split_shares_the_pool_by_weight():
    r = rules(
        {
            "type": "split",
            "name": "split",
            "rate": "0.3",
            "parties": {"$payee": "6", "brand-x": "3", "ip-y": "1"},
        }
    )
    lines = r.price(sale(3337))  # pool 1001.1 -> 1001: 600.6 / 300.3 / 100.1
    assert shown(lines) == [
        ("brand-x", "split", 300, "分账 3/10"),
        ("ip-y", "split", 100, "分账 1/10"),
        ("seller-1", "split", 601, "分账 6/10"),
    ]
    assert lines[2].inputs == {"pool": 1001, "weight": "6"}
    assert payee_total(lines, "seller-1") == 601


def test_split_does_not_apply_without_an_amount():
    r = rules({"type": "split", "name": "split", "parties": {"$payee": 1, "brand": 1}})
    assert r.price(sale(0)) == []
    assert r.price(service()) == []


weights = st.dictionaries(
    st.sampled_from(["$payee", "brand", "ip", "channel", "store-9"]),
    st.integers(min_value=0, max_value=100).map(str),
    min_size=1,
).filter(lambda w: sum(int(v) for v in w.values()) > 0)


@settings(max_examples=300)
@given(
    st.integers(min_value=1, max_value=MAX_FEN),
    st.decimals(min_value=0, max_value=1, places=4, allow_nan=False),
    weights,
)
def test_the_parties_of_a_split_sum_exactly_to_the_pool(amount, rate, parties):
    r = rules({"type": "split", "name": "split", "rate": str(rate), "parties": parties})
    lines = r.price(sale(amount))
    pool = _round(Fraction(amount) * Fraction(rate))
    assert sum(ln.amount for ln in lines) == pool
    assert {ln.inputs["pool"] for ln in lines} == {pool}
    named = {("seller-1" if k == "$payee" else k): Decimal(v) for k, v in parties.items()}
    assert {ln.payee_id: ln.amount for ln in lines} == split(pool, named)
    assert sum(payee_total(lines, p) for p in named) == pool


# --- volume_step_bonus ----------------------------------------------------------------------

STEPS: dict[str, Any] = {
    "type": "volume_step_bonus",
    "name": "steps",
    "by": "services",
    "steps": [
        {"from": 10, "amount": 5000},
        {"from": 30, "amount": 20000},
        {"from": 50, "amount": 50000},
    ],
}


@pytest.mark.parametrize(
    ("count", "amount", "threshold"), [(10, 5000, 10), (35, 20000, 30), (50, 50000, 50)]
)
def test_volume_step_bonus_picks_the_highest_step_reached(count, amount, threshold):
    r = rules(BASE, STEPS)
    assert r.closes
    [line] = r.close("inst-1", PeriodFacts(Volumes(services=count)))
    assert (line.payee_id, line.component, line.type, line.amount) == (
        "inst-1",
        "steps",
        "volume_step_bonus",
        amount,
    )
    assert line.explanation == f"阶梯奖励：本期{count}达到{threshold}档，{amount // 100}.00元"
    assert line.inputs == {"by": "services", "count": count, "threshold": threshold}


def test_volume_step_bonus_pays_nothing_below_the_first_step_and_never_per_item():
    r = rules(BASE, STEPS)
    assert r.close("inst-1", PeriodFacts(Volumes(services=9, sales=100))) == []
    assert [ln.component for ln in r.price(service(), Volumes(services=99))] == ["base"]


# --- parse errors name their JSON path ------------------------------------------------------


def _err(definition: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as e:
        Rules.parse(definition)
    return e.value


@pytest.mark.parametrize(
    ("components", "top", "field"),
    [
        # unknown component type
        ([BASE, {"type": "joy", "name": "j"}], {}, "definition.components[1].type"),
        ([{"name": "x"}], {}, "definition.components[0].type"),
        # unknown setting, in a component, a window, a step and at the top
        ([{**BASE, "grade": {}}], {}, "definition.components[0].grade"),
        (
            [
                {
                    **NIGHT,
                    "windows": [{"from": "22:00", "to": "06:00", "coefficient": "1.5", "x": 1}],
                }
            ],
            {},
            "definition.components[0].windows[0].x",
        ),
        (
            [BASE, {**SURGE, "steps": [{"from": 1, "percent": "5", "pct": "5"}]}],
            {},
            "definition.components[1].steps[0].pct",
        ),
        ([BASE], {"currency": "CNY"}, "definition.currency"),
        # duplicate name
        ([BASE, {**REGIONAL, "name": "base"}], {}, "definition.components[1].name"),
        ([{**BASE, "name": "not a slug"}], {}, "definition.components[0].name"),
        # non-ascending steps
        (
            [{**SURGE, "steps": [{"from": 10, "percent": "5"}, {"from": 10, "percent": "9"}]}],
            {},
            "definition.components[0].steps[1].from",
        ),
        (
            [{**MARGINAL, "tiers": [{"from": 5, "rate": "0.1"}, {"from": 1, "rate": "0.2"}]}],
            {},
            "definition.components[0].tiers[1].from",
        ),
        (
            [{**STEPS, "steps": [{"from": 3, "amount": 1}, {"from": 2, "amount": 2}]}],
            {},
            "definition.components[0].steps[1].from",
        ),
        # float rate or amount
        ([BASE, {**REGIONAL, "tiers": {"tier1": 1.2}}], {}, "definition.components[1].tiers.tier1"),
        (
            [{**MARGINAL, "tiers": [{"from": 1, "rate": 0.05}]}],
            {},
            "definition.components[0].tiers[0].rate",
        ),
        (
            [{"type": "rebates", "name": "r", "levels": ["0.05", 0.02]}],
            {},
            "definition.components[0].levels[1]",
        ),
        (
            [{"type": "distance", "name": "d", "free_km": 10.5}],
            {},
            "definition.components[0].free_km",
        ),
        ([{**BASE, "grades": {"A": 80.0}}], {}, "definition.components[0].grades.A"),
        (
            [{"type": "materials_deduction", "name": "m", "amount": 15.0}],
            {},
            "definition.components[0].amount",
        ),
        (
            [{"type": "split", "name": "s", "parties": {"brand": 0.5}}],
            {},
            "definition.components[0].parties.brand",
        ),
        (
            [{**DIFFICULTY, "by_template": {"t": "-1"}}],
            {},
            "definition.components[0].by_template.t",
        ),
        (
            [{**DIFFICULTY, "by_template": {"t": "NaN"}}],
            {},
            "definition.components[0].by_template.t",
        ),
        # bad timezone
        ([BASE], {"timezone": "Mars/Olympus_Mons"}, "definition.timezone"),
        ([BASE], {"timezone": ""}, "definition.timezone"),
        ([BASE], {"timezone": 8}, "definition.timezone"),
        # bad time window
        (
            [{**NIGHT, "windows": [{"from": "6:00", "to": "22:00", "coefficient": "1.2"}]}],
            {},
            "definition.components[0].windows[0].from",
        ),
        (
            [{**NIGHT, "windows": [{"from": "06:00", "to": "24:00", "coefficient": "1.2"}]}],
            {},
            "definition.components[0].windows[0].to",
        ),
        (
            [{**NIGHT, "windows": [{"from": "06:00", "to": 1800, "coefficient": "1.2"}]}],
            {},
            "definition.components[0].windows[0].to",
        ),
        (
            [{**NIGHT, "windows": [{"from": "08:00", "to": "08:00", "coefficient": "1.2"}]}],
            {},
            "definition.components[0].windows[0]",
        ),
        ([{**NIGHT, "windows": []}], {}, "definition.components[0].windows"),
        # references and shapes
        (
            [{**BASE, "by_service_type": {"smart_lock": "Z"}}],
            {},
            "definition.components[0].by_service_type.smart_lock",
        ),
        ([{**BASE, "default": "Z"}], {}, "definition.components[0].default"),
        (
            [{**REGIONAL, "regions": {"上海市": "tier9"}}],
            {},
            "definition.components[0].regions.上海市",
        ),
        ([{**REGIONAL, "default_tier": "tier9"}], {}, "definition.components[0].default_tier"),
        (
            [{**CALENDAR, "holidays": {"2026-13-01": 100}}],
            {},
            "definition.components[0].holidays.2026-13-01",
        ),
        (
            [{**CALENDAR, "seasons": [{"months": [13], "amount": 1}]}],
            {},
            "definition.components[0].seasons[0].months",
        ),
        ([{**SURGE, "window_hours": 0}], {}, "definition.components[0].window_hours"),
        (
            [{**RETRO, "tiers": [{"from": 1, "rate": "0.1", "retroactive": "yes"}]}],
            {},
            "definition.components[0].tiers[0].retroactive",
        ),
        ([{**MARGINAL, "tier_by": "likes"}], {}, "definition.components[0].tier_by"),
        ([{**STEPS, "by": "likes"}], {}, "definition.components[0].by"),
        (
            [{"type": "split", "name": "s", "parties": {"a": "0"}}],
            {},
            "definition.components[0].parties",
        ),
        ([{**BASE, "for": ["refund"]}], {}, "definition.components[0].for"),
        ([{**BASE, "label": 7}], {}, "definition.components[0].label"),
        ([{"type": "rebates", "name": "r", "levels": []}], {}, "definition.components[0].levels"),
        ([BASE, "base"], {}, "definition.components[1]"),
        ([], {}, "definition.components"),
    ],
)
def test_every_parse_error_names_its_json_path(components, top, field):
    assert _err({"components": components, **top}).field == field


def test_a_definition_must_be_an_object_with_components():
    assert _err([BASE]).field == "definition"
    assert _err({}).field == "definition.components"
    assert _err({"components": [BASE] * (41)}).field == "definition.components"


@pytest.mark.parametrize(
    ("component", "field"),
    [
        ({"type": ["base_fee"], "name": "x"}, "definition.components[0].type"),
        ({**REGIONAL, "regions": {"上海市": ["tier1"]}}, "definition.components[0].regions.上海市"),
        ({**REGIONAL, "default_tier": {"t": 1}}, "definition.components[0].default_tier"),
        ({**BASE, "for": [["service"]]}, "definition.components[0].for"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_a_parse_error_not_a_crash(component, field):
    assert _err({"components": [component]}).field == field


def test_every_component_type_is_covered_here():
    assert set(COMPONENTS) == {
        "base_fee",
        "regional",
        "difficulty",
        "time_of_day",
        "calendar_subsidy",
        "distance",
        "urgency_bonus",
        "rating_bonus",
        "materials_deduction",
        "surge",
        "commission",
        "rebates",
        "split",
        "volume_step_bonus",
    }


EVERYTHING: dict[str, Any] = {
    "timezone": SHANGHAI,
    "components": [
        {**BASE, "default": "A"},
        REGIONAL | {"default_tier": "tier3"},
        DIFFICULTY,
        NIGHT,
        CALENDAR,
        {"type": "distance", "name": "far", "free_km": "10", "per_km": 80, "flat": 2000},
        URGENCY,
        {"type": "rating_bonus", "name": "stars", "amount": 500},
        {"type": "materials_deduction", "name": "parts", "amount": "materials_fee"},
        SURGE,
        {**RETRO, "name": "commission"},
        {"type": "rebates", "name": "rebates", "levels": ["0.05", "0.02"]},
        {"type": "split", "name": "split", "rate": "0.2", "parties": {"$payee": "1", "b": "1"}},
        STEPS,
    ],
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**16), max_value=10**16)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["tier1", "A", "1.2", "22:00", "2026-10-01", "base", "sales"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*path, i))
    return out


@settings(max_examples=400)
@given(st.data())
def test_any_malformed_definition_is_refused_with_a_path_never_a_crash(data):
    definition = copy.deepcopy(EVERYTHING)
    path = data.draw(st.sampled_from(_paths(definition)[1:]))
    replacement = data.draw(json_values)
    target = definition
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = replacement
    try:
        Rules.parse(definition)
    except InvalidInput as e:
        assert e.field is not None
        assert e.field == "definition" or e.field.startswith("definition.")


def test_the_whole_rule_set_parses_and_prices():
    r = Rules.parse(EVERYTHING)
    lines = r.price(
        service(
            at=datetime(2026, 10, 3, 15, 0, tzinfo=UTC),  # Saturday 2026-10-03 23:00 in Shanghai
            region="上海市浦东新区",
            distance_km=Decimal("12"),
            urgency="urgent",
            rating=5,
            materials_supplied_by="customer",
            materials_fee=1000,
        ),
        Volumes(region_window=10),
    )
    assert [(ln.component, ln.amount) for ln in lines] == [
        ("base", 8000),
        ("region", 2400),  # 8000 × 0.3
        ("difficulty", 2080),  # 10400 × 0.2
        ("hours", 6240),  # 12480 × 0.5
        ("calendar", 6000),  # the holiday, not the weekend
        ("far", 2160),  # 2000 + 80 × 2
        ("urgent", 3000),
        ("stars", 500),
        ("parts", -1000),
        ("surge", 2938),  # 29380 × 0.1
    ]
    assert payee_total(lines, "inst-1") == 32318


def test_the_whole_rule_set_prices_a_sale_for_the_seller_their_agent_and_the_split():
    r = Rules.parse(EVERYTHING)
    lines = r.price(sale(10000), Volumes(sales=4, parents=("agent-a",)))
    assert shown(lines) == [
        ("seller-1", "commission", 500, "佣金5%（第2档）"),
        ("agent-a", "rebates", 500, "1级返利5%"),
        ("b", "split", 1000, "分账 1/2"),
        ("seller-1", "split", 1000, "分账 1/2"),
    ]
    assert payee_total(lines, "seller-1") == 1500
    assert r.closes and r.volume_by_payee and r.uses_parents


# --- the issue's example --------------------------------------------------------------------

LOCKS: dict[str, Any] = {
    "components": [
        {
            "type": "base_fee",
            "name": "base",
            "grades": {"A": 8000},
            "by_service_type": {"smart_lock": "A"},
        },
        {"type": "distance", "name": "distance", "free_km": "10", "flat": 2000},
        {"type": "materials_deduction", "name": "materials", "amount": 1500},
    ]
}


def test_the_issues_example_fifteen_smart_locks_last_week():
    """An installer installed 15 smart locks last week at a base of 80 yuan each, 8 of them
    beyond the standard distance (+20 yuan each), 3 with parts the customer supplied (-15 yuan
    each): 15 × 80 + 8 × 20 − 3 × 15 = 1315 yuan."""
    r = Rules.parse(LOCKS)
    monday = local(2026, 3, 2, 9, 0)
    distances = ["12", "15", "18.5", "10.1", "25", "11", "30", "14"] + ["3", "10", "7.5"] * 2
    distances += ["5"]
    by_customer = {0, 9, 14}  # one far away, two nearby
    assert len(distances) == 15
    week = period_of("weekly", SHANGHAI, monday)
    items = []
    for i, km in enumerate(distances):
        at = monday + timedelta(hours=11 * i)  # spread over the week
        assert period_of("weekly", SHANGHAI, at) == week
        items.append(
            service(
                at=at,
                distance_km=Decimal(km),
                materials_supplied_by="customer" if i in by_customer else "installer",
            )
        )
    priced = [r.price(item) for item in items]

    base = ("inst-1", "base", 8000, "基础服务费 A档 80.00元")
    parts = ("inst-1", "materials", -1500, "材料扣减（客户自备）-15.00元")
    for i, lines in enumerate(priced):
        expected = [base]
        km = Decimal(distances[i])
        if km > 10:
            beyond = km - 10
            expected.append(
                ("inst-1", "distance", 2000, f"远程补贴：超出10公里{beyond}公里，20.00元")
            )
        if i in by_customer:
            expected.append(parts)
        assert shown(lines) == expected, i

    assert shown(priced[2]) == [
        base,
        ("inst-1", "distance", 2000, "远程补贴：超出10公里8.5公里，20.00元"),
    ]
    assert shown(priced[9]) == [base, parts]  # exactly 10 km is within the standard distance
    assert shown(priced[0])[1:] == [
        ("inst-1", "distance", 2000, "远程补贴：超出10公里2公里，20.00元"),
        parts,
    ]
    assert sum(1 for lines in priced for ln in lines if ln.component == "distance") == 8
    assert sum(1 for lines in priced for ln in lines if ln.component == "materials") == 3
    total = sum(payee_total(lines, "inst-1") for lines in priced)
    assert total == 15 * 8000 + 8 * 2000 - 3 * 1500 == 131500


# --- Earning --------------------------------------------------------------------------------


def _line(payee: str, component: str, type_: str, amount: int, explanation: str) -> dict[str, Any]:
    return Line(payee, component, type_, amount, explanation, {"x": 1}).as_dict()


def sold(amount: int = 10000, lines: list[dict[str, Any]] | None = None) -> Earning:
    facts = sale(amount).as_dict()
    return Earning(
        source=f"order:{amount}:{len(lines or [])}",
        facts=facts,
        rule_set="distributors",
        rule_version=1,
        volumes=Volumes(sales=1).as_dict(),
        lines=lines
        if lines is not None
        else [
            _line("seller-1", "commission", "commission", 500, "佣金5%（第1档）"),
            _line("agent-a", "rebates", "rebates", 200, "1级返利2%"),
        ],
        held=None,
        meta=META,
    )


def test_claw_back_takes_back_at_the_original_rate_proportionally():
    earning = sold()
    lines = earning.claw_back("refund:1", 2500, META)
    assert [(ln["payee_id"], ln["component"], ln["type"], ln["amount"]) for ln in lines] == [
        ("seller-1", "commission", "clawback", -125),
        ("agent-a", "rebates", "clawback", -50),
    ]
    assert lines[0]["explanation"] == "退款追回：佣金5%（第1档）"
    assert lines[0]["inputs"] == {
        "component_type": "commission",
        "refund": "refund:1",
        "refunded": 2500,
        "sale_amount": 10000,
        "original": 500,
    }
    assert earning.clawed == 2500
    assert len(earning.lines) == 4


def test_the_same_refund_twice_takes_nothing_twice():
    earning = sold()
    assert earning.claw_back("refund:1", 2500, META)
    version = earning.version
    assert earning.claw_back("refund:1", 2500, META) == []
    assert earning.version == version
    assert earning.clawed == 2500


def test_partial_refunds_never_claw_back_more_than_the_sale():
    earning = sold()
    earning.claw_back("refund:1", 6000, META)
    second = earning.claw_back("refund:2", 6000, META)  # only 4000 was left to refund
    assert [ln["amount"] for ln in second] == [-200, -80]
    assert second[0]["inputs"]["refunded"] == 4000
    assert earning.clawed == 10000
    assert earning.claw_back("refund:3", 100, META) == []
    for payee in ("seller-1", "agent-a"):
        assert sum(ln["amount"] for ln in earning.lines if ln["payee_id"] == payee) == 0


def test_a_sale_refunded_in_halves_nets_every_line_to_zero():
    """5 fen halved is 2.5 twice: rounding each part on its own would take back 6."""
    earning = sold(100, [_line("seller-1", "commission", "commission", 5, "佣金5%")])
    first = earning.claw_back("refund:1", 50, META)
    second = earning.claw_back("refund:2", 50, META)
    assert sum(ln["amount"] for ln in first + second) == -5
    assert sum(ln["amount"] for ln in earning.lines) == 0


@settings(max_examples=200)
@given(
    st.integers(min_value=1, max_value=10**6),
    st.lists(st.integers(min_value=-100, max_value=10**6), min_size=1, max_size=6),
    st.lists(st.integers(min_value=-(10**5), max_value=10**5), min_size=1, max_size=4),
)
def test_clawbacks_across_partial_refunds_stay_within_each_line(amount, refunds, originals):
    lines = [
        _line(f"p{i}", f"c{i}", "commission", original, "x") for i, original in enumerate(originals)
    ]
    earning = sold(amount, lines)
    for n, refunded in enumerate(refunds):
        earning.claw_back(f"refund:{n}", refunded, META)
    refunded_total = min(amount, sum(max(r, 0) for r in refunds))
    assert earning.clawed <= amount
    for i, original in enumerate(originals):
        back = sum(
            ln["amount"] for ln in earning.lines[len(originals) :] if ln["payee_id"] == f"p{i}"
        )
        assert abs(back) <= abs(original)
        assert back == -scale(original, Decimal(earning.clawed) / Decimal(amount))
    if earning.clawed == amount:
        assert sum(ln["amount"] for ln in earning.lines) == 0
    assert earning.clawed <= refunded_total


def test_claw_back_does_nothing_for_a_held_earning_or_no_sale():
    held = Earning(
        source="order:held",
        facts=sale(10000).as_dict(),
        rule_set=None,
        rule_version=None,
        volumes=None,
        lines=[],
        held="no payee",
        meta=META,
    )
    assert held.claw_back("refund:1", 5000, META) == []
    job = Earning(
        source="job:1",
        facts=service().as_dict(),
        rule_set="installers",
        rule_version=1,
        volumes={},
        lines=[_line("inst-1", "base", "base_fee", 8000, "基础服务费")],
        held=None,
        meta=META,
    )
    assert job.claw_back("refund:1", 5000, META) == []


def test_correct_posts_only_the_differences_per_payee_and_component():
    earning = Earning(
        source="job:7",
        facts=service().as_dict(),
        rule_set="installers",
        rule_version=1,
        volumes={},
        lines=[
            _line("inst-1", "base", "base_fee", 8000, "基础服务费 A档 80.00元"),
            _line("inst-1", "far", "distance", 2000, "远程补贴"),
            _line("inst-1", "night", "time_of_day", 1000, "时段系数"),
        ],
        held=None,
        meta=META,
    )
    v2 = [
        Line("inst-1", "base", "base_fee", 8000, "基础服务费 A档 80.00元"),
        Line("inst-1", "far", "distance", 2500, "远程补贴25"),
        Line("inst-1", "urgent", "urgency_bonus", 1000, "加急奖励10.00元"),
    ]
    delta = earning.correct(2, v2, "distance subsidy raised", META)
    assert [(d["payee_id"], d["component"], d["type"], d["amount"]) for d in delta] == [
        ("inst-1", "far", "correction", 500),
        ("inst-1", "night", "correction", -1000),
        ("inst-1", "urgent", "correction", 1000),
    ]
    assert [d["explanation"] for d in delta] == [
        "更正：远程补贴25",
        "更正：night",
        "更正：加急奖励10.00元",
    ]
    assert [d["inputs"] for d in delta] == [
        {"component_type": "distance"},
        {"component_type": "time_of_day"},
        {"component_type": "urgency_bonus"},
    ]
    assert earning.rule_version == 2
    assert sum(ln["amount"] for ln in earning.lines) == sum(ln.amount for ln in v2)
    with pytest.raises(Conflict) as e:
        earning.correct(2, v2, "again", META)
    assert e.value.code == "same_version"
    with pytest.raises(Conflict) as e:
        earning.correct(3, v2, "same prices", META)
    assert e.value.code == "nothing_to_correct"
    assert earning.rule_version == 2


def test_a_held_earning_is_priced_not_corrected():
    earning = Earning(
        source="job:held",
        facts=service(service_type="sauna").as_dict(),
        rule_set=None,
        rule_version=None,
        volumes=None,
        lines=[],
        held="unpriceable",
        meta=META,
    )
    with pytest.raises(Conflict) as e:
        earning.correct(1, [Line("inst-1", "base", "base_fee", 1, "x")], "r", META)
    assert e.value.code == "earning_held"
    earning.price(
        "inst-1", "installers", 2, {}, [Line("inst-1", "base", "base_fee", 9000, "x")], META
    )
    assert (earning.held, earning.rule_version, earning.lines[0]["amount"]) == (None, 2, 9000)
    with pytest.raises(Conflict) as e:
        earning.price("inst-1", "installers", 2, {}, [], META)
    assert e.value.code == "already_priced"


def test_dispute_and_resolve():
    earning = sold()
    first = earning.dispute(0, "the commission should be 6%", META)
    assert first == f"{earning.id}:1"
    with pytest.raises(Conflict) as e:
        earning.dispute(0, "again", META)
    assert e.value.code == "already_disputed"
    with pytest.raises(InvalidInput) as e:
        earning.dispute(2, "no such line", META)
    assert e.value.field == "line"
    with pytest.raises(InvalidInput) as e:
        earning.resolve(first, "adjusted", 0, "no amount", META)
    assert e.value.field == "amount"
    with pytest.raises(InvalidInput) as e:
        earning.resolve(first, "rejected", 100, "an amount", META)
    assert e.value.field == "amount"
    with pytest.raises(InvalidInput) as e:
        earning.resolve(first, "maybe", 100, "?", META)
    assert e.value.field == "outcome"
    with pytest.raises(InvalidInput) as e:
        earning.resolve("nope", "rejected", 0, "?", META)
    assert e.value.field == "dispute_id"

    line = earning.resolve(first, "adjusted", 100, "按6%", META)
    assert line == {
        "payee_id": "seller-1",
        "component": "commission",
        "type": "adjustment",
        "amount": 100,
        "explanation": "争议调整：按6%",
        "inputs": {"dispute": first, "line": 0},
    }
    assert earning.lines[-1] == line
    with pytest.raises(Gone) as e:
        earning.resolve(first, "adjusted", 100, "twice", META)
    assert e.value.code == "dispute_resolved"

    second = earning.dispute(1, "rebate too low", META)  # another line; then the same line again
    assert earning.resolve(second, "rejected", 0, "rate is right", META) is None
    assert len(earning.lines) == 3
    with pytest.raises(Gone):
        earning.resolve(second, "rejected", 0, "twice", META)
    third = earning.dispute(0, "once more", META)
    assert third == f"{earning.id}:3"


# --- Payout ---------------------------------------------------------------------------------


def _payout() -> Payout:
    return Payout(
        payee_id="inst-1",
        group="community",
        period="2026-03-02",
        amount=131500,
        idempotency_key="payout:inst-1:community:2026-03-02",
        meta=META,
    )


def test_payout_fail_retry_settle_keeps_the_idempotency_key():
    payout = _payout()
    key = payout.idempotency_key
    assert payout.id == Payout.create_id("inst-1", "community", "2026-03-02")
    payout.fail("gateway timeout", META)
    assert payout.status == "failed"
    payout.retry(META)
    assert (payout.status, payout.attempt, payout.idempotency_key) == ("issued", 2, key)
    payout.fail("gateway timeout", META)
    payout.retry(META)
    assert payout.attempt == 3
    assert payout.settle("wx:4200001", META) is True
    assert payout.status == "settled"
    assert payout.idempotency_key == key
    version = payout.version
    assert payout.settle("wx:4200001", META) is False
    assert payout.version == version
    events = payout.collect_events()
    assert [type(e).__name__ for e in events] == [
        "Issued",
        "Failed",
        "Retried",
        "Failed",
        "Retried",
        "Settled",
    ]
    assert [e.attempt for e in events if type(e).__name__ in ("Failed", "Retried")] == [1, 2, 2, 3]


def test_payout_retry_of_an_issued_payout_is_a_conflict():
    payout = _payout()
    with pytest.raises(Conflict) as e:
        payout.retry(META)
    assert e.value.code == "payout_issued"
    payout.settle("wx:1", META)
    with pytest.raises(Conflict) as e:
        payout.fail("late failure", META)
    assert e.value.code == "payout_settled"
    with pytest.raises(Conflict) as e:
        payout.retry(META)
    assert e.value.code == "payout_settled"


def test_a_failed_payout_cannot_settle_before_its_retry():
    payout = _payout()
    payout.fail("no account", META)
    with pytest.raises(Conflict) as e:
        payout.settle("wx:1", META)
    assert e.value.code == "payout_failed"


# --- RuleSet --------------------------------------------------------------------------------


def test_rule_set_version_at_picks_the_latest_effective_from_not_after_the_time():
    jan = datetime(2026, 1, 1, tzinfo=UTC)
    mar = datetime(2026, 3, 1, tzinfo=UTC)
    rule_set = RuleSet(key="installers", definition=LOCKS, effective_from=mar, meta=META)
    assert rule_set.id == RuleSet.create_id("installers")
    assert rule_set.revise({"components": [BASE]}, jan, META) == 2
    assert rule_set.revise({"components": [BASE, URGENCY]}, mar, META) == 3
    assert rule_set.current_version == 3
    assert rule_set.version_at(jan)["rule_version"] == 2
    assert rule_set.version_at(mar - timedelta(microseconds=1))["rule_version"] == 2
    assert rule_set.version_at(mar)["rule_version"] == 3  # the later of two at the same time
    assert rule_set.version_at(datetime(2030, 1, 1, tzinfo=UTC))["definition"] == {
        "components": [BASE, URGENCY]
    }
    with pytest.raises(Conflict) as e:
        rule_set.version_at(jan - timedelta(seconds=1))
    assert e.value.code == "no_rules_in_force"


# --- cycles ---------------------------------------------------------------------------------


def test_weekly_periods_start_monday_midnight_in_shanghai():
    sunday_16_utc = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # Monday 2026-03-02 00:00 local
    start, end = period_of("weekly", SHANGHAI, sunday_16_utc)
    assert (start, end) == (sunday_16_utc, sunday_16_utc + timedelta(days=7))
    assert period_of("weekly", SHANGHAI, end - timedelta(microseconds=1)) == (start, end)
    assert period_of("weekly", SHANGHAI, sunday_16_utc - timedelta(microseconds=1)) == (
        sunday_16_utc - timedelta(days=7),
        sunday_16_utc,
    )
    assert period_name(SHANGHAI, start) == "2026-03-02"
    assert period_named("weekly", SHANGHAI, "2026-03-02") == (start, end)


def test_monthly_periods_across_december_to_january():
    dec = period_of("monthly", SHANGHAI, datetime(2026, 12, 15, tzinfo=UTC))
    assert dec == (
        datetime(2026, 11, 30, 16, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 16, 0, tzinfo=UTC),
    )
    # 2026-12-31 16:30 UTC is already New Year's Day in Shanghai
    jan = period_of("monthly", SHANGHAI, datetime(2026, 12, 31, 16, 30, tzinfo=UTC))
    assert jan == (
        datetime(2026, 12, 31, 16, 0, tzinfo=UTC),
        datetime(2027, 1, 31, 16, 0, tzinfo=UTC),
    )
    assert period_name(SHANGHAI, jan[0]) == "2027-01-01"
    assert period_named("monthly", SHANGHAI, "2026-12-01") == dec
    assert period_named("monthly", SHANGHAI, "2027-01-01") == jan
    feb = period_named("monthly", SHANGHAI, "2028-02-01")
    assert feb[1] - feb[0] == timedelta(days=29)


def test_daily_periods_by_the_local_date():
    at = datetime(2026, 3, 4, 17, 0, tzinfo=UTC)  # 2026-03-05 01:00 in Shanghai
    start, end = period_of("daily", SHANGHAI, at)
    assert (start, end) == (
        datetime(2026, 3, 4, 16, 0, tzinfo=UTC),
        datetime(2026, 3, 5, 16, 0, tzinfo=UTC),
    )
    assert period_name(SHANGHAI, start) == "2026-03-05"
    assert period_of("daily", "UTC", at)[0] == datetime(2026, 3, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cycle", "name"),
    [
        ("weekly", "2026-03-03"),  # a Tuesday
        ("weekly", "2026-03-08"),  # a Sunday
        ("monthly", "2026-12-02"),
        ("monthly", "2026-12-31"),
        ("daily", "2026-02-30"),
        ("weekly", "last week"),
    ],
)
def test_period_named_refuses_a_date_that_does_not_start_a_period(cycle, name):
    with pytest.raises(InvalidInput) as e:
        period_named(cycle, SHANGHAI, name)
    assert e.value.field == "period"


@given(
    st.sampled_from(["daily", "weekly", "monthly"]),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_every_instant_falls_in_the_period_its_name_gives_back(cycle, at):
    start, end = period_of(cycle, SHANGHAI, at)
    assert start <= at < end
    assert period_named(cycle, SHANGHAI, period_name(SHANGHAI, start)) == (start, end)
    assert period_of(cycle, SHANGHAI, end)[0] == end


def test_a_retroactive_tier_below_a_marginal_top_tier_still_tops_up():
    """3 % → 5 % retroactive from the 4th sale → 8 % marginal from the 6th: after six sales
    the first three are owed 5 %, the sixth keeps its 8 %."""
    tiers = {
        **RETRO,
        "tiers": [*RETRO["tiers"], {"from": 6, "rate": "0.08"}],
    }
    r = rules(tiers)
    paid = [r.price(sale(1000), Volumes(sales=n))[0].amount for n in range(1, 7)]
    assert paid == [30, 30, 30, 50, 50, 80]
    period = PeriodFacts(
        Volumes(sales=6), tuple(PeriodSale(f"s{i}", 1000, c) for i, c in enumerate(paid))
    )
    [top_up] = r.close("seller-1", period)
    assert top_up.amount == 3 * (50 - 30)
    assert top_up.inputs["rate"] == "0.05" and top_up.inputs["tier"] == 2


def test_a_holiday_listed_at_zero_is_a_working_weekend_day():
    r = rules(
        {
            "type": "calendar_subsidy",
            "name": "calendar",
            "weekend": 1000,
            "holidays": {"2026-03-07": 0},  # a Saturday worked in exchange (调休)
        }
    )
    assert r.price(service(local(2026, 3, 7))) == []
    assert [ln.amount for ln in r.price(service(local(2026, 3, 8)))] == [1000]


def test_a_correction_after_a_refund_pays_only_on_what_is_still_sold():
    earning = sold(10000, [_line("seller-1", "commission", "commission", 500, "佣金5%")])
    earning.claw_back("refund-1", 10000, META)  # refunded in full
    with pytest.raises(Conflict) as e:
        earning.correct(2, [Line("seller-1", "commission", "commission", 700, "佣金7%")], "r", META)
    assert e.value.code == "nothing_to_correct"
    half = sold(10000, [_line("seller-1", "commission", "commission", 500, "佣金5%")])
    half.claw_back("refund-1", 5000, META)
    [delta] = half.correct(
        2, [Line("seller-1", "commission", "commission", 700, "佣金7%")], "r", META
    )
    assert delta["amount"] == 100  # (700 - 500) on the half still sold
    assert sum(ln["amount"] for ln in half.lines) == 350  # 7 % of the 5,000 kept
