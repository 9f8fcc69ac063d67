"""`scrm channels ...` on the embedded default and on PostgreSQL: thresholds published (a bad
one refused, naming the setting, recording nothing), a burst at night found by the detector
when the alerts are listed, acknowledged and resolved, and refused once resolved."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson

from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.integration.support import head as store_head
from tests.integration.support import scrm
from tests.unit.test_channel_anomalies import NIGHT, SMALL, burst
from tests.unit.world import hire, print_code


def _json(settings: Settings, *args: str) -> dict[str, object]:
    done = scrm(settings, "channels", *args)
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)  # type: ignore[no-any-return]


def test_thresholds_and_alerts_from_the_command_line(settings: Settings, tmp_path: Path) -> None:
    small, bad = tmp_path / "small.json", tmp_path / "bad.json"
    small.write_bytes(orjson.dumps(SMALL))
    bad.write_bytes(orjson.dumps({"quiet_hours": {"start": "25:00"}}))
    since = (NIGHT - timedelta(days=30)).isoformat()
    before = store_head(settings)
    refused = scrm(settings, "channels", "publish-thresholds", "default", str(bad), "--by", "ops")
    assert refused.returncode == 1 and "quiet_hours.start" in refused.stderr
    assert store_head(settings) == before
    published = _json(
        settings, "publish-thresholds", "default", str(small), "--by", "ops",
        "--effective-from", since, "--expected-version", "0",
    )  # fmt: skip
    assert published["thresholds_version"] == 1
    assert _json(settings, "thresholds")["in_force"] == 1

    c = bootstrap(settings)
    try:
        hire(c.customers, "a")
        code = print_code(c.customers, ["a"])
        burst(c, code, NIGHT, 3)
    finally:
        c.close()

    [alert] = _json(settings, "anomalies", "--code", str(code))["items"]  # type: ignore[misc]
    assert (alert["rule"], alert["count"]) == ("quiet_hours", 3)
    ident = alert["anomaly_id"]
    assert _json(settings, "ack", ident, "--by", "ops", "--note", "looking")["status"] == (
        "acknowledged"
    )
    resolved = _json(settings, "resolve", ident, "--outcome", "false_alarm", "--by", "ops")
    assert resolved["outcome"] == "false_alarm"
    again = scrm(settings, "channels", "ack", ident, "--by", "ops")
    assert again.returncode == 1 and "anomaly_resolved" in again.stderr
    [shown] = _json(settings, "anomalies", "--status", "resolved")["items"]  # type: ignore[misc]
    assert (shown["acknowledge_note"], shown["resolved_by"]) == ("looking", "user:ops")
