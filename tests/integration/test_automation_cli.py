"""`scrm automation publish|show|pause|resume|runs|sweep` on the embedded default and on
PostgreSQL: a rule published from a file against the version last seen; a completed order's
run shown by the CLI, which runs the automation process first; a silent customer swept once;
a birthday recorded (`scrm customers birthday`) and its rule fired on the day, once; a bad
rule or date refused naming the field and recording nothing."""

from __future__ import annotations

from pathlib import Path

import orjson

from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import meta
from tests.integration.support import head, scrm
from tests.unit.test_automation import THANKS
from tests.unit.test_loyalty import T0, order


def test_automation_from_the_command_line(settings: Settings, tmp_path: Path) -> None:
    rule = tmp_path / "rule.json"
    rule.write_bytes(orjson.dumps({**THANKS, "actions": THANKS["actions"][::2]}))
    done = scrm(
        settings, "automation", "publish", "thanks", str(rule), "--by", "hq",
        "--effective-from", "2026-01-01T00:00:00Z", "--expected-version", "0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "version 1" in done.stdout
    silent = {"trigger": {"kind": "time", "silent_days": 30}, "actions": [{"add_tags": ["沉睡"]}]}
    rule.write_bytes(orjson.dumps(silent))
    assert scrm(settings, "automation", "publish", "wake", str(rule), "--by", "hq",
                "--effective-from", "2026-01-01T00:00:00Z").returncode == 0  # fmt: skip

    c = bootstrap(settings)
    try:
        who = c.customers.add_customer(
            identities=[("taobao_buyer", "buyer-1"), ("wecom_external_userid", "wmCli")],
            tags=[], owner=None, meta=meta(at=T0),
        ).id  # fmt: skip
        c.orders.receive(order("T-1", 600_000, T0), "d-1", meta(source="taobao"))
    finally:
        c.close()

    shown = scrm(settings, "automation", "runs", "--customer", who)
    assert shown.returncode == 0, shown.stderr
    [run] = orjson.loads(shown.stdout)
    assert (run["rule_key"], run["status"]) == ("thanks", "done")
    [message] = orjson.loads(scrm(settings, "automation", "runs", "--outbox").stdout)
    assert message["status"] == "sent"
    assert scrm(settings, "automation", "pause", "wake", "--by", "ops").returncode == 0
    assert orjson.loads(scrm(settings, "automation", "show", "wake").stdout)["paused"] is True
    assert scrm(settings, "automation", "resume", "wake", "--by", "ops").returncode == 0
    # Silent since the order (2026-03-01): 30 days later the sweep tags them, once.
    for fired in (1, 0):
        swept = scrm(settings, "automation", "sweep", "--at", "2026-04-15T00:00:00Z")
        assert swept.returncode == 0, swept.stderr
        assert orjson.loads(swept.stdout)["fired"] == fired
    # A birthday recorded from the command line fires a birthday rule on the day, once.
    born = scrm(settings, "customers", "birthday", who, "1990-04-20", "--by", "ops")
    assert born.returncode == 0, born.stderr
    assert "recorded" in born.stdout
    rule.write_bytes(orjson.dumps(
        {"trigger": {"kind": "time", "birthday": True}, "actions": [{"add_tags": ["生日"]}]}
    ))  # fmt: skip
    assert scrm(settings, "automation", "publish", "birthday", str(rule), "--by", "hq",
                "--effective-from", "2026-01-01T00:00:00Z").returncode == 0  # fmt: skip
    for fired in (1, 0):
        swept = scrm(settings, "automation", "sweep", "--at", "2026-04-20T04:00:00Z")
        assert orjson.loads(swept.stdout)["fired"] == fired

    before = head(settings)
    for bad, code, said in (("1990-02-30", 2, "YYYY-MM-DD"), ("2999-01-01", 1, "birthday")):
        refused = scrm(settings, "customers", "birthday", who, bad, "--by", "ops")
        assert refused.returncode == code and said in refused.stderr, refused.stderr
    rule.write_bytes(orjson.dumps({**silent, "trigger": {"kind": "time", "silent_days": 0}}))
    bad = scrm(settings, "automation", "publish", "wake", str(rule), "--by", "hq")
    assert bad.returncode == 1 and "trigger.silent_days" in bad.stderr
    rule.write_bytes(orjson.dumps(silent))
    stale = scrm(
        settings, "automation", "publish", "thanks", str(rule), "--by", "hq",
        "--expected-version", "0",
    )  # fmt: skip
    assert stale.returncode == 1 and "stale_version" in stale.stderr
    assert head(settings) == before
