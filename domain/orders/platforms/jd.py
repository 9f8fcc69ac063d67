"""JD (京东 POP): the `orderInfo` of jingdong.pop.order.get (the same object the order search
and the order push fetch return), one order with its `itemInfoList`.

Accepted shapes: `{"jingdong_pop_order_get_responce": {"orderDetailInfo": {"orderInfo":
{...}}}}` (JD's own spelling "responce"), `{"orderDetailInfo": {"orderInfo": {...}}}` or
`{"orderInfo": {...}}`. Field paths in errors are paths into what was given.

Status (orderState) -> snapshot status:

    WAIT_SELLER_STOCK_OUT (等待出库), WAIT_SELLER_DELIVERY (等待境内发货, cross-border),
    WAIT_SEND_CODE (等待发码, LOC), LOCKED (已锁定), PAUSE (暂停),
    POP_ORDER_PAUSE (POP暂停)                                       -> paid
    WAIT_GOODS_RECEIVE_CONFIRM (等待确认收货)                       -> shipped
    FINISHED_L (完成)                                               -> completed
    TRADE_CANCELED (取消)                                           -> cancelled

JD shows POP sellers an order only once it is paid (or confirmed, for cash on delivery,
payType 1), so nothing maps to placed. LOCKED / PAUSE / POP_ORDER_PAUSE hold a paid order
back from shipping (a cancellation request, risk control, a business pause): still paid.
Any other code (e.g. DELIVERY_RETURN) is refused as unknown.

Buyer: `open_id_buyer` (the buyer's open id for the app), else `pin`; one is required and
which one was used is kept in extra["buyer_id_field"]. Shop: `venderId`. JD has no sub-order
id: a line is identified by its `skuId` (suffixed `#<index>` if the same SKU appears twice).

Amounts (yuan strings -> fen, ROUND_HALF_UP):
- total = Σ jdPrice × itemTotal; must equal `orderTotalPrice` (订单总金额, "不减优惠，不加运费").
- freight = `freightPrice`.
- payable = `orderPayment` + `balanceUsed`: JD's 应付款 is 货款 - 用户优惠 - 余额 + 运费 + ...,
  so the part paid from the buyer's JD balance is added back — it is money the buyer paid.
- discount = total + freight - payable (sellerDiscount and every platform coupon together).
  Taxes or service fees that push the payment above total + freight cannot be carried and
  are refused on `orderPayment`.
- line paid: payable - freight shared out by largest remainder, weighted by each line's list
  price less the SKU-level coupons of `couponDetailList` naming its skuId (order-level
  coupons fall to all lines in proportion); if the coupons disagree with the amounts so that
  a line would be paid above its list price, by list price alone. Line discount = list price
  - paid. The coupon list is not otherwise checked against the totals.

Refunds: orderInfo carries no after-sales data (that is the jingdong.asc/afs APIs). The one
refund it does imply: a TRADE_CANCELED order that had been paid online
(`paymentConfirmTime` set, payType not 1 cash on delivery) is refunded in full by JD; it is
reported as Refund(id "<orderId>:cancel", whole order, at orderEndTime else modified).

Times (Beijing wall clock) -> UTC: placed `orderStartTime`, paid `paymentConfirmTime`,
completed / cancelled `orderEndTime`. JD sends "0001-01-01 00:00:00" / "1970-01-01 ..." for
"not yet": read as absent. orderInfo has no shipping time: shipped_at stays None.
Carrier / tracking: `logisticsId` / `waybill`. Receiver: `consigneeInfo` {fullname, mobile
(else telephone), fullAddress, province, city, county}; fullAddress is JD's full address
line (JD does not send the street part alone).
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
    opt_str,
    opt_yuan,
    priced_items,
    req_beijing_time,
    req_list,
    req_mapping,
    req_str,
    req_yuan,
)

STATUS = {
    "WAIT_SELLER_STOCK_OUT": "paid",
    "WAIT_SELLER_DELIVERY": "paid",
    "WAIT_SEND_CODE": "paid",
    "LOCKED": "paid",
    "PAUSE": "paid",
    "POP_ORDER_PAUSE": "paid",
    "WAIT_GOODS_RECEIVE_CONFIRM": "shipped",
    "FINISHED_L": "completed",
    "TRADE_CANCELED": "cancelled",
}
CASH_ON_DELIVERY = "1"


def _unwrap(payload: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    path = ""
    for key in ("jingdong_pop_order_get_responce", "orderDetailInfo"):
        if key in payload:
            payload = req_mapping(payload, key, path)
            path = at(path, key)
    return req_mapping(payload, "orderInfo", path), at(path, "orderInfo")


def parse(payload: Mapping[str, Any]) -> OrderSnapshot:
    info, op = _unwrap(payload)

    trade_id = req_str(info, "orderId", op)
    raw_status = req_str(info, "orderState", op)
    status = map_status(raw_status, STATUS, at(op, "orderState"))
    shop_id = req_str(info, "venderId", op)
    extra = {"status": raw_status}
    if opt(info, "open_id_buyer") is not None:
        buyer_id = req_str(info, "open_id_buyer", op)
        extra["buyer_id_field"] = "open_id_buyer"
    elif opt(info, "pin") is not None:
        buyer_id = req_str(info, "pin", op)
        extra["buyer_id_field"] = "pin"
    else:
        field = at(op, "open_id_buyer")
        raise invalid(f"{field} (or pin) is required: the order has no buyer", field)
    pay_type = opt_str(info, "payType", op)
    if pay_type is not None:
        extra["payType"] = pay_type

    placed_at = req_beijing_time(info, "orderStartTime", op)
    paid_at = opt_beijing_time(info, "paymentConfirmTime", op, zero_is_none=True)
    end_time = opt_beijing_time(info, "orderEndTime", op, zero_is_none=True)
    modified = opt_beijing_time(info, "modified", op, zero_is_none=True)

    freight = opt_yuan(info, "freightPrice", op)
    payable = req_yuan(info, "orderPayment", op) + opt_yuan(info, "balanceUsed", op)

    rows = priced_items(
        req_list(info, "itemInfoList", op),
        at(op, "itemInfoList"),
        sku="skuId",
        quantity="itemTotal",
        price="jdPrice",
        title="skuName",
    )

    total = sum(r["gross"] for r in rows)
    if req_yuan(info, "orderTotalPrice", op) != total:
        field = at(op, "orderTotalPrice")
        raise invalid(f"{field} does not equal the sum of jdPrice × itemTotal ({total} fen)", field)
    discount = total + freight - payable
    if discount < 0:
        field = at(op, "orderPayment")
        raise invalid(
            f"{field} is more than the goods plus freight; taxes or fees cannot be recorded",
            field,
        )

    sku_coupons: dict[str, int] = {}
    coupons_path = at(op, "couponDetailList")
    for i, coupon in enumerate(req_list(info, "couponDetailList", op, non_empty=False)):
        path = at(coupons_path, i)
        if not isinstance(coupon, Mapping):
            raise invalid(f"{path} must be an object", path)
        coupon_sku = opt_str(coupon, "skuId", path)
        if coupon_sku:
            price = req_yuan(coupon, "couponPrice", path)
            sku_coupons[coupon_sku] = sku_coupons.get(coupon_sku, 0) + price
    remaining = dict(sku_coupons)
    weights = {}
    for r in rows:  # a SKU's coupons go to its first line(s) until used up
        used = min(remaining.get(r["sku"], 0), r["gross"])
        remaining[r["sku"]] = remaining.get(r["sku"], 0) - used
        weights[r["line_id"]] = r["gross"] - used
    paid = allocate(payable - freight, weights)
    if any(paid[r["line_id"]] > r["gross"] for r in rows):  # coupons disagreeing with the sums
        paid = allocate(payable - freight, {r["line_id"]: r["gross"] for r in rows})
    lines = []
    for r in rows:
        line_paid = paid[r["line_id"]]
        lines.append(
            OrderLine(
                line_id=r["line_id"],
                sku=r["sku"],
                title=r["title"],
                quantity=r["num"],
                unit_price=r["price"],
                paid=line_paid,
                discount=r["gross"] - line_paid,
            )
        )

    refunds: tuple[Refund, ...] = ()
    if status == "cancelled" and paid_at is not None and pay_type != CASH_ON_DELIVERY:
        refunded_at = end_time or modified
        if refunded_at is None:
            field = at(op, "orderEndTime")
            raise invalid(f"{field} is required for a cancelled paid order", field)
        refunds = (Refund(f"{trade_id}:cancel", payable, None, refunded_at),)

    return OrderSnapshot(
        platform="jd",
        trade_id=trade_id,
        shop_id=shop_id,
        buyer_id=buyer_id,
        status=status,
        placed_at=placed_at,
        lines=tuple(lines),
        total=total,
        discount=discount,
        freight=freight,
        payable=payable,
        paid_at=paid_at,
        completed_at=end_time if status == "completed" else None,
        cancelled_at=(end_time or modified) if status == "cancelled" else None,
        cancel_reason="cancelled" if status == "cancelled" else None,
        receiver=_receiver(info, op),
        refunds=refunds,
        carrier=opt_str(info, "logisticsId", op),
        tracking_no=opt_str(info, "waybill", op),
        extra=extra,
    )


def _receiver(info: Mapping[str, Any], op: str) -> Receiver | None:
    if opt(info, "consigneeInfo") is None:
        return None
    cp = at(op, "consigneeInfo")
    c = req_mapping(info, "consigneeInfo", op)
    return Receiver(
        name=req_str(c, "fullname", cp),
        phone=clean_phone(opt_str(c, "mobile", cp) or opt_str(c, "telephone", cp)),
        address=req_str(c, "fullAddress", cp),
        province=opt_str(c, "province", cp) or "",
        city=opt_str(c, "city", cp) or "",
        district=opt_str(c, "county", cp) or "",
    )
