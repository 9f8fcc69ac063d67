"""`scrm settlement ...` and `scrm ledger ...`, run as a child process on the embedded default
and on PostgreSQL: a group and a rule set from a file, a payee, three jobs of a past week
priced line by line, the week closed to the fen, its statement, a payout, and the ledger
check passing, then failing once a balance row is tampered with."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.integration.support import head, scrm

RULES: dict[str, Any] = {
    "components": [
        {
            "name": "base",
            "type": "base_fee",
            "grades": {"B": 5000, "C": 8000},
            "by_service_type": {"smart_lock": "C", "repair": "B"},
        },
        {"name": "distance", "type": "distance", "free_km": "10", "flat": 2000},
        {"name": "materials", "type": "materials_deduction", "amount": 1500},
    ]
}
WEEK = "2026-11-09"  # a Monday: the week ran to 2026-11-16 00:00 Asia/Shanghai


def job(settings: Settings, source: str, occurred_at: str, *facts: str) -> str:
    done = scrm(
        settings,
        "settlement",
        "record-item",
        source,
        "--kind",
        "service",
        "--payee",
        "lock-master",
        "--occurred-at",
        occurred_at,
        *facts,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_week_settled_from_the_command_line(settings: Settings, tmp_path: Path) -> None:
    group = scrm(
        settings,
        "settlement",
        "define-group",
        "installers",
        "--name",
        "安装师傅",
        "--cycle",
        "weekly",
    )
    assert group.returncode == 0, group.stderr
    assert group.stdout.startswith("group installers: weekly")

    rules = tmp_path / "installers.json"
    rules.write_bytes(orjson.dumps(RULES))
    published = scrm(
        settings,
        "settlement",
        "publish-rules",
        "installers",
        str(rules),
        "--effective-from",
        "2026-01-01T00:00:00+08:00",
        "--expected-version",
        "0",
        "--by",
        "finance",
    )
    assert published.returncode == 0, published.stderr
    assert "rule set installers: version 1 from 2025-12-31T16:00:00+00:00" in published.stdout

    # A definition the domain refuses, or a file that is not JSON: nothing is recorded.
    before = head(settings)
    bad = tmp_path / "bad.json"
    bad.write_bytes(
        orjson.dumps(
            {"components": [{"name": "base", "type": "base_fee", "by_service_type": {"x": 1.5}}]}
        )
    )
    refused = scrm(settings, "settlement", "publish-rules", "installers", str(bad))
    assert refused.returncode == 1, refused.stdout
    assert "refused: invalid_input:" in refused.stderr
    assert "components[0].by_service_type.x" in refused.stderr
    bad.write_text("{not json")
    unreadable = scrm(settings, "settlement", "publish-rules", "installers", str(bad))
    assert unreadable.returncode == 2 and "FILE" in unreadable.stderr
    assert head(settings) == before
    versions = scrm(settings, "settlement", "rules", "installers")
    assert versions.returncode == 0, versions.stderr
    assert "2025-12-31T16:00:00.000000Z" in versions.stdout and " 2 " not in versions.stdout

    payee = scrm(
        settings,
        "settlement",
        "register-payee",
        "lock-master",
        "--kind",
        "installer",
        "--name",
        "李师傅",
        "--group",
        "installers",
        "--rule-set",
        "installers",
        "--region",
        "浙江省杭州市",
        "--account",
        "openid-lock-master",
    )
    assert payee.returncode == 0, payee.stderr

    # Three jobs of that week: each line says why.
    far = job(
        settings,
        "job-1",
        "2026-11-10T09:00:00+08:00",
        "--service-type",
        "smart_lock",
        "--distance-km",
        "15",
    )
    assert "基础服务费 C档 80.00元" in far and "20.00" in far and far.endswith("total 100.00\n")
    own_parts = job(
        settings,
        "job-2",
        "2026-11-11T14:30:00+08:00",
        "--service-type",
        "smart_lock",
        "--materials-supplied-by",
        "customer",
    )
    assert "-15.00" in own_parts and own_parts.endswith("total 65.00\n")
    repair = job(settings, "job-3", "2026-11-15T21:00:00+08:00", "--service-type", "repair")
    assert "基础服务费 B档 50.00元" in repair and repair.endswith("total 50.00\n")
    earned = scrm(settings, "settlement", "earnings", "lock-master")
    assert earned.returncode == 0, earned.stderr
    assert WEEK in earned.stdout and "215.00" in earned.stdout and "job-3" in earned.stdout

    closed = scrm(settings, "settlement", "close", "installers", WEEK)
    assert closed.returncode == 0, closed.stderr
    assert "payees 1, lines 5, total 215.00\n" in closed.stdout
    assert re.search(r"^digest [0-9a-f]{64}$", closed.stdout, re.M)
    assert re.search(r"^position \d+, \d+\.\d{3} s$", closed.stdout, re.M)
    before = head(settings)
    again = scrm(settings, "settlement", "close", "installers", WEEK)
    assert again.returncode == 1 and "refused: period_closed:" in again.stderr
    assert head(settings) == before

    statement = scrm(
        settings, "settlement", "statement", "lock-master", "installers", WEEK, "--json"
    )
    assert statement.returncode == 0, statement.stderr
    st = orjson.loads(statement.stdout)
    assert st["total"] == 8000 + 2000 + 8000 - 1500 + 5000 == 21_500
    assert [(ln["source"], ln["component"], ln["amount"]) for ln in st["lines"]] == [
        ("job-1", "base", 8000),
        ("job-1", "distance", 2000),
        ("job-2", "base", 8000),
        ("job-2", "materials", -1500),
        ("job-3", "base", 5000),
    ]
    assert all(ln["rule_set"] == "installers" and ln["rule_version"] == 1 for ln in st["lines"])

    paid = scrm(settings, "settlement", "payouts", "installers", WEEK)
    assert paid.returncode == 0, paid.stderr
    assert paid.stdout.startswith("lock-master: 215.00 settled, payout ")
    twice = scrm(settings, "settlement", "payouts", "installers", WEEK)
    assert twice.returncode == 0 and twice.stdout == paid.stdout

    # The installer disputes job-2's materials line; finance gives back 5 yuan.
    materials = next(ln for ln in st["lines"] if ln["component"] == "materials")
    opened = scrm(settings, "settlement", "dispute", materials["line_id"], "--reason", "自带配件")
    assert opened.returncode == 0, opened.stderr
    dispute_id = re.search(r"dispute (\S+) opened", opened.stdout)[1]  # type: ignore[index]
    adjusted = scrm(
        settings,
        "settlement",
        "resolve",
        dispute_id,
        "--outcome",
        "adjusted",
        "--amount",
        "500",
        "--note",
        "配件由师傅自备",
    )
    assert adjusted.returncode == 0, adjusted.stderr
    again = scrm(
        settings, "settlement", "resolve", dispute_id, "--outcome", "rejected", "--note", "x"
    )
    assert again.returncode == 1 and "refused: dispute_resolved" in again.stderr
    # A correction under a new version posts the difference now, in the open week.
    cheaper = {"components": [{**RULES["components"][0], "grades": {"B": 5000, "C": 9000}}]}
    rules_v2 = tmp_path / "rules-v2.json"
    rules_v2.write_bytes(orjson.dumps(cheaper))
    published = scrm(
        settings,
        "settlement",
        "publish-rules",
        "installers",
        str(rules_v2),
        "--effective-from",
        "2026-11-01T00:00:00+08:00",
    )
    assert published.returncode == 0, published.stderr
    fixed = scrm(settings, "settlement", "correct", "job-1", "--reason", "单价调整")
    assert fixed.returncode == 0, fixed.stderr
    assert (
        "lock-master base 10.00" in fixed.stdout and "lock-master distance -20.00" in fixed.stdout
    )
    earned = scrm(settings, "settlement", "earnings", "lock-master")
    assert earned.returncode == 0 and "争议调整" in earned.stdout and "更正" in earned.stdout

    check = scrm(settings, "ledger", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.endswith("ledger check: ok\n")
    balances = scrm(settings, "ledger", "balances", "--prefix", "clearing:")
    assert balances.returncode == 0 and "-215.00" in balances.stdout

    # Someone edits a balance row behind the ledger's back: the check names the account.
    c = bootstrap(settings)
    try:
        with c.read_db.transaction() as cur:
            cur.execute(
                "UPDATE ledger_balances SET balance = balance + 1 WHERE account = ?",
                ("payable:lock-master",),
            )
    finally:
        c.close()
    broken = scrm(settings, "ledger", "check")
    assert broken.returncode == 1, broken.stdout
    # After the payout, +5 yuan of adjustment and a -10 yuan correction: it owes 5 yuan.
    assert "balance mismatch payable:lock-master: stored 5.01, legs 5.00" in broken.stdout
    assert broken.stdout.endswith("ledger check: FAILED\n")
