"""Payment-channel reconciliation (自动化对账): a channel's statement against our books.

Pure: the caller hands in the file's text (already decoded) and our book entries; nothing here
reads a file, a clock or a database. A malformed file raises `InvalidInput` naming the line and
the column at fault (`field` = `line[7].退款金额`, `extra` = `{"line": 7, "column": "退款金额"}`);
details quote amounts, times and statuses, never the personal columns (openid, 对方账户).

Amounts are integer fen, read from yuan with `yuan_to_fen` (ROUND_HALF_UP); times are Beijing
wall-clock time turned into aware UTC. A row's `amount` is what settles for the order (the
base the channel charges its fee on), a refund's what was refunded; both are never negative
whatever sign the channel prints, but a sign the format does not use for that kind of row is
refused. Full column lists: the recorded samples in tests/fixtures/statements/.

WeChat Pay trade bill (交易账单, bill_type ALL; `pay/downloadbill` or the v3 trade bill).
Source: "交易账单详细说明", https://pay.weixin.qq.com/docs/merchant/products/bill-download/
format-trade.html (2024-11-25) and https://pay.weixin.qq.com/doc/v2/merchant/4011987833.
A Chinese header line (交易时间,公众账号ID,商户号,...,费率备注, 27 columns), detail lines whose
fields all start with a backtick, then 总交易单数,... and one line of totals. Columns are
found by name; older bills say 总金额 for 应结订单金额 (same page), both are read.
SUCCESS = payment: 应结订单金额, id 微信订单号. REFUND = refund: 退款金额, ref 商户退款单号,
id 微信退款单号. 手续费 has five decimals; on a refund it is the fee handed back, printed
negative ("-0.27000" in recorded bills). 总交易单数 must equal the detail lines: a truncated
download is refused, not half reconciled.

Alipay trade business detail (业务明细 CSV, bill_type `trade` of
alipay.data.dataservice.bill.downloadurl.query, opendocs.alipay.com; the zip's file is GBK).
'#' lines (title, account, period, list markers, totals) are not rows; a header row
支付宝交易号,商户订单号,业务类型,...,商家实收（元）,...,退款批次号/请求号,服务费（元）,分润（元）,备注
(25 columns). The column list and signs follow recorded files quoted by public integrations:
the field page itself could not be read. 交易 = payment, 退款 = refund; the amount is
商家实收（元）, negative on a refund; ids carry a trailing tab. The sign of 服务费（元） was not
confirmed anywhere, so its magnitude is taken.

Douyin 抖店 settlement detail: items of order.getSettleBillDetailV3 (查询结算账单明细), fields
as the official doudian open SDK generates them from the API docs (`data.data[]`:
settle_time, request_no, shop_order_id, order_id, trade_type, real_pay_amount,
platform_service_fee, ...; amounts integer fen). The file is JSON Lines, one item per line as
a fetcher writes them page by page: the item is Douyin's, the line framing is ours.
trade_type 0 (已结算) = payment, 1 and 3 (结算后退款) = refund, 2 (保证金退款, the shop's
deposit) is skipped. Items are per sub-order: one shop_order_id's payments are summed into
one row (its first item gives line, id and time); a refund's ref is its sub-order id, the
refund id our Douyin order adapter records. The docs do not say how refund items sign their
amounts, so their magnitude is taken.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from itertools import zip_longest
from typing import Any, Literal, cast

from domain.money import scale
from domain.orders.platforms._common import beijing_time, fen, yuan_to_fen
from domain.shared import InvalidInput

Kind = Literal["payment", "refund"]
Reason = Literal[
    "matched",
    "missing_in_statement",
    "missing_in_book",
    "amount_differs",
    "fee_differs",
    "duplicate_in_statement",
]
KINDS: tuple[Kind, ...] = ("payment", "refund")


def _check_entry(kind: str, order_ref: str, refund_ref: str | None, amount: int) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"kind must be payment or refund, got {kind!r}", field="kind")
    if not order_ref:
        raise InvalidInput("order_ref is required", field="order_ref")
    if refund_ref == "" or (kind == "payment" and refund_ref is not None):
        raise InvalidInput(
            "refund_ref is a refund's non-empty ref, None otherwise", field="refund_ref"
        )
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise InvalidInput("amount must be a non-negative number of fen", field="amount")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise InvalidInput("occurred_at must be timezone-aware", field="occurred_at")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class StatementRow:
    """One payment or refund as the channel's statement reports it."""

    channel: str  # wechat_pay, alipay, douyin, taobao, ...
    kind: Kind
    transaction_id: str  # the channel's id (微信订单号 / 微信退款单号, 支付宝交易号, 结算单号)
    order_ref: str  # our order number as the channel knows it (商户订单号, platform order id)
    refund_ref: str | None  # 商户退款单号 / 退款请求号 for a refund, when the channel has one
    amount: int  # fen, never negative; for a refund, the amount refunded
    fee: int  # fen, the channel's fee (手续费), never negative; for a refund, the fee returned
    occurred_at: datetime  # aware UTC
    line: int  # 1-based line in the file, so a person can find it

    def __post_init__(self) -> None:
        _check_entry(self.kind, self.order_ref, self.refund_ref, self.amount)
        if isinstance(self.fee, bool) or not isinstance(self.fee, int) or self.fee < 0:
            raise InvalidInput("fee must be a non-negative number of fen", field="fee")
        if self.line < 1:
            raise InvalidInput("line is 1-based", field="line")
        object.__setattr__(self, "occurred_at", _utc(self.occurred_at))


