"""Youzan 有赞 adapter: youzan.trade.get (full_order_info, refund_order) -> OrderSnapshot."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.orders.model import STATUSES, OrderLine, OrderSnapshot, Receiver, Refund
from domain.orders.platforms import parser_for
from domain.orders.platforms.youzan import STATUS_MAP, parse
from domain.shared import InvalidInput

FIXTURES = Path(__file__).parent.parent / "fixtures" / "orders" / "youzan"

LINE_1 = OrderLine(
    line_id="1506000000000000001",
    sku="36000001",
    title="保湿面霜 50ml",
    quantity=2,
    unit_price=12900,
    paid=23800,
    discount=2000,
)
LINE_2 = OrderLine(
    line_id="1506000000000000002",
    sku="600000002",  # no spec (sku_id 0): the item id
    title="洁面乳 100g",
    quantity=1,
    unit_price=5900,
    paid=5400,
    discount=500,
)
RECEIVER = Receiver(
    name="$Qn/ZHaMby1MzBq3Rw2t7fw==$1$",
    phone="$eTS8t8hAECdXKgNtV6DIfw==$1$",
    address="$kZgIwkQL5Q0O6anzQHraoyM4mfyGHtYX$1$",
    province="浙江省",
    city="杭州市",
    district="西湖区",
)


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def trade_of(payload: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = payload.get("data", payload)
    return result


def info_of(payload: dict[str, Any]) -> dict[str, Any]:
    return trade_of(payload)["full_order_info"]["order_info"]


def test_paid_trade_normalised_exactly() -> None:
    assert parse(load("paid.json")) == OrderSnapshot(
        platform="youzan",
        trade_id="E20240301100000012345678",
        shop_id="134529034",
        buyer_id="lDWyZBas807636140352864256",
        status="paid",
        placed_at=datetime(2024, 3, 1, 2, 0, tzinfo=UTC),  # 10:00 Beijing
        lines=(LINE_1, LINE_2),
        total=31700,
        discount=2500,
        freight=800,
        payable=30000,
        paid_at=datetime(2024, 3, 1, 2, 1, tzinfo=UTC),
        receiver=RECEIVER,
        extra={"status": "WAIT_SELLER_SEND_GOODS", "close_type": "0", "refund_state": "0"},
    )


def test_the_registry_finds_the_adapter() -> None:
    assert parser_for("youzan") is parse


def test_amounts_add_up() -> None:
    snap = parse(load("paid.json"))
    assert snap.payable == snap.total - snap.discount + snap.freight
    assert sum(line.paid for line in snap.lines) + snap.freight == snap.payable


def test_placed_trade_blank_times_are_none() -> None:
    snap = parse(load("placed.json"))
    assert snap.status == "placed"
    assert snap.paid_at is None
    assert snap.shipped_at is None


def test_shipped_trade() -> None:
    snap = parse(load("shipped.json"))
    assert snap.status == "shipped"
    assert snap.shipped_at == datetime(2024, 3, 2, 2, 0, tzinfo=UTC)


def test_completed_trade() -> None:
    snap = parse(load("completed.json"))
    assert snap.status == "completed"
    assert snap.completed_at == datetime(2024, 3, 5, 2, 0, tzinfo=UTC)


def test_partial_refund_only_completed_refunds_per_line() -> None:
    snap = parse(load("partial_refund.json"))
    assert snap.status == "shipped"
    assert snap.refunds == (
        Refund(
            refund_id="201903031230000001",
            amount=5400,
            line_id="1506000000000000002",
            refunded_at=datetime(2024, 3, 3, 4, 30, tzinfo=UTC),
        ),
    )
    assert snap.extra["refund_state"] == "2"


def test_full_refund_closes_the_trade() -> None:
    snap = parse(load("full_refund_closed.json"))
    assert snap.status == "cancelled"
    assert snap.cancelled_at == datetime(2024, 3, 1, 4, 0, tzinfo=UTC)
    assert snap.cancel_reason == "买家取消"
    # one refund over both lines: recorded against the whole trade
    assert snap.refunds == (
        Refund(
            refund_id="201903011200000009",
            amount=30000,
            line_id=None,
            refunded_at=datetime(2024, 3, 1, 4, 0, tzinfo=UTC),
        ),
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("WAIT_BUYER_PAY", "placed"),
        ("TRADE_NO_CREATE_PAY", "placed"),
        ("TRADE_PAID", "paid"),
        ("WAIT_CONFIRM", "paid"),
        ("WAIT_GROUP", "paid"),
        ("WAIT_SELLER_SEND_GOODS", "paid"),
        ("WAIT_BUYER_CONFIRM_GOODS", "shipped"),
        ("TRADE_SUCCESS", "completed"),
        ("TRADE_BUYER_SIGNED", "completed"),
        ("TRADE_CLOSED", "cancelled"),
        ("TRADE_CLOSED_BY_USER", "cancelled"),
    ],
)
def test_status_table(status: str, expected: str) -> None:
    payload = load("paid.json")
    info_of(payload)["status"] = status
    snap = parse(payload)
    assert snap.status == expected
    assert snap.extra["status"] == status


def test_status_table_covers_only_model_statuses() -> None:
    assert set(STATUS_MAP.values()) == set(STATUSES)


@pytest.mark.parametrize("status", ["TRADE_REFUNDING", "trade_success", "TRADE_CLOSE", "60"])
def test_unknown_status_is_refused(status: str) -> None:
    payload = load("paid.json")
    info_of(payload)["status"] = status
    with pytest.raises(InvalidInput) as caught:
        parse(payload)
    assert caught.value.code == "unknown_status"
    assert caught.value.field == "data.full_order_info.order_info.status"


def test_missing_field_names_its_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(load("missing_num.json"))
    assert caught.value.code == "invalid_input"
    assert caught.value.field == "full_order_info.orders[1].num"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda t: t["full_order_info"]["order_info"].pop("tid"), "order_info.tid"),
        (lambda t: t["full_order_info"]["order_info"].update(created=""), "order_info.created"),
        (
            lambda t: t["full_order_info"]["order_info"].update(pay_time="yesterday"),
            "order_info.pay_time",
        ),
        (lambda t: t["full_order_info"]["pay_info"].update(payment="3O0.00"), "pay_info.payment"),
        (lambda t: t["full_order_info"]["pay_info"].update(post_fee="-1"), "pay_info.post_fee"),
        (lambda t: t["full_order_info"]["buyer_info"].pop("yz_open_id"), "buyer_info.yz_open_id"),
        (lambda t: t["full_order_info"]["orders"][0].update(price="12.3.4"), "orders[0].price"),
        (lambda t: t["full_order_info"]["orders"][0].update(num=0), "orders[0].num"),
        (lambda t: t["full_order_info"].update(orders=[]), "orders"),
        (
            lambda t: t["full_order_info"]["address_info"].update(receiver_tel=""),
            "address_info.receiver_tel",
        ),
    ],
)
def test_malformed_fields_name_their_path(mutate: Any, field: str) -> None:
    payload = load("paid.json")
    mutate(trade_of(payload))
    with pytest.raises(InvalidInput) as caught:
        parse(payload)
    assert caught.value.field == f"data.full_order_info.{field}"


def test_refund_naming_an_unknown_line_is_refused() -> None:
    payload = load("partial_refund.json")
    payload["refund_order"][0]["oids"] = [{"oid": "999"}]
    with pytest.raises(InvalidInput) as caught:
        parse(payload)
    assert caught.value.field == "refund_order[0].oids[0].oid"


def test_completed_refund_needs_a_time() -> None:
    payload = load("partial_refund.json")
    info_of(payload)["update_time"] = ""
    with pytest.raises(InvalidInput) as caught:
        parse(payload)
    assert caught.value.field == "full_order_info.order_info.update_time"


def test_shop_falls_back_to_root_then_envelope_kdt_id() -> None:
    payload = load("placed.json")
    del info_of(payload)["node_kdt_id"]
    assert parse(payload).shop_id == "134533635"
    del info_of(payload)["root_kdt_id"]
    payload["kdt_id"] = 42
    assert parse(payload).shop_id == "42"
    del payload["kdt_id"]
    with pytest.raises(InvalidInput) as caught:
        parse(payload)
    assert caught.value.field == "full_order_info.order_info.node_kdt_id"


def test_self_pickup_has_no_receiver() -> None:
    payload = load("paid.json")
    address = trade_of(payload)["full_order_info"]["address_info"]
    for key in ("receiver_name", "receiver_tel", "delivery_address"):
        address[key] = ""
    assert parse(payload).receiver is None


def test_yuan_rounds_half_up_to_the_fen() -> None:
    payload = load("paid.json")
    trade_of(payload)["full_order_info"]["pay_info"]["post_fee"] = "8.005"
    assert parse(payload).freight == 801
