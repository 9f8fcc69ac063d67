"""Queries over the tickets read model: workflow versions, routing decisions, installer
workload and the SLA dashboard. Plain GROUP BY SQL for SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from infra.db import Database
from infra.events import sortable_time
from projections.base import select
from projections.windows import by_days, day_range, time_range


def workflows(db: Database, key: str | None = None) -> list[dict[str, Any]]:
    """Each workflow with every version: who published it, when and why."""
    where = "WHERE workflow_key = ?" if key else ""
    rows = db.query(
        "SELECT workflow_key, version, name, definition, reason, recorded_by, recorded_at,"
        f" position FROM tickets_workflows {where} ORDER BY workflow_key, version",
        (key,) if key else (),
    )
    out: dict[str, dict[str, Any]] = {}
    for k, version, name, definition, reason, by, at, position in rows:
        item = out.setdefault(k, {"key": k, "versions": []})
        item.update(name=name, current_version=int(version))
        item["versions"].append(
            {
                "version": int(version),
                "definition": orjson.loads(definition),
                "reason": reason,
                "recorded_by": by,
                "recorded_at": at,
                "position": int(position),
            }
        )
    return list(out.values())


def routing_versions(db: Database) -> list[dict[str, Any]]:
    return [
        {"version": int(v), "rules": orjson.loads(r), "recorded_by": by, "recorded_at": at}
        for v, r, by, at in db.query(
            "SELECT version, rules, recorded_by, recorded_at FROM tickets_routing_rules"
            " ORDER BY version"
        )
    ]


def routed(db: Database, *, queue: str | None, after: int, limit: int) -> list[dict[str, Any]]:
    columns = [
        "message_id",
        "customer_id",
        "queue",
        "rule",
        "rules_version",
        "action",
        "urgency",
        "matched",
        "ticket_id",
        "ticket_action",
        "routed_at",
        "position",
    ]
    where: list[str] = ["position > ?"]
    params: list[object] = [after]
    if queue is not None:
        where.append("queue = ?")
        params.append(queue)
    rows = select(db, "tickets_routed", columns, where, params, order="position", limit=limit)
    for r in rows:
        r["matched"] = orjson.loads(r["matched"])
        r["rules_version"], r["position"] = int(r["rules_version"]), int(r["position"])
    return rows


def workload(db: Database, department: str | None = None) -> list[dict[str, Any]]:
    """Every worker's profile with open tickets (by state) and how many are overdue now."""
    now = sortable_time(datetime.now(UTC))
    workers = db.query(
        "SELECT w.staff_id, w.regions, w.service_types, w.skills, w.capacity, w.departed_at"
        " FROM tickets_workers w"
        + (
            " JOIN staff_members s ON s.staff_id = w.staff_id WHERE s.department = ?"
            if department
            else ""
        )
        + " ORDER BY w.staff_id",
        (department,) if department else (),
    )
    by_state: dict[str, dict[str, int]] = {}
    overdue: dict[str, int] = {}
    for assignee, state, n, late in db.query(
        "SELECT assignee, state, COUNT(*),"
        " SUM(CASE WHEN deadline IS NOT NULL AND deadline < ? THEN 1 ELSE 0 END)"
        " FROM tickets_tickets WHERE final = 0 AND assignee IS NOT NULL"
        " GROUP BY assignee, state",
        (now,),
    ):
        by_state.setdefault(assignee, {})[state] = int(n)
        overdue[assignee] = overdue.get(assignee, 0) + int(late or 0)
    return [
        {
            "staff_id": staff_id,
            "regions": orjson.loads(regions),
            "service_types": orjson.loads(types),
            "skills": orjson.loads(skills),
            "capacity": int(capacity) if capacity is not None else None,
            "departed": departed is not None,
            "open_tickets": sum(by_state.get(staff_id, {}).values()),
            "by_state": by_state.get(staff_id, {}),
            "overdue": overdue.get(staff_id, 0),
        }
        for staff_id, regions, types, skills, capacity, departed in workers
    ]


SlaBy = Literal["region", "state", "workflow_version", "day"]
_GROUP = {
    "region": "region",
    "state": "state",
    "workflow_version": "workflow_key || ' v' || CAST(workflow_version AS TEXT)",
    "day": "SUBSTR(entered_at, 1, 10)",
}


def sla(
    db: Database,
    *,
    by: SlaBy,
    workflow: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """Per group, the state entries whose SLA clock has run out or stopped: met (left in
    time), breached (a breach on record, or left late), and those still running. On-time % is
    met / (met + breached). Whole days of the window come from the daily rollup of decided
    entries plus the running ones; partial days from the entries themselves (windows.py)."""
    now = sortable_time(datetime.now(UTC))
    split = by_days(
        sortable_time(since) if since is not None else None,
        sortable_time(until) if until is not None else None,
    )
    flow_where = ["workflow_key = ?"] if workflow is not None else []
    flow_params = [workflow] if workflow is not None else []
    group = _GROUP[by]
    sums: dict[Any, list[int]] = {}  # group -> [entries, breached, met]

    def add(rows: list[Any]) -> None:
        for key, entries, breached, met in rows:
            found = sums.setdefault(key, [0, 0, 0])
            found[0] += int(entries or 0)
            found[1] += int(breached or 0)
            found[2] += int(met or 0)

    late = "(breached_at IS NOT NULL OR (left_at IS NOT NULL AND left_at > deadline)"
    late += " OR (left_at IS NULL AND deadline < ?))"
    exact = (
        f"SELECT {group}, COUNT(*), SUM(CASE WHEN {late} THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN left_at IS NOT NULL AND left_at <= deadline AND breached_at IS NULL"
        " THEN 1 ELSE 0 END) FROM tickets_sla WHERE "
    )
    if split.days is not None:
        where, params = day_range("day", split.days)
        rolled = "day" if by == "day" else group
        add(db.query(
            f"SELECT {rolled}, SUM(met) + SUM(breached), SUM(breached), SUM(met)"
            f" FROM tickets_sla_daily WHERE {' AND '.join(['1=1', *where, *flow_where])}"
            f" GROUP BY {rolled}",
            (*params, *flow_params),
        ))  # fmt: skip
        first, end = (d + "T00:00:00.000000Z" if d else None for d in split.days)
        where, params = time_range("entered_at", first, end)
        add(db.query(
            exact + " AND ".join(
                ["left_at IS NULL", "breached_at IS NULL", *where, *flow_where]
            ) + f" GROUP BY {group}",
            (now, *params, *flow_params),
        ))  # fmt: skip
    for lo, hi in split.edges:
        where, params = time_range("entered_at", lo, hi)
        add(db.query(
            exact + " AND ".join(["1=1", *where, *flow_where]) + f" GROUP BY {group}",
            (now, *params, *flow_params),
        ))  # fmt: skip
    rows = [(key, *sums[key]) for key in sorted(sums, key=lambda k: (k is None, str(k)))]
    groups = []
    totals = {"entries": 0, "met": 0, "breached": 0}
    for key, entries, breached, met in rows:
        decided = met + breached
        groups.append(
            {
                by: key,
                "entries": entries,
                "met": met,
                "breached": breached,
                "running": entries - decided,
                "on_time": round(met / decided, 4) if decided else None,
            }
        )
        totals["entries"] += entries
        totals["met"] += met
        totals["breached"] += breached
    decided = totals["met"] + totals["breached"]
    return {
        "by": by,
        "groups": groups,
        "totals": {**totals, "on_time": round(totals["met"] / decided, 4) if decided else None},
    }
