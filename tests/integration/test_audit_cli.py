"""`scrm audit history|state|correlation` as a child process, on the embedded default and on
PostgreSQL: a rule set published and revised, its history, its first version, the diff."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from domain.scope import Scope
from domain.settlement.aggregates import RuleSet
from infra.bootstrap import bootstrap
from infra.settings import Settings
from projections.conversations.access_log import list_reads
from projections.follower import StoreFollower
from tests.e2e.conftest import PHONE
from tests.e2e.test_archive_api import CUSTOMER_EXT, line
from tests.e2e.test_settlement_api import RULES
from tests.factories import erase, meta
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


PURPOSE = "监管问询：核对通话对象"


def _seed(settings: Settings) -> dict[str, str]:
    """A customer with a phone (a second phone added later) and a WeCom id, and a message
    from them archived; then a ticket with no customer, opened from the command line."""
    c = bootstrap(settings)
    try:
        cid = c.customers.add_customer(
            identities=[("phone", PHONE), ("wecom_external_userid", CUSTOMER_EXT)],
            tags=[],
            owner=None,
            meta=meta(),
        ).id
        c.customers.add_identity(
            UUID(cid), kind="phone", value="13900001111", scope=Scope("admin"), meta=meta()
        )
        archived = meta(source="msgaudit")
        c.conversations.ingest(
            [line("cli-1", 1, CUSTOMER_EXT, ["zhang.wei"], "合同寄到文三路")], archived
        )
    finally:
        c.close()
    assert scrm(settings, "tickets", "install-library").returncode == 0
    opened = scrm(
        settings,
        "tickets",
        "open",
        "--workflow",
        "installation",
        "--service-type",
        "installation",
        "--region",
        "浙江省杭州市",
        "--description",
        "门店来电：智能锁无法开门",
    )
    assert opened.returncode == 0, opened.stderr
    return {
        "customer": cid,
        "ticket": opened.stdout.split()[1].rstrip(":"),
        "correlation": archived.correlation_id,
    }


def _phones(events: list[dict[str, Any]]) -> list[str]:
    return [
        i["value"]
        for e in events
        for i in [*e["data"].get("identities", []), e["data"]]
        if i.get("kind") == "phone"
    ]


def _reads(settings: Settings) -> list[dict[str, Any]]:
    c = bootstrap(settings)
    try:
        StoreFollower(c.engine, c.read_log).catch_up()
        return [i for i in list_reads(c.read_db) if i["query"]["view"].startswith("audit.")]
    finally:
        c.close()


def _head(settings: Settings) -> int:
    c = bootstrap(settings)
    try:
        return c.head()
    finally:
        c.close()


def test_personal_data_revealed_from_the_command_line_is_on_record(settings: Settings) -> None:
    ids = _seed(settings)
    customer = ids["customer"]

    sealed = scrm(settings, "audit", "history", customer)
    assert sealed.returncode == 0, sealed.stderr
    assert all(p.startswith("pd1.") for p in _phones(orjson.loads(sealed.stdout)))
    assert PHONE not in sealed.stdout

    head = _head(settings)
    for refused in (
        scrm(settings, "audit", "history", customer, "--reveal"),
        scrm(settings, "audit", "state", customer, "--reveal", "--purpose", "x"),
        scrm(settings, "audit", "correlation", ids["correlation"], "--reveal"),
    ):
        assert refused.returncode == 1 and "(field purpose)" in refused.stderr, refused.stderr
    assert _head(settings) == head  # nothing read, nothing recorded

    by = ["--reveal", "--purpose", PURPOSE, "--by", "li.ops"]
    history = scrm(settings, "audit", "history", customer, *by)
    assert history.returncode == 0, history.stderr
    shown = orjson.loads(history.stdout)
    assert _phones(shown["events"]) == [PHONE, "13900001111"]
    assert len(shown["revealed"]) == 2 and shown["erased"] == shown["unopened"] == []

    changed = scrm(settings, "audit", "state", customer, "--diff-from", "1", *by)
    assert changed.returncode == 0, changed.stderr
    diff = orjson.loads(changed.stdout)["diff"]["changed"]["identities"]
    assert [i["value"] for i in diff["to"] if i["kind"] == "phone"] == [PHONE, "13900001111"]

    ticket = orjson.loads(scrm(settings, "audit", "history", ids["ticket"], *by).stdout)
    assert ticket["events"][0]["data"]["summary"] == "门店来电：智能锁无法开门"

    caused = orjson.loads(scrm(settings, "audit", "correlation", ids["correlation"], *by).stdout)
    (message,) = [e for e in caused["events"] if e["event"] == "ArchivedMessageArchived"]
    assert orjson.loads(message["data"]["sealed"]) == {"text": {"content": "合同寄到文三路"}}

    reads = _reads(settings)
    assert [(r["reader"], r["role"], r["purpose"]) for r in reads] == [
        ("user:li.ops", "admin", PURPOSE)
    ] * 4
    assert [r["query"]["view"] for r in reads] == [
        "audit.history",
        "audit.state",
        "audit.history",
        "audit.correlation",
    ]
    assert reads[1]["query"]["diff_from"] == "1" and reads[3]["message_ids"] == ["cli-1"]

    # Crypto-shredded: erased, not plaintext, and the read still succeeds.
    erase(settings, customer)
    after = scrm(settings, "audit", "history", customer, *by)
    assert after.returncode == 0, after.stderr
    gone = orjson.loads(after.stdout)
    assert _phones(gone["events"]) == ["[erased]", "[erased]"] and len(gone["erased"]) == 2
    assert PHONE not in after.stdout
