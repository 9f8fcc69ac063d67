"""Answering a time window from a daily rollup, exactly.

A dashboard's window [since, until) is any pair of times. The whole UTC days inside it are
answered from a rollup table kept per day (one row per day and group, however many events),
the partial days at either end from the rows themselves, through an index on the time: the
sum is what a scan of every row would have counted, at the cost of a year of daily rows and
two days of raw rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

_MIDNIGHT = "T00:00:00.000000Z"


@dataclass(frozen=True)
class Split:
    """`days`: the whole UTC days as (first, end) 'YYYY-MM-DD', end exclusive, either None
    for unbounded; None when the window holds no whole day. `edges`: the partial days as
    [lo, hi) sortable times (infra.events.sortable_time), either None for unbounded."""

    days: tuple[str | None, str | None] | None
    edges: tuple[tuple[str | None, str | None], ...]


def by_days(since: str | None, until: str | None) -> Split:
    """Split [since, until) (sortable UTC times, None: unbounded) into whole days and edges."""
    first = None
    if since is not None:
        first = since[:10]
        if not since.endswith(_MIDNIGHT):
            first = (date.fromisoformat(first) + timedelta(days=1)).isoformat()
    end = until[:10] if until is not None else None
    if first is not None and end is not None and first >= end:
        return Split(None, ((since, until),))
    edges: list[tuple[str | None, str | None]] = []
    if since is not None and first is not None and not since.endswith(_MIDNIGHT):
        edges.append((since, first + _MIDNIGHT))
    if until is not None and end is not None and not until.endswith(_MIDNIGHT):
        edges.append((end + _MIDNIGHT, until))
    return Split((first, end), tuple(edges))


def day_range(column: str, days: tuple[str | None, str | None]) -> tuple[list[str], list[object]]:
    """SQL conditions on a 'YYYY-MM-DD' column (or a time column's first ten characters) for
    whole days, and their parameters."""
    where: list[str] = []
    params: list[object] = []
    if days[0] is not None:
        where.append(f"{column} >= ?")
        params.append(days[0])
    if days[1] is not None:
        where.append(f"{column} < ?")
        params.append(days[1])
    return where, params


def time_range(column: str, lo: str | None, hi: str | None) -> tuple[list[str], list[object]]:
    """SQL conditions on a sortable time column for [lo, hi), and their parameters."""
    where: list[str] = []
    params: list[object] = []
    if lo is not None:
        where.append(f"{column} >= ?")
        params.append(lo)
    if hi is not None:
        where.append(f"{column} < ?")
        params.append(hi)
    return where, params
