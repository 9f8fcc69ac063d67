"""Reconciliation's infrastructure: the book read from the orders read model, the file's
bytes decoded, and the import run the API and the command line share.

The book (our side) is read from `orders_orders` / `orders_refunds`:
- a payment per paid order: order_ref = the platform's trade id (what a shop sends WeChat Pay
  and Alipay as 商户订单号, and Douyin's shop_order_id), amount = `payable` (the orders read
  model keeps what the buyer pays; the Paid event's amount is the same), time = `paid_at`;
- a refund per refund: order_ref = its order's trade id, refund_ref = `refund_id` (商户退款单号
  / the Douyin sub-order), amount, time = `refunded_at`.

Which orders: Douyin settles only Douyin orders (platform 'douyin'). Which orders went
through WeChat Pay or Alipay is not knowable from the orders read model (no payment method is
recorded), so for those channels every platform's orders are read unless the caller names the
platforms (`platforms`, e.g. ["youzan"] for a shop whose own mall takes WeChat Pay); orders
paid elsewhere then show up as `missing_in_statement` for finance to write off. Entries are
read within the statement's span with a day of slack either side (a payment at 23:59:59 that
the channel books at 00:00:01), plus, by id, every order the statement names (a Douyin item
settles days after its payment).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from domain.orders.aggregates import Order
from domain.orders.model import PLATFORMS
from domain.settlement.reconciliation import BookEntry
from domain.settlement.reconciling import Coverage, ImportOutcome, import_statement
from domain.shared import InvalidInput, Meta
from infra.db import Database
from infra.events import sortable_time

if TYPE_CHECKING:
    from infra.bootstrap import Container

SLACK = timedelta(days=1)
CHANNEL_PLATFORMS: dict[str, tuple[str, ...]] = {"douyin": ("douyin",)}
_CHUNK = 500  # ids per IN (...): well under SQLite's bound on parameters


def platforms_for(channel: str, platforms: Sequence[str] | None) -> list[str] | None:
    """The order platforms a channel's book is read for; None: all of them."""
    fixed = CHANNEL_PLATFORMS.get(channel)
    if fixed is not None:
        if platforms is not None and set(platforms) != set(fixed):
            raise InvalidInput(
                f"a {channel} statement settles {', '.join(fixed)} orders only", field="platforms"
            )
        return list(fixed)
    if platforms is None:
        return None
    unknown = sorted(set(platforms) - set(PLATFORMS))
    if unknown or not platforms:
        raise InvalidInput(f"platforms must name some of {', '.join(PLATFORMS)}", field="platforms")
    return sorted(set(platforms))


def book_for(db: Database, coverage: Coverage, platforms: Sequence[str] | None) -> list[BookEntry]:
    """Our payments and refunds for what a statement covers (see the module's docstring)."""
    found: dict[tuple[str, str, str], BookEntry] = {}
    if coverage.start is not None and coverage.end is not None:
        span = (sortable_time(coverage.start - SLACK), sortable_time(coverage.end + SLACK))
        only, params = _platforms(platforms)
        for row in db.query(
            "SELECT o.trade_id, o.payable, o.paid_at FROM orders_orders o"
            f" WHERE o.paid_at >= ? AND o.paid_at <= ?{only}",
            (*span, *params),
        ):
            _add(found, "payment", row[0], None, row[1], row[2])
        for row in db.query(
            "SELECT o.trade_id, r.refund_id, r.amount, r.refunded_at FROM orders_refunds r"
            " JOIN orders_orders o ON o.order_id = r.order_id"
            f" WHERE r.refunded_at >= ? AND r.refunded_at <= ?{only}",
            (*span, *params),
        ):
            _add(found, "refund", row[0], row[1], row[2], row[3])
    unseen = {ref for kind, ref, refund in coverage.keys if (kind, ref, refund) not in found}
    ids = sorted({str(Order.create_id(p, ref)) for ref in unseen for p in (platforms or PLATFORMS)})
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for row in db.query(
            "SELECT trade_id, payable, paid_at FROM orders_orders"
            f" WHERE order_id IN ({marks}) AND paid_at IS NOT NULL",
            chunk,
        ):
            _add(found, "payment", row[0], None, row[1], row[2])
        for row in db.query(
            "SELECT o.trade_id, r.refund_id, r.amount, r.refunded_at FROM orders_refunds r"
            f" JOIN orders_orders o ON o.order_id = r.order_id WHERE r.order_id IN ({marks})",
            chunk,
        ):
            _add(found, "refund", row[0], row[1], row[2], row[3])
    return list(found.values())


def _platforms(platforms: Sequence[str] | None) -> tuple[str, list[str]]:
    if platforms is None:
        return "", []
    return f" AND o.platform IN ({','.join('?' * len(platforms))})", list(platforms)


def _add(
    found: dict[tuple[str, str, str], BookEntry],
    kind: str,
    order_ref: str,
    refund_ref: str | None,
    amount: Any,
    at: str,
) -> None:
    key = (kind, order_ref, refund_ref or "")
    if key not in found:  # the same order on two platforms: the first one read stands
        found[key] = BookEntry(
            kind,  # type: ignore[arg-type]
            order_ref,
            refund_ref,
            int(amount),
            datetime.fromisoformat(at),
        )


def decode_statement(data: bytes, encoding: str) -> str:
    """A statement file's bytes as text (Alipay's are GBK); undecodable bytes are a 422
    naming the line and the byte within it."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidInput(f"unknown encoding {encoding!r}", field="encoding") from None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InvalidInput(
            f"line {line}, byte {column}: not {encoding} text ({exc.reason});"
            " give the file's encoding (Alipay bills are gbk)",
            field=f"line[{line}]",
            code="undecodable",
            extra={"line": line, "column": str(column)},
        ) from None


def import_file(
    c: Container,
    channel: str,
    text: str,
    file_name: str,
    fee_rate: str | Decimal,
    meta: Meta,
    *,
    tolerance_fen: int = 0,
    platforms: Sequence[str] | None = None,
) -> ImportOutcome:
    """Import one statement against the books as the orders read model holds them once it
    has caught up with the log (bounded wait: 503 while it lags)."""
    chosen = platforms_for(channel, platforms)
    c.engine.wait_for(c.head(), c.settings.min_position_timeout, names=["orders"])

    def book(coverage: Coverage) -> Iterable[BookEntry]:
        return book_for(c.read_db, coverage, chosen)

    return import_statement(
        c.settlement,
        channel,
        text,
        file_name,
        fee_rate,
        book,
        meta,
        tolerance_fen=tolerance_fen,
        platforms=chosen,
    )
