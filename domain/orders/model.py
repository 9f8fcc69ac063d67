"""What every platform adapter produces: one order as the platform last described it,
normalised. The adapters (domain/orders/platforms/) map each platform's own field names and
status codes onto this; the Order aggregate turns the differences into events.

Amounts are integer fen. Times are timezone-aware UTC (the platforms write Beijing time).
Receiver name, phone and address are personal data: they travel here in clear only until
the service seals them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

PLATFORMS = ("taobao", "jd", "pdd", "douyin", "youzan")
# The forward path of an order; a snapshot further along than what we know adds the steps
# between, one older or equal adds nothing. Cancelled (closed) is terminal.
FORWARD = ("placed", "paid", "shipped", "completed")
STATUSES = (*FORWARD, "cancelled")


@dataclass(frozen=True)
class OrderLine:
    """One sub-order (Tmall `order`, JD `item`, Pinduoduo item, Douyin `sku_order`, Youzan
    `order`): what was bought and what it cost."""

    line_id: str
    sku: str
    title: str
    quantity: int
    unit_price: int  # fen, list price per unit
    paid: int  # fen, what the buyer paid for this line after discounts
    discount: int = 0  # fen
    category: str | None = None


@dataclass(frozen=True)
class Refund:
    """A refund the platform reports as done. `line_id` None: the whole order."""

    refund_id: str
    amount: int  # fen
    line_id: str | None
    refunded_at: datetime


@dataclass(frozen=True)
class Receiver:
    name: str  # personal data
    phone: str  # personal data
    address: str  # personal data: the street part
    province: str
    city: str
    district: str


@dataclass(frozen=True)
class OrderSnapshot:
    platform: str
    trade_id: str  # the main order (Tmall tid, JD orderId, Pinduoduo order_sn, ...)
    shop_id: str
    buyer_id: str  # the buyer's identity on that platform (open id, buyer nick id, ...)
    status: str  # one of STATUSES
    placed_at: datetime
    lines: tuple[OrderLine, ...]
    total: int  # fen, sum of the lines at list price
    discount: int  # fen, all discounts
    freight: int  # fen
    payable: int  # fen, what the buyer pays (total - discount + freight)
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    receiver: Receiver | None = None
    refunds: tuple[Refund, ...] = ()
    buyer_unionid: str | None = None
    group_id: str | None = None  # Pinduoduo group buy (拼团)
    carrier: str | None = None
    tracking_no: str | None = None
    extra: dict[str, str] = field(default_factory=dict)  # platform fields kept as they were
