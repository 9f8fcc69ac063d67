"""`scrm promotions publish-program|membership|review-tiers` on the embedded default and on
PostgreSQL: the program published from a file, against the version last seen; a completed
order's points and tier shown by the CLI, which runs the loyalty process first; a member's
quote (`scrm pricing quote --customer`) at their tier's rate; a bad program refused naming the
field and recording nothing."""

from __future__ import annotations

from pathlib import Path

import orjson

from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import meta
from tests.integration.support import head, scrm
from tests.unit.test_loyalty import PROGRAM, T0, order
from tests.unit.test_pricing import HANGZHOU, definition


def test_the_loyalty_program_from_the_command_line(settings: Settings, tmp_path: Path) -> None:
    program = tmp_path / "program.json"
    program.write_bytes(orjson.dumps(PROGRAM))
    done = scrm(
        settings, "promotions", "publish-program", str(program), "--by", "hq",
        "--effective-from", "2026-01-01T00:00:00Z", "--expected-version", "0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "version 1" in done.stdout

    c = bootstrap(settings)
    try:
        who = c.customers.add_customer(
            identities=[("taobao_buyer", "buyer-1")], tags=[], owner=None, meta=meta()
        ).id
        c.orders.receive(order("T-1", 600_000, T0), "d-1", meta(source="taobao"))
        c.pricing.publish(
            "default", definition(), effective_from=T0, expected_version=0, meta=meta()
        )
    finally:
        c.close()

    shown = scrm(settings, "promotions", "membership", who)
    assert shown.returncode == 0, shown.stderr
    member = orjson.loads(shown.stdout)
    assert (member["tier"], member["spend"]) == ("silver", 600_000)
    assert member["terms"]["price_rate"] == "0.9"
    points = orjson.loads(scrm(settings, "promotions", "points", who).stdout)
    assert points["balance"] == 6_000
    quoted = scrm(
        settings, "pricing", "quote", "default", "--region", HANGZHOU, "--line", "LOCK-S1",
        "--customer", who, "--json",
    )  # fmt: skip
    assert quoted.returncode == 0, quoted.stderr
    assert orjson.loads(quoted.stdout)["member"]["tier"] == "silver"
    assert orjson.loads(quoted.stdout)["total"] == 179_910  # 199,900 at 9折
    stranger = scrm(
        settings, "pricing", "quote", "default", "--region", HANGZHOU, "--line", "LOCK-S1",
        "--customer", "nobody",
    )  # fmt: skip
    assert stranger.returncode == 1 and "customer nobody not found" in stranger.stderr
    reviewed = scrm(settings, "promotions", "review-tiers", "--by", "ops")
    assert orjson.loads(reviewed.stdout) == {"reviewed": 1, "changed": 0}

    before = head(settings)
    program.write_bytes(orjson.dumps({**PROGRAM, "period_days": 0}))
    bad = scrm(settings, "promotions", "publish-program", str(program), "--by", "hq")
    assert bad.returncode == 1 and "period_days" in bad.stderr
    program.write_bytes(orjson.dumps(PROGRAM))
    stale = scrm(
        settings, "promotions", "publish-program", str(program), "--by", "hq",
        "--expected-version", "0",
    )  # fmt: skip
    assert stale.returncode == 1 and "stale_version" in stale.stderr
    assert head(settings) == before
