"""Payment-channel reconciliation (自动化对账): statement parsers and `reconcile`."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.settlement.reconciliation import (
    BookEntry,
    Finding,
    Kind,
    StatementRow,
    expected_fee,
    parse_alipay_bill,
    parse_douyin_settlement,
    parse_wechat_pay_tradebill,
    reconcile,
)
from domain.shared import InvalidInput

FIXTURES = Path(__file__).parent.parent / "fixtures" / "statements"
WECHAT = (FIXTURES / "wechat_pay_tradebill.csv").read_text(encoding="utf-8")
ALIPAY = (FIXTURES / "alipay_bill.csv").read_text(encoding="utf-8")
DOUYIN = (FIXTURES / "douyin_settlement.jsonl").read_text(encoding="utf-8")
RATE = Decimal("0.006")  # WeChat Pay's usual 0.6%


def beijing(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone(timedelta(hours=8)))


def assert_names(exc: InvalidInput, line: int, column: str) -> None:
    assert exc.extra == {"line": line, "column": column}
    assert exc.field == f"line[{line}].{column}"
    assert exc.detail.startswith(f"line {line}, column {column}: ")


def changed(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# --- WeChat Pay trade bill -------------------------------------------------------------------


def test_a_wechat_pay_trade_bill_reads_its_payments_and_refund_and_skips_the_totals() -> None:
    rows = parse_wechat_pay_tradebill(WECHAT)

    def payment(tx: str, order: str, amount: int, fee: int, at: str, line: int) -> StatementRow:
        return StatementRow(
            "wechat_pay", "payment", tx, order, None, amount, fee, beijing(at), line
        )

    assert rows == [
        payment(
            "4200002145202403011234567890", "SO20240301000101", 12800, 77, "2024-03-01 10:15:30", 2
        ),
        payment(
            "4200002146202403012345678901", "SO20240301000102", 5990, 36, "2024-03-01 11:02:09", 3
        ),
        payment(
            "4200002147202403013456789012", "SO20240301000103", 99, 1, "2024-03-01 13:40:51", 4
        ),
        StatementRow(
            channel="wechat_pay",
            kind="refund",
            transaction_id="50302009012024030112345678901",  # 微信退款单号
            order_ref="SO20240301000101",
            refund_ref="RF20240301000101",
            amount=2800,
            fee=17,  # printed -0.17000: the fee handed back
            occurred_at=datetime(2024, 3, 1, 8, 20, tzinfo=UTC),
            line=5,
        ),
    ]


def test_an_older_wechat_bill_with_a_total_amount_column_reads_the_same() -> None:
    older = changed(
        WECHAT, "货币种类,应结订单金额,代金券金额", "货币种类,总金额,代金券或立减优惠金额"
    )
    assert parse_wechat_pay_tradebill(older) == parse_wechat_pay_tradebill(WECHAT)


def swap_first_two(line: str, sep: str) -> str:
    first, second, *rest = line.split(sep)
    return sep.join([second, first, *rest])


def test_wechat_columns_are_found_by_header_name_not_position() -> None:
    lines = WECHAT.splitlines()
    lines[0] = swap_first_two(lines[0], ",")
    lines[1:5] = ["`" + swap_first_two(line[1:], ",`") for line in lines[1:5]]
    assert parse_wechat_pay_tradebill("\n".join(lines)) == parse_wechat_pay_tradebill(WECHAT)


def test_a_wechat_bill_with_a_bom_and_crlf_line_ends_reads_the_same() -> None:
    text = "\ufeff" + WECHAT.replace("\n", "\r\n")
    assert parse_wechat_pay_tradebill(text) == parse_wechat_pay_tradebill(WECHAT)


WECHAT_ERRORS = [
    ("a negative payment", "`128.00,`0.00,`0,`0", "`-128.00,`0.00,`0,`0", 2, "应结订单金额", None),
    ("an unreadable fee", "`0.36000", "`0.36O00", 3, "手续费", None),
    ("an unknown status", "`NATIVE,`SUCCESS", "`NATIVE,`REVOKED", 4, "交易状态", "unknown_status"),
    ("a refund charging a fee", "`-0.17000", "`0.17000", 5, "手续费", None),
    ("a negative refund", "`28.00,`0.00,`ORIGINAL", "`-28.00,`0.00,`ORIGINAL", 5, "退款金额", None),
    ("an impossible time", "`2024-03-01 11:02:09", "`2024-03-01 25:02:09", 3, "交易时间", None),
    ("no backtick", "\n`2024-03-01 11:02:09", "\n2024-03-01 11:02:09", 3, "交易时间", None),
    ("a field short", "`0.99,`0.00,`\n", "`0.99,`0.00\n", 4, "费率备注", None),
    ("a field too many", "`0.99,`0.00,`\n", "`0.99,`0.00,`,`\n", 4, "28", None),
    ("a header without 商户订单号", ",商户订单号,", ",商户单号,", 1, "商户订单号", None),
    ("a refund without its ref", "`RF20240301000101", "`", 5, "商户退款单号", None),
    ("a payment without an order", "`SO20240301000102", "`", 3, "商户订单号", None),
    ("totals that miss a line", "`4,`188.89", "`5,`188.89", 7, "总交易单数", None),
    ("an unreadable count", "`4,`188.89", "`four,`188.89", 7, "总交易单数", None),
    ("lines after the totals", "`28.00\n", "`28.00\n`extra\n", 8, "1", None),
]


@pytest.mark.parametrize(
    ("case", "old", "new", "line", "column", "code"),
    WECHAT_ERRORS,
    ids=[c[0] for c in WECHAT_ERRORS],
)
def test_a_malformed_wechat_bill_is_refused_naming_line_and_column(
    case: str, old: str, new: str, line: int, column: str, code: str | None
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_wechat_pay_tradebill(changed(WECHAT, old, new))
    assert_names(caught.value, line, column)
    assert caught.value.code == (code or "invalid_input")


def test_a_truncated_wechat_download_without_totals_is_refused() -> None:
    truncated = "\n".join(WECHAT.splitlines()[:5])
    with pytest.raises(InvalidInput) as caught:
        parse_wechat_pay_tradebill(truncated)
    assert_names(caught.value, 6, "总交易单数")


def test_an_empty_wechat_bill_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_wechat_pay_tradebill("\n")
    assert_names(caught.value, 1, "交易时间")


def test_wechat_errors_do_not_quote_personal_columns() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_wechat_pay_tradebill(changed(WECHAT, "`NATIVE,`SUCCESS", "`NATIVE,`REVOKED"))
    assert "oUpF8u" not in caught.value.detail


# --- Alipay business detail ------------------------------------------------------------------


def test_an_alipay_business_detail_reads_trades_and_refunds_and_skips_comment_lines() -> None:
    assert parse_alipay_bill(ALIPAY) == [
        StatementRow(
            channel="alipay",
            kind="payment",
            transaction_id="2024030122001412345601234567",  # the trailing tab is gone
            order_ref="SO20240301000201",
            refund_ref=None,
            amount=5900,
            fee=35,
            occurred_at=beijing("2024-03-01 09:00:08"),  # 完成时间
            line=6,
        ),
        StatementRow(
            "alipay",
            "payment",
            "2024030122001412345602345678",
            "SO20240301000202",
            None,
            12800,
            77,
            beijing("2024-03-01 10:30:20"),
            7,
        ),
        StatementRow(
            channel="alipay",
            kind="refund",
            transaction_id="2024030122001412345601234567",
            order_ref="SO20240301000201",
            refund_ref="RF20240301000201",  # 退款批次号/请求号
            amount=2000,  # printed -20.00
            fee=12,
            occurred_at=beijing("2024-03-01 15:45:33"),
            line=8,
        ),
    ]


def test_an_alipay_service_fee_is_read_by_magnitude_whichever_sign_is_printed() -> None:
    flipped = changed(changed(ALIPAY, ",-0.35,", ",0.35,"), ",0.12,", ",-0.12,")
    assert parse_alipay_bill(flipped) == parse_alipay_bill(ALIPAY)


def test_an_alipay_refund_without_a_request_number_has_no_refund_ref() -> None:
    rows = parse_alipay_bill(changed(ALIPAY, "RF20240301000201\t", "\t"))
    assert rows[2].kind == "refund" and rows[2].refund_ref is None


ALIPAY_ERRORS = [
    ("a negative trade", ",59.00,59.00,", ",59.00,-59.00,", 6, "商家实收（元）", None),
    ("a positive refund", ",-20.00,-20.00,", ",-20.00,20.00,", 8, "商家实收（元）", None),
    ("an unreadable amount", ",128.00,128.00,", ",128.00,12a.00,", 7, "商家实收（元）", None),
    ("an unreadable fee", ",-0.77,", ",-0.7.7,", 7, "服务费（元）", None),
    ("an unknown type", ",退款\t,", ",冻结\t,", 8, "业务类型", "unknown_status"),
    ("a header without 商家实收", ",商家实收（元）,", ",实收,", 5, "商家实收（元）", None),
    ("a field short", ",0.00,部分退款\n", ",0.00\n", 8, "备注", None),
    ("an unreadable time", ",2024-03-01 10:30:20,", ",2024/03/01 10:30:20,", 7, "完成时间", None),
    ("a trade without an order", "SO20240301000202\t", "\t", 7, "商户订单号", None),
]


@pytest.mark.parametrize(
    ("case", "old", "new", "line", "column", "code"),
    ALIPAY_ERRORS,
    ids=[c[0] for c in ALIPAY_ERRORS],
)
def test_a_malformed_alipay_bill_is_refused_naming_line_and_column(
    case: str, old: str, new: str, line: int, column: str, code: str | None
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_alipay_bill(changed(ALIPAY, old, new))
    assert_names(caught.value, line, column)
    assert caught.value.code == (code or "invalid_input")


def test_an_alipay_file_without_a_header_is_refused() -> None:
    only_comments = "\n".join(line for line in ALIPAY.splitlines() if line.startswith("#"))
    with pytest.raises(InvalidInput) as caught:
        parse_alipay_bill(only_comments)
    assert_names(caught.value, 1, "支付宝交易号")


# --- Douyin settlement detail ----------------------------------------------------------------


def test_douyin_settlement_items_sum_sub_orders_and_skip_deposit_refunds() -> None:
    assert parse_douyin_settlement(DOUYIN) == [
        StatementRow(
            channel="douyin",
            kind="payment",
            transaction_id="7342001234567890001",  # the first item's 结算单号
            order_ref="6920000000000000001",
            refund_ref=None,
            amount=23800 + 6200,  # two sub-orders of one shop order
            fee=1190 + 310,
            occurred_at=beijing("2024-03-10 08:00:05"),
            line=1,
        ),
        StatementRow(
            "douyin",
            "payment",
            "7342001234567890003",
            "6920000000000000011",
            None,
            9900,
            495,
            beijing("2024-03-10 08:02:41"),
            3,
        ),
        StatementRow(
            channel="douyin",
            kind="refund",
            transaction_id="7342001234567890004",
            order_ref="6920000000000000001",
            refund_ref="6920000000000000003",  # the sub-order, our Douyin refund id
            amount=6200,
            fee=310,
            occurred_at=beijing("2024-03-10 09:15:00"),
            line=4,
        ),
    ]


def douyin_with(line: int, **fields: object) -> str:
    lines = DOUYIN.splitlines()
    item = json.loads(lines[line - 1])
    item.update(fields)
    lines[line - 1] = json.dumps(item, ensure_ascii=False)
    return "\n".join(lines)


def test_a_douyin_sub_order_settled_twice_stays_a_row_of_its_own() -> None:
    lines = DOUYIN.splitlines()
    rows = parse_douyin_settlement("\n".join([*lines, lines[1]]))
    assert [(r.order_ref, r.amount, r.line) for r in rows if r.kind == "payment"] == [
        ("6920000000000000001", 30000, 1),
        ("6920000000000000011", 9900, 3),
        ("6920000000000000001", 6200, 6),
    ]


DOUYIN_ERRORS: list[tuple[str, Callable[[], str], int, str, str | None]] = [
    ("not an object", lambda: DOUYIN.replace(DOUYIN.splitlines()[1], "[1, 2]"), 2, "1", None),
    ("no request_no", lambda: douyin_with(3, request_no=""), 3, "request_no", None),
    (
        "a fractional amount",
        lambda: douyin_with(1, real_pay_amount=12.5),
        1,
        "real_pay_amount",
        None,
    ),
    (
        "a negative payment",
        lambda: douyin_with(3, real_pay_amount=-9900),
        3,
        "real_pay_amount",
        None,
    ),
    (
        "a negative fee",
        lambda: douyin_with(2, platform_service_fee=-310),
        2,
        "platform_service_fee",
        None,
    ),
    (
        "an unknown trade type",
        lambda: douyin_with(4, trade_type=9),
        4,
        "trade_type",
        "unknown_status",
    ),
    ("no trade type", lambda: douyin_with(4, trade_type=None), 4, "trade_type", None),
    (
        "an unreadable time",
        lambda: douyin_with(1, settle_time="10/03/2024"),
        1,
        "settle_time",
        None,
    ),
]


@pytest.mark.parametrize(
    ("case", "text", "line", "column", "code"), DOUYIN_ERRORS, ids=[c[0] for c in DOUYIN_ERRORS]
)
def test_a_malformed_douyin_item_is_refused_naming_line_and_key(
    case: str, text: Callable[[], str], line: int, column: str, code: str | None
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_douyin_settlement(text())
    assert_names(caught.value, line, column)
    assert caught.value.code == (code or "invalid_input")


def test_a_douyin_line_that_is_not_json_is_refused_naming_line_and_character_column() -> None:
    lines = DOUYIN.splitlines()
    lines[2] = lines[2][:-1]  # the closing brace lost
    with pytest.raises(InvalidInput) as caught:
        parse_douyin_settlement("\n".join(lines))
    assert_names(caught.value, 3, str(len(lines[2]) + 1))


# --- values ----------------------------------------------------------------------------------


def test_rows_and_entries_hold_utc_times_and_refuse_naive_ones_or_negative_amounts() -> None:
    row = StatementRow(
        "alipay", "payment", "T1", "SO1", None, 100, 1, beijing("2024-03-01 08:00:00"), 1
    )
    assert row.occurred_at == datetime(2024, 3, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="timezone-aware"):
        BookEntry("payment", "SO1", None, 100, datetime(2024, 3, 1))
    with pytest.raises(InvalidInput) as caught:
        BookEntry("refund", "SO1", "RF1", -100, datetime(2024, 3, 1, tzinfo=UTC))
    assert caught.value.field == "amount"
    with pytest.raises(InvalidInput) as caught:
        BookEntry("payment", "SO1", "RF1", 100, datetime(2024, 3, 1, tzinfo=UTC))
    assert caught.value.field == "refund_ref"


def test_the_expected_fee_rounds_half_up_to_the_fen() -> None:
    assert expected_fee(250, RATE) == 2  # 1.5 fen
    assert expected_fee(249, RATE) == 1  # 1.494 fen
    assert expected_fee(75, RATE) == 0  # 0.45 fen
    assert expected_fee(12800, RATE) == 77  # 76.8 fen


# --- reconcile -------------------------------------------------------------------------------

WHEN = datetime(2024, 3, 1, 2, tzinfo=UTC)


def row(
    kind: Kind,
    order: str,
    amount: int,
    *,
    refund: str | None = None,
    fee: int | None = None,
    line: int = 1,
    channel: str = "wechat_pay",
) -> StatementRow:
    fee = expected_fee(amount, RATE) if fee is None else fee
    return StatementRow(channel, kind, f"TX{line}", order, refund, amount, fee, WHEN, line)


def entry(kind: Kind, order: str, amount: int, *, refund: str | None = None) -> BookEntry:
    return BookEntry(kind, order, refund, amount, WHEN)


def test_one_run_shows_every_reason_sorted_by_kind_order_and_refund() -> None:
    rows = [
        row("refund", "SO3", 500, refund="RF1", line=2),  # matched refund
        row("payment", "SO1", 10000, line=3),  # matched
        row("payment", "SO2", 9900, line=4),  # amount differs from the book's 10000
        row("payment", "SO4", 5000, fee=1, line=5),  # fee should be 30
        row("payment", "SO5", 2000, line=6),  # not in the book
        row("payment", "SO1", 10000, line=7),  # the same payment listed twice
    ]
    book = [
        entry("payment", "SO1", 10000),
        entry("payment", "SO2", 10000),
        entry("payment", "SO4", 5000),
        entry("payment", "SO6", 3000),  # the channel never reported it
        entry("refund", "SO3", 500, refund="RF1"),
    ]
    assert reconcile(rows, book, RATE) == [
        Finding("matched", "payment", "SO1", None, 10000, 10000, 60, 60, 3),
        Finding("duplicate_in_statement", "payment", "SO1", None, 10000, None, 60, 60, 7),
        Finding("amount_differs", "payment", "SO2", None, 9900, 10000, 59, 59, 4),
        Finding("fee_differs", "payment", "SO4", None, 5000, 5000, 1, 30, 5),
        Finding("missing_in_book", "payment", "SO5", None, 2000, None, 12, 12, 6),
        Finding("missing_in_statement", "payment", "SO6", None, None, 3000, None, 18, None),
        Finding("matched", "refund", "SO3", "RF1", 500, 500, 3, 3, 2),
    ]


def test_refunds_pair_by_order_and_refund_ref_not_by_order_alone() -> None:
    findings = reconcile(
        [row("refund", "SO1", 500, refund="RF2")], [entry("refund", "SO1", 500, refund="RF1")], RATE
    )
    assert [(f.reason, f.refund_ref) for f in findings] == [
        ("missing_in_statement", "RF1"),
        ("missing_in_book", "RF2"),
    ]


def test_a_payment_booked_twice_but_paid_once_leaves_one_entry_missing_in_the_statement() -> None:
    findings = reconcile([row("payment", "SO1", 100)], [entry("payment", "SO1", 100)] * 2, RATE)
    assert [f.reason for f in findings] == ["matched", "missing_in_statement"]


def test_a_wrong_amount_is_reported_before_a_wrong_fee() -> None:
    findings = reconcile([row("payment", "SO1", 900, fee=0)], [entry("payment", "SO1", 1000)], RATE)
    assert findings[0].reason == "amount_differs"


def test_the_tolerance_absorbs_small_differences_in_amount_and_fee() -> None:
    rows = [row("payment", "SO1", 1001, fee=7)]  # 1 fen over, fee 1 fen over the expected 6
    book = [entry("payment", "SO1", 1000)]
    assert [f.reason for f in reconcile(rows, book, RATE, tolerance_fen=1)] == ["matched"]
    assert [f.reason for f in reconcile(rows, book, RATE)] == ["amount_differs"]


def test_each_fixture_reconciles_cleanly_against_matching_books() -> None:
    for rows, rate in (
        (parse_wechat_pay_tradebill(WECHAT), RATE),
        (parse_alipay_bill(ALIPAY), RATE),
        (parse_douyin_settlement(DOUYIN), Decimal("0.05")),
    ):
        book = [entry(r.kind, r.order_ref, r.amount, refund=r.refund_ref) for r in rows]
        assert {f.reason for f in reconcile(rows, book, rate)} == {"matched"}


@pytest.mark.parametrize("rate", [0.006, Decimal("1.2"), Decimal("-0.01"), Decimal("NaN")])
def test_a_fee_rate_that_is_not_a_decimal_fraction_is_refused(rate: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        reconcile([], [], rate)  # type: ignore[arg-type]
    assert caught.value.field == "fee_rate"


def test_a_negative_tolerance_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        reconcile([], [], RATE, tolerance_fen=-1)
    assert caught.value.field == "tolerance_fen"


def test_two_channels_statements_are_not_reconciled_together() -> None:
    rows = [row("payment", "SO1", 100), row("payment", "SO2", 100, line=2, channel="alipay")]
    with pytest.raises(InvalidInput) as caught:
        reconcile(rows, [], RATE)
    assert caught.value.field == "rows"


# --- property: everything is accounted for ---------------------------------------------------

PERTURBATIONS = ("exact", "dropped", "amount", "fee", "duplicated", "booked_twice")
EXPECTED = {
    "exact": ["matched"],
    "dropped": ["missing_in_statement"],
    "amount": ["amount_differs"],
    "fee": ["fee_differs"],
    "duplicated": ["matched", "duplicate_in_statement"],
    "booked_twice": ["matched", "missing_in_statement"],
    "extra": ["missing_in_book"],
}

keys = st.one_of(
    st.tuples(st.just("payment"), st.integers(0, 30), st.none()),
    st.tuples(st.just("refund"), st.integers(0, 30), st.one_of(st.none(), st.sampled_from("ABC"))),
)
cases = st.lists(
    st.tuples(
        keys,
        st.integers(0, 10**7),  # amount
        st.sampled_from(PERTURBATIONS),
        st.integers(1, 10**4),  # how far a perturbed amount or fee is off
    ),
    unique_by=lambda case: case[0],
    max_size=25,
)
extras = st.lists(st.tuples(keys, st.integers(0, 10**7)), unique_by=lambda e: e[0], max_size=5)


@settings(deadline=None)
@given(
    cases=cases,
    extras=extras,
    rate=st.decimals(min_value=0, max_value=Decimal("0.1"), places=4),
    order=st.randoms(use_true_random=False),
)
def test_every_row_and_entry_is_accounted_for_exactly_once(
    cases: list[tuple[tuple[Kind, int, str | None], int, str, int]],
    extras: list[tuple[tuple[Kind, int, str | None], int]],
    rate: Decimal,
    order: random.Random,
) -> None:
    rows: list[StatementRow] = []
    book: list[BookEntry] = []
    expected: dict[tuple[str, str, str | None], list[str]] = {}

    def add_row(kind: Kind, order_ref: str, refund: str | None, amount: int, fee: int) -> None:
        line = len(rows) + 1
        tx = f"T{line}"
        rows.append(
            StatementRow("wechat_pay", kind, tx, order_ref, refund, amount, fee, WHEN, line)
        )

    for (kind, number, refund), amount, perturbation, delta in cases:
        order_ref = f"SO{number}"
        fee = expected_fee(amount, rate)
        book.append(BookEntry(kind, order_ref, refund, amount, WHEN))
        if perturbation == "booked_twice":
            book.append(BookEntry(kind, order_ref, refund, amount, WHEN))
        if perturbation != "dropped":
            off_amount = amount + delta if perturbation == "amount" else amount
            off_fee = fee + delta if perturbation == "fee" else expected_fee(off_amount, rate)
            add_row(kind, order_ref, refund, off_amount, off_fee)
        if perturbation == "duplicated":
            add_row(kind, order_ref, refund, amount, fee)
        expected[(kind, order_ref, refund)] = EXPECTED[perturbation]
    for (kind, number, refund), amount in extras:
        order_ref = f"EXTRA{number}"  # never in the book
        add_row(kind, order_ref, refund, amount, expected_fee(amount, rate))
        expected[(kind, order_ref, refund)] = EXPECTED["extra"]

    findings = reconcile(rows, book, rate)

    assert sorted(f.line for f in findings if f.line is not None) == [r.line for r in rows]
    assert all(f.statement_amount is not None for f in findings if f.line is not None)
    booked = [
        (f.kind, f.order_ref, f.refund_ref, f.book_amount)
        for f in findings
        if f.book_amount is not None
    ]
    assert Counter(booked) == Counter((e.kind, e.order_ref, e.refund_ref, e.amount) for e in book)
    by_key: dict[tuple[str, str, str | None], list[str]] = {}
    for f in findings:
        by_key.setdefault((f.kind, f.order_ref, f.refund_ref), []).append(f.reason)
    assert by_key == expected
    sort_key = [(f.kind, f.order_ref, f.refund_ref or "") for f in findings]
    assert sort_key == sorted(sort_key)
    shuffled_rows, shuffled_book = list(rows), list(book)
    order.shuffle(shuffled_rows)
    order.shuffle(shuffled_book)
    assert reconcile(shuffled_rows, shuffled_book, rate) == findings