@dataclass(frozen=True)
class BookEntry:
    """One payment or refund as our books record it."""

    kind: Kind
    order_ref: str
    refund_ref: str | None
    amount: int  # fen
    occurred_at: datetime

    def __post_init__(self) -> None:
        _check_entry(self.kind, self.order_ref, self.refund_ref, self.amount)
        object.__setattr__(self, "occurred_at", _utc(self.occurred_at))


@dataclass(frozen=True)
class Finding:
    """What reconciling one key found; each statement row and each book entry is in one."""

    reason: Reason
    kind: Kind
    order_ref: str
    refund_ref: str | None
    statement_amount: int | None
    book_amount: int | None
    statement_fee: int | None
    expected_fee: int  # on the statement's amount, else the book's
    line: int | None  # the statement row's line


# --- reading cells ---------------------------------------------------------------------------

_YUAN = re.compile(r"^-?\d+(?:\.\d+)?$")


def _bad(line: int, column: str, problem: str, *, code: str | None = None) -> InvalidInput:
    return InvalidInput(
        f"line {line}, column {column}: {problem}",
        field=f"line[{line}].{column}",
        code=code,
        extra={"line": line, "column": column},
    )


def _signed(value: int, sign: int, line: int, column: str, shown: str) -> int:
    """The magnitude of an amount the channel prints with `sign` (+1, -1; 0: either)."""
    if value * sign < 0:
        problem = "negative" if sign > 0 else "positive"
        raise _bad(line, column, f"must not be {problem} on this kind of row, got {shown}")
    return abs(value)


def _yuan(text: str, line: int, column: str, sign: int) -> int:
    if not _YUAN.match(text):
        raise _bad(line, column, f"not an amount in yuan: {text!r}")
    return _signed(yuan_to_fen(text, column, signed=True), sign, line, column, repr(text))


def _time(text: str, line: int, column: str) -> datetime:
    try:
        return beijing_time(text, column)
    except InvalidInput:
        raise _bad(line, column, f"not a time like 2024-03-01 10:00:00: {text!r}") from None


def _text(text: str, line: int, column: str) -> str:
    if not text:
        raise _bad(line, column, "is required")
    return text


