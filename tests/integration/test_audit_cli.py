"""`scrm audit history|state|correlation` as a child process, on the embedded default and on
PostgreSQL: a rule set published and revised, its history, its first version, the diff."""

from __future__ import annotations

from pathlib import Path

import orjson

from domain.settlement.aggregates import RuleSet
from infra.settings import Settings
from tests.e2e.test_settlement_api import RULES
from tests.integration.support import scrm


def test_history_and_time_travel_from_the_command_line(settings: Settings, tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_bytes(orjson.dumps(RULES))
    for expected in ("0", "1"):
        done = scrm(
            settings,
            "settlement",
            "publish-rules",
            "installers",
            str(rules),
            "--expected-version",
            expected,
        )
        assert done.returncode == 0, done.stderr
    rule_set = str(RuleSet.create_id("installers"))

    history = scrm(settings, "audit", "history", rule_set)
    assert history.returncode == 0, history.stderr
    events = orjson.loads(history.stdout)
    assert [(e["version"], e["event"], e["source"]) for e in events] == [
        (1, "RuleSetPublished", "cli"),
        (2, "RuleSetRevised", "cli"),
    ]
    correlation = events[1]["correlation_id"]

    first = scrm(settings, "audit", "state", rule_set, "--version", "1")
    assert first.returncode == 0, first.stderr
    assert len(orjson.loads(first.stdout)["state"]["versions"]) == 1
    diffed = scrm(settings, "audit", "state", rule_set, "--diff-from", "1")
    assert set(orjson.loads(diffed.stdout)["diff"]["changed"]) == {"versions"}

    caused = scrm(settings, "audit", "correlation", correlation)
    assert [e["version"] for e in orjson.loads(caused.stdout)] == [2]

    missing = scrm(settings, "audit", "state", rule_set, "--version", "7")
    assert missing.returncode == 1 and "refused: not_found" in missing.stderr
