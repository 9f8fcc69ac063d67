"""渠道活码: a code validates its settings, refuses scans it must, and rotates its pool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.customers.aggregates import ChannelCode, Visitor
from domain.shared import Conflict, Gone, InvalidInput
from tests.factories import meta

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def make_code(pool: list[str], **overrides: Any) -> ChannelCode:
    fields: dict[str, Any] = {
        "name": "spring fair",
        "staff_pool": pool,
        "tags": ["spring"],
        "welcome_message": "欢迎",
        "expires_at": None,
        "max_scans": None,
        "meta": meta(at=NOW),
    }
    fields.update(overrides)
    return ChannelCode.create(**fields)


def scan(
    code: ChannelCode,
    available: set[str],
    *,
    at: datetime = NOW,
    returning_owner: str | None = None,
) -> str:
    return code.scan(
        visitor=Visitor(identities={"openid": f"o-{uuid4().hex[:8]}"}),
        customer_id=uuid4(),
        new_customer=returning_owner is None,
        returning_owner=returning_owner,
        available_staff=available,
        meta=meta(at=at),
    )


# --- creation --------------------------------------------------------------------------------


def test_a_code_keeps_its_pool_in_order_without_duplicates() -> None:
    code = make_code(["b", "a", "b", "c"], tags=["vip", "vip", "west"])

    assert code.staff_pool == ["b", "a", "c"]
    assert code.tags == ["vip", "west"]
    assert (code.scans, code.rotation_cursor, code.disabled) == (0, 0, False)


def test_a_code_with_nobody_in_its_pool_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        make_code([])
    assert refused.value.field == "staff_pool"


def test_a_pool_naming_an_invalid_staff_id_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        make_code(["a", "not a slug"])
    assert refused.value.field == "staff_pool"


@pytest.mark.parametrize("max_scans", [0, -1])
def test_a_cap_below_one_scan_is_refused(max_scans: int) -> None:
    with pytest.raises(InvalidInput) as refused:
        make_code(["a"], max_scans=max_scans)
    assert refused.value.field == "max_scans"


@pytest.mark.parametrize("expires_at", [NOW - timedelta(seconds=1), NOW])
def test_a_code_that_would_already_have_expired_is_refused(expires_at: datetime) -> None:
    with pytest.raises(InvalidInput) as refused:
        make_code(["a"], expires_at=expires_at)
    assert refused.value.field == "expires_at"


def test_an_expiry_without_a_timezone_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        make_code(["a"], expires_at=datetime(2030, 1, 1, 0, 0))
    assert refused.value.field == "expires_at"


def test_a_code_with_a_future_expiry_and_a_cap_is_created() -> None:
    code = make_code(["a"], expires_at=NOW + timedelta(days=7), max_scans=1)
    assert code.expires_at == NOW + timedelta(days=7)
    assert code.max_scans == 1
    assert code.refusal_for(NOW) is None


# --- refusals --------------------------------------------------------------------------------


def test_a_disabled_code_refuses_scans_as_gone() -> None:
    code = make_code(["a"])
    code.disable("fair is over", meta())

    refusal = code.refusal_for(NOW)

    assert isinstance(refusal, Gone)
    assert refusal.code == "code_disabled"


def test_a_code_refuses_scans_from_the_moment_it_expires() -> None:
    code = make_code(["a"], expires_at=NOW + timedelta(hours=1))

    assert code.refusal_for(NOW + timedelta(minutes=59)) is None
    refusal = code.refusal_for(NOW + timedelta(hours=1))
    assert isinstance(refusal, Gone)
    assert refusal.code == "code_expired"


def test_a_code_at_its_cap_refuses_scans_as_a_conflict() -> None:
    code = make_code(["a"], max_scans=2)
    scan(code, {"a"})
    assert code.refusal_for(NOW) is None
    scan(code, {"a"})

    refusal = code.refusal_for(NOW)

    assert isinstance(refusal, Conflict)
    assert refusal.code == "code_exhausted"
    with pytest.raises(Conflict):
        scan(code, {"a"})
    assert code.scans == 2


def test_a_disabled_code_is_disabled_only_once() -> None:
    code = make_code(["a"])
    code.disable("", meta())
    with pytest.raises(Conflict) as twice:
        code.disable("", meta())
    assert twice.value.code == "already_disabled"


def test_a_refusal_is_recorded_with_its_reason_and_leaves_the_counts_alone() -> None:
    code = make_code(["a"], max_scans=1)
    scan(code, {"a"})
    code.collect_events()
    visitor = Visitor(identities={"openid": "o-late"}, device_hash="d", ip_hash="i")

    code.refuse_scan(Conflict("full", code="code_exhausted"), visitor, meta())

    (refused,) = code.collect_events()
    assert isinstance(refused, ChannelCode.ScanRefused)
    assert refused.reason == "code_exhausted"
    assert refused.visitor_identities == {"openid": "o-late"}
    assert (code.scans, code.rotation_cursor) == (1, 0)


# --- rotation --------------------------------------------------------------------------------


def test_scans_go_round_the_pool_skipping_whoever_cannot_serve() -> None:
    code = make_code(["a", "b", "c"])

    assert [scan(code, {"a", "c"}) for _ in range(4)] == ["a", "c", "a", "c"]
    assert [scan(code, {"a", "b", "c"}) for _ in range(3)] == ["a", "b", "c"]


def test_a_returning_customer_goes_back_to_their_owner_without_using_a_turn() -> None:
    code = make_code(["a", "b", "c"])
    assert scan(code, {"a", "b", "c"}) == "a"

    assert scan(code, {"a", "b", "c"}, returning_owner="c") == "c"
    assert code.rotation_cursor == 1
    assert scan(code, {"a", "b", "c"}) == "b"


def test_a_returning_customer_whose_owner_left_takes_the_next_turn() -> None:
    code = make_code(["a", "b"])

    assert scan(code, {"b"}, returning_owner="a") == "b"
    assert code.rotation_cursor == 0


def test_a_scan_with_nobody_available_is_refused_and_changes_nothing() -> None:
    code = make_code(["a", "b"])
    scan(code, {"a", "b"})
    code.collect_events()

    with pytest.raises(Conflict) as refused:
        scan(code, set())

    assert refused.value.code == "no_available_staff"
    assert (code.scans, code.rotation_cursor) == (1, 1)
    assert code.collect_events() == []


pools = st.lists(st.sampled_from("abcdefg"), min_size=1, max_size=7, unique=True)


@settings(max_examples=200, deadline=None)
@given(pool=pools, scans=st.integers(min_value=0, max_value=40))
def test_with_everyone_available_assignments_cycle_through_the_pool_in_order(
    pool: list[str], scans: int
) -> None:
    code = make_code(pool)

    assigned = [scan(code, set(pool)) for _ in range(scans)]

    assert assigned == [pool[i % len(pool)] for i in range(scans)]
    assert code.scans == scans


@settings(max_examples=200, deadline=None)
@given(data=st.data(), pool=pools)
def test_nobody_unavailable_is_ever_assigned_and_nobody_available_is_passed_over(
    data: st.DataObject, pool: list[str]
) -> None:
    code = make_code(pool)
    availability = data.draw(st.lists(st.sets(st.sampled_from(pool)), max_size=30))
    expected_cursor = 0
    recorded = 0

    for available in availability:
        if not available:
            with pytest.raises(Conflict):
                scan(code, available)
            continue
        assigned = scan(code, available)
        recorded += 1
        assert assigned in available
        # Every member of the pool between the cursor and the one chosen was unavailable.
        index = pool.index(assigned)
        skipped = [pool[(expected_cursor + k) % len(pool)] for k in range(len(pool))]
        skipped = skipped[: skipped.index(assigned)]
        assert not set(skipped) & available
        expected_cursor = (index + 1) % len(pool)
        assert code.rotation_cursor == expected_cursor

    assert code.scans == recorded


@settings(max_examples=50, deadline=None)
@given(data=st.data(), pool=pools)
def test_replaying_a_codes_events_rebuilds_the_same_rotation(
    data: st.DataObject, pool: list[str]
) -> None:
    code = make_code(pool)
    for available in data.draw(st.lists(st.sets(st.sampled_from(pool), min_size=1), max_size=20)):
        scan(code, available)

    replayed = reduce(lambda agg, event: event.mutate(agg), code.collect_events(), None)

    assert replayed is not None
    assert (replayed.scans, replayed.rotation_cursor, replayed.version) == (
        code.scans,
        code.rotation_cursor,
        code.version,
    )


def test_the_rotation_asks_only_about_the_staff_it_needs() -> None:
    from domain.customers.aggregates import Availability

    asked: list[str] = []

    def can_serve(staff_id: str) -> bool:
        asked.append(staff_id)
        return staff_id != "a"

    code = ChannelCode.create(
        name="c",
        staff_pool=["a", "b", "c", "d"],
        tags=[],
        welcome_message="",
        expires_at=None,
        max_scans=None,
        meta=meta(),
    )
    assert code.next_staff(Availability(can_serve)) == ("b", 2)
    assert asked == ["a", "b"]  # c and d were never looked up
