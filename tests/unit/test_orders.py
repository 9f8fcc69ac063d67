"""Orders from platform snapshots: each step once, with the platform's own time; retries and
reordering change nothing; refunds once per refund id; the receiver sealed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from uuid import UUID

import orjson
import pytest

from domain.orders.aggregates import Order
from domain.orders.model import OrderLine, OrderSnapshot, Receiver, Refund
from domain.shared import InvalidInput
from infra.bootstrap import Container
from tests.factories import meta

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)

PLACED = OrderSnapshot(
    platform="taobao",
    trade_id="3344556677",
    shop_id="shop-1",
    buyer_id="AAF-buyer-open-uid",
    status="placed",
    placed_at=T0,
    lines=(
        OrderLine("o-1", "sku-lock", "智能门锁 X1", 1, 199_900, 189_900, 10_000, "locks"),
        OrderLine("o-2", "sku-battery", "门锁电池", 2, 2_000, 4_000, 0, "parts"),
    ),
    total=203_900,
    discount=10_000,
    freight=0,
    payable=193_900,
    receiver=Receiver("王小明", "13912345678", "文三路 90 号", "浙江省", "杭州市", "西湖区"),
)
PAID = dataclasses.replace(PLACED, status="paid", paid_at=T0 + timedelta(minutes=3))
SHIPPED = dataclasses.replace(
    PAID,
    status="shipped",
    shipped_at=T0 + timedelta(days=1),
    carrier="SF",
    tracking_no="SF1234567890",
)


def order_events(c: Container, trade_id: str = PLACED.trade_id) -> list[tuple[str, str]]:
    oid = str(Order.create_id("taobao", trade_id))
    return [(e.name, e.occurred_at) for e in c.read_log(0, 100_000) if e.originator_id == oid]


def test_a_snapshot_further_along_records_each_step_at_its_own_time(container: Container) -> None:
    out = container.orders.receive(SHIPPED, "d-shipped", meta(source="taobao"))
    assert out.outcome == "applied"
    assert [(n, datetime.fromisoformat(t)) for n, t in order_events(container)] == [
        ("OrderPlaced", T0),
        ("OrderPaid", T0 + timedelta(minutes=3)),
        ("OrderShipped", T0 + timedelta(days=1)),
    ]


def test_the_same_payload_twice_has_one_effect(container: Container) -> None:
    container.orders.receive(PAID, "d-paid", meta(source="taobao"))
    head = container.head()
    assert container.orders.receive(PAID, "d-paid", meta(source="taobao")).outcome == "duplicate"
    assert container.head() == head


def test_a_late_older_status_does_not_undo_a_newer_one(container: Container) -> None:
    container.orders.receive(SHIPPED, "d-shipped", meta(source="taobao"))
    late = container.orders.receive(PAID, "d-paid", meta(source="taobao"))
    assert late.outcome == "stale"
    order = container.orders.get(UUID(late.order_id))
    assert order.status == "shipped"
    assert [n for n, _ in order_events(container)][-1] == "OrderShipped"


def test_refunds_are_recorded_once_per_refund_and_marked_full_or_partial(
    container: Container,
) -> None:
    done = dataclasses.replace(SHIPPED, status="completed", completed_at=T0 + timedelta(days=3))
    partial = dataclasses.replace(
        done, refunds=(Refund("rf-1", 2_000, "o-2", T0 + timedelta(days=4)),)
    )
    both = dataclasses.replace(
        done,
        refunds=(
            Refund("rf-1", 2_000, "o-2", T0 + timedelta(days=4)),
            Refund("rf-2", 189_900, "o-1", T0 + timedelta(days=5)),
        ),
    )
    for n, snap in enumerate([done, partial, partial, both]):
        container.orders.receive(snap, f"d-{n}", meta(source="taobao"))
    refunds = [e for e in container.read_log(0, 100_000) if e.name == "OrderRefunded"]
    assert [(e.data["refund_id"], e.data["amount"], e.data["full"]) for e in refunds] == [
        ("rf-1", 2_000, False),  # 2,000 of the 4,000 paid for that line
        ("rf-2", 189_900, True),
    ]


def test_a_cancelled_order_stays_cancelled(container: Container) -> None:
    closed = dataclasses.replace(
        PAID, status="cancelled", cancelled_at=T0 + timedelta(hours=2), cancel_reason="买家取消"
    )
    container.orders.receive(closed, "d-closed", meta(source="taobao"))
    later = container.orders.receive(SHIPPED, "d-shipped", meta(source="taobao"))
    assert later.outcome == "stale"
    assert [n for n, _ in order_events(container)] == [
        "OrderPlaced",
        "OrderPaid",
        "OrderCancelled",
    ]


def test_the_receiver_is_sealed_and_the_phone_kept_only_as_a_keyed_hash(
    container: Container,
) -> None:
    container.orders.receive(PLACED, "d-placed", meta(source="taobao"))
    (placed,) = [e for e in container.read_log(0, 100_000) if e.name == "OrderPlaced"]
    text = orjson.dumps(placed.data).decode()
    assert "13912345678" not in text and "王小明" not in text and "文三路" not in text
    assert placed.data["region"] == {"province": "浙江省", "city": "杭州市", "district": "西湖区"}
    assert placed.data["phone_index"] == container.vault.blind_index("phone", "13912345678")


def test_a_batch_is_one_transaction_and_folds_several_snapshots_of_one_order(
    container: Container,
) -> None:
    head = container.head()
    result = container.orders.receive_batch(
        [(SHIPPED, "d-3"), (PLACED, "d-1"), (PAID, "d-2")], meta(source="taobao")
    )
    assert [o.outcome for o in result.outcomes] == ["applied", "stale", "stale"]
    # one save: three order events and three receipts, consecutive positions
    assert result.position == head + 6


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"payable": -1}, "payable"),
        ({"status": "teleported"}, "status"),
        ({"lines": ()}, "lines"),
        ({"placed_at": datetime(2026, 3, 1, 10, 0)}, "placed_at"),
    ],
)
def test_a_malformed_snapshot_records_nothing(
    container: Container, change: dict[str, object], field: str
) -> None:
    head = container.head()
    with pytest.raises(InvalidInput) as refused:
        container.orders.receive_batch(
            [(PLACED, "ok"), (dataclasses.replace(PLACED, **change), "bad")],  # type: ignore[arg-type]
            meta(source="taobao"),
        )
    assert refused.value.field == field
    assert container.head() == head


def test_a_paid_order_first_heard_of_as_closed_shows_it_was_paid(container: Container) -> None:
    closed = dataclasses.replace(
        PAID, status="cancelled", cancelled_at=T0 + timedelta(days=2), cancel_reason="refunded"
    )
    container.orders.receive(closed, "d-closed", meta(source="taobao"))
    assert [n for n, _ in order_events(container)] == [
        "OrderPlaced",
        "OrderPaid",
        "OrderCancelled",
    ]


def test_a_buyer_with_a_known_unionid_is_linked_once_even_across_a_batch(
    container: Container,
) -> None:
    added = container.customers.add_customer(
        identities=[("unionid", "oUnion-777")], tags=[], owner=None, meta=meta()
    )
    known = dataclasses.replace(PLACED, buyer_unionid="oUnion-777", receiver=None)
    second = dataclasses.replace(known, trade_id="3344556678")
    container.orders.receive_batch([(known, "d-a"), (second, "d-b")], meta(source="taobao"))
    linked = [e for e in container.read_log(0, 100_000) if e.name == "CustomerIdentityLinked"]
    assert [(e.originator_id, e.data["matched_by"]) for e in linked] == [(added.id, "unionid")]
    again = dataclasses.replace(known, trade_id="3344556679")
    container.orders.receive(again, "d-c", meta(source="taobao"))
    assert (
        len([e for e in container.read_log(0, 100_000) if e.name == "CustomerIdentityLinked"]) == 1
    )
