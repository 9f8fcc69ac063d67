"""Douyin 抖店 adapter: order.orderDetail (shop_order_detail) -> OrderSnapshot."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.orders.model import STATUSES, OrderLine, OrderSnapshot, Receiver, Refund
from domain.orders.platforms import parser_for
from domain.orders.platforms.douyin import STATUS_MAP, parse
from domain.shared import InvalidInput

FIXTURES = Path(__file__).parent.parent / "fixtures" / "orders" / "douyin"

PLACED = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)  # 2024-03-01 10:00:00 Beijing
PAID = datetime(2024, 3, 1, 2, 1, tzinfo=UTC)
SHIPPED = datetime(2024, 3, 2, 2, 0, tzinfo=UTC)

LINE_A = OrderLine(
    line_id="6920000000000000002",
    sku="1730000000001",
    title="保湿面霜 50ml",
    quantity=2,
    unit_price=12900,
    paid=23800,
    discount=2000,
    category="20346",
)
LINE_B = OrderLine(
    line_id="6920000000000000003",
    sku="1730000000002",
    title="洁面乳 100g",
    quantity=1,
    unit_price=5900,
    paid=5400,  # the sku's pay_amount 6200 less its 800 freight
    discount=500,
    category="20346",
)
RECEIVER = Receiver(
    name="~AgAAAAZmFrZS1yZWNlaXZlcg==~1~",
    phone="$13812345678$Zm9vYmFyLXRlbA==$1$",
    address="#dTeS2X7jXkqHc2Qm#ZmFrZS1lbmNyeXB0ZWQtYWRkcmVzcw==*CgkIARCtHCABKAESPgo8#1##",
    province="浙江省",
    city="杭州市",
    district="西湖区",
)


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def detail_of(payload: dict[str, Any]) -> dict[str, Any]:
    return (
        payload["data"]["shop_order_detail"] if "data" in payload else payload["shop_order_detail"]
    )


def test_paid_order_normalised_exactly() -> None:
    assert parse(load("paid.json")) == OrderSnapshot(
        platform="douyin",
        trade_id="6920000000000000001",
        shop_id="4463798",
        buyer_id="1@#Y2VkZWYxMjM0NTY3ODkwYWJjZGVm",
        status="paid",
        placed_at=PLACED,
        lines=(LINE_A, LINE_B),
        total=31700,
        discount=2500,
        freight=800,
        payable=30000,
        paid_at=PAID,
        receiver=RECEIVER,
        extra={"order_status": "2", "main_status": "2"},
    )


def test_the_registry_finds_the_adapter() -> None:
    assert parser_for("douyin") is parse


def test_amounts_add_up() -> None:
    snap = parse(load("paid.json"))
    assert snap.payable == snap.total - snap.discount + snap.freight
    assert sum(line.paid for line in snap.lines) + snap.freight == snap.payable


def test_placed_order_has_no_payment_time() -> None:
    snap = parse(load("placed.json"))
    assert snap.status == "placed"
    assert snap.paid_at is None
    assert snap.refunds == ()


def test_shipped_order_carries_logistics() -> None:
    snap = parse(load("shipped.json"))
    assert snap.status == "shipped"
    assert snap.shipped_at == SHIPPED
    assert (snap.carrier, snap.tracking_no) == ("顺丰速运", "SF1234567890123")
    assert snap.completed_at is None


def test_completed_order() -> None:
    snap = parse(load("completed.json"))
    assert snap.status == "completed"
    assert snap.completed_at == datetime(2024, 3, 5, 2, 0, tzinfo=UTC)
    assert snap.shipped_at == SHIPPED


def test_partial_refund_is_one_line_refunded() -> None:
    snap = parse(load("partial_refund.json"))
    assert snap.status == "shipped"
    # line A's after-sale is still pending (refund_status 1): not recorded
    assert snap.refunds == (
        Refund(
            refund_id="6920000000000000003",
            amount=5400,
            line_id="6920000000000000003",
            refunded_at=datetime(2024, 3, 3, 2, 0, tzinfo=UTC),
        ),
    )


def test_full_refund_cancels_with_every_line_refunded() -> None:
    snap = parse(load("full_refund_cancelled.json"))
    assert snap.status == "cancelled"
    assert snap.cancelled_at == datetime(2024, 3, 1, 4, 0, tzinfo=UTC)
    assert snap.cancel_reason == "不想要了"
    assert [(r.line_id, r.amount) for r in snap.refunds] == [
        ("6920000000000000002", 23800),
        ("6920000000000000003", 5400),
    ]
    assert snap.extra == {"order_status": "4", "main_status": "21"}


def test_unpaid_cancelled_order_has_no_refunds() -> None:
    payload = load("full_refund_cancelled.json")
    detail_of(payload)["pay_time"] = 0
    snap = parse(payload)
    assert snap.status == "cancelled"
    assert snap.refunds == ()


def test_price_protection_is_not_a_recorded_refund() -> None:
    payload = load("partial_refund.json")
    detail_of(payload)["sku_order_list"][1]["after_sale_info"]["after_sale_type"] = 6  # 价保
    assert parse(payload).refunds == ()


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (1, "placed"),
        (103, "placed"),
        (105, "paid"),
        (2, "paid"),
        (101, "shipped"),
        (3, "shipped"),
        (5, "completed"),
        (4, "cancelled"),
    ],
)
def test_status_table(code: int, status: str) -> None:
    payload = load("paid.json")
    detail_of(payload)["order_status"] = code
    snap = parse(payload)
    assert snap.status == status
    assert snap.extra["order_status"] == str(code)


def test_status_table_covers_only_model_statuses() -> None:
    assert set(STATUS_MAP.values()) == set(STATUSES)


@pytest.mark.parametrize("code", [0, 6, 21, 999, "2x"])
def test_unknown_status_is_refused(code: object) -> None:
    payload = load("paid.json")
    detail_of(payload)["order_status"] = code
    with pytest.raises(InvalidInput) as caught:
        parse(payload)
    assert caught.value.field == "data.shop_order_detail.order_status"
    if code != "2x":
        assert caught.value.code == "unknown_status"


def test_missing_field_names_its_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(load("missing_item_num.json"))
    assert caught.value.code == "invalid_input"
    assert caught.value.field == "shop_order_detail.sku_order_list[1].item_num"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("order_id"), "data.shop_order_detail.order_id"),
        (lambda d: d.pop("doudian_open_id"), "data.shop_order_detail.doudian_open_id"),
        (lambda d: d.pop("create_time"), "data.shop_order_detail.create_time"),
        (lambda d: d.update(pay_amount="30000.5"), "data.shop_order_detail.pay_amount"),
        (lambda d: d.update(sku_order_list=[]), "data.shop_order_detail.sku_order_list"),
        (
            lambda d: d["sku_order_list"][0].update(origin_amount=-1),
            "data.shop_order_detail.sku_order_list[0].origin_amount",
        ),
        (
            lambda d: d["sku_order_list"][1].update(post_amount=99999),
            "data.shop_order_detail.sku_order_list[1].post_amount",
        ),
        (
            lambda d: d["post_addr"].pop("city"),
            "data.shop_order_detail.post_addr.city",
        ),
        (
            lambda d: d.update(encrypt_post_tel=""),
            "data.shop_order_detail.encrypt_post_tel",
        ),
    ],
)
def test_malformed_fields_name_their_path(mutate: Any, field: str) -> None:
    payload = load("paid.json")
    mutate(detail_of(payload))
    with pytest.raises(InvalidInput) as caught:
        parse(payload)
    assert caught.value.field == field


def test_a_payload_without_the_detail_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse({"p_id": 6920000000000000001, "order_status": 2})
    assert caught.value.field == "shop_order_detail"


def test_virtual_goods_have_no_receiver() -> None:
    payload = load("paid.json")
    detail = detail_of(payload)
    del detail["post_addr"]
    assert parse(payload).receiver is None
    payload = load("paid.json")
    detail = detail_of(payload)
    detail["encrypt_post_receiver"] = detail["encrypt_post_tel"] = ""
    detail["post_addr"]["encrypt_detail"] = ""
    assert parse(payload).receiver is None


def test_ids_sent_as_numbers_or_strings_alike() -> None:
    payload = load("paid.json")
    as_numbers = parse(copy.deepcopy(payload))
    detail_of(payload)["shop_id"] = "4463798"
    assert parse(payload) == as_numbers
