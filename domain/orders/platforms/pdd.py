"""Pinduoduo (拼多多): the `order_info` of pdd.order.information.get (what the trade push
messages, pdd_trade_TradeConfirmed & co., lead to), one order with its `item_list`.

Accepted shape: `{"mall_id": ..., "order_info_get_response": {"order_info": {...}}}` or
`{"mall_id": ..., "order_info": {...}}`. `order_info` does not name the shop, so `mall_id`
(店铺ID: what the push message carries, or the mall the access token belongs to) is required
beside it. Field paths in errors are paths into what was given.

Status. Pinduoduo describes an order with four codes, read in this order:

    refund_status  4 退款成功                                       -> cancelled ("refunded")
    confirm_status 2 已取消 (group failed, unpaid, closed)           -> cancelled ("cancelled")
    confirm_status 0 未成交 (paid, group still forming 拼团中)       -> paid, or placed if there is
                   no pay_time or a deposit order (trade_type 1) has not paid its balance
                   (step_order_info.step_trade_status 0/1)
    confirm_status 1 已成交, then order_status:
                   1 待发货 -> paid, 2 已发货待签收 -> shipped, 3 已签收 -> completed

refund_status 1 (无售后或售后关闭), 2 (售后处理中), 3 (退款中) do not change the status: a
refund in progress is not a refund. Each code must be one of those listed, or the payload is
refused with code unknown_status naming that field. trade_type is 0 普通订单 / 1 定金订单
(deposit), not a group-buy flag: a group buy (拼团) is told by `group_order_id` (团id), which
becomes `group_id`; group_status (0 拼团中 / 1 已成团 / 2 团失败) and group_role are kept in
`extra`, as are all four status codes.

Buyer: order_info carries no buyer id (privacy). The only stable buyer-side id it documents
is `open_address_id` (合单ID: one id per receiver of the shop — the same name, phone and
address — which ERPs use as the buyer key); buyer_id is that value. Two people sharing a
receiver look like one buyer, one person with two addresses like two; an order without
open_address_id is refused (field order_info.open_address_id) rather than given a made-up
buyer.

Amounts (yuan numbers or strings -> fen, ROUND_HALF_UP):
- total = Σ goods_price × goods_count; freight = `postage`; payable = `pay_amount`
  (支付金额 = 商品金额 - 折扣金额 + 邮费); discount = total + freight - payable: discount_amount
  (platform + seller + 团长免单) plus any price change (改价). A pay_amount above total +
  postage is refused on `pay_amount`. goods_amount / discount_amount / platform_discount /
  seller_discount are not cross-checked (newer discounts such as 多多支付立减 and subsidies
  are not in the documented formula).
- Pinduoduo has no per-item paid amount (an order is, in practice, one goods): payable -
  postage is shared out over the items by largest remainder weighted by list price.
  Line id: `sku_id` (suffixed `#<index>` if repeated); category: the deepest non-zero
  cat_id_4..cat_id_1 of the order.

Refunds: refund_status 4 gives one whole-order Refund, id "<order_sn>:refund", amount
pay_amount, at `updated_at`. The order payload has no refund amount or refund id (those are in
pdd.refund.information.get); a partial after-sales refund that PDD also reports as 4 would be
recorded as full — a known limit.

Times (Beijing wall clock) -> UTC: placed `created_time`, paid `pay_time`, shipped
`shipping_time`, completed `receive_time`, cancelled `updated_at`. Carrier / tracking:
`logistics_id` / `tracking_number`. Receiver: receiver_name, receiver_phone (plain only while
the order waits for shipping, then masked: kept as ""), receiver_address (street part,
"不拼接省市区") else address, province, city, town.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.orders.model import OrderLine, OrderSnapshot, Receiver, Refund
from domain.orders.platforms._common import (
    allocate,
    at,
    clean_phone,
    invalid,
    map_status,
    opt,
    opt_beijing_time,
    opt_int,
    opt_str,
    opt_yuan,
    priced_items,
    req,
    req_beijing_time,
    req_list,
    req_mapping,
    req_str,
    req_yuan,
    unknown_status,
)

CONFIRM_STATUS = {0: "unconfirmed", 1: "confirmed", 2: "cancelled"}  # 未成交 / 已成交 / 已取消
ORDER_STATUS = {1: "paid", 2: "shipped", 3: "completed"}  # 待发货 / 已发货待签收 / 已签收
REFUND_STATUS = {1: "none", 2: "after_sales", 3: "refunding", 4: "refunded"}
DEPOSIT_UNPAID = (0, 1)  # step_trade_status: 定金未付尾款未付, 定金已付尾款未付


def _code(info: Mapping[str, Any], key: str, path: str, table: Mapping[int, str]) -> int:
    """A required status code; anything not in `table` (a number or not) is unknown_status."""
    field = at(path, key)
    value = req(info, key, path)
    try:
        code = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        code = None
    if code is None or str(code) != str(value).strip():
        raise unknown_status(value, field)
    map_status(code, table, field)
    return code


def parse(payload: Mapping[str, Any]) -> OrderSnapshot:
    shop_id = req_str(payload, "mall_id", "")
    root = ""
    if "order_info_get_response" in payload:
        root = "order_info_get_response"
        payload = req_mapping(payload, root, "")
    info = req_mapping(payload, "order_info", root)
    op = at(root, "order_info")

    trade_id = req_str(info, "order_sn", op)
    confirm = _code(info, "confirm_status", op, CONFIRM_STATUS)
    shipping = _code(info, "order_status", op, ORDER_STATUS)
    refund = _code(info, "refund_status", op, REFUND_STATUS)
    if opt(info, "open_address_id") is None:
        field = at(op, "open_address_id")
        raise invalid(
            f"{field} is required: Pinduoduo sends no buyer id, and the order is kept under "
            "its receiver id (合单ID) instead",
            field,
        )
    buyer_id = req_str(info, "open_address_id", op)

    placed_at = req_beijing_time(info, "created_time", op)
    paid_at = opt_beijing_time(info, "pay_time", op)
    shipped_at = opt_beijing_time(info, "shipping_time", op)
    received_at = opt_beijing_time(info, "receive_time", op)
    updated_at = opt_beijing_time(info, "updated_at", op)

    trade_type = opt_int(info, "trade_type", op, default=0)
    step_status = None
    if opt(info, "step_order_info") is not None:
        step = req_mapping(info, "step_order_info", op)
        step_status = opt_int(step, "step_trade_status", at(op, "step_order_info"))

    cancel_reason = None
    if refund == 4:
        status, cancel_reason = "cancelled", "refunded"
    elif confirm == 2:
        status, cancel_reason = "cancelled", "cancelled"
    elif confirm == 0:
        deposit_open = trade_type == 1 and step_status in DEPOSIT_UNPAID
        status = "placed" if paid_at is None or deposit_open else "paid"
    else:
        status = ORDER_STATUS[shipping]

    freight = opt_yuan(info, "postage", op)
    payable = req_yuan(info, "pay_amount", op)

    category = None
    for key in ("cat_id_4", "cat_id_3", "cat_id_2", "cat_id_1"):
        cat = opt_str(info, key, op)
        if cat and cat != "0":
            category = cat
            break

    rows = priced_items(
        req_list(info, "item_list", op),
        at(op, "item_list"),
        sku="sku_id",
        quantity="goods_count",
        price="goods_price",
        title="goods_name",
    )
    total = sum(r["gross"] for r in rows)
    discount = total + freight - payable
    if discount < 0:
        field = at(op, "pay_amount")
        raise invalid(f"{field} is more than the goods plus postage", field)
    paid = allocate(payable - freight, {r["line_id"]: r["gross"] for r in rows})
    lines = tuple(
        OrderLine(
            line_id=r["line_id"],
            sku=r["sku"],
            title=r["title"],
            quantity=r["num"],
            unit_price=r["price"],
            paid=paid[r["line_id"]],
            discount=r["gross"] - paid[r["line_id"]],
            category=category,
        )
        for r in rows
    )

    refunds: tuple[Refund, ...] = ()
    if refund == 4:
        if updated_at is None:
            field = at(op, "updated_at")
            raise invalid(f"{field} is required for a refunded order", field)
        refunds = (Refund(f"{trade_id}:refund", payable, None, updated_at),)

    extra = {
        "confirm_status": str(confirm),
        "order_status": str(shipping),
        "refund_status": str(refund),
        "trade_type": str(trade_type),
    }
    for key in ("group_status", "group_role", "after_sales_status", "is_lucky_flag"):
        value = opt_str(info, key, op)
        if value is not None:
            extra[key] = value
    group_id = opt_str(info, "group_order_id", op)
    carrier = opt_str(info, "logistics_id", op)

    return OrderSnapshot(
        platform="pdd",
        trade_id=trade_id,
        shop_id=shop_id,
        buyer_id=buyer_id,
        status=status,
        placed_at=placed_at,
        lines=lines,
        total=total,
        discount=discount,
        freight=freight,
        payable=payable,
        paid_at=paid_at,
        shipped_at=shipped_at,
        completed_at=received_at if status == "completed" else None,
        cancelled_at=updated_at if status == "cancelled" else None,
        cancel_reason=cancel_reason,
        receiver=_receiver(info, op),
        refunds=refunds,
        group_id=group_id if group_id and group_id != "0" else None,
        carrier=carrier if carrier and carrier != "0" else None,
        tracking_no=opt_str(info, "tracking_number", op),
        extra=extra,
    )


def _receiver(info: Mapping[str, Any], op: str) -> Receiver | None:
    if opt(info, "receiver_name") is None:
        return None
    street = opt_str(info, "receiver_address", op)
    return Receiver(
        name=req_str(info, "receiver_name", op),
        phone=clean_phone(opt_str(info, "receiver_phone", op)),
        address=street if street is not None else req_str(info, "address", op),
        province=opt_str(info, "province", op) or "",
        city=opt_str(info, "city", op) or "",
        district=opt_str(info, "town", op) or "",
    )
