"""Staff directory: who exists, their department and whether they have departed."""

from __future__ import annotations

from typing import Any

from domain.customers.aggregates import Staff
from infra.db import Database
from infra.events import EventRecord
from projections.base import Projection, handles


class StaffDirectory(Projection):
    name = "staff"
    tables = ("staff_members",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS staff_members ("
        " staff_id TEXT PRIMARY KEY, aggregate_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
        " department TEXT NOT NULL,"
        " region TEXT NOT NULL, departed_at TEXT, registered_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS staff_members_department ON staff_members (department)",
    )

    @handles(Staff, "Registered")
    def _registered(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO staff_members"
            " (staff_id, aggregate_id, name, department, region, registered_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                d["staff_id"],
                e.originator_id,
                d["name"],
                d["department"],
                d["region"],
                e.occurred_at,
            ),
        )

    @handles(Staff, "Departed")
    def _departed(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "UPDATE staff_members SET departed_at = ? WHERE aggregate_id = ?",
            (e.occurred_at, e.originator_id),
        )


def list_staff(db: Database, department: str | None = None) -> list[dict[str, Any]]:
    sql = "SELECT staff_id, name, department, region, departed_at FROM staff_members"
    params: tuple[Any, ...] = ()
    if department is not None:
        sql += " WHERE department = ?"
        params = (department,)
    rows = db.query(sql + " ORDER BY staff_id", params)
    return [
        {"id": r[0], "name": r[1], "department": r[2], "region": r[3], "departed_at": r[4]}
        for r in rows
    ]
