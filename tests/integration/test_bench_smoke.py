"""`scrm bench --quick` runs end to end and prints every row. It measures; it never asserts
on a figure (a benchmark is not a timed test)."""

from __future__ import annotations

import re

import pytest

from api.bench import row_ids, run_bench
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
