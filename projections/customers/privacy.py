"""Erasure requests, legal holds and retention policy versions, for admins and auditors: what
waits, why, until when, and which policy version decided."""

from __future__ import annotations

from typing import Any

import orjson

from domain.customers.aggregates import Customer
from domain.customers.privacy import LegalHold, RetentionPolicy
from infra.db import Database
from infra.events import EventRecord, dumps, sortable_time
from projections.base import Projection, handles, select


class Privacy(Projection):
    name = "privacy"
    tables = ("privacy_erasures", "privacy_holds", "privacy_policies")
    ddl = (
        "CREATE TABLE IF NOT EXISTS privacy_erasures ("
        " customer_id TEXT PRIMARY KEY, status TEXT NOT NULL, requested_at TEXT NOT NULL,"
        " requested_by TEXT NOT NULL, received_via TEXT NOT NULL, subjects TEXT NOT NULL,"
        " waiting_for TEXT, retained_until TEXT, holds TEXT NOT NULL DEFAULT '[]',"
        " policy_version BIGINT, decided_at TEXT, erased_at TEXT, erased_by TEXT,"
        " key_ids TEXT NOT NULL DEFAULT '[]', position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS privacy_holds ("
        " hold_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, case_reference TEXT NOT NULL,"
        " authority TEXT NOT NULL, status TEXT NOT NULL, placed_by TEXT NOT NULL,"
        " placed_at TEXT NOT NULL, released_by TEXT, released_at TEXT,"
        " position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS privacy_policies ("
        " policy_version BIGINT PRIMARY KEY, industry TEXT NOT NULL,"
        " communications_years BIGINT NOT NULL, effective_from TEXT NOT NULL,"
        " recorded_by TEXT NOT NULL, recorded_at TEXT NOT NULL, position BIGINT NOT NULL)",
    )

    @handles(Customer, "ErasureRequested")
    def _requested(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "INSERT INTO privacy_erasures (customer_id, status, requested_at, requested_by,"
            " received_via, subjects, position) VALUES (?, 'restricted', ?, ?, ?, ?, ?)",
            (
                e.originator_id,
                e.occurred_at,
                e.actor,
                e.data["received_via"],
                dumps(e.data["subjects"]).decode(),
                e.position,
            ),
        )

    @handles(Customer, "ErasureDeferred")
    def _deferred(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "UPDATE privacy_erasures SET waiting_for = ?, retained_until = ?, holds = ?,"
            " policy_version = ?, decided_at = ?, position = ? WHERE customer_id = ?",
            (
                d["reason"],
                d["retained_until"] and sortable_time(d["retained_until"]),
                dumps(d["holds"]).decode(),
                d["policy_version"],
                e.occurred_at,
                e.position,
                e.originator_id,
            ),
        )

    @handles(Customer, "Erased")
    def _erased(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "UPDATE privacy_erasures SET status = 'erased', waiting_for = NULL,"
            " retained_until = NULL, holds = '[]', policy_version = ?, decided_at = ?,"
            " erased_at = ?, erased_by = ?, key_ids = ?, position = ? WHERE customer_id = ?",
            (
                d["policy_version"],
                e.occurred_at,
                e.occurred_at,
                e.actor,
                dumps(d["key_ids"]).decode(),
                e.position,
                e.originator_id,
            ),
        )

    @handles(LegalHold, "Placed")
    def _placed(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO privacy_holds (hold_id, customer_id, case_reference, authority,"
            " status, placed_by, placed_at, position) VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
            (
                e.originator_id,
                d["customer_id"],
                d["case_reference"],
                d["authority"],
                e.actor,
                e.occurred_at,
                e.position,
            ),
        )

    @handles(LegalHold, "Released")
    def _released(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "UPDATE privacy_holds SET status = 'released', released_by = ?, released_at = ?,"
            " position = ? WHERE hold_id = ?",
            (e.actor, e.occurred_at, e.position, e.originator_id),
        )

    @handles(RetentionPolicy, "Published", "Revised")
    def _policy(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO privacy_policies (policy_version, industry, communications_years,"
            " effective_from, recorded_by, recorded_at, position) VALUES (?,?,?,?,?,?,?)",
            (
                d.get("policy_version", 1),
                d["industry"],
                d["communications_years"],
                sortable_time(d["effective_from"]),
                e.actor,
                e.occurred_at,
                e.position,
            ),
        )


ERASURE_COLUMNS = [
    "customer_id",
    "status",
    "requested_at",
    "requested_by",
    "received_via",
    "subjects",
    "waiting_for",
    "retained_until",
    "holds",
    "policy_version",
    "decided_at",
    "erased_at",
    "erased_by",
    "key_ids",
    "position",
]


def _filters(status: str | None, customer_id: str | None) -> tuple[list[str], list[object]]:
    """The two filters both lists take."""
    pairs = [("status = ?", status), ("customer_id = ?", customer_id)]
    return [c for c, v in pairs if v is not None], [v for _, v in pairs if v is not None]


def list_erasures(
    db: Database, *, status: str | None = None, customer_id: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    where, params = _filters(status, customer_id)
    out = select(
        db, "privacy_erasures", ERASURE_COLUMNS, where, params, order="requested_at", limit=limit
    )
    for item in out:
        for key in ("subjects", "holds", "key_ids"):
            item[key] = orjson.loads(item[key])
        item["position"] = int(item["position"])
        if item["policy_version"] is not None:
            item["policy_version"] = int(item["policy_version"])
    return out


def list_holds(
    db: Database, *, status: str | None = None, customer_id: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    where, params = _filters(status, customer_id)
    columns = [
        "hold_id",
        "customer_id",
        "case_reference",
        "authority",
        "status",
        "placed_by",
        "placed_at",
        "released_by",
        "released_at",
        "position",
    ]
    out = select(db, "privacy_holds", columns, where, params, order="placed_at", limit=limit)
    for item in out:
        item["position"] = int(item["position"])
    return out


def list_policies(db: Database) -> list[dict[str, Any]]:
    columns = [
        "policy_version",
        "industry",
        "communications_years",
        "effective_from",
        "recorded_by",
        "recorded_at",
    ]
    out = select(db, "privacy_policies", columns, [], [], order="policy_version", limit=1000)
    for item in out:
        item["policy_version"] = int(item["policy_version"])
        item["communications_years"] = int(item["communications_years"])
    return out


def last_contact(db: Database, subjects: list[str]) -> str | None:
    """When the archive last holds a message with any of these data subjects (sortable UTC)."""
    if not subjects:
        return None
    marks = ",".join("?" * len(subjects))
    rows = db.query(
        f"SELECT MAX(sent_at) FROM conversations_messages WHERE subject IN ({marks})", subjects
    )
    return rows[0][0] if rows and rows[0][0] else None
