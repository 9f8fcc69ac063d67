"""`scrm tickets bench --quick` runs end to end and prints every row. It measures; it never
asserts on a figure (a benchmark is not a timed test): only that the output is complete and
the values make sense — counts above zero, percentiles in order, every deliberate duplicate
transition answered 409 and nothing else refused."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from api.bench.tickets import ROW_IDS, run_tickets_bench
from infra.settings import Settings


def _percentiles_in_order(figure: dict[str, float], what: str) -> None:
    p50, p95, p99 = figure["p50"], figure["p95"], figure["p99"]
    assert 0 < p50 <= p95 <= p99, f"{what}: {figure}"


@pytest.mark.integration
def test_quick_tickets_bench_prints_its_rows(
    pg_admin_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "figures.json"
    code = run_tickets_bench(Settings(database_url=pg_admin_url), quick=True, json_path=out_json)
    out = capsys.readouterr().out
    assert code == 0, out
    for row_id in ROW_IDS:
        assert re.search(rf"│ {row_id} │", out), f"row {row_id} missing:\n{out}"
    flat = " ".join(out.split())
    for row_id in ("T4", "T5", "T6"):
        row = re.search(rf"│ {row_id} │.*?│\s+p50 ([\d.]+) / p95 ([\d.]+) / p99 ([\d.]+) ms", flat)
        assert row, f"row {row_id} has no percentiles:\n{out}"
        assert float(row[1]) <= float(row[3]), f"row {row_id}: p50 > p99\n{out}"

    saved = orjson.loads(out_json.read_bytes())
    assert [r["id"] for r in saved["rows"]] == ROW_IDS
    assert saved["failures"] == []
    figures = saved["figures"]
    seed = figures["seed"]
    assert seed["tickets"] > 0 and seed["events"] >= seed["tickets"]
    assert seed["events_per_s"] > 0 and seed["raw_rows_per_s"] > 0
    assert sum(seed["states"].values()) == seed["tickets"]
    assert {"assigned", "scheduled", "completed"} <= set(seed["states"])
    assert figures["projection"]["events"] >= seed["events"]
    moved = figures["transitions"]
    assert moved["ok_in_window"] > 0 and moved["per_s"] > 0 and moved["insert_tx_per_s"] > 0
    assert set(moved["statuses"]) <= {"200", "409"}, moved
    # schedule and arrive record one event each; a refused request records nothing.
    assert moved["events_appended"] == moved["statuses"]["200"], moved
    # One of each pair of deliberate duplicates is refused, never anything else.
    assert moved["conflicts_409"] == moved["duplicates_sent"], moved
    assert set(moved["conflict_codes"]) <= {"stale_version", "concurrent_update"}, moved
    assert 0 < moved["p50"] <= moved["p95"] <= moved["p99"], moved
    for role in ("manager", "staff"):
        board = figures[f"board_{role}"]
        assert board["ok"] == board["queries"] > 0, board
        _percentiles_in_order(board, f"board as {role}")
    _percentiles_in_order(figures["raw_select"], "raw select")
