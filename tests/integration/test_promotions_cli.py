"""`scrm promotions ...` on the embedded default and on PostgreSQL: a coupon issued, redeemed
once and shown with its history; a lapsed coupon expired by the sweep; points earned, exchanged
for a coupon and shown as of a date; refusals that record nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import meta
from tests.integration.support import head as store_head
from tests.integration.support import scrm


def _customer_and_head(settings: Settings) -> tuple[str, int]:
    c = bootstrap(settings)
    try:
        who = c.customers.add_customer(
            identities=[("openid", "o-cli")], tags=[], owner=None, meta=meta()
        ).id
        return who, c.head()
    finally:
        c.close()


def _json(settings: Settings, *args: str) -> dict[str, object]:
    done = scrm(settings, "promotions", *args)
    assert done.returncode == 0, done.stderr
    return orjson.loads(done.stdout)  # type: ignore[no-any-return]


def test_coupons_and_points_from_the_command_line(settings: Settings) -> None:
    who, _ = _customer_and_head(settings)
    soon = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    done = scrm(
        settings, "promotions", "issue-coupon", who, "--kind", "amount_off", "--value", "5000",
        "--min-spend", "20000", "--expires-at", soon, "--by", "li.na", child=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    code = orjson.loads(done.stdout)["code"]
    redeemed = _json(
        settings, "redeem", code, "--order-ref", "T-1", "--order-total", "30000", "--by", "li.na"
    )
    assert (redeemed["discount"], redeemed["to_pay"]) == (5000, 25000)
    twice = scrm(
        settings,
        "promotions",
        "redeem",
        code,
        "--order-ref",
        "T-2",
        "--order-total",
        "30000",
        "--by",
        "x",
    )
    assert twice.returncode == 1 and "coupon_redeemed" in twice.stderr
    shown = _json(settings, "coupon", code)
    assert [h["status"] for h in shown["history"]] == ["issued", "redeemed"]  # type: ignore[union-attr]

    past = datetime.now(UTC) - timedelta(days=3)
    lapsed = _json(
        settings, "issue-coupon", who, "--kind", "percent_off", "--value", "0.2",
        "--valid-from", past.isoformat(), "--expires-at", (past + timedelta(days=1)).isoformat(),
        "--by", "li.na",
    )["code"]  # fmt: skip
    assert _json(settings, "expire-coupons")["expired"] == [lapsed]
    assert _json(settings, "expire-coupons")["expired"] == []

    assert (
        _json(
            settings,
            "earn",
            who,
            "--points",
            "500",
            "--reason",
            "order",
            "--ref",
            "order:T-1",
            "--by",
            "system",
        )["balance"]
        == 500
    )
    exchanged = _json(
        settings, "exchange", who, "--points", "400", "--kind", "amount_off", "--value", "2000",
        "--expires-at", soon, "--by", "li.na",
    )  # fmt: skip
    assert exchanged["balance"] == 100
    assert _json(settings, "points", who)["balance"] == 100
    assert _json(settings, "points", who, "--as-of", "2020-01-01T00:00:00Z")["balance"] == 0


def test_refusals_record_nothing(settings: Settings) -> None:
    who, before = _customer_and_head(settings)
    soon = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    bad_rate = scrm(
        settings, "promotions", "issue-coupon", who, "--kind", "percent_off", "--value", "3",
        "--expires-at", soon, "--by", "x",
    )  # fmt: skip
    assert bad_rate.returncode == 1 and "value" in bad_rate.stderr
    no_zone = scrm(
        settings, "promotions", "issue-coupon", who, "--kind", "amount_off", "--value", "1",
        "--expires-at", "2026-12-31T00:00:00", "--by", "x",
    )  # fmt: skip
    assert no_zone.returncode != 0 and "timezone" in no_zone.stderr
    short = scrm(
        settings,
        "promotions",
        "exchange",
        who,
        "--points",
        "10",
        "--kind",
        "amount_off",
        "--value",
        "1",
        "--expires-at",
        soon,
        "--by",
        "x",
    )
    assert short.returncode == 1 and "insufficient_points" in short.stderr
    missing = scrm(settings, "promotions", "coupon", "CP-NOTHERE")
    assert missing.returncode == 1 and "not_found" in missing.stderr
    assert store_head(settings) == before
