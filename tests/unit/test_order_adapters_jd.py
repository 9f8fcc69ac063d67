"""JD POP adapter: recorded orderInfo payloads -> normalised snapshots (pure, no store)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.orders.model import OrderLine, OrderSnapshot, Receiver, Refund
from domain.orders.platforms import jd, parser_for
from domain.shared import InvalidInput

FIXTURES = Path(__file__).parents[1] / "fixtures" / "orders" / "jd"
INFO = "jingdong_pop_order_get_responce.orderDetailInfo.orderInfo"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def info_of(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["jingdong_pop_order_get_responce"]["orderDetailInfo"]["orderInfo"]  # type: ignore[no-any-return]


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


RECEIVER = Receiver(
    name="李雷",
    phone="13912345678",
    address="北京朝阳区三环到四环之间望京街道阜通东大街 6 号 2 号楼 1203",
    province="北京",
    city="朝阳区",
    district="三环到四环之间",
)


def test_paid_order_with_three_items_and_coupons_is_normalised_exactly() -> None:
    snap = jd.parse(load("wait_seller_stock_out"))
    # 351.30 of goods; 30.00 SKU coupon on the air fryer, 10.00 JD coupon on the order.
    # 311.30 shared by largest remainder over 269.00 : 39.80 : 12.50 (list less SKU coupons).
    assert snap == OrderSnapshot(
        platform="jd",
        trade_id="301234567890",
        shop_id="10086123",
        buyer_id="oWQ1ZmFjZGUtYjY0Ni00ZmFhLWJjNTQtM2Y1",
        status="paid",
        placed_at=utc(2026, 3, 5, 12, 15, 33),
        lines=(
            OrderLine(
                "100012043978",
                "100012043978",
                "格兰仕 空气炸锅 5L 家用大容量",
                1,
                29900,
                26063,
                3837,
            ),
            OrderLine(
                "100009871234",
                "100009871234",
                "格兰仕 空气炸锅专用吸油纸 100 张",
                2,
                1990,
                3856,
                124,
            ),
            OrderLine("100020304050", "100020304050", "格兰仕 不锈钢食品夹", 1, 1250, 1211, 39),
        ),
        total=35130,
        discount=4000,
        freight=0,
        payable=31130,
        paid_at=utc(2026, 3, 5, 12, 16, 2),
        receiver=RECEIVER,
        extra={
            "status": "WAIT_SELLER_STOCK_OUT",
            "buyer_id_field": "open_id_buyer",
            "payType": "4",
        },
    )
    assert sum(line.paid for line in snap.lines) == snap.payable - snap.freight


def test_inner_shapes_are_accepted_too() -> None:
    whole = load("wait_seller_stock_out")
    inner = whole["jingdong_pop_order_get_responce"]
    assert jd.parse(inner) == jd.parse(whole)
    assert jd.parse({"orderInfo": info_of(whole)}) == jd.parse(whole)
    assert parser_for("jd") is jd.parse


def test_shipped_order_adds_back_the_balance_paid_and_keeps_the_waybill() -> None:
    snap = jd.parse(load("wait_goods_receive_confirm"))
    assert snap.status == "shipped"
    # orderPayment 276.80 + balanceUsed 20.00 = 296.80 paid by the buyer, freight 8.00
    assert (snap.total, snap.discount, snap.freight, snap.payable) == (33880, 5000, 800, 29680)
    assert [(line.paid, line.discount) for line in snap.lines] == [(25487, 4413), (3393, 587)]
    assert (snap.carrier, snap.tracking_no) == ("467", "JDVA12345678901")
    assert snap.shipped_at is None  # orderInfo carries no shipping time


def test_finished_order_is_completed_at_its_end_time() -> None:
    snap = jd.parse(load("finished"))
    assert snap.status == "completed"
    assert snap.completed_at == utc(2026, 3, 9, 6, 0, 0)
    assert (snap.total, snap.discount, snap.payable) == (5230, 0, 5230)
    assert [line.paid for line in snap.lines] == [3980, 1250]


def test_cancelled_paid_order_is_refunded_in_full() -> None:
    snap = jd.parse(load("trade_canceled_paid"))
    assert (snap.status, snap.cancel_reason) == ("cancelled", "cancelled")
    assert snap.cancelled_at == utc(2026, 3, 5, 14, 40, 0)
    assert snap.refunds == (Refund("301234567893:cancel", 33880, None, utc(2026, 3, 5, 14, 40)),)


def test_cancelled_cash_on_delivery_order_has_no_refund_and_no_payment_time() -> None:
    snap = jd.parse(load("trade_canceled_cod_unpaid"))
    assert (snap.status, snap.paid_at, snap.refunds) == ("cancelled", None, ())
    assert (snap.total, snap.freight, snap.payable) == (1250, 600, 1850)


def test_pin_is_the_buyer_when_open_id_buyer_is_absent() -> None:
    snap = jd.parse(load("locked_pin_only"))
    assert (snap.status, snap.buyer_id) == ("paid", "jd_5f1c3e9a7b2d")
    assert snap.extra["buyer_id_field"] == "pin"
    assert [(line.paid, line.discount) for line in snap.lines] == [(26900, 3000)]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("WAIT_SELLER_STOCK_OUT", "paid"),
        ("WAIT_SELLER_DELIVERY", "paid"),
        ("WAIT_SEND_CODE", "paid"),
        ("LOCKED", "paid"),
        ("PAUSE", "paid"),
        ("POP_ORDER_PAUSE", "paid"),
        ("WAIT_GOODS_RECEIVE_CONFIRM", "shipped"),
        ("FINISHED_L", "completed"),
        ("TRADE_CANCELED", "cancelled"),
    ],
)
def test_status_table(code: str, status: str) -> None:
    payload = load("wait_seller_stock_out")
    info_of(payload)["orderState"] = code
    assert jd.parse(payload).status == status
    assert jd.STATUS[code] == status


@pytest.mark.parametrize("code", ["DELIVERY_RETURN", "UN_KNOWN", "finished_l", "16"])
def test_unknown_status_is_refused_naming_the_field(code: str) -> None:
    payload = load("wait_seller_stock_out")
    info_of(payload)["orderState"] = code
    with pytest.raises(InvalidInput) as caught:
        jd.parse(payload)
    assert (caught.value.code, caught.value.field) == ("unknown_status", f"{INFO}.orderState")
    assert code in caught.value.detail


def test_missing_item_quantity_names_its_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        jd.parse(load("missing_item_total"))
    assert caught.value.field == f"{INFO}.itemInfoList[1].itemTotal"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda o: o.pop("orderId"), f"{INFO}.orderId"),
        (lambda o: o.pop("venderId"), f"{INFO}.venderId"),
        (lambda o: (o.pop("open_id_buyer"), o.pop("pin")), f"{INFO}.open_id_buyer"),
        (lambda o: o.pop("orderStartTime"), f"{INFO}.orderStartTime"),
        (lambda o: o.update(paymentConfirmTime="2026/03/05"), f"{INFO}.paymentConfirmTime"),
        (lambda o: o.pop("orderPayment"), f"{INFO}.orderPayment"),
        (lambda o: o.update(orderPayment="400.00"), f"{INFO}.orderPayment"),
        (lambda o: o.update(orderTotalPrice="350.00"), f"{INFO}.orderTotalPrice"),
        (lambda o: o.update(balanceUsed="x"), f"{INFO}.balanceUsed"),
        (lambda o: o.update(itemInfoList=[]), f"{INFO}.itemInfoList"),
        (lambda o: o["itemInfoList"][0].pop("skuId"), f"{INFO}.itemInfoList[0].skuId"),
        (
            lambda o: o["itemInfoList"][2].update(jdPrice="¥12.50"),
            f"{INFO}.itemInfoList[2].jdPrice",
        ),
        (lambda o: o["itemInfoList"][1].update(itemTotal="0"), f"{INFO}.itemInfoList[1].itemTotal"),
        (
            lambda o: o["couponDetailList"][0].pop("couponPrice"),
            f"{INFO}.couponDetailList[0].couponPrice",
        ),
        (lambda o: o["consigneeInfo"].pop("fullname"), f"{INFO}.consigneeInfo.fullname"),
    ],
)
def test_malformed_order_names_the_field(change: Any, field: str) -> None:
    payload = load("wait_seller_stock_out")
    change(info_of(payload))
    with pytest.raises(InvalidInput) as caught:
        jd.parse(payload)
    assert caught.value.field == field


def test_coupons_that_disagree_with_the_amounts_fall_back_to_list_prices() -> None:
    payload = load("wait_seller_stock_out")
    info_of(payload)["couponDetailList"][0]["couponPrice"] = "290.00"  # not what was charged
    snap = jd.parse(payload)
    assert sum(line.paid for line in snap.lines) == snap.payable
    assert all(line.paid <= line.unit_price * line.quantity for line in snap.lines)


def test_same_sku_twice_gets_distinct_line_ids() -> None:
    payload = load("finished")
    info = info_of(payload)
    info["itemInfoList"].append(dict(info["itemInfoList"][1]))
    info["orderTotalPrice"] = info["orderPayment"] = "64.80"
    snap = jd.parse(payload)
    assert [line.line_id for line in snap.lines] == [
        "100009871234",
        "100020304050",
        "100020304050#2",
    ]
