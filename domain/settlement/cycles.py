"""Settlement cycles: which period an instant falls in, for a payee group's cycle and zone.

Periods are half-open [start, end) in the group's local calendar (community stores daily,
flagship stores monthly), carried as UTC instants. A period is named by its local start date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from domain.shared import InvalidInput

CYCLES = ("daily", "weekly", "monthly")


def check_cycle(cycle: str) -> str:
    if cycle not in CYCLES:
        raise InvalidInput(f"cycle must be one of {', '.join(CYCLES)}", field="cycle")
    return cycle


def _first_day(cycle: str, day: date) -> date:
    if cycle == "daily":
        return day
    if cycle == "weekly":  # weeks start on Monday
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _next_day(cycle: str, first: date) -> date:
    if cycle == "daily":
        return first + timedelta(days=1)
    if cycle == "weekly":
        return first + timedelta(days=7)
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def _instant(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def period_of(cycle: str, timezone: str, at: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the period holding `at`."""
    zone = ZoneInfo(timezone)
    first = _first_day(cycle, at.astimezone(zone).date())
    return _instant(first, zone), _instant(_next_day(cycle, first), zone)


def period_named(cycle: str, timezone: str, name: str) -> tuple[datetime, datetime]:
    """The period whose local first day is `name` (YYYY-MM-DD); 422 if it is not one."""
    try:
        day = date.fromisoformat(name)
    except ValueError:
        raise InvalidInput(
            f"period must be a date (YYYY-MM-DD), not {name!r}", field="period"
        ) from None
    if _first_day(cycle, day) != day:
        raise InvalidInput(
            f"{name} does not start a {cycle} period"
            + (" (weeks start on Monday)" if cycle == "weekly" else " (months start on the 1st)"),
            field="period",
        )
    zone = ZoneInfo(timezone)
    return _instant(day, zone), _instant(_next_day(cycle, day), zone)


def period_name(timezone: str, start: datetime) -> str:
    return start.astimezone(ZoneInfo(timezone)).date().isoformat()
