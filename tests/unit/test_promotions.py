"""Coupons and points: a coupon is redeemed (核销) once, refused when expired or revoked; points
are earned and spent once per reference and never overdrawn; every movement is an event, so a
balance and a coupon's state can be shown as of any date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.promotions.application import CouponSpec
from domain.shared import Conflict, Gone, InvalidInput, NotFound
from infra.bootstrap import Container
from infra.promotions import sweep_expired
from projections.promotions import promotions as read
from tests.factories import meta
from tests.unit.world import names_in_log, project

# When this module was imported: with many tests before it, minutes before a test runs. A test
# that compares with what its own commands record asks the clock again.
NOW = datetime.now(UTC)


def customer(c: Container) -> str:
    return c.customers.add_customer(
        identities=[("openid", f"o-{NOW.timestamp()}")], tags=[], owner=None, meta=meta()
    ).id


def fifty_off(days: int = 30, min_spend: int = 20_000, start: datetime = NOW) -> CouponSpec:
    return CouponSpec.parse(
        "amount_off", 5_000, min_spend, start - timedelta(days=1), start + timedelta(days=days)
    )


def test_a_coupon_is_redeemed_once_and_a_retry_for_the_same_order_answers_the_same(
    container: Container,
) -> None:
    p = container.promotions
    who = customer(container)
    code = p.issue_coupon(
        who, fifty_off(), issued_by="staff", issuer_ref="staff:li", meta=meta()
    ).id

    with pytest.raises(Conflict) as small:
        p.redeem_coupon(code, order_ref="T-1", order_total=10_000, meta=meta())
    assert small.value.code == "below_min_spend"
    assert p.redeem_coupon(code, order_ref="T-2", order_total=30_000, meta=meta()) == (5_000, 4)
    assert p.redeem_coupon(code, order_ref="T-2", order_total=30_000, meta=meta()) == (5_000, None)
    with pytest.raises(Conflict) as twice:
        p.redeem_coupon(code, order_ref="T-3", order_total=30_000, meta=meta())
    assert twice.value.code == "coupon_redeemed"
    assert names_in_log(container).count("CouponRedeemed") == 1
    with pytest.raises(Conflict):
        p.revoke_coupon(code, reason="too late", meta=meta())


def test_a_percentage_coupon_takes_its_share_rounded_to_the_fen(container: Container) -> None:
    p = container.promotions
    half = CouponSpec.parse(
        "percent_off", "0.5", 0, NOW - timedelta(hours=1), NOW + timedelta(days=1)
    )
    code = p.issue_coupon(
        customer(container), half, issued_by="campaign", issuer_ref="spring", meta=meta()
    ).id
    assert p.redeem_coupon(code, order_ref="T-9", order_total=9_999, meta=meta())[0] == 5_000


def test_expired_and_revoked_coupons_are_refused_and_the_sweep_records_expiry_once(
    container: Container,
) -> None:
    p = container.promotions
    who = customer(container)
    lapsed = p.issue_coupon(
        who, fifty_off(days=1, start=NOW - timedelta(days=3)), issued_by="rule",
        issuer_ref="birthday", meta=meta(at=NOW - timedelta(days=3)),
    ).id  # fmt: skip
    revoked = p.issue_coupon(who, fifty_off(), issued_by="staff", issuer_ref="x", meta=meta()).id
    p.revoke_coupon(revoked, reason="issued by mistake", meta=meta())

    with pytest.raises(Gone) as expired:
        p.redeem_coupon(lapsed, order_ref="T-1", order_total=30_000, meta=meta())
    assert expired.value.code == "coupon_expired"
    with pytest.raises(Gone) as gone:
        p.redeem_coupon(revoked, order_ref="T-1", order_total=30_000, meta=meta())
    assert gone.value.code == "coupon_revoked"

    project(container)
    assert sweep_expired(container, meta()) == [lapsed]
    project(container)
    assert sweep_expired(container, meta()) == []
    assert names_in_log(container).count("CouponExpired") == 1
    assert read.find_coupon(container.read_db, lapsed)["status"] == "expired"  # type: ignore[index]
    # As of the day it was issued it was usable; now it is expired.
    then = NOW - timedelta(days=3) + timedelta(hours=1)
    assert read.coupon_status_as_of(container.read_db, lapsed, then) == "issued"
    assert (
        read.coupon_status_as_of(
            container.read_db, lapsed, datetime.now(UTC) + timedelta(minutes=1)
        )
        == "expired"
    )
    assert read.coupon_status_as_of(container.read_db, lapsed, NOW - timedelta(days=10)) is None


def test_points_are_earned_once_per_reference_and_never_overdrawn(container: Container) -> None:
    p = container.promotions
    who = customer(container)
    week_ago = NOW - timedelta(days=7)
    p.earn_points(who, 300, reason="order", ref="order:T-1", meta=meta(at=week_ago))
    again = p.earn_points(who, 300, reason="order", ref="order:T-1", meta=meta(at=week_ago))
    assert (again.balance, again.position) == (300, None)
    p.earn_points(
        who, 200, reason="review", ref="review:T-1", meta=meta(at=NOW - timedelta(days=1))
    )
    with pytest.raises(Conflict) as short:
        p.spend_points(who, 900, reason="gift", ref="gift:1", meta=meta())
    assert short.value.code == "insufficient_points"
    assert p.spend_points(who, 400, reason="gift", ref="gift:1", meta=meta()).balance == 100

    project(container)
    assert read.points(container.read_db, who)["balance"] == 100
    assert read.points(container.read_db, who, NOW - timedelta(days=3))["balance"] == 300
    assert read.points(container.read_db, who, NOW - timedelta(days=8))["balance"] == 0
    moves = read.points(container.read_db, who)["movements"]
    assert [m["delta"] for m in moves] == [-400, 200, 300]


def test_points_exchanged_for_a_coupon_move_together_or_not_at_all(container: Container) -> None:
    p = container.promotions
    who = customer(container)
    p.earn_points(who, 500, reason="order", ref="order:T-1", meta=meta())
    before = container.head()

    with pytest.raises(Conflict):
        p.exchange_points_for_coupon(who, 800, fifty_off(), meta=meta())
    assert container.head() == before  # neither the spending nor the coupon
    r = p.exchange_points_for_coupon(who, 400, fifty_off(), meta=meta())

    assert r.balance == 100 and r.code is not None
    coupon = p.coupon(r.code)
    assert (coupon.customer_id, coupon.issued_by, coupon.issuer_ref) == (
        who,
        "points",
        "points:400",
    )
    assert names_in_log(container, before) == ["PointsSpent", "CouponIssued"]


def test_bad_input_is_refused(container: Container) -> None:
    p = container.promotions
    who = customer(container)
    with pytest.raises(InvalidInput) as rate:
        CouponSpec.parse("percent_off", "1.5", 0, NOW, NOW + timedelta(days=1))
    assert rate.value.field == "value"
    with pytest.raises(InvalidInput) as order:
        CouponSpec.parse("amount_off", 5_000, 0, NOW, NOW - timedelta(days=1))
    assert order.value.field == "expires_at"
    with pytest.raises(NotFound):
        p.issue_coupon(
            "6f0c1b1e-8a7e-4c55-9d1a-2a6f5a2b9e10",
            fifty_off(),
            issued_by="staff",
            issuer_ref="x",
            meta=meta(),
        )
    with pytest.raises(InvalidInput):
        p.issue_coupon("not-a-uuid", fifty_off(), issued_by="staff", issuer_ref="x", meta=meta())
    code = p.issue_coupon(
        who, fifty_off(), issued_by="staff", issuer_ref="x", code="SPRING-1", meta=meta()
    ).id
    with pytest.raises(Conflict) as taken:
        p.issue_coupon(who, fifty_off(), issued_by="staff", issuer_ref="x", code=code, meta=meta())
    assert taken.value.code == "coupon_exists"
    with pytest.raises(InvalidInput):
        p.earn_points(who, 0, reason="x", ref="y", meta=meta())
