"""`scrm pricing ...` on the embedded default and on PostgreSQL: a strategy from a file, a
second version, a region's float, an emergency override and its lifting, and quotes that name
what priced them; bad input refused with nothing recorded. The entry point itself is started
once as a child process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from infra.settings import Settings
from tests.integration.support import head, scrm
from tests.unit.test_pricing import DINGXI, HANGZHOU, definition


def _quote(settings: Settings, *args: str) -> dict[str, object]:
    done = scrm(settings, "pricing", "quote", "default", "--json", *args)
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)  # type: ignore[no-any-return]


def test_strategies_floats_overrides_and_quotes_from_the_command_line(
    settings: Settings, tmp_path: Path
) -> None:
    may, june = tmp_path / "may.json", tmp_path / "june.json"
    may.write_bytes(orjson.dumps(definition()))
    june.write_bytes(
        orjson.dumps(definition(products={"LOCK-S1": 219_900, "LOCK-X2": 1, "BATTERY": 1}))
    )
    done = scrm(
        settings, "pricing", "publish", "default", str(may), "--by", "hq",
        "--effective-from", "2026-05-01T00:00:00+08:00", "--expected-version", "0",
        child=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "version 1" in done.stdout
    done = scrm(
        settings, "pricing", "publish", "default", str(june), "--by", "hq",
        "--effective-from", "2026-06-01T00:00:00+08:00", "--expected-version", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    may_quote = _quote(
        settings, "--region", DINGXI, "--line", "LOCK-S1:2:1", "--at", "2026-05-20T00:00:00Z"
    )
    assert may_quote["strategy_version"] == 1
    assert may_quote["lines"][0]["unit_price"] == 179_910  # type: ignore[index]
    assert may_quote["lines"][0]["trade_in_subsidy"] == 30_000  # type: ignore[index]
    assert (
        _quote(settings, "--region", HANGZHOU, "--line", "LOCK-S1", "--at", "2026-06-02T00:00:00Z")[
            "total"
        ]
        == 219_900
    )

    done = scrm(settings, "pricing", "float", "default", HANGZHOU, "--rate", "-0.03", "--by", "hz")
    assert done.returncode == 0, done.stderr
    now = datetime.now(UTC)
    done = scrm(
        settings, "pricing", "override", "default", "flood", "--scope", "621100",
        "--factor", "0.9", "--reason", "flood", "--by", "hq",
        "--expires-at", (now + timedelta(days=2)).isoformat(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    soon = (now + timedelta(minutes=5)).isoformat()
    table = scrm(
        settings,
        "pricing",
        "quote",
        "default",
        "--region",
        DINGXI,
        "--line",
        "LOCK-S1",
        "--at",
        soon,
    )
    assert table.returncode == 0, table.stderr
    assert (
        "override flood x0.9: flood" in table.stdout and "total 1781.19" in table.stdout
    )  # v2: 219,900 x 0.9 x 0.9
    assert (
        _quote(settings, "--region", HANGZHOU, "--line", "LOCK-S1", "--at", soon)["float"]
        == "-0.03"
    )

    done = scrm(
        settings, "pricing", "lift", "default", "flood", "--reason", "receded", "--by", "hq"
    )
    assert done.returncode == 0, done.stderr
    shown = scrm(settings, "pricing", "show", "default")
    assert shown.returncode == 0, shown.stderr
    described = orjson.loads(shown.stdout)
    assert [v["strategy_version"] for v in described["versions"]] == [1, 2]
    assert described["in_force"] == 2  # now: June's version
    assert described["overrides"][0]["lifted"]["reason"] == "receded"


def test_bad_input_is_refused_and_records_nothing(settings: Settings, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_bytes(orjson.dumps(definition()))
    assert scrm(settings, "pricing", "publish", "default", str(good), "--by", "hq").returncode == 0
    bad = tmp_path / "bad.json"
    bad.write_bytes(orjson.dumps(definition(tiers={"capital": "1"})))
    before = head(settings)

    refused = scrm(settings, "pricing", "publish", "default", str(bad), "--by", "hq")
    assert refused.returncode != 0 and "tiers" in refused.stderr
    stale = scrm(
        settings,
        "pricing",
        "publish",
        "default",
        str(good),
        "--by",
        "hq",
        "--expected-version",
        "0",
    )
    assert stale.returncode != 0 and "stale_version" in stale.stderr
    outside = scrm(settings, "pricing", "float", "default", HANGZHOU, "--rate", "0.5", "--by", "hz")
    assert outside.returncode != 0 and "band" in outside.stderr
    no_zone = scrm(
        settings,
        "pricing",
        "quote",
        "default",
        "--region",
        HANGZHOU,
        "--line",
        "LOCK-S1",
        "--at",
        "2026-05-20T00:00:00",
    )
    assert no_zone.returncode != 0 and "timezone" in no_zone.stderr
    bad_line = scrm(
        settings, "pricing", "quote", "default", "--region", HANGZHOU, "--line", "LOCK-S1:two"
    )
    assert bad_line.returncode != 0 and "whole numbers" in bad_line.stderr

    assert head(settings) == before
