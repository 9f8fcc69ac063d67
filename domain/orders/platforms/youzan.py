"""Youzan 有赞 adapter: the trade of `youzan.trade.get` (4.x).

Accepted payloads: the response's `data` object (`{"full_order_info": {...}, "refund_order":
[...], ...}`), the whole response (`{"success": true, "code": 200, "data": {...}}`), or a
trade push message decoded by infra/orders/signatures.py (same shape as `data`, plus the
envelope's `kdt_id`). Error paths start at whichever root was given
(`full_order_info.orders[1].num` or `data.full_order_info...`).

Amounts: Youzan sends yuan as strings ("12.50"); they become fen, ROUND_HALF_UP.
Times: Beijing wall-clock strings ("2024-11-04 14:37:14") -> UTC; blank or 1970 zero dates
mean "not yet".

Status (`full_order_info.order_info.status`, the documented 4.0 values, plus the 3.0 names
still found in older integrations) -> model.STATUSES:

    WAIT_BUYER_PAY            等待买家付款 (incl. pre-sale deposit phases)  -> placed
    TRADE_NO_CREATE_PAY       (3.0) 没有创建支付交易                       -> placed
    TRADE_PAID                已支付 (transient)                           -> paid
    WAIT_CONFIRM              待确认: 待成团 / 待接单 (paid)                -> paid
    WAIT_GROUP                (3.0) 等待成团 (paid)                         -> paid
    WAIT_SELLER_SEND_GOODS    等待卖家发货                                 -> paid
    WAIT_BUYER_CONFIRM_GOODS  卖家已发货, 等待买家确认收货                  -> shipped
    TRADE_SUCCESS             买家已签收, 交易成功                          -> completed
    TRADE_BUYER_SIGNED        (3.0) 买家已签收                              -> completed
    TRADE_CLOSED              交易关闭 (cancelled, or closed by a full refund) -> cancelled
    TRADE_CLOSED_BY_USER      (3.0) 买家关闭                                -> cancelled
    anything else -> InvalidInput(code="unknown_status", field=".../order_info.status")

Normalisation:
    line.unit_price = orders[i].price   (单商品原价)
    line.quantity   = orders[i].num
    line.paid       = orders[i].payment (商品最终均摊价: item and order discounts apportioned)
    line.discount   = unit_price * quantity - paid (never below 0)
    total    = sum of unit_price * quantity
    freight  = pay_info.post_fee
    payable  = pay_info.payment (实付, freight included)
    discount = total + freight - payable (all discounts; never below 0)

Refunds (`refund_order`): only `refund_state` 60 (退款成功) counts. A refund naming exactly one
`oids[].oid` is a refund of that line; one naming several lines, or none, is recorded against
the whole order (line_id None), since Youzan gives a single `refund_fee` for it. The refund
list carries no time; the trade's `order_info.update_time` (when Youzan last changed the
trade) is used and is then required. Partial refunds leave the status as it is; a full
refund closes the trade (TRADE_CLOSED -> cancelled) and its refunds are still recorded.

Shop: `order_info.node_kdt_id`, else `order_info.root_kdt_id`, else a root `kdt_id` (a push
envelope's). Buyer: `buyer_info.yz_open_id`. Receiver: `address_info` (receiver_name,
receiver_tel, delivery_* — Youzan may send them encrypted; personal data either way); none
for self-pickup / virtual orders where all three of name, phone and address are blank.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from domain.orders.model import OrderLine, OrderSnapshot, Receiver, Refund
from domain.orders.platforms._common import (
    at,
    invalid,
    opt,
    opt_beijing_time,
    opt_int,
    opt_str,
    opt_yuan,
    req_beijing_time,
    req_int,
    req_list,
    req_mapping,
    req_str,
    req_yuan,
    unknown_status,
)

PLATFORM = "youzan"

STATUS_MAP: dict[str, str] = {
    "WAIT_BUYER_PAY": "placed",
    "TRADE_NO_CREATE_PAY": "placed",
    "TRADE_PAID": "paid",
    "WAIT_CONFIRM": "paid",
    "WAIT_GROUP": "paid",
    "WAIT_SELLER_SEND_GOODS": "paid",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_SUCCESS": "completed",
    "TRADE_BUYER_SIGNED": "completed",
    "TRADE_CLOSED": "cancelled",
    "TRADE_CLOSED_BY_USER": "cancelled",
}

REFUND_SUCCESS = 60  # refund_order[].refund_state 退款成功

# order_info.close_type, as documented (0 = not closed).
CLOSE_TYPES: dict[int, str] = {
    1: "过期关闭",
    2: "标记退款",
    3: "订单取消",
    4: "买家取消",
    5: "卖家取消",
    6: "部分退款",
    10: "无法联系上买家",
    11: "买家误拍或重拍了",
    12: "买家无诚意完成交易",
    13: "已通过银行线下汇款",
    14: "已通过同城见面交易",
    15: "已通过货到付款交易",
    16: "已通过网上银行直接汇款",
    17: "已经缺货无法交易",
}


def _root(payload: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if not isinstance(payload, Mapping):
        raise invalid("the payload must be a JSON object", "")
    if "full_order_info" not in payload:
        for wrapper in ("data", "response"):
            inner = payload.get(wrapper)
            if isinstance(inner, Mapping) and "full_order_info" in inner:
                return inner, wrapper
    return payload, ""


def _line(order: Mapping[str, Any], path: str) -> OrderLine:
    unit_price = req_yuan(order, "price", path)
    quantity = req_int(order, "num", path, minimum=1)
    paid = req_yuan(order, "payment", path)
    sku_id = opt_str(order, "sku_id", path)
    sku = sku_id if sku_id not in (None, "0") else req_str(order, "item_id", path)
    return OrderLine(
        line_id=req_str(order, "oid", path),
        sku=sku,
        title=req_str(order, "title", path),
        quantity=quantity,
        unit_price=unit_price,
        paid=paid,
        discount=max(0, unit_price * quantity - paid),
    )


def _receiver(full: Mapping[str, Any], path: str) -> Receiver | None:
    info = opt(full, "address_info")
    if info is None:
        return None
    info_path = at(path, "address_info")
    if not isinstance(info, Mapping):
        raise invalid(f"{info_path} must be an object", info_path)
    name = opt_str(info, "receiver_name", info_path)
    phone = opt_str(info, "receiver_tel", info_path)
    address = opt_str(info, "delivery_address", info_path)
    if name is None and phone is None and address is None:
        return None  # self-pickup or virtual goods
    return Receiver(
        name=req_str(info, "receiver_name", info_path),
        phone=req_str(info, "receiver_tel", info_path),
        address=req_str(info, "delivery_address", info_path),
        province=req_str(info, "delivery_province", info_path),
        city=req_str(info, "delivery_city", info_path),
        district=opt_str(info, "delivery_district", info_path) or "",
    )


def _shop_id(payload: Mapping[str, Any], order_info: Mapping[str, Any], path: str) -> str:
    for key in ("node_kdt_id", "root_kdt_id"):
        value = opt_str(order_info, key, path)
        if value is not None:
            return value
    value = opt_str(payload, "kdt_id", "")
    if value is not None:
        return value
    return req_str(order_info, "node_kdt_id", path)  # raises, naming the field


def _refunds(
    root: Mapping[str, Any],
    root_path: str,
    line_ids: set[str],
    updated_at: datetime | None,
    info_path: str,
) -> tuple[Refund, ...]:
    entries = req_list(root, "refund_order", root_path, non_empty=False)
    list_path = at(root_path, "refund_order")
    refunds: list[Refund] = []
    for index, entry in enumerate(entries):
        path = at(list_path, index)
        if not isinstance(entry, Mapping):
            raise invalid(f"{path} must be an object", path)
        if req_int(entry, "refund_state", path) != REFUND_SUCCESS:
            continue
        oids_path = at(path, "oids")
        oids: list[str] = []
        for j, item in enumerate(req_list(entry, "oids", path, non_empty=False)):
            item_path = at(oids_path, j)
            if not isinstance(item, Mapping):
                raise invalid(f"{item_path} must be an object", item_path)
            oid = req_str(item, "oid", item_path)
            if oid not in line_ids:
                raise invalid(
                    f"{at(item_path, 'oid')} names no line of this trade", at(item_path, "oid")
                )
            oids.append(oid)
        if updated_at is None:
            field = at(info_path, "update_time")
            raise invalid(f"{field} is required to date a completed refund", field)
        refunds.append(
            Refund(
                refund_id=req_str(entry, "refund_id", path),
                amount=req_yuan(entry, "refund_fee", path),
                line_id=oids[0] if len(oids) == 1 else None,
                refunded_at=updated_at,
            )
        )
    return tuple(refunds)


def parse(payload: Mapping[str, Any]) -> OrderSnapshot:
    root, root_path = _root(payload)
    full_path = at(root_path, "full_order_info")
    full = req_mapping(root, "full_order_info", root_path)
    info_path = at(full_path, "order_info")
    info = req_mapping(full, "order_info", full_path)

    raw_status = req_str(info, "status", info_path)
    if raw_status not in STATUS_MAP:
        raise unknown_status(raw_status, at(info_path, "status"))
    status = STATUS_MAP[raw_status]

    orders_path = at(full_path, "orders")
    lines: list[OrderLine] = []
    for index, order in enumerate(req_list(full, "orders", full_path)):
        line_path = at(orders_path, index)
        if not isinstance(order, Mapping):
            raise invalid(f"{line_path} must be an object", line_path)
        lines.append(_line(order, line_path))

    pay_path = at(full_path, "pay_info")
    pay = req_mapping(full, "pay_info", full_path)
    freight = opt_yuan(pay, "post_fee", pay_path)
    payable = req_yuan(pay, "payment", pay_path)
    total = sum(line.unit_price * line.quantity for line in lines)

    buyer_path = at(full_path, "buyer_info")
    buyer = req_mapping(full, "buyer_info", full_path)

    updated_at = opt_beijing_time(info, "update_time", info_path, zero_is_none=True)
    completed_at = None
    if status == "completed":
        completed_at = opt_beijing_time(info, "success_time", info_path, zero_is_none=True)
    cancelled_at = None
    cancel_reason = None
    close_type = opt_int(info, "close_type", info_path)
    if status == "cancelled":
        cancelled_at = updated_at
        if cancelled_at is None:
            field = at(info_path, "update_time")
            raise invalid(f"{field} is required for a closed trade", field)
        if close_type:
            cancel_reason = CLOSE_TYPES.get(close_type, f"close_type {close_type}")

    extra = {"status": raw_status}
    if close_type is not None:
        extra["close_type"] = str(close_type)
    refund_state = opt_int(info, "refund_state", info_path)
    if refund_state is not None:
        extra["refund_state"] = str(refund_state)

    return OrderSnapshot(
        platform=PLATFORM,
        trade_id=req_str(info, "tid", info_path),
        shop_id=_shop_id(payload, info, info_path),
        buyer_id=req_str(buyer, "yz_open_id", buyer_path),
        status=status,
        placed_at=req_beijing_time(info, "created", info_path),
        lines=tuple(lines),
        total=total,
        discount=max(0, total + freight - payable),
        freight=freight,
        payable=payable,
        paid_at=opt_beijing_time(info, "pay_time", info_path, zero_is_none=True),
        shipped_at=opt_beijing_time(info, "consign_time", info_path, zero_is_none=True),
        completed_at=completed_at,
        cancelled_at=cancelled_at,
        cancel_reason=cancel_reason,
        receiver=_receiver(full, full_path),
        refunds=_refunds(root, root_path, {line.line_id for line in lines}, updated_at, info_path),
        extra=extra,
    )
