"""The loyalty program: a completed order earns its buyer points once (clawed back as it is
refunded), a buyer linked later brings the points of their completed orders, and a customer's
tier follows their spend over the period, each change an event naming the program version
that decided it. The process that does it records nothing twice, across a restart or a
rebuild of the read models."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from api.cli_support import current
from domain.orders.model import OrderLine, OrderSnapshot, Refund
from domain.promotions.loyalty import Program
from domain.scope import Scope
from domain.shared import Conflict, InvalidInput
from infra.bootstrap import Container
from infra.promotions import review_tiers
from projections.promotions import promotions as read
from tests.factories import meta
from tests.unit.world import names_in_log

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)

PROGRAM: dict[str, Any] = {
    "points_per_yuan": "1",
    "period_days": 365,
    "tiers": [
        {"key": "ordinary", "name": "普通会员", "min_spend": 0, "price_rate": "0.95"},
        {"key": "silver", "name": "银卡", "min_spend": 500_000, "price_rate": "0.9"},
        {
            "key": "gold",
            "name": "金卡",
            "min_spend": 2_000_000,
            "price_rate": "0.8",
            "adviser": True,
        },
    ],
}


def order(
    trade_id: str, payable: int, completed: datetime, buyer: str = "buyer-1"
) -> OrderSnapshot:
    return OrderSnapshot(
        platform="taobao",
        trade_id=trade_id,
        shop_id="shop-1",
        buyer_id=buyer,
        status="completed",
        placed_at=completed - timedelta(days=3),
        paid_at=completed - timedelta(days=3),
        completed_at=completed,
        lines=(OrderLine("l-1", "LOCK-X2", "智能门锁 X2", 1, payable, payable, 0, "locks"),),
        total=payable,
        discount=0,
        freight=0,
        payable=payable,
    )


def publish(c: Container, definition: dict[str, Any] = PROGRAM, expected: int = 0) -> None:
    c.promotions.publish_program(
        definition,
        effective_from=T0 - timedelta(days=1),
        expected_version=expected,
        meta=meta("staff:hq"),
    )


def buyer_customer(c: Container, buyer: str = "buyer-1") -> str:
    return c.customers.add_customer(
        identities=[("taobao_buyer", buyer)], tags=[], owner=None, meta=meta()
    ).id


def tiers(c: Container, customer: str) -> list[tuple[str | None, str, int, str]]:
    changes = read.membership(c.read_db, customer)["changes"]
    return [(x["from_tier"], x["tier"], x["spend"], x["occurred_at"][:10]) for x in changes[::-1]]


def test_completed_orders_earn_points_once_and_raise_the_tier_refunds_claw_back(
    container: Container,
) -> None:
    c = container
    publish(c)
    who = buyer_customer(c)
    first = order("T-1", 193_900, T0)
    c.orders.receive(first, "d-1", meta(source="taobao"))
    current(c)
    assert read.points(c.read_db, who)["balance"] == 1_939
    assert tiers(c, who) == [(None, "ordinary", 193_900, "2026-03-01")]

    second = order("T-2", 350_000, T0 + timedelta(days=10))
    c.orders.receive(second, "d-2", meta(source="taobao"))
    current(c)
    assert read.points(c.read_db, who)["balance"] == 1_939 + 3_500
    assert tiers(c, who)[-1] == ("ordinary", "silver", 543_900, "2026-03-11")
    member = read.membership(c.read_db, who)
    assert (member["tier"], member["program_version"]) == ("silver", 1)

    # 2,000 yuan of the second order refunded a week later: its points go, and the tier too.
    refunded = dataclasses.replace(
        second, refunds=(Refund("R-1", 200_000, None, T0 + timedelta(days=17)),)
    )
    c.orders.receive(refunded, "d-3", meta(source="taobao"))
    current(c)
    moves = read.points(c.read_db, who)["movements"]
    assert (moves[0]["delta"], moves[0]["ref"]) == (-2_000, f"refund:{_oid('T-2')}:R-1")
    assert moves[0]["balance"] == 3_439
    assert tiers(c, who)[-1] == ("silver", "ordinary", 343_900, "2026-03-18")

    # As of before the refund: the balance and the tier as they were then.
    before = T0 + timedelta(days=12)
    assert read.points(c.read_db, who, before)["balance"] == 5_439
    assert read.membership(c.read_db, who, before)["tier"] == "silver"

    # Every loyalty event names the order or refund that caused it.
    caused = [
        r.causation_id
        for r in c.read_log(0, 10_000)
        if r.name in ("PointsEarned", "PointsClawedBack", "MembershipTierChanged")
    ]
    assert caused and all(x.startswith("event:") for x in caused)


def test_the_process_records_nothing_twice_across_a_restart_and_a_rebuild(
    container: Container,
) -> None:
    c = container
    publish(c)
    who = buyer_customer(c)
    c.orders.receive(order("T-1", 600_000, T0), "d-1", meta(source="taobao"))
    current(c)
    assert c.loyalty is not None
    seen = names_in_log(c)
    assert seen.count("PointsEarned") == 1 and seen.count("MembershipEnrolled") == 1

    # A restart that lost its checkpoint: the whole log again.
    with c.read_db.transaction() as cur:
        cur.execute("UPDATE loyalty_positions SET position = 0")
    current(c)
    # A rebuild of every read model, then the process over everything once more.
    c.engine.rebuild(list(c.engine.projections), c.log_batches())
    with c.read_db.transaction() as cur:
        cur.execute("UPDATE loyalty_positions SET position = 0")
    current(c)
    assert names_in_log(c) == seen
    assert read.points(c.read_db, who)["balance"] == 6_000
    assert read.membership(c.read_db, who)["tier"] == "silver"


def test_a_buyer_linked_later_brings_the_points_of_their_completed_orders(
    container: Container,
) -> None:
    c = container
    publish(c)
    c.orders.receive(order("T-9", 120_000, T0, buyer="late-buyer"), "d-9", meta(source="taobao"))
    who = c.customers.add_customer(
        identities=[("openid", "o-late")], tags=[], owner=None, meta=meta()
    ).id
    current(c)
    assert read.points(c.read_db, who)["balance"] == 0

    c.customers.add_identity(
        UUID(who), kind="taobao_buyer", value="late-buyer", scope=Scope("admin"), meta=meta()
    )
    current(c)
    assert read.points(c.read_db, who)["balance"] == 1_200
    assert read.membership(c.read_db, who)["tier"] == "ordinary"


def test_orders_before_the_program_earn_nothing(container: Container) -> None:
    c = container
    who = buyer_customer(c)
    c.orders.receive(order("T-0", 100_000, T0 - timedelta(days=30)), "d-0", meta(source="taobao"))
    publish(c)
    current(c)
    assert read.points(c.read_db, who)["balance"] == 0
    assert read.membership(c.read_db, who)["tier"] is None


def test_the_tier_sweep_lowers_a_tier_once_spend_leaves_the_period(container: Container) -> None:
    c = container
    publish(c)
    who = buyer_customer(c)
    c.orders.receive(order("T-1", 2_500_000, T0), "d-1", meta(source="taobao"))
    current(c)
    assert read.membership(c.read_db, who)["tier"] == "gold"

    assert review_tiers(c, meta("system:tiers", at=T0 + timedelta(days=100))) == {
        "reviewed": 1,
        "changed": 0,
    }
    later = meta("system:tiers", at=T0 + timedelta(days=400))
    assert review_tiers(c, later) == {"reviewed": 1, "changed": 1}
    current(c)
    assert review_tiers(c, later) == {"reviewed": 1, "changed": 0}
    assert tiers(c, who)[-1] == ("gold", "ordinary", 0, "2027-04-05")


def test_a_program_version_is_published_against_the_version_last_seen(
    container: Container,
) -> None:
    c = container
    publish(c)
    with pytest.raises(Conflict) as stale:
        publish(c, expected=0)
    assert stale.value.code == "stale_version"
    publish(c, {**PROGRAM, "points_per_yuan": "2"}, expected=1)
    current(c)
    assert [v["definition"]["points_per_yuan"] for v in read.program_versions(c.read_db)] == [
        "1",
        "2",
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"points_per_yuan": 1.5}, "points_per_yuan"),
        ({"period_days": 0}, "period_days"),
        ({"tiers": []}, "tiers"),
        ({"tiers": [{"key": "a", "min_spend": 100}]}, "tiers[0].min_spend"),
        (
            {"tiers": [{"key": "a", "min_spend": 0}, {"key": "b", "min_spend": 0}]},
            "tiers[1].min_spend",
        ),
        ({"tiers": [{"key": "a", "min_spend": 0, "price_rate": "1.1"}]}, "tiers[0].price_rate"),
        ({"tiers": [{"key": "a", "min_spend": 0, "adviser": "yes"}]}, "tiers[0].adviser"),
        ({"tiers": [{"key": "a b", "min_spend": 0}]}, "tiers[0].key"),
        ({"bonus": 1}, "bonus"),
    ],
)
def test_a_bad_program_is_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as bad:
        Program.parse({**PROGRAM, **change})
    assert bad.value.field == field


def test_points_are_rounded_down_and_tiers_chosen_by_spend() -> None:
    program = Program.parse({**PROGRAM, "points_per_yuan": "1.5"})
    assert program.points_for(199) == 2  # 1.99 yuan x 1.5 = 2.985
    assert program.points_for(0) == 0
    assert [program.tier_for(s).key for s in (0, 499_999, 500_000, 2_000_000)] == [
        "ordinary",
        "ordinary",
        "silver",
        "gold",
    ]


def _oid(trade_id: str) -> str:
    from domain.orders.aggregates import Order

    return str(Order.create_id("taobao", trade_id))


def test_points_recorded_late_for_an_earlier_order_count_in_business_time(
    container: Container,
) -> None:
    """A review's points given at noon, recorded first; the points of an order completed that
    morning, recorded after by the process: the balance is counted in business time."""
    c = container
    publish(c)
    who = buyer_customer(c)
    noon = T0 + timedelta(days=5, hours=4)
    c.promotions.earn_points(who, 50, reason="review", ref="review:1", meta=meta(at=noon))
    c.orders.receive(order("T-1", 120_000, T0 + timedelta(days=5)), "d-1", meta(source="taobao"))
    current(c)
    shown = read.points(c.read_db, who)
    assert shown["balance"] == 1_250
    assert [(m["delta"], m["balance"]) for m in shown["movements"]] == [(50, 1_250), (1_200, 1_200)]
    morning = read.points(c.read_db, who, T0 + timedelta(days=5, hours=1))
    assert morning["balance"] == 1_200
