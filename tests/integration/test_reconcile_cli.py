"""`scrm reconcile ...`, run as a child process on the embedded default and on PostgreSQL: a
GBK Alipay bill is imported against the orders on the books, its one mismatch is listed and
resolved, and the same file again is refused."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from domain.orders.model import OrderLine, OrderSnapshot, Refund
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import meta
from tests.integration.support import scrm
from tests.statements import BEIJING, FIXTURES


def paid(trade_id: str, payable: int, at: datetime, *refunds: Refund) -> OrderSnapshot:
    return OrderSnapshot(
        platform="youzan",
        trade_id=trade_id,
        shop_id="mall",
        buyer_id=f"buyer-{trade_id}",
        status="paid",
        placed_at=at,
        lines=(OrderLine("1", "sku-1", "洁面乳 100g", 1, payable, payable),),
        total=payable,
        discount=0,
        freight=0,
        payable=payable,
        paid_at=at,
        refunds=refunds,
    )


def test_reconciling_from_the_command_line(settings: Settings, tmp_path: Path) -> None:
    c = bootstrap(settings)
    try:
        refund = Refund(
            "RF20240301000201", 2_000, None, datetime(2024, 3, 1, 15, 45, tzinfo=BEIJING)
        )
        for snap in (
            paid("SO20240301000201", 5_900, datetime(2024, 3, 1, 9, tzinfo=BEIJING), refund),
            paid("SO20240301000202", 12_900, datetime(2024, 3, 1, 10, 30, tzinfo=BEIJING)),
        ):
            c.orders.receive(snap, f"push-{snap.trade_id}", meta(source="youzan"))
    finally:
        c.close()
    bill = tmp_path / "20240301.csv"
    bill.write_bytes((FIXTURES / "alipay_bill.csv").read_text(encoding="utf-8").encode("gbk"))
    args = ("reconcile", "import", "alipay", str(bill), "--fee-rate", "0.006")

    imported = scrm(settings, *args, "--encoding", "gbk", "--by", "finance")
    again = scrm(settings, *args, "--encoding", "gbk")
    undecodable = scrm(settings, *args)

    assert imported.returncode == 0, imported.stderr
    assert "3 rows, 1 findings" in imported.stdout
    assert "matched 2, amount_differs 1" in imported.stdout
    import_id = imported.stdout.split()[1].rstrip(":")
    assert again.returncode == 1 and "already_imported" in again.stderr
    assert import_id in again.stderr
    assert undecodable.returncode == 1 and "undecodable" in undecodable.stderr

    listed = scrm(settings, "reconcile", "findings", "--status", "open")
    resolved = scrm(
        settings, "reconcile", "resolve", import_id, "0", "--resolution", "adjusted",
        "--note", "少记了1元运费",
    )  # fmt: skip
    after = scrm(settings, "reconcile", "findings", "--status", "open")

    assert listed.returncode == 0, listed.stderr
    assert "amount_differs" in listed.stdout and "SO20240301000202" in listed.stdout
    assert "128.00" in listed.stdout and "129.00" in listed.stdout
    assert resolved.returncode == 0, resolved.stderr
    assert f"finding 0 of {import_id}: adjusted" in resolved.stdout
    assert "amount_differs" not in after.stdout
