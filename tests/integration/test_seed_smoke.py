"""`scrm seed` at a tiny scale is deterministic, and `scrm bench dashboards` over what it made
prints a row for every dashboard. A benchmark's figures are never asserted."""

from __future__ import annotations

import re
from pathlib import Path

from api.bench.dashboards import DASHBOARDS
from infra.settings import Settings
from tests.integration.support import scrm

ARGS = ("seed", "--customers", "100", "--events", "1500", "--days", "30", "--seed", "7")


def _seeded(tmp: Path) -> tuple[Settings, str]:
    settings = Settings(data_dir=tmp)
    done = scrm(settings, *ARGS, timeout=120)
    assert done.returncode == 0, done.stderr
    return settings, done.stdout


def _facts(out: str) -> tuple[str, str]:
    """What must not change between runs: the counts and the head (not the times)."""
    counts = re.search(r"seeded ([\d,]+) events, ([\d,]+) customers in .*?\); (.*)$", out, re.M)
    head = re.search(r"head (\d+)", out)
    assert counts and head, out
    return f"{counts[1]} {counts[2]} {counts[3]}", head[1]


def test_the_same_seed_makes_the_same_tenant_and_every_dashboard_is_measured(
    tmp_path: Path,
) -> None:
    settings, first = _seeded(tmp_path / "a")
    _, second = _seeded(tmp_path / "b")
    assert _facts(first) == _facts(second)
    events = int(_facts(first)[0].split()[0].replace(",", ""))
    assert 1_350 <= events <= 1_650, first

    again = scrm(settings, *ARGS)
    assert again.returncode == 2 and "empty store" in again.stderr

    bench = scrm(settings, "bench", "dashboards", "--requests", "1", timeout=120)
    assert bench.returncode == 0, bench.stdout + bench.stderr
    flat = " ".join(bench.stdout.split())
    for path, _ in dict.fromkeys(DASHBOARDS):
        assert re.search(re.escape(path) + r" │ (missing|[\d.]+ │)", flat), (path, bench.stdout)
    assert "baseline: GET /healthz" in flat