def _lines(text: str) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers (split on \\n only, as editors count)."""
    numbered = enumerate(text.removeprefix("\ufeff").split("\n"), start=1)
    return [(n, raw.rstrip("\r")) for n, raw in numbered if raw.strip()]


def _columns(names: list[str], line: int, required: Iterable[str]) -> dict[str, int]:
    index = {name: i for i, name in enumerate(names)}
    for name in required:
        if name not in index:
            raise _bad(line, name, "missing from the header")
    return index


def _reader(fields: list[str], index: Mapping[str, int]) -> Callable[[str], str]:
    return lambda name: fields[index[name]]


def _width(fields: list[str], names: list[str], line: int) -> None:
    if len(fields) < len(names):
        found = f"{len(fields)} fields where the header names {len(names)}"
        raise _bad(line, names[len(fields)], f"missing: the line has {found}")
    if len(fields) > len(names):
        found = f"{len(fields)} fields where the header names {len(names)}"
        raise _bad(line, str(len(names) + 1), f"unexpected: the line has {found}")


def _kind(table: Mapping[Any, Kind], value: Any, line: int, column: str) -> Kind:
    if value not in table:
        known = ", ".join(str(k) for k in table)
        problem = f"unknown {value!r}; expected one of {known}"
        raise _bad(line, column, problem, code="unknown_status")
    return table[value]


# --- WeChat Pay ------------------------------------------------------------------------------

_WECHAT_KINDS: dict[str, Kind] = {"SUCCESS": "payment", "REFUND": "refund"}
_WECHAT_COUNT = "总交易单数"


def _backticked(raw: str, line: int, column: str) -> list[str]:
    # Every field starts with "`", so ",`" separates fields even when a value holds a comma.
    if not raw.startswith("`"):
        raise _bad(line, column, "a bill field must start with a backtick (`)")
    return [value.strip() for value in raw[1:].split(",`")]


def parse_wechat_pay_tradebill(text: str) -> list[StatementRow]:
    """A WeChat Pay trade bill (交易账单, bill_type ALL) -> its payments and refunds."""
    lines = _lines(text)
    if not lines:
        raise _bad(1, "交易时间", "the file is empty; expected the header line")
    head_line, head = lines[0]
    names = [name.strip() for name in head.split(",")]
    amount_col = "应结订单金额" if "应结订单金额" in names else "总金额"
    required = ("交易时间", "微信订单号", "商户订单号", "交易状态", amount_col, "微信退款单号")
    index = _columns(names, head_line, (*required, "商户退款单号", "退款金额", "手续费"))
    rows: list[StatementRow] = []
    for position, (n, raw) in enumerate(lines[1:], start=1):
        if raw.startswith(_WECHAT_COUNT):
            _check_wechat_totals(lines[position:], len(rows))
            return rows
        fields = _backticked(raw, n, names[0])
        _width(fields, names, n)
        cell = _reader(fields, index)
        kind = _kind(_WECHAT_KINDS, cell("交易状态"), n, "交易状态")
        if kind == "payment":
            amount = _yuan(cell(amount_col), n, amount_col, +1)
            id_col, refund_ref = "微信订单号", None
        else:
            amount = _yuan(cell("退款金额"), n, "退款金额", +1)
            id_col, refund_ref = "微信退款单号", _text(cell("商户退款单号"), n, "商户退款单号")
        rows.append(
            StatementRow(
                channel="wechat_pay",
                kind=kind,
                transaction_id=_text(cell(id_col), n, id_col),
                order_ref=_text(cell("商户订单号"), n, "商户订单号"),
                refund_ref=refund_ref,
                amount=amount,
                fee=_yuan(cell("手续费"), n, "手续费", +1 if kind == "payment" else -1),
                occurred_at=_time(cell("交易时间"), n, "交易时间"),
                line=n,
            )
        )
    last = lines[-1][0]
    raise _bad(last + 1, _WECHAT_COUNT, "the totals are missing; the download looks truncated")


def _check_wechat_totals(lines: list[tuple[int, str]], count: int) -> None:
    (head_line, head), *rest = lines
    names = [name.strip() for name in head.split(",")]
    if not rest:
        raise _bad(head_line + 1, _WECHAT_COUNT, "the totals line is missing")
    (n, raw), *after = rest
    totals = _backticked(raw, n, _WECHAT_COUNT)
    _width(totals, names, n)
    stated = totals[names.index(_WECHAT_COUNT)]
    if not stated.isdigit():
        raise _bad(n, _WECHAT_COUNT, f"not a count: {stated!r}")
    if int(stated) != count:
        problem = f"says {stated} but the bill has {count} detail lines; it looks truncated"
        raise _bad(n, _WECHAT_COUNT, problem)
    if after:
        raise _bad(after[0][0], "1", "unexpected content after the totals")


# --- Alipay ----------------------------------------------------------------------------------

_ALIPAY_KINDS: dict[str, Kind] = {"交易": "payment", "退款": "refund"}
_ALIPAY_AMOUNT, _ALIPAY_FEE, _ALIPAY_REFUND = "商家实收（元）", "服务费（元）", "退款批次号/请求号"
_ALIPAY_REQUIRED = (
    "支付宝交易号",
    "商户订单号",
    "业务类型",
    "完成时间",
    _ALIPAY_AMOUNT,
    _ALIPAY_FEE,
)


def parse_alipay_bill(text: str) -> list[StatementRow]:
    """An Alipay trade business detail (业务明细 CSV) -> its payments and refunds."""
    names: list[str] | None = None
    index: dict[str, int] = {}
    rows: list[StatementRow] = []
    for n, raw in _lines(text):
        if raw.lstrip().startswith("#"):
            continue
        fields = [value.strip() for value in next(csv.reader([raw]))]  # strips the ids' tab
        if names is None:
            names = fields
            index = _columns(names, n, (*_ALIPAY_REQUIRED, _ALIPAY_FEE, _ALIPAY_REFUND))
            continue
        _width(fields, names, n)
        cell = _reader(fields, index)
        kind = _kind(_ALIPAY_KINDS, cell("业务类型"), n, "业务类型")
        sign = 1 if kind == "payment" else -1
        rows.append(
            StatementRow(
                channel="alipay",
                kind=kind,
                transaction_id=_text(cell("支付宝交易号"), n, "支付宝交易号"),
                order_ref=_text(cell("商户订单号"), n, "商户订单号"),
                refund_ref=(cell(_ALIPAY_REFUND) or None) if kind == "refund" else None,
                amount=_yuan(cell(_ALIPAY_AMOUNT), n, _ALIPAY_AMOUNT, sign),
                fee=_yuan(cell(_ALIPAY_FEE), n, _ALIPAY_FEE, 0),
                occurred_at=_time(cell("完成时间"), n, "完成时间"),
                line=n,
            )
        )
    if names is None:
        raise _bad(1, "支付宝交易号", "no header line (支付宝交易号,商户订单号,...) found")
    return rows


# --- Douyin ----------------------------------------------------------------------------------

_DOUYIN_KINDS: dict[int, Kind] = {0: "payment", 1: "refund", 3: "refund"}
_DOUYIN_SKIPPED = {2}  # 保证金退款-支出退回: the shop's deposit, not an order's money


def _json_str(item: Mapping[str, Any], key: str, line: int) -> str:
    value = item.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # ids sometimes travel as numbers
    if not isinstance(value, str) or not value.strip():
        raise _bad(line, key, "is required and must be text")
    return value.strip()


def _json_int(item: Mapping[str, Any], key: str, line: int, sign: int) -> int:
    try:
        value = fen(item.get(key), key, signed=True)
    except InvalidInput:
        raise _bad(line, key, f"must be a whole number, got {item.get(key)!r}") from None
    return _signed(value, sign, line, key, repr(item.get(key)))


def parse_douyin_settlement(text: str) -> list[StatementRow]:
    """Douyin settlement detail items (order.getSettleBillDetailV3, one per line) -> rows."""
    rows: list[StatementRow] = []
    # shop_order_id -> (index in rows, sub-orders summed into it); a sub-order seen twice
    # opens a second row, so the repeat shows up as a duplicate instead of a bigger sum.
    payments: dict[str, list[tuple[int, set[str]]]] = defaultdict(list)
    for n, raw in _lines(text):
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise _bad(n, str(exc.colno), f"not valid JSON: {exc.msg}") from None
        if not isinstance(item, dict):
            raise _bad(n, "1", "each line must be one JSON object (a settlement item)")
        trade_type = _json_int(item, "trade_type", n, 0)
        if trade_type in _DOUYIN_SKIPPED:
            continue
        kind = _kind(_DOUYIN_KINDS, trade_type, n, "trade_type")
        sign = 1 if kind == "payment" else 0
        order_ref, sub_order = _json_str(item, "shop_order_id", n), _json_str(item, "order_id", n)
        row = StatementRow(
            channel="douyin",
            kind=kind,
            transaction_id=_json_str(item, "request_no", n),
            order_ref=order_ref,
            refund_ref=sub_order if kind == "refund" else None,
            amount=_json_int(item, "real_pay_amount", n, sign),
            fee=_json_int(item, "platform_service_fee", n, sign),
            occurred_at=_time(_json_str(item, "settle_time", n), n, "settle_time"),
            line=n,
        )
        if kind == "refund":
            rows.append(row)
            continue
        for slot, seen in payments[order_ref]:
            if sub_order not in seen:
                seen.add(sub_order)
                total = rows[slot]
                rows[slot] = replace(
                    total, amount=total.amount + row.amount, fee=total.fee + row.fee
                )
                break
        else:
            payments[order_ref].append((len(rows), {sub_order}))
            rows.append(row)
    return rows


# --- reconciling -----------------------------------------------------------------------------


def expected_fee(amount: int, fee_rate: Decimal) -> int:
    """The channel's fee on `amount` fen: amount x rate, half away from zero to the fen."""
    return scale(amount, fee_rate)


