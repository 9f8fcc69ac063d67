"""Taobao / Tmall adapter: recorded trade payloads -> normalised snapshots (pure, no store).

Also covers the helpers every adapter shares (domain/orders/platforms/_common.py)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.orders.model import STATUSES, OrderLine, OrderSnapshot, Receiver, Refund
from domain.orders.platforms import _common, parser_for, taobao
from domain.shared import InvalidInput

FIXTURES = Path(__file__).parents[1] / "fixtures" / "orders" / "taobao"
TRADE = "trade_fullinfo_get_response.trade"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


RECEIVER = Receiver(
    name="王小明",
    phone="13800138000",
    address="文一西路 969 号 3 幢 501 室",
    province="浙江省",
    city="杭州市",
    district="西湖区",
)


def test_tmall_trade_with_three_sub_orders_is_normalised_exactly() -> None:
    snap = taobao.parse(load("tmall_3_suborders_paid"))
    assert snap == OrderSnapshot(
        platform="taobao",
        trade_id="4012345678901234567",
        shop_id="玉泽官方旗舰店",
        buyer_id="AAHm5d-EAAeGwJedwSHpg8bT",
        status="paid",
        placed_at=utc(2026, 3, 1, 2, 0, 0),
        lines=(
            OrderLine(
                line_id="4012345678902234567",
                sku="4897654321012",
                title="玉泽 玻尿酸补水精华液 30ml",
                quantity=2,
                unit_price=19900,
                paid=35800,
                discount=4000,
                category="121398012",
            ),
            OrderLine(
                line_id="4012345678903234567",
                sku="4897654321013",
                title="玉泽 屏障修护面膜 5 片装",
                quantity=1,
                unit_price=8990,
                paid=8480,
                discount=510,
                category="121398013",
            ),
            OrderLine(  # no sku_id: the item id stands in
                line_id="4012345678904234567",
                sku="652311807715",
                title="玉泽 氨基酸洁面乳 100g",
                quantity=3,
                unit_price=5900,
                paid=16720,
                discount=980,
                category="121398014",
            ),
        ),
        total=66490,
        discount=5490,
        freight=0,
        payable=61000,
        paid_at=utc(2026, 3, 1, 2, 1, 12),
        receiver=RECEIVER,
        extra={"status": "WAIT_SELLER_SEND_GOODS", "type": "fixed"},
    )
    assert sum(line.paid for line in snap.lines) == snap.payable - snap.freight
    assert snap.payable == snap.total - snap.discount + snap.freight


def test_the_bare_trade_object_is_accepted_too() -> None:
    payload = load("tmall_3_suborders_paid")["trade_fullinfo_get_response"]
    assert taobao.parse(payload) == taobao.parse(load("tmall_3_suborders_paid"))
    assert parser_for("taobao") is taobao.parse


def test_placed_trade_has_no_payment_time_and_shares_the_payment_by_sub_order_payment() -> None:
    snap = taobao.parse(load("placed_wait_buyer_pay"))
    assert (snap.status, snap.paid_at, snap.refunds) == ("placed", None, ())
    assert (snap.total, snap.discount, snap.freight, snap.payable) == (36700, 1000, 0, 35700)
    assert [(line.paid, line.discount) for line in snap.lines] == [(19900, 0), (15800, 1000)]


def test_partly_shipped_trade_counts_as_paid_and_keeps_the_consign_time_aside() -> None:
    snap = taobao.parse(load("seller_consigned_part"))
    assert snap.status == "paid"
    assert snap.shipped_at is None
    assert snap.extra == {
        "status": "SELLER_CONSIGNED_PART",
        "type": "fixed",
        "consign_time": "2026-03-02T01:30:00+00:00",
    }
    assert (snap.total, snap.discount, snap.freight, snap.payable) == (36700, 1800, 600, 35500)
    assert [line.paid for line in snap.lines] == [18900, 16000]
    assert (snap.carrier, snap.tracking_no) == ("中通快递", "78312345678901")


def test_shipped_trade_without_divide_order_fee_splits_by_largest_remainder() -> None:
    snap = taobao.parse(load("shipped_two_lines"))
    assert snap.status == "shipped"
    assert snap.shipped_at == utc(2026, 3, 2, 8, 20, 5)
    # payment 199.00 - post 10.00 = 189.00 shared 118.00 : 91.00 -> 106.71 / 82.29 (remainder)
    assert [(line.paid, line.discount) for line in snap.lines] == [(10671, 2129), (8229, 871)]
    assert (snap.total, snap.discount, snap.freight, snap.payable) == (21900, 3000, 1000, 19900)
    assert (snap.carrier, snap.tracking_no) == ("顺丰速运", "SF1412345678901")


def test_finished_trade_is_completed_at_its_end_time() -> None:
    snap = taobao.parse(load("trade_finished"))
    assert snap.status == "completed"
    assert snap.completed_at == utc(2026, 3, 10, 3, 0, 0)
    assert snap.shipped_at == utc(2026, 3, 1, 10, 0, 0)
    assert snap.cancelled_at is None
    assert [line.paid for line in snap.lines] == [17910, 8090]


def test_partial_refund_of_one_line() -> None:
    snap = taobao.parse(load("partial_refund_one_line"))
    assert snap.status == "shipped"
    assert snap.refunds == (
        Refund(
            refund_id="198765432101234567",
            amount=17080,
            line_id="4012345678953234567",
            refunded_at=utc(2026, 3, 2, 7, 42, 10),
        ),
    )
    # the refund of the third line was closed (refused): it is not a refund
    assert [(line.line_id[-7:], line.paid) for line in snap.lines] == [
        ("2234567", 18900),
        ("3234567", 17080),
        ("4234567", 5620),
    ]
    assert (snap.total, snap.discount, snap.payable) == (43780, 2180, 41600)


def test_closed_after_full_refund_is_cancelled_with_every_line_refunded() -> None:
    snap = taobao.parse(load("trade_closed_full_refund"))
    assert (snap.status, snap.cancel_reason) == ("cancelled", "refunded")
    assert snap.cancelled_at == utc(2026, 3, 1, 12, 16, 30)
    assert snap.refunds == (
        Refund("198765432101230001", 19400, "4012345678962234567", utc(2026, 3, 1, 12, 15)),
        Refund("198765432101230002", 16300, "4012345678963234567", utc(2026, 3, 1, 12, 16, 30)),
    )
    assert sum(r.amount for r in snap.refunds) == snap.payable - snap.freight


def test_closed_before_payment_is_cancelled_without_refunds() -> None:
    snap = taobao.parse(load("trade_closed_by_taobao"))
    assert (snap.status, snap.cancel_reason, snap.refunds) == (
        "cancelled",
        "closed_before_payment",
        (),
    )
    assert snap.cancelled_at == utc(2026, 3, 2, 2, 0, 0)
    assert snap.paid_at is None


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("TRADE_NO_CREATE_PAY", "placed"),
        ("WAIT_BUYER_PAY", "placed"),
        ("PAY_PENDING", "placed"),
        ("WAIT_PRE_AUTH_CONFIRM", "placed"),
        ("WAIT_SELLER_SEND_GOODS", "paid"),
        ("SELLER_CONSIGNED_PART", "paid"),
        ("PAID_FORBID_CONSIGN", "paid"),
        ("WAIT_BUYER_CONFIRM_GOODS", "shipped"),
        ("TRADE_BUYER_SIGNED", "shipped"),
        ("TRADE_FINISHED", "completed"),
        ("TRADE_CLOSED", "cancelled"),
        ("TRADE_CLOSED_BY_TAOBAO", "cancelled"),
    ],
)
def test_status_table(code: str, status: str) -> None:
    payload = load("tmall_3_suborders_paid")
    payload["trade_fullinfo_get_response"]["trade"]["status"] = code
    snap = taobao.parse(payload)
    assert snap.status == status
    assert snap.extra["status"] == code
    assert taobao.STATUS[code] == status


def test_status_table_is_complete_and_only_uses_model_statuses() -> None:
    assert set(taobao.STATUS.values()) == set(STATUSES)


@pytest.mark.parametrize("code", ["ALL_WAIT_PAY", "ALL_CLOSED", "trade_finished", "", 7])
def test_unknown_status_is_refused_naming_the_field(code: Any) -> None:
    payload = load("tmall_3_suborders_paid")
    payload["trade_fullinfo_get_response"]["trade"]["status"] = code
    with pytest.raises(InvalidInput) as caught:
        taobao.parse(payload)
    assert caught.value.field == f"{TRADE}.status"
    if code != "":  # a blank status is a missing one
        assert caught.value.code == "unknown_status"
        assert repr(str(code)) in caught.value.detail


def test_missing_sub_order_quantity_names_its_path() -> None:
    with pytest.raises(InvalidInput) as caught:
        taobao.parse(load("missing_suborder_num"))
    assert caught.value.code == "invalid_input"
    assert caught.value.field == f"{TRADE}.orders.order[1].num"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda t: t.pop("buyer_open_uid"), f"{TRADE}.buyer_open_uid"),
        (lambda t: t.pop("created"), f"{TRADE}.created"),
        (lambda t: t.update(created="01/03/2026 10:00"), f"{TRADE}.created"),
        (lambda t: t.update(payment="六百"), f"{TRADE}.payment"),
        (lambda t: t.update(payment="-1.00"), f"{TRADE}.payment"),
        (lambda t: t.update(total_fee="600.00"), f"{TRADE}.total_fee"),
        (lambda t: t.update(payment="700.00"), f"{TRADE}.payment"),  # above goods + post
        (lambda t: t.update(payment="600.00"), f"{TRADE}.payment"),  # != Σ divide_order_fee
        (lambda t: t["orders"].update(order=[]), f"{TRADE}.orders.order"),
        (lambda t: t.pop("orders"), f"{TRADE}.orders"),
        (lambda t: t["orders"]["order"][2].update(num=0), f"{TRADE}.orders.order[2].num"),
        (lambda t: t["orders"]["order"][2].update(num="2.5"), f"{TRADE}.orders.order[2].num"),
        (lambda t: t["orders"]["order"][0].pop("price"), f"{TRADE}.orders.order[0].price"),
        (lambda t: t["orders"]["order"][1].pop("title"), f"{TRADE}.orders.order[1].title"),
        (
            lambda t: t["orders"]["order"][1].update(oid_str=t["orders"]["order"][0]["oid_str"]),
            f"{TRADE}.orders.order",
        ),
    ],
)
def test_malformed_trade_names_the_field(change: Any, field: str) -> None:
    payload = load("tmall_3_suborders_paid")
    change(payload["trade_fullinfo_get_response"]["trade"])
    with pytest.raises(InvalidInput) as caught:
        taobao.parse(payload)
    assert caught.value.field == field


def test_line_paid_above_its_list_price_is_refused() -> None:
    payload = load("tmall_3_suborders_paid")
    orders = payload["trade_fullinfo_get_response"]["trade"]["orders"]["order"]
    orders[0]["divide_order_fee"], orders[1]["divide_order_fee"] = "258.00", "184.80"
    with pytest.raises(InvalidInput) as caught:
        taobao.parse(payload)
    assert caught.value.field == f"{TRADE}.orders.order[1].divide_order_fee"


def test_refunded_sub_order_needs_its_refund_id() -> None:
    payload = load("partial_refund_one_line")
    del payload["trade_fullinfo_get_response"]["trade"]["orders"]["order"][1]["refund_id"]
    with pytest.raises(InvalidInput) as caught:
        taobao.parse(payload)
    assert caught.value.field == f"{TRADE}.orders.order[1].refund_id"


def test_masked_phone_is_not_passed_on_and_no_receiver_means_none() -> None:
    payload = load("shipped_two_lines")
    trade = payload["trade_fullinfo_get_response"]["trade"]
    trade["receiver_mobile"] = "138****8000"
    snap = taobao.parse(payload)
    assert snap.receiver is not None and snap.receiver.phone == ""
    for key in [k for k in trade if k.startswith("receiver_")]:
        del trade[key]
    assert taobao.parse(payload).receiver is None


# --- the shared helpers (_common) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fen"),
    [
        ("12.50", 1250),
        ("0.00", 0),
        ("12", 1200),
        (12, 1200),
        (69.9, 6990),
        ("0.125", 13),  # half away from zero
        ("0.135", 14),
        ("1.005", 101),
        (" 3.10 ", 310),
    ],
)
def test_yuan_to_fen_rounds_half_up(value: Any, fen: int) -> None:
    assert _common.yuan_to_fen(value, "x") == fen


def test_yuan_to_fen_signed_and_refusals() -> None:
    assert _common.yuan_to_fen("-0.125", "x", signed=True) == -13
    for bad in ("-1.00", "abc", "NaN", "Infinity", True, None, [1]):
        with pytest.raises(InvalidInput) as caught:
            _common.yuan_to_fen(bad, "a.b")
        assert caught.value.field == "a.b"


def test_times_are_beijing_wall_clock_to_utc() -> None:
    assert _common.beijing_time("2026-03-01 10:00:00", "t") == utc(2026, 3, 1, 2, 0, 0)
    assert _common.beijing_time("2026-03-01 07:59:59", "t") == utc(2026, 2, 28, 23, 59, 59)
    assert _common.beijing_time("2026-03-01T10:00:00.5+08:00", "t") == datetime(
        2026, 3, 1, 2, 0, 0, 500000, tzinfo=UTC
    )
    assert _common.beijing_time("2026-03-01T02:00:00Z", "t") == utc(2026, 3, 1, 2, 0, 0)
    for bad in ("2026-02-30 10:00:00", "yesterday", 1772330400, "2026-03-01 10:00:00 CST"):
        with pytest.raises(InvalidInput):
            _common.beijing_time(bad, "t")
    assert _common.unix_time(1772330400, "u") == utc(2026, 3, 1, 2, 0, 0)
    assert _common.unix_time("1772330400", "u") == utc(2026, 3, 1, 2, 0, 0)
    for bad in (0, -5, 1772330400000, "1.5"):
        with pytest.raises(InvalidInput):
            _common.unix_time(bad, "u")
    row = {"a": "0001-01-01 00:00:00", "b": "", "c": 0}
    assert _common.opt_beijing_time(row, "a", "r", zero_is_none=True) is None
    assert _common.opt_beijing_time(row, "b", "r") is None
    assert _common.opt_unix_time(row, "c", "r") is None


def test_getters_name_the_path() -> None:
    row = {"n": "3", "s": 42, "blank": "  ", "list": [], "obj": {"k": 1}}
    assert _common.req_int(row, "n", "p") == 3
    assert _common.req_str(row, "s", "p") == "42"
    assert _common.opt_str(row, "blank", "p") is None
    assert _common.req_list(row, "list", "p", non_empty=False) == []
    assert _common.at("a.b", 2) == "a.b[2]" and _common.at("", "k") == "k"
    for call, field in [
        (lambda: _common.req(row, "blank", "p"), "p.blank"),
        (lambda: _common.req_int(row, "s", "p", minimum=50), "p.s"),
        (lambda: _common.req_list(row, "list", "p"), "p.list"),
        (lambda: _common.req_mapping(row, "n", "p"), "p.n"),
        (lambda: _common.req_str(row, "obj", "p"), "p.obj"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            call()
        assert caught.value.field == field


def test_allocate_sums_exactly_with_ties_broken_by_key() -> None:
    assert _common.allocate(100, {"b": 1, "a": 1, "c": 1}) == {"a": 34, "b": 33, "c": 33}
    assert _common.allocate(18900, {"x": 11800, "y": 9100}) == {"x": 10671, "y": 8229}
    assert _common.allocate(7, {"a": 0, "b": 0}) == {"a": 4, "b": 3}
    assert _common.allocate(5, {}) == {}
    parts = _common.allocate(99_999, {str(i): i * 7 + 1 for i in range(13)})
    assert sum(parts.values()) == 99_999


def test_status_lookup_and_phone_cleaning() -> None:
    assert _common.map_status("A", {"A": "paid"}, "s") == "paid"
    with pytest.raises(InvalidInput) as caught:
        _common.map_status(["A"], {"A": "paid"}, "s")
    assert (caught.value.code, caught.value.field) == ("unknown_status", "s")
    assert _common.clean_phone("+86 138-0013-8000") == "+8613800138000"
    assert _common.clean_phone("138****8000") == ""
    assert _common.clean_phone("~AgAAAAEbQ2sJ3v1x~0~") == ""
    assert _common.clean_phone(None) == ""


def test_fixtures_are_not_changed_by_parsing() -> None:
    payload = load("tmall_3_suborders_paid")
    before = copy.deepcopy(payload)
    taobao.parse(payload)
    assert payload == before
