"""Recording a reconciliation: which book entries a statement is judged against, the import
recorded once with its findings split across events, and finance working them down."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import pytest

from domain.settlement import reconciling
from domain.settlement.reconciliation import BookEntry
from domain.settlement.reconciling import (
    Coverage,
    import_statement,
    resolve_finding,
)
from domain.shared import Conflict, Gone, InvalidInput
from infra.bootstrap import Container
from projections.settlement.reconciliation import findings, get_import
from tests.factories import meta
from tests.statements import BEIJING, FIXTURES, Paid, wechat_trade_bill
from tests.unit.world import embedded_only, project

pytestmark = embedded_only
NOON = datetime(2025, 3, 1, 12, tzinfo=BEIJING)


def paid(order_ref: str, amount: int, at: datetime) -> BookEntry:
    return BookEntry("payment", order_ref, None, amount, at)


def test_only_the_bill_s_own_days_and_the_entries_it_names_are_judged(
    container: Container,
) -> None:
    bill = wechat_trade_bill(
        [Paid("A", 10_000, 60, NOON), Paid("B", 2_000, 12, NOON.replace(hour=23, minute=59))]
    )
    seen: list[Coverage] = []

    def book(coverage: Coverage) -> list[BookEntry]:
        seen.append(coverage)
        return [
            paid("A", 10_000, NOON),
            paid("B", 2_000, NOON + timedelta(hours=12, seconds=5)),  # booked past midnight
            paid("C", 3_000, NOON + timedelta(hours=2)),  # that day, not in the bill
            paid("D", 4_000, NOON - timedelta(hours=13)),  # the day before: its own bill's
        ]

    r = import_statement(container.settlement, "wechat_pay", bill, "d.csv", "0.006", book, meta())

    assert r.counts["matched"] == 2 and r.counts["missing_in_statement"] == 1 and r.findings == 1
    (coverage,) = seen
    assert coverage.keys == {("payment", "A", ""), ("payment", "B", "")}
    assert (coverage.start, coverage.end) == (NOON, NOON.replace(hour=23, minute=59))


def test_a_douyin_report_is_judged_only_against_the_orders_it_names(
    container: Container,
) -> None:
    report = (FIXTURES / "douyin_settlement.jsonl").read_text(encoding="utf-8")
    at = datetime(2024, 3, 10, 8, tzinfo=BEIJING)
    book = [
        paid("6920000000000000001", 30_000, at - timedelta(days=9)),  # settled days after paying
        paid("6920000000000000011", 9_900, at - timedelta(days=9)),
        paid("6920000000000000099", 5_000, at),  # paid, not settled yet: no finding
    ]

    r = import_statement(container.settlement, "douyin", report, "s.jsonl", "0.05", book, meta())

    assert r.counts["matched"] == 2
    assert r.counts["missing_in_statement"] == 0
    assert r.counts["missing_in_book"] == 1  # the refund of sub-order ...003, unknown to us


def test_many_findings_are_listed_across_events_saved_with_the_import(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconciling, "FINDINGS_PER_EVENT", 2)
    bill = wechat_trade_bill([Paid(f"X{n}", 1_000, 6, NOON) for n in range(5)])

    r = import_statement(container.settlement, "wechat_pay", bill, "b.csv", "0.006", [], meta())

    events = container.settlement.repository.event_store.get(UUID(r.id))
    assert [type(e).__name__ for e in events] == ["Imported", "FindingsListed", "FindingsListed"]
    assert r.position == container.head() and r.findings == 5
    project(container)
    assert [(f["index"], f["order_ref"]) for f in findings(container.read_db)] == [
        (n, f"X{n}") for n in range(5)
    ]
    resolve_finding(container.settlement, UUID(r.id), 4, "explained", "测试", meta())
    project(container)
    assert get_import(container.read_db, r.id)["open_count"] == 4  # type: ignore[index]


def test_a_file_disagreeing_everywhere_is_refused_and_records_nothing(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconciling, "MAX_FINDINGS", 2)
    bill = wechat_trade_bill([Paid(f"X{n}", 1_000, 6, NOON) for n in range(3)])
    head = container.head()

    with pytest.raises(InvalidInput) as refused:
        import_statement(container.settlement, "wechat_pay", bill, "b.csv", "0.006", [], meta())

    assert refused.value.code == "too_many_findings" and "missing_in_book" in refused.value.detail
    assert container.head() == head


def test_the_same_text_is_the_same_file_and_the_rate_is_recorded_as_given(
    container: Container,
) -> None:
    bill = wechat_trade_bill([Paid("A", 10_000, 60, NOON)])
    book = [paid("A", 10_000, NOON)]
    app = container.settlement
    first = import_statement(app, "wechat_pay", bill, "a.csv", "0.0060", book, meta())

    with pytest.raises(Conflict) as again:
        import_statement(app, "wechat_pay", "\ufeff" + bill, "b.csv", "0.006", book, meta())

    assert again.value.code == "already_imported"
    assert again.value.extra == {"import_id": first.id}
    recorded = app.repository.event_store.get(UUID(first.id))
    assert next(iter(recorded)).fee_rate == "0.0060"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("channel", "rate", "field"),
    [
        ("unionpay", "0.006", "channel"),
        ("wechat_pay", "six", "fee_rate"),
        ("alipay", "1.2", "fee_rate"),
    ],
)
def test_an_unknown_channel_or_rate_is_refused(
    container: Container, channel: str, rate: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        import_statement(container.settlement, channel, "x", "f.csv", rate, [], meta())
    assert refused.value.field == field


def test_a_finding_is_resolved_once_with_a_known_resolution_and_a_note(
    container: Container,
) -> None:
    bill = wechat_trade_bill([Paid("A", 10_000, 60, NOON)])
    app = container.settlement
    r = import_statement(app, "wechat_pay", bill, "a.csv", "0.006", [], meta())
    found = UUID(r.id)

    for index, resolution, note, error in [
        (1, "explained", "n", "index"),
        (0, "ignored", "n", "resolution"),
        (0, "explained", "  ", "note"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            resolve_finding(app, found, index, resolution, note, meta())
        assert refused.value.field == error
    resolve_finding(app, found, 0, "adjusted", "已补记", meta())
    with pytest.raises(Gone) as twice:
        resolve_finding(app, found, 0, "explained", "again", meta())
    assert twice.value.code == "already_resolved"
