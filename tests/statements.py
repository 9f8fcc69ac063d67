"""Channel statements written the way the channels publish them, for reconciliation stories.

`wechat_trade_bill` follows tests/fixtures/statements/wechat_pay_tradebill.csv: its header,
backticked detail lines, the totals header and the totals line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "statements"
BEIJING = timezone(timedelta(hours=8))
_SAMPLE = (FIXTURES / "wechat_pay_tradebill.csv").read_text(encoding="utf-8").splitlines()
_HEADER = _SAMPLE[0]
_TOTALS = next(line for line in _SAMPLE if line.startswith("总交易单数"))


@dataclass(frozen=True)
class Paid:
    """One SUCCESS line: 商户订单号 and 应结订单金额 in fen, 手续费 in fen."""

    order_ref: str
    amount: int
    fee: int
    at: datetime


@dataclass(frozen=True)
class Refunded:
    """One REFUND line: 商户退款单号, 退款金额 and the fee handed back, in fen."""

    order_ref: str
    refund_ref: str
    amount: int
    fee: int
    at: datetime


def _yuan(fen: int, places: int = 2) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}{'0' * (places - 2)}"


def _line(cells: list[str]) -> str:
    return ",".join(f"`{cell}" for cell in cells)


def wechat_trade_bill(items: list[Paid | Refunded]) -> str:
    lines = [_HEADER]
    for n, item in enumerate(items, start=1):
        at = item.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        tx = f"42000021{n:020d}"
        if isinstance(item, Paid):
            status, settled, refund_id, refund_ref, refunded = "SUCCESS", item.amount, "0", "0", 0
            fee = _yuan(item.fee, 5)
        else:
            status, settled, refunded = "REFUND", 0, item.amount
            refund_id, refund_ref = f"5030200901{n:019d}", item.refund_ref
            fee = _yuan(-item.fee, 5)
        cells = [
            at, "wx5c2a9e0f7b3d41a8", "1900012345", "0", "", tx, item.order_ref,
            "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "JSAPI", status, "OTHERS", "CNY", _yuan(settled),
            "0.00", refund_id, refund_ref, _yuan(refunded), "0.00", "", "", "商品", "", fee,
            "0.60%", _yuan(settled), _yuan(refunded), "",
        ]  # fmt: skip
        lines.append(_line(cells))
    paid = [i for i in items if isinstance(i, Paid)]
    refunds = [i for i in items if isinstance(i, Refunded)]
    fees = sum(i.fee for i in paid) - sum(i.fee for i in refunds)
    total = sum(i.amount for i in paid)
    refunded_total = sum(i.amount for i in refunds)
    lines.append(_TOTALS)
    lines.append(
        _line(
            [
                str(len(items)),
                _yuan(total),
                _yuan(refunded_total),
                "0.00",
                _yuan(fees, 5),
                _yuan(total),
                _yuan(refunded_total),
            ]
        )
    )
    return "\r\n".join(lines) + "\r\n"
