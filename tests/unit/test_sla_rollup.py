"""The SLA dashboard answers whole days from its daily rollup (tickets_sla_daily) and partial
days from the entries: for any window and grouping it must say what counting every entry says
— met, breached (on record or left late), running — on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.scope import Scope
from infra.bootstrap import Container
from infra.events import sortable_time
from projections.tickets.dashboards import sla
from projections.windows import by_days
from tests.factories import meta
from tests.unit.test_tickets import INSTALLATION, open_one, step
from tests.unit.world import project

T0 = datetime(2026, 5, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, long past
MANAGER = Scope("manager", department="east")


def counted(c: Container, by: str, since: datetime | None, until: datetime | None) -> Any:
    """The reference: every entry of the window counted, as the dashboard once did."""
    group = {
        "region": "region",
        "state": "state",
        "day": "SUBSTR(entered_at, 1, 10)",
        "workflow_version": "workflow_key || ' v' || CAST(workflow_version AS TEXT)",
    }[by]
    where, params = ["1=1"], [sortable_time(datetime.now(UTC))]
    if since is not None:
        where.append("entered_at >= ?")
        params.append(sortable_time(since))
    if until is not None:
        where.append("entered_at < ?")
        params.append(sortable_time(until))
    late = "(breached_at IS NOT NULL OR (left_at IS NOT NULL AND left_at > deadline)"
    late += " OR (left_at IS NULL AND deadline < ?))"
    rows = c.read_db.query(
        f"SELECT {group}, COUNT(*), SUM(CASE WHEN {late} THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN left_at IS NOT NULL AND left_at <= deadline AND breached_at IS NULL"
        f" THEN 1 ELSE 0 END) FROM tickets_sla WHERE {' AND '.join(where)} GROUP BY {group}",
        params,
    )
    return {str(k): (int(n), int(b or 0), int(m or 0)) for k, n, b, m in rows}


def test_the_rollup_answers_what_counting_every_entry_answers(container: Container) -> None:
    c = container
    c.tickets.define_workflow(INSTALLATION, meta())
    opened = [(open_one(c.tickets, at=T0 + timedelta(hours=7 * n)), n) for n in range(14)]
    for tid, n in opened:
        at = T0 + timedelta(hours=7 * n)
        if n % 4 == 0:  # scheduled in time
            step(c.tickets, tid, "schedule", MANAGER, at=at + timedelta(minutes=30),
                 form={"visit_on": "2026-05-20"})  # fmt: skip
        elif n % 4 == 1:  # scheduled late
            step(c.tickets, tid, "schedule", MANAGER, at=at + timedelta(hours=5),
                 form={"visit_on": "2026-05-20"})  # fmt: skip
        elif n % 4 == 2:  # breached on record, then scheduled
            late = at + timedelta(days=2)  # past the deadline, in working hours or not
            assert c.tickets.breach_overdue([_id(tid)], late, meta(at=late)) == [tid]
            step(c.tickets, tid, "schedule", MANAGER, at=late + timedelta(hours=1),
                 form={"visit_on": "2026-05-20"})  # fmt: skip
        # n % 4 == 3: still running, long overdue
    project(c)
    day = T0.replace(hour=0)
    windows = [
        (None, None),
        (day, day + timedelta(days=2)),  # whole days only
        (T0 + timedelta(hours=3), T0 + timedelta(days=2, hours=5)),  # both edges partial
        (T0 + timedelta(hours=1), T0 + timedelta(hours=9)),  # within one day
        (None, T0 + timedelta(days=1, hours=6)),
        (T0 + timedelta(days=1, hours=2), None),
        (day + timedelta(days=1), T0 + timedelta(days=3)),
    ]
    for by in ("region", "state", "workflow_version", "day"):
        for since, until in windows:
            found = sla(c.read_db, by=by,  # type: ignore[arg-type]
                        since=since.isoformat() if since else None,
                        until=until.isoformat() if until else None)  # fmt: skip
            shown = {str(g[by]): (g["entries"], g["breached"], g["met"]) for g in found["groups"]}
            assert shown == counted(c, by, since, until), (by, since, until)
    everything = sla(c.read_db, by="state")
    assert everything["totals"]["entries"] > 14 and everything["totals"]["breached"] > 0
    assert everything["totals"]["met"] > 0
    assert c.read_db.query("SELECT COUNT(*) FROM tickets_sla_daily")[0][0] > 0


def _id(tid: str) -> Any:
    from uuid import UUID

    return UUID(tid)


@pytest.mark.parametrize(
    ("since", "until", "days", "edges"),
    [
        (None, None, (None, None), ()),
        ("2026-05-04T00:00:00.000000Z", "2026-05-06T00:00:00.000000Z",
         ("2026-05-04", "2026-05-06"), ()),
        ("2026-05-04T03:00:00.000000Z", "2026-05-06T05:00:00.000000Z", ("2026-05-05", "2026-05-06"),
         (("2026-05-04T03:00:00.000000Z", "2026-05-05T00:00:00.000000Z"),
          ("2026-05-06T00:00:00.000000Z", "2026-05-06T05:00:00.000000Z"))),
        ("2026-05-04T03:00:00.000000Z", "2026-05-04T09:00:00.000000Z", None,
         (("2026-05-04T03:00:00.000000Z", "2026-05-04T09:00:00.000000Z"),)),
        ("2026-05-04T03:00:00.000000Z", "2026-05-05T00:00:00.000000Z", None,
         (("2026-05-04T03:00:00.000000Z", "2026-05-05T00:00:00.000000Z"),)),
        (None, "2026-05-05T06:00:00.000000Z", (None, "2026-05-05"),
         (("2026-05-05T00:00:00.000000Z", "2026-05-05T06:00:00.000000Z"),)),
    ],
)  # fmt: skip
def test_a_window_splits_into_whole_days_and_exact_edges(
    since: str | None, until: str | None, days: Any, edges: Any
) -> None:
    split = by_days(since, until)
    assert (split.days, split.edges) == (days, edges)
