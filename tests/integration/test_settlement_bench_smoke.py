"""`scrm settlement bench --quick` runs end to end and prints every row. It measures; it never
asserts on a figure (a benchmark is not a timed test): only that the output is complete and
consistent — every payee gets a statement, the statements add up to what was priced, the
statement queries all answered 200."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from api.bench.settlement import QUICK, run_settlement_bench
from infra.settings import Settings

ROW_IDS = ["S1", "S2", "S3", "S3m", "S4"]


@pytest.mark.integration
def test_quick_settlement_bench_prints_its_rows(
    pg_admin_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "figures.json"
    code = run_settlement_bench(Settings(database_url=pg_admin_url), quick=True, json_path=out_json)
    out = capsys.readouterr().out
    assert code == 0, out
    for row_id in ROW_IDS:
        assert re.search(rf"│ {row_id}\s*│", out), f"row {row_id} missing:\n{out}"

    saved = orjson.loads(out_json.read_bytes())
    assert [r["id"] for r in saved["rows"]] == ROW_IDS
    assert saved["failures"] == []
    figures = saved["figures"]
    # Payees, items, the group and the rule set: every one recorded as an event.
    assert figures["seed"]["events"] == QUICK.payees + QUICK.items
    assert figures["projection"]["events"] == figures["seed"]["events"] + 2
    run = figures["run"]
    assert run["payees"] == run["statements"] == QUICK.payees
    assert run["lines"] == figures["projection"]["lines"] == run["raw_lines"]
    assert run["statements_total"] == run["total"] > 0
    assert len(run["digest"]) == 64
    assert run["rss_after_mb"] >= run["rss_before_mb"] > 0
    statements = figures["statements"]
    assert statements["errors"] == 0
    assert len(statements["latencies"]) == len(statements["raw"]) == QUICK.statements
