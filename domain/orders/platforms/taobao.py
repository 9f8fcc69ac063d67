"""Taobao / Tmall: the `trade` of taobao.trade.fullinfo.get (also what the trade push —
taobao_trade_* messages followed by a fullinfo fetch — delivers), one trade with its
sub-orders `orders.order[]`.

Accepted shapes: the whole response `{"trade_fullinfo_get_response": {"trade": {...}}}` or
`{"trade": {...}}`. Field paths in errors are paths into what was given, e.g.
`trade.orders.order[1].num`.

Status (trade.status) -> snapshot status:

    TRADE_NO_CREATE_PAY, WAIT_BUYER_PAY, PAY_PENDING, WAIT_PRE_AUTH_CONFIRM  -> placed
    WAIT_SELLER_SEND_GOODS, SELLER_CONSIGNED_PART, PAID_FORBID_CONSIGN       -> paid
    WAIT_BUYER_CONFIRM_GOODS, TRADE_BUYER_SIGNED                             -> shipped
    TRADE_FINISHED                                                           -> completed
    TRADE_CLOSED (refunded after payment), TRADE_CLOSED_BY_TAOBAO (closed
    before payment)                                                          -> cancelled

SELLER_CONSIGNED_PART (some sub-orders shipped) counts as paid: the order as a whole is
not shipped until every line is. Its first consign time is kept in `extra`. PAID_FORBID_CONSIGN
(paid, shipping blocked: group buy forming, risk control) is paid. ALL_WAIT_PAY / ALL_CLOSED
are query filters, not statuses, and are refused like any unknown code.

Buyer: `buyer_open_uid` (the buyer's stable open id for the app), required. `buyer_nick` is
masked by Taobao since 2021 and is not used, so one buyer never becomes two.
Shop: `seller_nick`. Line: `oid_str`/`oid`; sku: `sku_id`, else the item `num_iid`;
category: `cid`.

Amounts (yuan strings -> fen, ROUND_HALF_UP):
- total = Σ price × num over the sub-orders; `total_fee` (商品金额, price × num) must match
  when sent.
- freight = `post_fee`; payable = `payment` (实付, includes post_fee);
  discount = total + freight - payable, i.e. every discount and manual adjustment together.
  A payment above total + post_fee (a positive seller adjustment) cannot be carried by the
  snapshot and is refused on `trade.payment`.
- line paid: `divide_order_fee` (实付 after the trade-level discounts are shared out) when
  every sub-order has it; those must sum exactly to payment - post_fee. Otherwise
  payment - post_fee is shared out by largest remainder weighted by each sub-order's
  `payment` (which does not carry trade-level discounts; with a single sub-order it even
  includes post_fee, per the API notes, so it is not used as is). A line paid above its
  list price is refused. Line discount = price × num - paid.

Refunds: a sub-order whose `refund_status` is SUCCESS gives one Refund for that line, id
`refund_id`, at the sub-order's `end_time` (else the trade's `modified`). The trade payload
does not carry the refunded amount (that is in taobao.refund.get); the line's paid amount
is used, i.e. the whole line. Refunds still in progress (WAIT_SELLER_AGREE, ...) or closed
(CLOSED, SELLER_REFUSE_BUYER) are not refunds yet and are ignored.

Times (Beijing wall clock) -> UTC: placed `created`, paid `pay_time`, shipped `consign_time`
(for shipped/completed), completed `end_time`, cancelled `end_time` (else `modified`).
Carrier / tracking number: the first sub-order's `logistics_company` / `invoice_no`.
Receiver: `receiver_name`, `receiver_mobile` (else `receiver_phone`), `receiver_state`,
`receiver_city`, `receiver_district`, `receiver_address`; absent when none is sent. A
masked or encrypted phone is kept as "" (see _common.clean_phone).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
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
    req_beijing_time,
    req_int,
    req_list,
    req_mapping,
    req_str,
    req_yuan,
)

STATUS = {
    "TRADE_NO_CREATE_PAY": "placed",
    "WAIT_BUYER_PAY": "placed",
    "PAY_PENDING": "placed",
    "WAIT_PRE_AUTH_CONFIRM": "placed",
    "WAIT_SELLER_SEND_GOODS": "paid",
    "SELLER_CONSIGNED_PART": "paid",
    "PAID_FORBID_CONSIGN": "paid",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_BUYER_SIGNED": "shipped",
    "TRADE_FINISHED": "completed",
    "TRADE_CLOSED": "cancelled",
    "TRADE_CLOSED_BY_TAOBAO": "cancelled",
}
CANCEL_REASON = {"TRADE_CLOSED": "refunded", "TRADE_CLOSED_BY_TAOBAO": "closed_before_payment"}


def parse(payload: Mapping[str, Any]) -> OrderSnapshot:
    root = ""
    if "trade_fullinfo_get_response" in payload:
        root = "trade_fullinfo_get_response"
        payload = req_mapping(payload, root, "")
    trade = req_mapping(payload, "trade", root)
    tp = at(root, "trade")

    trade_id = opt_str(trade, "tid_str", tp) or req_str(trade, "tid", tp)
    raw_status = req_str(trade, "status", tp)
    status = map_status(raw_status, STATUS, at(tp, "status"))
    shop_id = req_str(trade, "seller_nick", tp)
    buyer_id = req_str(trade, "buyer_open_uid", tp)
    placed_at = req_beijing_time(trade, "created", tp)
    modified = opt_beijing_time(trade, "modified", tp)

    freight = opt_yuan(trade, "post_fee", tp)
    payable = req_yuan(trade, "payment", tp)

    orders_path = at(at(tp, "orders"), "order")
    orders = req_list(req_mapping(trade, "orders", tp), "order", at(tp, "orders"))
    rows: list[dict[str, Any]] = []
    for i, sub in enumerate(orders):
        path = at(orders_path, i)
        if not isinstance(sub, Mapping):
            raise invalid(f"{path} must be an object", path)
        num = req_int(sub, "num", path, minimum=1)
        price = req_yuan(sub, "price", path)
        rows.append(
            {
                "path": path,
                "sub": sub,
                "line_id": opt_str(sub, "oid_str", path) or req_str(sub, "oid", path),
                "sku": opt_str(sub, "sku_id", path) or req_str(sub, "num_iid", path),
                "title": req_str(sub, "title", path),
                "num": num,
                "price": price,
                "gross": price * num,
                "payment": (
                    None if opt(sub, "payment") is None else req_yuan(sub, "payment", path)
                ),
                "divide": (
                    None
                    if opt(sub, "divide_order_fee") is None
                    else req_yuan(sub, "divide_order_fee", path)
                ),
                "category": opt_str(sub, "cid", path),
            }
        )
    ids = [r["line_id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise invalid(f"{orders_path} repeats a sub-order id", orders_path)

    total = sum(r["gross"] for r in rows)
    if opt(trade, "total_fee") is not None and req_yuan(trade, "total_fee", tp) != total:
        raise invalid(
            f"{at(tp, 'total_fee')} does not equal the sum of price × num of the sub-orders "
            f"({total} fen)",
            at(tp, "total_fee"),
        )
    discount = total + freight - payable
    if discount < 0:
        raise invalid(
            f"{at(tp, 'payment')} is more than the goods plus post_fee; "
            "a price increase cannot be recorded",
            at(tp, "payment"),
        )
    goods_paid = payable - freight
    if all(r["divide"] is not None for r in rows):
        paid = {r["line_id"]: r["divide"] for r in rows}
        if sum(paid.values()) != goods_paid:
            raise invalid(
                f"the sub-orders' divide_order_fee sum to {sum(paid.values())} fen but "
                f"payment - post_fee is {goods_paid} fen",
                at(tp, "payment"),
            )
    else:
        paid = allocate(
            goods_paid,
            {r["line_id"]: r["gross"] if r["payment"] is None else r["payment"] for r in rows},
        )
    lines = []
    for r in rows:
        line_paid = paid[r["line_id"]]
        if line_paid > r["gross"]:
            field = at(r["path"], "divide_order_fee" if r["divide"] is not None else "payment")
            raise invalid(f"{field}: the line is paid more than its list price", field)
        lines.append(
            OrderLine(
                line_id=r["line_id"],
                sku=r["sku"],
                title=r["title"],
                quantity=r["num"],
                unit_price=r["price"],
                paid=line_paid,
                discount=r["gross"] - line_paid,
                category=r["category"],
            )
        )

    refunds = []
    for r, line in zip(rows, lines, strict=True):
        sub, path = r["sub"], r["path"]
        if opt_str(sub, "refund_status", path) != "SUCCESS":
            continue
        refunded_at = opt_beijing_time(sub, "end_time", path) or modified
        if refunded_at is None:
            raise invalid(
                f"{at(path, 'end_time')} is required for a refunded sub-order", at(path, "end_time")
            )
        refunds.append(
            Refund(
                refund_id=req_str(sub, "refund_id", path),
                amount=line.paid,
                line_id=line.line_id,
                refunded_at=refunded_at,
            )
        )

    end_time = opt_beijing_time(trade, "end_time", tp)
    consign_time = opt_beijing_time(trade, "consign_time", tp)
    extra = {"status": raw_status}
    if raw_status == "SELLER_CONSIGNED_PART" and consign_time is not None:
        extra["consign_time"] = consign_time.isoformat()
    if opt(trade, "type") is not None:
        extra["type"] = req_str(trade, "type", tp)
    carrier = tracking_no = None
    for r in rows:
        carrier = carrier or opt_str(r["sub"], "logistics_company", r["path"])
        tracking_no = tracking_no or opt_str(r["sub"], "invoice_no", r["path"])

    return OrderSnapshot(
        platform="taobao",
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
        paid_at=opt_beijing_time(trade, "pay_time", tp),
        shipped_at=consign_time if status in ("shipped", "completed", "cancelled") else None,
        completed_at=end_time if status == "completed" else None,
        cancelled_at=_closed_at(status, end_time, modified),
        cancel_reason=CANCEL_REASON.get(raw_status),
        receiver=_receiver(trade, tp),
        refunds=tuple(refunds),
        carrier=carrier,
        tracking_no=tracking_no,
        extra=extra,
    )


def _closed_at(
    status: str, end_time: datetime | None, modified: datetime | None
) -> datetime | None:
    return (end_time or modified) if status == "cancelled" else None


def _receiver(trade: Mapping[str, Any], tp: str) -> Receiver | None:
    keys = ("receiver_name", "receiver_mobile", "receiver_phone", "receiver_address")
    if all(opt(trade, k) is None for k in keys):
        return None
    return Receiver(
        name=req_str(trade, "receiver_name", tp),
        phone=clean_phone(
            opt_str(trade, "receiver_mobile", tp) or opt_str(trade, "receiver_phone", tp)
        ),
        address=req_str(trade, "receiver_address", tp),
        province=opt_str(trade, "receiver_state", tp) or "",
        city=opt_str(trade, "receiver_city", tp) or "",
        district=opt_str(trade, "receiver_district", tp) or "",
    )
