"""Douyin 抖店 adapter: the order detail of `order.orderDetail` (`shop_order_detail`).

Accepted payloads: the response's `data` object (`{"shop_order_detail": {...}}`) or the whole
response (`{"data": {"shop_order_detail": {...}}, "code": 10000, ...}`); error paths start
at whichever root was given (`shop_order_detail.sku_order_list[1].item_num` or
`data.shop_order_detail...`).

Amounts: Douyin sends integer fen already (`pay_amount`, `order_amount`, `post_amount`,
`promotion_amount`, per sku `origin_amount`, `sum_amount`, `pay_amount`, `post_amount`,
`promotion_amount`). Times: unix seconds; 0 means "not yet".

Status (`shop_order_detail.order_status`, the documented enumeration) -> model.STATUSES:

    1   待确认/待支付 (created, not paid)            -> placed
    103 部分支付 (part paid; main_status only)        -> placed
    105 已支付 (paid, being confirmed)               -> paid
    2   备货中 (paid, preparing shipment)            -> paid
    101 部分发货 (some parcels left)                 -> shipped  (goods are on the way;
                                                      the Order has no partial step)
    3   已发货 (all shipped)                          -> shipped
    5   已完成 (received)                             -> completed
    4   已取消 (cancelled, also after a full refund)  -> cancelled
    anything else -> InvalidInput(code="unknown_status", field=".../order_status")

`main_status` (which also tells refund outcomes 21/22/39) and the raw `order_status` are kept
in `extra`.

Normalisation:
    line.unit_price = sku `origin_amount` (商品现价, campaign prices already applied)
    line.quantity   = sku `item_num`
    line.discount   = sku `promotion_amount`
    line.paid       = sku `pay_amount` - sku `post_amount` (the sku's pay_amount carries its
                      share of freight; the line is goods only)
    total    = sum of unit_price * quantity over the lines
    discount = shop `promotion_amount` (shop + platform + author promotions)
    freight  = shop `post_amount`
    payable  = shop `pay_amount` (what the buyer pays, as Douyin reports it)

Refunds: the order detail reports after-sales per sku order in `after_sale_info`
(`refund_status` 3 = 退款成功) but not their amount or time. A sku order whose after-sale is a
refund (`after_sale_type` 0 退货退款, 1 已发货仅退款, 2 未发货仅退款, 4 系统取消, 5 用户取消)
with `refund_status` 3 on a paid order is one completed refund of that whole line: refund id
`<sku order_id>`, amount = the line's paid, time = the sku order's `update_time` (else the
shop order's). 价保 (6), 换货 (3) and 补寄 (7) are not money refunds we can size from the
detail and are not recorded. Several lines refunded = a partial refund; all lines = full.

Receiver: Douyin delivers `encrypt_post_receiver`, `encrypt_post_tel` and
`post_addr.encrypt_detail` (ciphertexts; the plain `post_receiver` / `post_tel` /
`post_addr.detail` are used when given). They are personal data either way. No `post_addr`
(virtual goods) = no receiver.
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
    opt_fen,
    opt_int,
    opt_str,
    opt_unix_time,
    req_fen,
    req_int,
    req_list,
    req_mapping,
    req_str,
    req_unix_time,
    unknown_status,
)

PLATFORM = "douyin"

STATUS_MAP: dict[int, str] = {
    1: "placed",
    103: "placed",
    105: "paid",
    2: "paid",
    101: "shipped",
    3: "shipped",
    5: "completed",
    4: "cancelled",
}

REFUND_SUCCESS = 3  # after_sale_info.refund_status 退款成功
# after_sale_type values that move money back:
# 0 退货退款, 1 已发货仅退款, 2 未发货仅退款, 4 系统取消, 5 用户取消
MONEY_REFUND_TYPES = frozenset({0, 1, 2, 4, 5})


def _root(payload: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if not isinstance(payload, Mapping):
        raise invalid("the payload must be a JSON object", "")
    if "shop_order_detail" in payload:
        return req_mapping(payload, "shop_order_detail", ""), "shop_order_detail"
    if isinstance(payload.get("data"), Mapping):
        data = payload["data"]
        return req_mapping(data, "shop_order_detail", "data"), "data.shop_order_detail"
    return req_mapping(payload, "shop_order_detail", ""), "shop_order_detail"


def _status(order: Mapping[str, Any], path: str) -> tuple[str, int]:
    field = at(path, "order_status")
    code = req_int(order, "order_status", path)
    if code not in STATUS_MAP:
        raise unknown_status(code, field)
    return STATUS_MAP[code], code


def _line(sku: Mapping[str, Any], path: str) -> OrderLine:
    unit_price = req_fen(sku, "origin_amount", path)
    quantity = req_int(sku, "item_num", path, minimum=1)
    pay_amount = req_fen(sku, "pay_amount", path)
    post_amount = opt_fen(sku, "post_amount", path)
    if post_amount > pay_amount:
        raise invalid(
            f"{at(path, 'post_amount')} is larger than {at(path, 'pay_amount')}",
            at(path, "post_amount"),
        )
    sku_id = opt_str(sku, "sku_id", path) or req_str(sku, "product_id", path)
    category = opt_str(sku, "third_cid", path) or opt_str(sku, "first_cid", path)
    return OrderLine(
        line_id=req_str(sku, "order_id", path),
        sku=sku_id,
        title=req_str(sku, "product_name", path),
        quantity=quantity,
        unit_price=unit_price,
        paid=pay_amount - post_amount,
        discount=opt_fen(sku, "promotion_amount", path),
        category=None if category == "0" else category,
    )


def _receiver(order: Mapping[str, Any], path: str) -> Receiver | None:
    addr = opt(order, "post_addr")
    if addr is None:
        return None
    addr_path = at(path, "post_addr")
    if not isinstance(addr, Mapping):
        raise invalid(f"{addr_path} must be an object", addr_path)
    name = opt_str(order, "post_receiver", path) or opt_str(order, "encrypt_post_receiver", path)
    phone = opt_str(order, "post_tel", path) or opt_str(order, "encrypt_post_tel", path)
    detail = opt_str(addr, "detail", addr_path) or opt_str(addr, "encrypt_detail", addr_path)
    if name is None and phone is None and detail is None:
        return None  # virtual goods: an address object without a receiver
    if name is None:
        raise invalid(
            f"{at(path, 'encrypt_post_receiver')} is required", at(path, "encrypt_post_receiver")
        )
    if phone is None:
        raise invalid(f"{at(path, 'encrypt_post_tel')} is required", at(path, "encrypt_post_tel"))
    if detail is None:
        raise invalid(
            f"{at(addr_path, 'encrypt_detail')} is required", at(addr_path, "encrypt_detail")
        )

    def region(key: str) -> str:
        part = req_mapping(addr, key, addr_path)
        return req_str(part, "name", at(addr_path, key))

    town = opt(addr, "town")  # county level; absent for a few direct-administered areas
    district = ""
    if town is not None:
        district = region("town")

    return Receiver(
        name=name,
        phone=phone,
        address=detail,
        province=region("province"),
        city=region("city"),
        district=district,
    )


def _refunds(
    skus: list[Any],
    lines: list[OrderLine],
    list_path: str,
    fallback_time: datetime | None,
    paid: bool,
) -> tuple[Refund, ...]:
    if not paid:
        return ()
    refunds: list[Refund] = []
    for index, (sku, line) in enumerate(zip(skus, lines, strict=True)):
        path = at(list_path, index)
        info = opt(sku, "after_sale_info")
        if info is None:
            continue
        info_path = at(path, "after_sale_info")
        if not isinstance(info, Mapping):
            raise invalid(f"{info_path} must be an object", info_path)
        refund_status = opt_int(info, "refund_status", info_path)
        after_sale_type = opt_int(info, "after_sale_type", info_path)
        if refund_status != REFUND_SUCCESS or after_sale_type not in MONEY_REFUND_TYPES:
            continue
        when = opt_unix_time(sku, "update_time", path) or fallback_time
        if when is None:
            raise invalid(
                f"{at(path, 'update_time')} is required for a refunded line",
                at(path, "update_time"),
            )
        refunds.append(
            Refund(refund_id=line.line_id, amount=line.paid, line_id=line.line_id, refunded_at=when)
        )
    return tuple(refunds)


def _logistics(
    order: Mapping[str, Any], path: str
) -> tuple[str | None, str | None, datetime | None]:
    parcels = opt(order, "logistics_info")
    if parcels is None:
        return None, None, None
    list_path = at(path, "logistics_info")
    if not isinstance(parcels, list):
        raise invalid(f"{list_path} must be a list", list_path)
    if not parcels:
        return None, None, None
    first = parcels[0]
    first_path = at(list_path, 0)
    if not isinstance(first, Mapping):
        raise invalid(f"{first_path} must be an object", first_path)
    carrier = opt_str(first, "company_name", first_path) or opt_str(first, "company", first_path)
    return (
        carrier,
        opt_str(first, "tracking_no", first_path),
        opt_unix_time(first, "ship_time", first_path),
    )


def parse(payload: Mapping[str, Any]) -> OrderSnapshot:
    order, path = _root(payload)
    status, code = _status(order, path)
    list_path = at(path, "sku_order_list")
    skus = req_list(order, "sku_order_list", path)
    lines: list[OrderLine] = []
    for index, sku in enumerate(skus):
        sku_path = at(list_path, index)
        if not isinstance(sku, Mapping):
            raise invalid(f"{sku_path} must be an object", sku_path)
        lines.append(_line(sku, sku_path))

    placed_at = req_unix_time(order, "create_time", path)
    paid_at = opt_unix_time(order, "pay_time", path)
    updated_at = opt_unix_time(order, "update_time", path)
    carrier, tracking_no, first_ship = _logistics(order, path)
    shipped_at = opt_unix_time(order, "ship_time", path) or first_ship
    completed_at = opt_unix_time(order, "finish_time", path) if status == "completed" else None
    cancelled_at = None
    cancel_reason = None
    if status == "cancelled":
        cancelled_at = updated_at or opt_unix_time(order, "finish_time", path)
        if cancelled_at is None:
            raise invalid(
                f"{at(path, 'update_time')} is required for a cancelled order",
                at(path, "update_time"),
            )
        cancel_reason = opt_str(order, "cancel_reason", path)

    extra = {"order_status": str(code)}
    main_status = opt(order, "main_status")
    if main_status is not None:
        extra["main_status"] = str(main_status)

    return OrderSnapshot(
        platform=PLATFORM,
        trade_id=req_str(order, "order_id", path),
        shop_id=req_str(order, "shop_id", path),
        buyer_id=req_str(order, "doudian_open_id", path),
        status=status,
        placed_at=placed_at,
        lines=tuple(lines),
        total=sum(line.unit_price * line.quantity for line in lines),
        discount=opt_fen(order, "promotion_amount", path),
        freight=opt_fen(order, "post_amount", path),
        payable=req_fen(order, "pay_amount", path),
        paid_at=paid_at,
        shipped_at=shipped_at,
        completed_at=completed_at,
        cancelled_at=cancelled_at,
        cancel_reason=cancel_reason,
        receiver=_receiver(order, path),
        refunds=_refunds(skus, lines, list_path, updated_at, paid_at is not None),
        carrier=carrier,
        tracking_no=tracking_no,
        extra=extra,
    )
