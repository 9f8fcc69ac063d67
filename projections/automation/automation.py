"""Automation as read models: each rule with its versions and whether it is paused; each run
(one firing of a rule for one trigger) with its actions' outcomes; and the outbox, each
message with its status. The sweeps read `automation_runs` to leave out triggers fired
already; what is recorded is still decided by the aggregates."""

from __future__ import annotations

from typing import Any

import orjson

from domain.automation.aggregates import AutomationRule, AutomationRun, Outreach
from infra.db import Database
from infra.events import EventRecord, dumps, sortable_time
from projections.base import Projection, handles, select


class Automation(Projection):
    name = "automation"
    tables = (
        "automation_outbox",
        "automation_actions",
        "automation_runs",
        "automation_versions",
        "automation_rules",
    )
    ddl = (
        "CREATE TABLE IF NOT EXISTS automation_rules ("
        " rule_id TEXT PRIMARY KEY, rule_key TEXT NOT NULL UNIQUE, rule_version BIGINT NOT NULL,"
        " trigger_kind TEXT NOT NULL, status TEXT NOT NULL, changed_at TEXT NOT NULL,"
        " position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS automation_versions ("
        " rule_id TEXT NOT NULL, rule_version BIGINT NOT NULL, definition TEXT NOT NULL,"
        " effective_from TEXT NOT NULL, recorded_by TEXT NOT NULL, recorded_at TEXT NOT NULL,"
        " position BIGINT NOT NULL, PRIMARY KEY (rule_id, rule_version))",
        "CREATE TABLE IF NOT EXISTS automation_runs ("
        " run_id TEXT PRIMARY KEY, rule_key TEXT NOT NULL, rule_version BIGINT NOT NULL,"
        " trigger_key TEXT NOT NULL, customer_id TEXT, cause TEXT NOT NULL,"
        " actions BIGINT NOT NULL, remaining BIGINT NOT NULL, failed BIGINT NOT NULL,"
        " status TEXT NOT NULL, triggered_at TEXT NOT NULL, position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS automation_runs_fired"
        " ON automation_runs (rule_key, customer_id, trigger_key)",
        "CREATE INDEX IF NOT EXISTS automation_runs_customer"
        " ON automation_runs (customer_id, position)",
        "CREATE INDEX IF NOT EXISTS automation_runs_status ON automation_runs (status)",
        "CREATE TABLE IF NOT EXISTS automation_actions ("
        " run_id TEXT NOT NULL, idx BIGINT NOT NULL, action TEXT NOT NULL,"
        " outcome TEXT NOT NULL, detail TEXT NOT NULL, occurred_at TEXT NOT NULL,"
        " position BIGINT NOT NULL, PRIMARY KEY (run_id, idx))",
        "CREATE TABLE IF NOT EXISTS automation_outbox ("
        " outreach_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, rule_key TEXT NOT NULL,"
        " customer_id TEXT NOT NULL, channel TEXT NOT NULL, template TEXT NOT NULL,"
        " status TEXT NOT NULL, attempts BIGINT NOT NULL, reason TEXT, reference TEXT,"
        " scheduled_at TEXT NOT NULL, changed_at TEXT NOT NULL, position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS automation_outbox_status"
        " ON automation_outbox (status, position)",
    )

    @handles(AutomationRule, "Published", "Revised")
    def _version(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        version = d.get("rule_version", 1)
        at = sortable_time(e.occurred_at)
        cur.execute(
            "INSERT INTO automation_versions (rule_id, rule_version, definition, effective_from,"
            " recorded_by, recorded_at, position) VALUES (?,?,?,?,?,?,?)"
            " ON CONFLICT (rule_id, rule_version) DO NOTHING",
            (
                e.originator_id, version, dumps(d["definition"]).decode(),
                sortable_time(d["effective_from"]), e.actor, at, e.position,
            ),
        )  # fmt: skip
        kind = str(d["definition"]["trigger"]["kind"])
        if "key" in d:
            cur.execute(
                "INSERT INTO automation_rules (rule_id, rule_key, rule_version, trigger_kind,"
                " status, changed_at, position) VALUES (?,?,?,?,'active',?,?)"
                " ON CONFLICT (rule_id) DO NOTHING",
                (e.originator_id, d["key"], version, kind, at, e.position),
            )
        else:
            cur.execute(
                "UPDATE automation_rules SET rule_version = ?, trigger_kind = ?, changed_at = ?,"
                " position = ? WHERE rule_id = ? AND position < ?",
                (version, kind, at, e.position, e.originator_id, e.position),
            )

    @handles(AutomationRule, "Paused", "Resumed")
    def _toggled(self, e: EventRecord, cur: Any) -> None:
        status = "paused" if e.name == "AutomationRulePaused" else "active"
        cur.execute(
            "UPDATE automation_rules SET status = ?, changed_at = ?, position = ?"
            " WHERE rule_id = ? AND position < ?",
            (status, sortable_time(e.occurred_at), e.position, e.originator_id, e.position),
        )

    @handles(AutomationRun, "Triggered")
    def _triggered(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO automation_runs (run_id, rule_key, rule_version, trigger_key,"
            " customer_id, cause, actions, remaining, failed, status, triggered_at, position)"
            " VALUES (?,?,?,?,?,?,?,?,0,'running',?,?) ON CONFLICT (run_id) DO NOTHING",
            (
                e.originator_id, d["rule_key"], d["rule_version"], d["trigger_key"],
                d["customer_id"], d["cause"], len(d["actions"]), len(d["actions"]),
                sortable_time(e.occurred_at), e.position,
            ),
        )  # fmt: skip

    @handles(AutomationRun, "ActionTaken", "ActionFailed")
    def _outcome(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        failed = e.name == "AutomationRunActionFailed"
        detail = d["reason"] if failed else dumps(d["result"]).decode()
        cur.execute(
            "INSERT INTO automation_actions (run_id, idx, action, outcome, detail, occurred_at,"
            " position) VALUES (?,?,?,?,?,?,?) ON CONFLICT (run_id, idx) DO NOTHING",
            (
                e.originator_id, d["index"], d["action"], "failed" if failed else "taken",
                detail, sortable_time(e.occurred_at), e.position,
            ),
        )  # fmt: skip
        cur.execute(
            "UPDATE automation_runs SET remaining = ?, failed = failed + ?,"
            " status = CASE WHEN ? = 0 THEN 'done' ELSE 'running' END, position = ?"
            " WHERE run_id = ? AND position < ?",
            (d["remaining"], int(failed), d["remaining"], e.position, e.originator_id, e.position),
        )

    @handles(Outreach, "Scheduled")
    def _scheduled(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        at = sortable_time(e.occurred_at)
        cur.execute(
            "INSERT INTO automation_outbox (outreach_id, run_id, rule_key, customer_id, channel,"
            " template, status, attempts, scheduled_at, changed_at, position)"
            " VALUES (?,?,?,?,?,?,'scheduled',0,?,?,?) ON CONFLICT (outreach_id) DO NOTHING",
            (
                e.originator_id, d["run_id"], d["rule_key"], d["customer_id"], d["channel"],
                d["template"], at, at, e.position,
            ),
        )  # fmt: skip

    @handles(Outreach, "Sent", "Failed")
    def _attempted(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        sent = e.name == "OutreachSent"
        status = "sent" if sent else ("failed" if d["final"] else "retrying")
        cur.execute(
            "UPDATE automation_outbox SET status = ?, attempts = ?, reason = ?, reference = ?,"
            " changed_at = ?, position = ? WHERE outreach_id = ? AND position < ?",
            (
                status, d["attempt"], None if sent else d["reason"],
                d["reference"] if sent else None, sortable_time(e.occurred_at), e.position,
                e.originator_id, e.position,
            ),
        )  # fmt: skip


RULE_COLUMNS = ["rule_key", "rule_version", "trigger_kind", "status", "changed_at", "position"]
RUN_COLUMNS = [
    "run_id", "rule_key", "rule_version", "trigger_key", "customer_id", "cause", "actions",
    "remaining", "failed", "status", "triggered_at", "position",
]  # fmt: skip
OUTBOX_COLUMNS = [
    "outreach_id", "run_id", "rule_key", "customer_id", "channel", "template", "status",
    "attempts", "reason", "reference", "scheduled_at", "changed_at", "position",
]  # fmt: skip


def rules(db: Database, *, trigger_kind: str | None = None) -> list[dict[str, Any]]:
    where, params = (["trigger_kind = ?"], [trigger_kind]) if trigger_kind else ([], [])
    return select(
        db, "automation_rules", RULE_COLUMNS, where, list(params), order="rule_key", limit=10_000
    )


def rule(db: Database, key: str) -> dict[str, Any] | None:
    rows = db.query("SELECT rule_id FROM automation_rules WHERE rule_key = ?", (key,))
    if not rows:
        return None
    found = select(
        db, "automation_rules", RULE_COLUMNS, ["rule_key = ?"], [key], order="rule_key", limit=1
    )[0]
    found["versions"] = select(
        db, "automation_versions",
        ["rule_version", "definition", "effective_from", "recorded_by", "recorded_at", "position"],
        ["rule_id = ?"], [rows[0][0]], order="rule_version", limit=1000,
    )  # fmt: skip
    for version in found["versions"]:
        version["definition"] = orjson.loads(version["definition"])
    return found


def runs(
    db: Database,
    *,
    rule_key: str | None = None,
    customer_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    where: list[str] = []
    params: list[object] = []
    for column, value in (("rule_key", rule_key), ("customer_id", customer_id), ("status", status)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    found = select(
        db, "automation_runs", RUN_COLUMNS, where, params, order="position DESC", limit=limit
    )
    for run in found:
        run["outcomes"] = select(
            db, "automation_actions", ["idx", "action", "outcome", "detail", "occurred_at"],
            ["run_id = ?"], [run["run_id"]], order="idx", limit=100,
        )  # fmt: skip
    return found


def unfinished(db: Database, limit: int = 1000) -> list[str]:
    """Runs with actions still to take (a crash between the run and its actions)."""
    rows = db.query(
        "SELECT run_id FROM automation_runs WHERE status = 'running' ORDER BY position LIMIT ?",
        (limit,),
    )
    return [str(r[0]) for r in rows]


def outbox(
    db: Database, *, status: str | None = None, customer_id: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    where: list[str] = []
    params: list[object] = []
    for column, value in (("status", status), ("customer_id", customer_id)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    return select(
        db, "automation_outbox", OUTBOX_COLUMNS, where, params, order="position DESC", limit=limit
    )


def due_outreach(db: Database, limit: int = 1000) -> list[str]:
    """Messages still to send or to retry: the dispatcher's candidates (each one's own
    state decides whether it is sent)."""
    rows = db.query(
        "SELECT outreach_id FROM automation_outbox WHERE status IN ('scheduled', 'retrying')"
        " ORDER BY position LIMIT ?",
        (limit,),
    )
    return [str(r[0]) for r in rows]


def fired(db: Database, rule_key: str, customer_ids: list[str]) -> set[tuple[str, str]]:
    """(customer, trigger key) of the runs of a rule among these customers."""
    if not customer_ids:
        return set()
    marks = ",".join("?" * len(customer_ids))
    return {
        (str(c), str(t))
        for c, t in db.query(
            "SELECT customer_id, trigger_key FROM automation_runs WHERE rule_key = ?"
            f" AND customer_id IN ({marks})",
            (rule_key, *customer_ids),
        )
    }
