"""Regional price strategies: tiers and floats within HQ's band, promotions, versions in force at
the time asked, and emergency overrides that expire by themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.pricing.rules import Line, MemberRate, Strategy, quote
from domain.shared import Conflict, Gone, InvalidInput
from infra.bootstrap import Container
from tests.factories import meta

T0 = datetime(2026, 5, 1, tzinfo=UTC)
HANGZHOU, DINGXI, LANZHOU = "330100", "621100", "620100"


def definition(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "band": {"min": "-0.05", "max": "0.05"},
        "tiers": {"first": "1.00", "third_fourth": "0.95", "county": "0.90"},
        "regions": {HANGZHOU: "first", "620000": "third_fourth", DINGXI: "county"},
        "products": {"LOCK-S1": 199_900, "LOCK-X2": 299_900, "BATTERY": 9_900},
        "promotions": [
            {"id": "may-800-off-5000", "kind": "threshold", "threshold": 500_000, "off": 80_000},
            {
                "id": "flash-half",
                "kind": "percent_off",
                "rate": "0.5",
                "skus": ["BATTERY"],
                "starts": "2026-05-01T00:00:00Z",
                "ends": "2026-05-02T00:00:00Z",
            },
            {
                "id": "old-lock-trade-in",
                "kind": "trade_in",
                "subsidy": 30_000,
                "cap_rate": "0.15",
                "skus": ["LOCK-S1", "LOCK-X2"],
            },
        ],
    }
    return base | changes


def priced(
    lines: list[Line], region: str = HANGZHOU, at: datetime = T0, **kw: Any
) -> dict[str, Any]:
    return quote(
        Strategy.parse(definition()),
        region=region,
        at=at,
        lines=lines,
        regional_float=kw.get("regional_float", Decimal(0)),
        overrides=kw.get("overrides", []),
        member=kw.get("member"),
    )


def test_a_members_tier_rate_comes_off_the_promoted_price() -> None:
    silver = MemberRate("c-1", "silver", Decimal("0.9"), 2)
    plain = priced([Line("LOCK-S1", 2)])
    member = priced([Line("LOCK-S1", 2)], member=silver)

    assert plain["member"] is None
    assert member["member"] == {
        "customer_id": "c-1", "tier": "silver", "rate": "0.9", "program_version": 2,
    }  # fmt: skip
    assert member["lines"][0]["unit_price"] == 179_910  # 199,900 at 9折
    assert member["lines"][0]["subtotal"] == 2 * 179_910
    assert member["lines"][0]["steps"][-1] == {
        "step": "member", "tier": "silver", "rate": "0.9", "program_version": 2, "unit": 179_910,
    }  # fmt: skip
    # A tier that takes nothing off adds no step.
    ordinary = priced([Line("LOCK-S1", 1)], member=MemberRate("c-1", "ordinary", Decimal(1), 2))
    assert [s["step"] for s in ordinary["lines"][0]["steps"]] == ["regional"]


def test_a_line_is_priced_by_its_regions_tier() -> None:
    hangzhou = priced([Line("LOCK-S1", 1)])
    dingxi = priced([Line("LOCK-S1", 1)], region=DINGXI)
    lanzhou = priced([Line("LOCK-S1", 1)], region=LANZHOU)  # by its province's tier

    assert hangzhou["lines"][0]["unit_price"] == 199_900
    assert dingxi["lines"][0]["unit_price"] == 179_910
    assert (lanzhou["tier"], lanzhou["lines"][0]["unit_price"]) == ("third_fourth", 189_905)


def test_threshold_discount_comes_off_the_basket_shared_between_lines() -> None:
    basket = priced(
        [Line("LOCK-X2", 1), Line("LOCK-S1", 1), Line("BATTERY", 1)], at=T0 + timedelta(days=2)
    )

    assert basket["subtotal"] == 509_700
    assert basket["threshold"] == {
        "promotion_id": "may-800-off-5000", "threshold": 500_000, "off": 80_000,
    }  # fmt: skip
    shares = [line["threshold_share"] for line in basket["lines"]]
    assert sum(shares) == 80_000 and shares[0] > shares[1] > shares[2] > 0
    assert basket["total"] == 429_700
    assert sum(line["total"] for line in basket["lines"]) == basket["total"]


def test_a_basket_under_the_threshold_pays_in_full() -> None:
    assert priced([Line("LOCK-X2", 1)])["threshold"] is None


def test_a_time_limited_discount_applies_only_in_its_window() -> None:
    during = priced([Line("BATTERY", 2)], at=T0 + timedelta(hours=3))
    after = priced([Line("BATTERY", 2)], at=T0 + timedelta(days=1))

    assert during["lines"][0]["unit_price"] == 4_950
    assert during["lines"][0]["steps"][-1]["promotion_id"] == "flash-half"
    assert after["lines"][0]["unit_price"] == 9_900


def test_a_trade_in_subsidy_is_per_unit_and_capped_at_a_share_of_the_line() -> None:
    one = priced([Line("LOCK-S1", 2, trade_in=1)])["lines"][0]
    capped = priced([Line("LOCK-S1", 1, trade_in=1)], region=DINGXI)["lines"][0]

    assert (one["subtotal"], one["trade_in_subsidy"]) == (399_800, 30_000)
    assert capped["trade_in_subsidy"] == 26_987  # 15% of 179,910, under 30,000


def test_a_regions_float_moves_its_prices_and_stays_within_the_band() -> None:
    down = priced([Line("LOCK-S1", 1)], regional_float=Decimal("-0.03"))
    clamped = priced([Line("LOCK-S1", 1)], regional_float=Decimal("0.20"))

    assert down["lines"][0]["unit_price"] == 193_903
    assert (clamped["float"], clamped["lines"][0]["unit_price"]) == ("0.05", 209_895)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"band": {"min": "0.05", "max": "0.05"}}, "band"),
        ({"tiers": {"capital": "1"}}, "tiers.capital"),
        ({"regions": {"3301": "first"}}, "regions.3301"),
        ({"products": {"LOCK-S1": 1999.0}}, "products.LOCK-S1"),
        ({"promotions": [{"id": "x", "kind": "bogof"}]}, "promotions[0].kind"),
        (
            {"promotions": [{"id": "x", "kind": "threshold", "threshold": 100, "off": 100}]},
            "promotions[0].off",
        ),
        ({"promotions": [{"id": "x", "kind": "percent_off", "rate": 0.5}]}, "promotions[0].rate"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_strategy_is_refused_naming_the_part_at_fault(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        Strategy.parse(definition(**change))
    assert refused.value.field == field


# --- through the application: versions, floats, overrides -----------------------------------


def test_a_quote_is_priced_by_the_version_in_force_at_its_time(container: Container) -> None:
    pricing = container.pricing
    pricing.publish("default", definition(), effective_from=T0, expected_version=0, meta=meta())
    june = T0 + timedelta(days=31)
    dearer = definition(products={"LOCK-S1": 219_900, "LOCK-X2": 299_900, "BATTERY": 9_900})
    pricing.publish("default", dearer, effective_from=june, expected_version=1, meta=meta())

    may = pricing.quote(
        "default", region=HANGZHOU, at=T0 + timedelta(days=5), lines=[{"sku": "LOCK-S1"}]
    )
    later = pricing.quote("default", region=HANGZHOU, at=june, lines=[{"sku": "LOCK-S1"}])

    assert (may["strategy_version"], may["total"]) == (1, 199_900)
    assert (later["strategy_version"], later["total"]) == (2, 219_900)
    with pytest.raises(Conflict) as early:
        pricing.quote(
            "default", region=HANGZHOU, at=T0 - timedelta(days=1), lines=[{"sku": "LOCK-S1"}]
        )
    assert early.value.code == "no_strategy_in_force"
    with pytest.raises(Conflict) as stale:
        pricing.publish(
            "default", definition(), effective_from=june, expected_version=1, meta=meta()
        )
    assert stale.value.code == "stale_version"


def test_a_region_floats_only_within_hqs_band(container: Container) -> None:
    pricing = container.pricing
    pricing.publish("default", definition(), effective_from=T0, expected_version=0, meta=meta())

    pricing.set_float(
        "default",
        HANGZHOU,
        "-0.03",
        effective_from=T0 + timedelta(days=1),
        meta=meta(actor="staff:hz"),
    )
    with pytest.raises(InvalidInput) as outside:
        pricing.set_float(
            "default", HANGZHOU, "-0.08", effective_from=T0 + timedelta(days=2), meta=meta()
        )

    assert "outside HQ's band" in str(outside.value)
    before = pricing.quote("default", region=HANGZHOU, at=T0, lines=[{"sku": "LOCK-S1"}])
    after = pricing.quote(
        "default", region=HANGZHOU, at=T0 + timedelta(days=3), lines=[{"sku": "LOCK-S1"}]
    )
    assert (before["float"], before["total"]) == ("0", 199_900)
    assert (after["float"], after["total"]) == ("-0.03", 193_903)


def test_an_emergency_override_reprices_a_province_until_it_expires_or_is_lifted(
    container: Container,
) -> None:
    pricing = container.pricing
    pricing.publish("default", definition(), effective_from=T0, expected_version=0, meta=meta())
    quake = T0 + timedelta(days=10)
    pricing.declare_override(
        "default", override_id="gansu-quake", scope="620000", factor="0.8",
        reason="earthquake relief", starts_at=quake, expires_at=quake + timedelta(days=7),
        meta=meta(actor="staff:hq"),
    )  # fmt: skip

    def total(region: str, at: datetime) -> int:
        return pricing.quote("default", region=region, at=at, lines=[{"sku": "LOCK-S1"}])["total"]

    assert total(DINGXI, quake - timedelta(minutes=1)) == 179_910
    assert total(DINGXI, quake) == 143_928  # 179,910 x 0.8
    assert total(LANZHOU, quake + timedelta(days=1)) == 151_924
    assert total(HANGZHOU, quake) == 199_900  # another province
    assert total(DINGXI, quake + timedelta(days=7)) == 179_910  # expired by itself
    in_force = pricing.quote("default", region=DINGXI, at=quake, lines=[{"sku": "LOCK-S1"}])
    assert in_force["override"]["override_id"] == "gansu-quake"

    with pytest.raises(Conflict):
        pricing.declare_override(
            "default", override_id="gansu-quake", scope="620000", factor="0.9", reason="again",
            starts_at=quake, expires_at=quake + timedelta(days=1), meta=meta(),
        )  # fmt: skip
    with pytest.raises(InvalidInput):
        pricing.declare_override(
            "default", override_id="forever", scope="620000", factor="0.9", reason="too long",
            starts_at=quake, expires_at=quake + timedelta(days=400), meta=meta(),
        )  # fmt: skip

    # An override declared now and lifted an hour later is in force for that hour only.
    now = datetime.now(UTC)
    pricing.declare_override(
        "default", override_id="flood", scope=DINGXI, factor="0.9", reason="flood",
        starts_at=now, expires_at=now + timedelta(days=3), meta=meta(at=now),
    )  # fmt: skip
    pricing.lift_override(
        "default", "flood", reason="water receded", meta=meta(at=now + timedelta(hours=1))
    )
    assert total(DINGXI, now + timedelta(minutes=30)) == 161_919  # 179,910 x 0.9
    assert total(DINGXI, now + timedelta(hours=2)) == 179_910
    with pytest.raises(Gone) as ended:
        pricing.lift_override(
            "default", "flood", reason="again", meta=meta(at=now + timedelta(hours=2))
        )
    assert ended.value.code == "override_ended"
    lifted = next(
        o for o in pricing.describe("default")["overrides"] if o["override_id"] == "flood"
    )
    assert lifted["lifted"]["reason"] == "water receded"
