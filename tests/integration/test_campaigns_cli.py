"""`scrm campaigns publish|join|invite|participant|rewards|release|stats` on the embedded
default and on PostgreSQL: a campaign published from a file, a join and two invitees, their
adds counted by the fission process the CLI runs first, a held reward released once; a bad
campaign refused naming the field, recording nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import meta
from tests.integration.support import head, scrm
from tests.unit.test_campaigns import CAMPAIGN, KEY, contact, customer

# Open now: the CLI records at the time it runs.
OPEN = {**CAMPAIGN, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2099-01-01T00:00:00Z"}


def test_a_campaign_from_the_command_line(settings: Settings, tmp_path: Path) -> None:
    file = tmp_path / "campaign.json"
    file.write_bytes(orjson.dumps(OPEN))
    done = scrm(
        settings, "campaigns", "publish", KEY, str(file), "--by", "ops",
        "--effective-from", "2026-01-01T00:00:00Z", "--expected-version", "0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "version 1" in done.stdout

    c = bootstrap(settings)
    try:
        a, b = customer(c, "a"), customer(c, "b")
        code = c.campaigns.join(KEY, a, meta=meta()).code
    finally:
        c.close()
    for who in (a, b):  # a invites themself (flagged), then b
        r = scrm(settings, "campaigns", "invite", KEY, code, who, "--by", "h5", "--device", who)
        assert r.returncode == 0, r.stderr
    c = bootstrap(settings)
    try:
        for n in "ab":
            contact(c, n, datetime.now(UTC))
    finally:
        c.close()

    shown = orjson.loads(scrm(settings, "campaigns", "participant", KEY, a).stdout)
    assert [(x["tier"], x["status"]) for x in shown["rewards"]] == [(2, "held")]
    held = orjson.loads(scrm(settings, "campaigns", "rewards", KEY, "--status", "held").stdout)
    assert [x["reasons"] for x in held] == [["self_invite"]]
    released = scrm(settings, "campaigns", "release", KEY, a, "2", "--by", "lead", "--note", "ok")
    assert released.returncode == 0, released.stderr
    again = scrm(settings, "campaigns", "release", KEY, a, "2", "--by", "lead")
    assert again.returncode == 1 and "reward_issued" in again.stderr
    stats = orjson.loads(scrm(settings, "campaigns", "stats", KEY).stdout)
    assert stats["funnel"]["rewards"] == 1 and stats["reward_cost"] == 2_000

    before = head(settings)
    file.write_bytes(orjson.dumps({**OPEN, "success": "scan"}))
    bad = scrm(settings, "campaigns", "publish", KEY, str(file), "--by", "ops")
    assert bad.returncode == 1 and "success" in bad.stderr
    assert head(settings) == before
