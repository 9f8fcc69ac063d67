"""Reconciliation over HTTP: finance imports a channel's statement, the mismatches with our
orders and refunds are listed with their reasons, and finance works them down. The same file
is imported once; a broken file records nothing; auditors read but do not import."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from domain.orders.model import OrderLine, OrderSnapshot, Refund
from tests.e2e.conftest import Api, assert_error
from tests.factories import meta
from tests.statements import BEIJING, FIXTURES, Paid, Refunded, wechat_trade_bill

DAY = datetime(2025, 3, 1, tzinfo=BEIJING)


def order(
    trade_id: str, payable: int, paid_at: datetime, refunds: tuple[Refund, ...] = ()
) -> OrderSnapshot:
    return OrderSnapshot(
        platform="youzan",
        trade_id=trade_id,
        shop_id="mall",
        buyer_id=f"buyer-{trade_id}",
        status="paid",
        placed_at=paid_at - timedelta(minutes=2),
        lines=(OrderLine("1", "sku-1", "保湿面霜 50ml", 1, payable, payable),),
        total=payable,
        discount=0,
        freight=0,
        payable=payable,
        paid_at=paid_at,
        refunds=refunds,
    )


def books(api: Api, *orders: OrderSnapshot) -> None:
    """Orders as the mall pushed them, through the orders context."""
    for snap in orders:
        api.container.orders.receive(snap, f"push-{snap.trade_id}", meta(source="youzan"))


def findings(api: Api, **params: Any) -> list[dict[str, Any]]:
    r = api.admin.get("/v1/reconciliation/findings", {"min_position": api.head(), **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


def imported(api: Api, content: str | None, **more: Any) -> Any:
    body = {"channel": "wechat_pay", "file_name": "20250301.csv", "content": content}
    return api.admin.post("/v1/reconciliation/imports", {"fee_rate": "0.006", **body, **more})


@pytest.fixture
def bill(api: Api) -> str:
    """A day's WeChat Pay bill: one payment and its refund agree with the books, one amount
    was changed, one paid order is missing and one payment is unknown to the books."""
    at = DAY + timedelta(hours=10)
    books(
        api,
        order("E001", 12_800, at, (Refund("RF001", 2_800, None, at + timedelta(hours=6)),)),
        order("E002", 5_990, at + timedelta(hours=1)),
        order("E003", 9_900, at + timedelta(hours=3)),  # not in the bill
        order("E000", 4_000, DAY - timedelta(hours=3)),  # the day before: not this bill's
    )
    return wechat_trade_bill(
        [
            Paid("E001", 12_800, 77, at),
            Paid("E002", 5_900, 35, at + timedelta(hours=1)),  # the books say 59.90
            Paid("E999", 1_000, 6, at + timedelta(hours=2)),  # no such order
            Refunded("E001", "RF001", 2_800, 17, at + timedelta(hours=6)),
        ]
    )


def test_a_statement_lists_exactly_the_mismatches_with_their_reasons(api: Api, bill: str) -> None:
    r = imported(api, bill)

    assert r.status_code == 201, r.text
    body = r.json()
    assert body["rows"] == 4 and body["findings"] == 3 and body["position"] == api.head()
    assert body["counts"] == {
        "matched": 2,
        "missing_in_statement": 1,
        "missing_in_book": 1,
        "amount_differs": 1,
        "fee_differs": 0,
        "duplicate_in_statement": 0,
    }
    listed = findings(api, import_id=body["import_id"])
    assert [(f["reason"], f["order_ref"]) for f in listed] == [
        ("amount_differs", "E002"),
        ("missing_in_statement", "E003"),
        ("missing_in_book", "E999"),
    ]
    differs = listed[0]
    assert (differs["statement_amount"], differs["book_amount"], differs["line"]) == (
        5_900,
        5_990,
        3,
    )
    assert listed[1]["line"] is None and listed[1]["book_amount"] == 9_900
    assert all(f["status"] == "open" and f["channel"] == "wechat_pay" for f in listed)
    (summary,) = api.admin.get("/v1/reconciliation/imports").json()["items"]
    assert summary["import_id"] == body["import_id"]
    assert summary["fee_rate"] == "0.006" and summary["row_count"] == 4
    assert summary["open_count"] == 3 and summary["imported_by"] == "user:admin"
    assert summary["period_from"].startswith("2025-03-01T02:00:00")


def test_the_same_file_twice_is_refused_naming_the_first_import(api: Api, bill: str) -> None:
    first = imported(api, bill).json()

    with api.records_nothing():
        again = imported(api, bill, file_name="again.csv")
        as_bytes = imported(
            api,
            None,
            content_base64=base64.b64encode(bill.encode("gbk")).decode(),
            encoding="gbk",
        )

    for refused in (again, as_bytes):
        assert assert_error(refused, 409, "already_imported")["import_id"] == first["import_id"]
        assert "20250301.csv" in refused.json()["detail"]


def test_a_broken_file_names_its_line_and_column_and_records_nothing(api: Api, bill: str) -> None:
    broken = bill.replace("`59.00,", "`59.0O,", 1)

    with api.records_nothing():
        r = imported(api, broken)

    body = assert_error(r, 422, "invalid_input", field="line[3].应结订单金额")
    assert (body["line"], body["column"]) == (3, "应结订单金额")
    assert findings(api) == []


def test_finance_resolves_a_finding_once(api: Api, bill: str) -> None:
    import_id = imported(api, bill).json()["import_id"]
    path = f"/v1/reconciliation/imports/{import_id}/findings/2/resolution"

    done = api.admin.post(path, {"resolution": "written_off", "note": "测试支付，已退回"})
    again = api.admin.post(path, {"resolution": "explained", "note": "again"})
    unknown = api.admin.post(path.replace("/2/", "/7/"), {"resolution": "explained", "note": "x"})
    nowhere = api.admin.post(
        path.replace(import_id, str(uuid4())), {"resolution": "explained", "note": "x"}
    )

    assert done.status_code == 201, done.text
    assert_error(again, 410, "already_resolved")
    assert_error(unknown, 422, "invalid_input", field="index")
    assert_error(nowhere, 404, "not_found")
    resolved = findings(api, status="resolved")
    assert [(f["index"], f["resolution"], f["resolved_by"]) for f in resolved] == [
        (2, "written_off", "user:admin")
    ]
    assert [f["index"] for f in findings(api, status="open")] == [0, 1]
    assert [f["order_ref"] for f in findings(api, reason="missing_in_statement")] == ["E003"]
    summary = api.admin.get(f"/v1/reconciliation/imports/{import_id}").json()
    assert summary["open_count"] == 2


def test_an_auditor_reads_findings_but_neither_imports_nor_resolves(api: Api, bill: str) -> None:
    import_id = imported(api, bill).json()["import_id"]
    auditor = api.as_role("auditor")
    body = {"channel": "wechat_pay", "file_name": "x.csv", "content": bill, "fee_rate": "0.006"}

    with api.records_nothing():
        refused = auditor.post("/v1/reconciliation/imports", body)
        not_theirs = auditor.post(
            f"/v1/reconciliation/imports/{import_id}/findings/0/resolution",
            {"resolution": "explained", "note": "x"},
        )
    read = auditor.get("/v1/reconciliation/findings", {"min_position": api.head()})

    assert_error(refused, 403, "forbidden")
    assert_error(not_theirs, 403, "forbidden")
    assert read.status_code == 200 and len(read.json()["items"]) == 3
    assert_error(api.as_manager("east").get("/v1/reconciliation/findings"), 403, "forbidden")


def test_an_alipay_bill_is_sent_as_its_gbk_bytes(api: Api) -> None:
    """The recorded sample agrees with the books in full: nothing is left to work down."""
    at = datetime(2024, 3, 1, 9, 0, 8, tzinfo=BEIJING)
    refund = Refund(
        "RF20240301000201", 2_000, None, datetime(2024, 3, 1, 15, 45, 33, tzinfo=BEIJING)
    )
    books(
        api,
        order("SO20240301000201", 5_900, at, (refund,)),
        order("SO20240301000202", 12_800, datetime(2024, 3, 1, 10, 30, 20, tzinfo=BEIJING)),
    )
    data = (FIXTURES / "alipay_bill.csv").read_text(encoding="utf-8").encode("gbk")
    body = {
        "channel": "alipay",
        "file_name": "20881234567890120156_20240301.csv",
        "content_base64": base64.b64encode(data).decode(),
        "encoding": "gbk",
        "fee_rate": "0.006",
        "platforms": ["youzan"],
    }

    r = api.admin.post("/v1/reconciliation/imports", body)
    utf8 = api.admin.post("/v1/reconciliation/imports", {**body, "encoding": "utf-8"})

    assert r.status_code == 201, r.text
    assert r.json()["counts"]["matched"] == 3 and r.json()["findings"] == 0
    assert_error(utf8, 422, "undecodable")
