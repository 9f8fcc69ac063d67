"""The settlement ledger: every money movement in double entry, posted once, always balanced.

The stories record real settlement aggregates in the one log and apply it to the ledger alone,
through the engine, as the app does.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from domain.settlement.aggregates import Earning, Payout
from domain.settlement.rules import Line
from infra.bootstrap import Container
from projections.settlement.ledger import Ledger, account_statement, balances, check
from tests.factories import meta
from tests.unit.world import T0, dump


def line(payee: str, type_: str, amount: int) -> dict[str, Any]:
    return Line(payee, type_, type_, amount, f"{type_} for {payee}").as_dict()


def post(container: Container) -> int:
    """Bring the ledger (and only it) up to the head of the log."""
    return container.engine.apply_batch(container.read_log(0, 10_000), only=["ledger"])


def accrue(
    container: Container,
    source: str,
    lines: list[dict[str, Any]],
    *,
    at: Any = T0,
    sale: int = 0,
    held: str | None = None,
) -> Earning:
    earning = Earning(
        source=source,
        facts={"amount": sale},
        rule_set="installers",
        rule_version=1 if held is None else None,
        volumes={},
        lines=lines,
        held=held,
        meta=meta(at=at),
    )
    container.customers.save_all(earning)
    return earning


def test_an_accrual_posts_balanced_legs_to_expense_and_payable(container: Container) -> None:
    accrue(
        container,
        "job:1",
        [line("p1", "base_fee", 80_00), line("p1", "commission", 20_00), line("p1", "regional", 0)],
    )
    post(container)

    assert balances(container.read_db) == {
        "expense:settlement:base_fee": 80_00,
        "expense:settlement:commission": 20_00,
        "payable:p1": -100_00,
    }
    report = check(container.read_db)
    assert report["ok"], report
    assert (report["postings"], report["legs"]) == (1, 4)
    assert report["debits"] == report["credits"] == 100_00


def test_a_held_earning_posts_nothing_until_it_is_priced(container: Container) -> None:
    earning = accrue(container, "job:2", [], held="no price for the region")
    post(container)
    assert balances(container.read_db) == {}

    earning.price(
        payee_id="p1",
        rule_set="installers",
        rule_version=2,
        volumes={},
        lines=[Line.from_dict(line("p1", "base_fee", 50_00))],
        meta=meta(),
    )
    container.customers.save_all(earning)
    post(container)

    assert balances(container.read_db, prefix="payable:") == {"payable:p1": -50_00}


def test_a_redelivered_event_adds_nothing(container: Container) -> None:
    accrue(container, "job:1", [line("p1", "base_fee", 80_00)])
    records = container.read_log(0, 100)
    assert container.engine.apply_batch(records, only=["ledger"]) == 1
    before = dump(container, "ledger")

    # The engine skips what it has applied; past it, the posting's id is the second guard.
    assert container.engine.apply_batch(records, only=["ledger"]) == 0
    ledger = container.engine.projections["ledger"]
    assert isinstance(ledger, Ledger)
    with container.read_db.transaction() as cur:
        for record in records:
            ledger.apply(record, cur)

    assert dump(container, "ledger") == before
    assert balances(container.read_db)["payable:p1"] == -80_00


def test_a_clawback_reduces_what_is_payable(container: Container) -> None:
    earning = accrue(container, "sale:9", [line("p1", "commission", 100_00)], sale=1000_00)
    earning.claw_back("refund:1", 500_00, meta(at=T0 + timedelta(days=3)))
    container.customers.save_all(earning)
    post(container)

    assert balances(container.read_db) == {
        "expense:settlement:clawback": -50_00,
        "expense:settlement:commission": 100_00,
        "payable:p1": -50_00,
    }
    assert check(container.read_db)["ok"]


def test_a_payout_that_fails_and_is_retried_is_paid_once(container: Container) -> None:
    accrue(container, "job:1", [line("p1", "base_fee", 300_00)])
    payout = Payout(
        payee_id="p1",
        group="installers",
        period="2025-03",
        amount=300_00,
        idempotency_key="po-1",
        meta=meta(at=T0 + timedelta(days=31)),
    )
    payout.fail("account frozen", meta(at=T0 + timedelta(days=31, hours=1)))
    payout.retry(meta(at=T0 + timedelta(days=32)))
    payout.settle("wx-123", meta(at=T0 + timedelta(days=32, hours=1)))
    container.customers.save_all(payout)
    post(container)

    assert balances(container.read_db) == {
        "clearing:payout_gateway": -300_00,
        "expense:settlement:base_fee": 300_00,
        "payable:p1": 0,
        "payouts:in_transit": 0,
    }
    statement = account_statement(container.read_db, "payouts:in_transit")
    assert [(s["amount"], s["balance"]) for s in statement] == [
        (-300_00, -300_00),
        (300_00, 0),
        (-300_00, -300_00),
        (300_00, 0),
    ]
    assert [s["kind"] for s in statement] == [
        "PayoutIssued",
        "PayoutFailed",
        "PayoutRetried",
        "PayoutSettled",
    ]
    assert check(container.read_db)["ok"]


def test_balances_as_of_a_time_before_a_posting_exclude_it(container: Container) -> None:
    accrue(container, "job:1", [line("p1", "base_fee", 80_00)], at=T0)
    accrue(container, "job:2", [line("p1", "base_fee", 20_00)], at=T0 + timedelta(days=10))
    post(container)

    as_of = (T0 + timedelta(days=1)).isoformat()
    assert balances(container.read_db, as_of=as_of, prefix="payable:") == {"payable:p1": -80_00}
    assert balances(container.read_db, as_of=T0.isoformat())["payable:p1"] == -80_00
    assert balances(container.read_db, as_of="2025-02-28") == {}  # a zoneless time is UTC
    assert balances(container.read_db, prefix="payable:") == {"payable:p1": -100_00}


def test_a_statement_for_a_period_still_counts_earlier_legs_in_its_balance(
    container: Container,
) -> None:
    accrue(container, "job:1", [line("p1", "base_fee", 80_00)], at=T0)
    accrue(container, "job:2", [line("p1", "base_fee", 20_00)], at=T0 + timedelta(days=10))
    accrue(container, "job:3", [line("p1", "base_fee", 5_00)], at=T0 - timedelta(days=10))
    post(container)

    since = (T0 + timedelta(days=1)).isoformat()
    shown = account_statement(container.read_db, "payable:p1", since=since)

    assert [(s["amount"], s["balance"]) for s in shown] == [(-20_00, -100_00)]
    first_page = account_statement(container.read_db, "payable:p1", limit=1)
    rest = account_statement(
        container.read_db, "payable:p1", after_position=first_page[0]["position"]
    )
    assert [s["balance"] for s in first_page + rest] == [-80_00, -100_00, -105_00]


def test_check_reports_a_posting_whose_legs_do_not_balance(container: Container) -> None:
    accrue(container, "job:1", [line("p1", "base_fee", 80_00)])
    accrue(container, "job:2", [line("p2", "base_fee", 20_00)])
    post(container)
    assert check(container.read_db)["ok"]
    (posting,) = container.read_db.query(
        "SELECT posting_id FROM ledger_postings WHERE payee_id = 'p2'"
    )[0]

    with container.read_db.transaction() as cur:
        cur.execute(
            "UPDATE ledger_legs SET amount = amount + 1 WHERE posting_id = ? AND leg = 0",
            (posting,),
        )
        cur.execute(  # the balance follows, so only the posting itself is wrong
            "UPDATE ledger_balances SET balance = balance + 1"
            " WHERE account = 'expense:settlement:base_fee'"
        )
    report = check(container.read_db)

    assert not report["ok"]
    assert report["unbalanced_postings"] == [{"posting_id": posting, "sum": 1}]
    assert (report["debits"], report["credits"]) == (100_01, 100_00)
    assert report["balance_mismatches"] == []


def test_check_reports_a_balance_that_differs_from_its_legs(container: Container) -> None:
    accrue(container, "job:1", [line("p1", "base_fee", 80_00), line("p2", "regional", 20_00)])
    post(container)

    with container.read_db.transaction() as cur:
        cur.execute("UPDATE ledger_balances SET balance = -1 WHERE account = 'payable:p1'")
        cur.execute("DELETE FROM ledger_balances WHERE account = 'payable:p2'")
    report = check(container.read_db)

    assert not report["ok"]
    assert report["unbalanced_postings"] == []
    assert report["balance_mismatches"] == [
        {"account": "payable:p1", "balance": -1, "legs": -80_00},
        {"account": "payable:p2", "balance": None, "legs": -20_00},
    ]


def test_a_rebuilt_ledger_equals_the_live_one(container: Container) -> None:
    earning = accrue(container, "sale:9", [line("p1", "commission", 100_00)], sale=1000_00)
    earning.claw_back("refund:1", 200_00, meta())
    payout = Payout(
        payee_id="p1",
        group="installers",
        period="2025-03",
        amount=80_00,
        idempotency_key="po-1",
        meta=meta(),
    )
    payout.settle("wx-1", meta())
    container.customers.save_all(earning, payout)
    post(container)
    live = dump(container, "ledger")

    container.engine.rebuild("ledger", container.log_batches(batch=2))

    assert dump(container, "ledger") == live
    assert balances(container.read_db)["clearing:payout_gateway"] == -80_00
    assert check(container.read_db)["ok"]
