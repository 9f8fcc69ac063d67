"""Pinduoduo adapter: recorded order_info payloads -> normalised snapshots (pure, no store)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.orders.model import OrderLine, OrderSnapshot, Receiver, Refund
from domain.orders.platforms import parser_for, pdd
from domain.shared import InvalidInput

FIXTURES = Path(__file__).parents[1] / "fixtures" / "orders" / "pdd"
INFO = "order_info_get_response.order_info"
BUYER = "#GKTB7s7wOxP/iHoVtQM9LrM0EXj6pJo6xT/cJJ9rjxCl2AYG6dA4c2"
KIWI_5 = "陕西周至徐香猕猴桃 5 斤装 新鲜水果"
KIWI_3 = "陕西周至徐香猕猴桃 3 斤装 新鲜水果"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def info_of(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["order_info_get_response"]["order_info"]  # type: ignore[no-any-return]


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


RECEIVER = Receiver(
    name="~AgAAAAEbQ2sJ3v1xkwEAm0vYhS2ZDzz6bO1tGq8=~0~",  # PDD sends it encrypted; kept as sent
    phone="13700001234",
    address="长宁路 1018 号龙之梦购物中心 B 座 12 楼",
    province="上海市",
    city="上海市",
    district="长宁区",
)


def test_group_buy_still_forming_is_paid_and_carries_its_group() -> None:
    snap = pdd.parse(load("group_buy_forming"))
    assert snap == OrderSnapshot(
        platform="pdd",
        trade_id="260308-101234567890123",
        shop_id="712345678",
        buyer_id=BUYER,
        status="paid",
        placed_at=utc(2026, 3, 8, 11, 20, 11),
        lines=(OrderLine("1234567890123", "1234567890123", KIWI_5, 2, 2990, 5480, 500, "6470"),),
        total=5980,
        discount=500,
        freight=0,
        payable=5480,
        paid_at=utc(2026, 3, 8, 11, 20, 30),
        receiver=RECEIVER,
        group_id="98765432101234",
        extra={
            "confirm_status": "0",
            "order_status": "1",
            "refund_status": "1",
            "trade_type": "0",
            "group_status": "0",
            "group_role": "1",
            "after_sales_status": "0",
            "is_lucky_flag": "1",
        },
    )


def test_bare_order_info_is_accepted_too() -> None:
    whole = load("group_buy_forming")
    bare = {"mall_id": whole["mall_id"], "order_info": info_of(whole)}
    assert pdd.parse(bare) == pdd.parse(whole)
    assert parser_for("pdd") is pdd.parse


def test_confirmed_two_sku_order_waiting_for_shipping() -> None:
    snap = pdd.parse(load("confirmed_wait_ship"))
    assert snap.status == "paid"
    assert snap.lines == (
        OrderLine("1234567890123", "1234567890123", KIWI_5, 2, 2990, 5380, 600, "6470"),
        OrderLine("1234567890124", "1234567890124", KIWI_3, 1, 1990, 1790, 200, "6470"),
    )
    assert (snap.total, snap.discount, snap.freight, snap.payable) == (7970, 800, 0, 7170)
    assert snap.group_id == "98765432101235"


def test_shipped_order_with_after_sales_open_has_no_refund_yet() -> None:
    snap = pdd.parse(load("shipped_after_sales_open"))
    assert (snap.status, snap.refunds) == ("shipped", ())
    assert snap.shipped_at == utc(2026, 3, 9, 0, 45, 0)
    assert (snap.total, snap.discount, snap.freight, snap.payable) == (7970, 650, 500, 7820)
    assert [line.paid for line in snap.lines] == [5492, 1828]
    assert (snap.carrier, snap.tracking_no) == ("115", "YT7512345678901")
    assert snap.receiver is not None and snap.receiver.phone == ""  # masked after shipping
    assert snap.group_id is None  # group_order_id 0: not a group buy


def test_signed_order_is_completed_at_receive_time() -> None:
    snap = pdd.parse(load("signed_completed"))
    assert snap.status == "completed"
    assert snap.completed_at == utc(2026, 3, 11, 9, 30, 12)
    assert (snap.total, snap.discount, snap.payable) == (5980, 0, 5980)


def test_refund_success_cancels_and_refunds_the_whole_order() -> None:
    snap = pdd.parse(load("refund_success"))
    assert (snap.status, snap.cancel_reason) == ("cancelled", "refunded")
    assert snap.cancelled_at == utc(2026, 3, 9, 2, 5, 0)
    assert snap.refunds == (
        Refund("260308-101234567890127:refund", 5780, None, utc(2026, 3, 9, 2, 5, 0)),
    )


def test_failed_group_is_cancelled() -> None:
    snap = pdd.parse(load("group_failed_cancelled"))
    assert (snap.status, snap.cancel_reason, snap.refunds) == ("cancelled", "cancelled", ())
    assert snap.group_id == "98765432101236"
    assert snap.extra["group_status"] == "2"


@pytest.mark.parametrize(
    ("confirm", "shipping", "refund", "paid", "status"),
    [
        (0, 1, 1, True, "paid"),  # 未成交: paid, group forming
        (0, 1, 1, False, "placed"),  # not paid yet
        (1, 1, 1, True, "paid"),  # 已成交, 待发货
        (1, 2, 1, True, "shipped"),  # 已发货待签收
        (1, 3, 1, True, "completed"),  # 已签收
        (1, 1, 2, True, "paid"),  # 售后处理中: not a refund
        (1, 2, 3, True, "shipped"),  # 退款中: not a refund yet
        (1, 3, 4, True, "cancelled"),  # 退款成功
        (1, 1, 4, True, "cancelled"),
        (2, 1, 1, True, "cancelled"),  # 已取消
        (2, 1, 1, False, "cancelled"),
        ("1", "2", "1", True, "shipped"),  # codes sent as strings
    ],
)
def test_status_table(confirm: Any, shipping: Any, refund: Any, paid: bool, status: str) -> None:
    payload = load("confirmed_wait_ship")
    info = info_of(payload)
    info.update(confirm_status=confirm, order_status=shipping, refund_status=refund)
    if not paid:
        info["pay_time"] = ""
    info["updated_at"] = "2026-03-09 10:00:00"
    assert pdd.parse(payload).status == status


@pytest.mark.parametrize(("step", "status"), [(0, "placed"), (1, "placed"), (2, "paid")])
def test_deposit_order_is_paid_only_once_its_balance_is(step: int, status: str) -> None:
    payload = load("group_buy_forming")
    info = info_of(payload)
    info.update(trade_type=1, step_order_info={"step_trade_status": step, "step_paid_fee": 10.0})
    assert pdd.parse(payload).status == status


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("confirm_status", 3),
        ("confirm_status", -1),
        ("order_status", 0),
        ("order_status", 4),
        ("order_status", "待发货"),
        ("refund_status", 0),
        ("refund_status", 5),
        ("refund_status", 1.5),
        ("refund_status", True),
    ],
)
def test_unknown_status_codes_are_refused_naming_the_field(key: str, value: Any) -> None:
    payload = load("confirmed_wait_ship")
    info_of(payload)[key] = value
    with pytest.raises(InvalidInput) as caught:
        pdd.parse(payload)
    assert (caught.value.code, caught.value.field) == ("unknown_status", f"{INFO}.{key}")
    assert repr(value) in caught.value.detail


def test_missing_buyer_id_is_refused_clearly() -> None:
    with pytest.raises(InvalidInput) as caught:
        pdd.parse(load("missing_open_address_id"))
    assert caught.value.field == f"{INFO}.open_address_id"
    assert "no buyer id" in caught.value.detail


def test_missing_item_quantity_names_its_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        pdd.parse(load("missing_goods_count"))
    assert caught.value.field == f"{INFO}.item_list[1].goods_count"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda p: p.pop("mall_id"), "mall_id"),
        (lambda p: info_of(p).pop("order_sn"), f"{INFO}.order_sn"),
        (lambda p: info_of(p).pop("confirm_status"), f"{INFO}.confirm_status"),
        (lambda p: info_of(p).pop("created_time"), f"{INFO}.created_time"),
        (lambda p: info_of(p).update(pay_time="2026-13-01 00:00:00"), f"{INFO}.pay_time"),
        (lambda p: info_of(p).pop("pay_amount"), f"{INFO}.pay_amount"),
        (lambda p: info_of(p).update(pay_amount=99.0), f"{INFO}.pay_amount"),
        (lambda p: info_of(p).update(postage="包邮"), f"{INFO}.postage"),
        (lambda p: info_of(p).update(item_list=[]), f"{INFO}.item_list"),
        (lambda p: info_of(p)["item_list"][0].pop("sku_id"), f"{INFO}.item_list[0].sku_id"),
        (
            lambda p: info_of(p)["item_list"][1].pop("goods_price"),
            f"{INFO}.item_list[1].goods_price",
        ),
        (lambda p: info_of(p)["item_list"][1].pop("goods_name"), f"{INFO}.item_list[1].goods_name"),
        (lambda p: info_of(p).update(step_order_info=[1]), f"{INFO}.step_order_info"),
        (
            lambda p: (info_of(p).pop("receiver_address"), info_of(p).pop("address")),
            f"{INFO}.address",
        ),
    ],
)
def test_malformed_order_names_the_field(change: Any, field: str) -> None:
    payload = load("confirmed_wait_ship")
    change(payload)
    with pytest.raises(InvalidInput) as caught:
        pdd.parse(payload)
    assert caught.value.field == field


def test_refunded_order_needs_its_update_time() -> None:
    payload = load("refund_success")
    info_of(payload)["updated_at"] = ""
    with pytest.raises(InvalidInput) as caught:
        pdd.parse(payload)
    assert caught.value.field == f"{INFO}.updated_at"


def test_amounts_sent_as_strings_read_the_same() -> None:
    payload = load("shipped_after_sales_open")
    info = info_of(payload)
    for key in ("pay_amount", "postage", "goods_amount", "discount_amount"):
        info[key] = f"{info[key]:.2f}"
    for item in info["item_list"]:
        item["goods_price"] = f"{item['goods_price']:.2f}"
    assert pdd.parse(payload) == pdd.parse(load("shipped_after_sales_open"))
