"""`scrm bench --quick` runs end to end and prints every row. It measures; it never asserts
on a figure (a benchmark is not a timed test)."""

from __future__ import annotations

import re

import pytest

from api.bench import row_ids, run_bench, run_orders_bench
from api.bench.plan import ORDERS_ROWS
from infra.settings import Settings


@pytest.mark.integration
def test_quick_bench_prints_every_row(
    pg_admin_url: str, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_bench(Settings(database_url=pg_admin_url, nats_url=nats_url), quick=True)
    out = capsys.readouterr().out
    assert code == 0, out
    for row_id in row_ids(quick=True):
        assert re.search(rf"(^|\s){row_id}\s", out, re.MULTILINE), f"row {row_id} missing:\n{out}"


@pytest.mark.integration
def test_quick_orders_bench_prints_its_rows(
    pg_admin_url: str, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`scrm orders bench --quick` (phase 6 alone) completes and prints its rows."""
    code = run_orders_bench(Settings(database_url=pg_admin_url, nats_url=nats_url), quick=True)
    out = capsys.readouterr().out
    assert code == 0, out
    for row_id in ORDERS_ROWS:
        assert re.search(rf"(^|\s){row_id}\s", out, re.MULTILINE), f"row {row_id} missing:\n{out}"