def reconcile(
    rows: Iterable[StatementRow],
    book: Iterable[BookEntry],
    fee_rate: Decimal,
    *,
    tolerance_fen: int = 0,
) -> list[Finding]:
    """Pair one channel's statement rows with our book entries and say what each pair shows.

    Payments pair by order_ref, refunds by (order_ref, refund_ref). Within a key, rows go by
    line and entries by time then amount, so the result does not depend on input order. Extra
    rows for a key are `duplicate_in_statement`, extra entries `missing_in_statement`. A pair
    whose amounts differ by more than `tolerance_fen` is `amount_differs`; else one whose fee
    is off `expected_fee(statement amount)` by more than that is `fee_differs` (a refund is
    expected to hand back its fee in proportion). Sorted by kind, order_ref, refund_ref.
    """
    if not isinstance(fee_rate, Decimal) or not fee_rate.is_finite() or not 0 <= fee_rate < 1:
        raise InvalidInput("fee_rate must be a Decimal from 0 to 1, e.g. 0.006", field="fee_rate")
    if isinstance(tolerance_fen, bool) or not isinstance(tolerance_fen, int) or tolerance_fen < 0:
        raise InvalidInput("tolerance_fen must be a non-negative integer", field="tolerance_fen")
    found: dict[tuple[str, str, str], list[StatementRow]] = defaultdict(list)
    known: dict[tuple[str, str, str], list[BookEntry]] = defaultdict(list)
    for row in rows:
        found[(row.kind, row.order_ref, row.refund_ref or "")].append(row)
    for entry in book:
        known[(entry.kind, entry.order_ref, entry.refund_ref or "")].append(entry)
    channels = {row.channel for group in found.values() for row in group}
    if len(channels) > 1:
        detail = f"reconcile one channel's statement at a time, got {sorted(channels)}"
        raise InvalidInput(detail, field="rows")

    findings: list[Finding] = []
    for key in sorted(found.keys() | known.keys()):
        kind, order_ref, refund_ref = cast(Kind, key[0]), key[1], key[2] or None
        statement = sorted(found[key], key=lambda r: (r.line, r.transaction_id, r.amount, r.fee))
        entries = sorted(known[key], key=lambda e: (e.occurred_at, e.amount))
        for i, (row, entry) in enumerate(zip_longest(statement, entries)):
            reason: Reason
            if row is None:
                reason = "missing_in_statement"
            elif entry is None:
                reason = "duplicate_in_statement" if i > 0 else "missing_in_book"
            elif abs(row.amount - entry.amount) > tolerance_fen:
                reason = "amount_differs"
            elif abs(row.fee - expected_fee(row.amount, fee_rate)) > tolerance_fen:
                reason = "fee_differs"
            else:
                reason = "matched"
            base = row.amount if row is not None else cast(BookEntry, entry).amount
            findings.append(
                Finding(
                    reason=reason,
                    kind=kind,
                    order_ref=order_ref,
                    refund_ref=refund_ref,
                    statement_amount=row.amount if row else None,
                    book_amount=entry.amount if entry else None,
                    statement_fee=row.fee if row else None,
                    expected_fee=expected_fee(base, fee_rate),
                    line=row.line if row else None,
                )
            )
    return findings
