"""Workflow definitions are parsed as a whole, with every error naming its JSON path, and
SLA deadlines count business hours in the definition's time zone."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.shared import InvalidInput
from domain.tickets.workflow import BusinessHours, add_business_minutes, parse_workflow

SHIPPED = Path(__file__).parents[2] / "domain" / "tickets" / "library" / "installation.json"
INSTALLATION: dict[str, Any] = json.loads(SHIPPED.read_text())


def test_the_shipped_installation_workflow_parses() -> None:
    flow = parse_workflow(INSTALLATION)
    assert flow.initial == "new"
    complete = flow.transition("complete")
    assert complete is not None and complete.confirmation and complete.target == "completed"
    assert [f.name for f in complete.form if f.required] == [
        "serial_no",
        "distance_km",
        "materials",
        "photos",
        "signature",
    ]


def broken(change: Any) -> str | None:
    raw = copy.deepcopy(INSTALLATION)
    change(raw)
    with pytest.raises(InvalidInput) as refused:
        parse_workflow(raw)
    return refused.value.field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(initial="nowhere"), "initial"),
        (lambda d: d.update(initial="completed"), "initial"),
        (lambda d: d["states"].append({"name": "new"}), "states[7].name"),
        (lambda d: d["states"].append({"name": "limbo"}), "states[7]"),  # unreachable
        (lambda d: d["transitions"][1].update(to="nowhere"), "transitions[1].to"),
        (lambda d: d["transitions"][1].update({"from": ["ghost"]}), "transitions[1].from[0]"),
        (lambda d: d["transitions"][1].update(roles=["janitor"]), "transitions[1].roles[0]"),
        (lambda d: d["transitions"][1].update(name="schedule"), "transitions[1].name"),
        (
            lambda d: d["transitions"][3]["form"][0].update(type="barcode"),
            "transitions[3].form[0].type",
        ),
        (lambda d: d["states"][4].update(sla_minutes=10), "states[4].sla_minutes"),
        (lambda d: d["states"][0].update(sla_minutes=0), "states[0].sla_minutes"),
        (lambda d: d["business_hours"].update(timezone="Mars/Olympus"), "business_hours.timezone"),
        (lambda d: d["business_hours"].update(end="07:00"), "business_hours.end"),
        (lambda d: d["business_hours"].update(days=[0]), "business_hours.days"),
        (lambda d: d["assignment"].update(policy="random"), "assignment.policy"),
        (lambda d: d.update(colour="red"), "definition.colour"),
        (lambda d: d.update(key="Install!"), "key"),
        (lambda d: d["assignment"].update(state="completed"), "assignment.state"),
        (lambda d: d["assignment"].update(state="ghost"), "assignment.state"),
        (lambda d: [s.update(final=False) for s in d["states"]], "states"),
    ],
)
def test_a_bad_definition_names_what_is_wrong(change: Any, field: str) -> None:
    assert broken(change) == field


SHANGHAI_8_TO_20 = BusinessHours(
    "Asia/Shanghai",
    (1, 2, 3, 4, 5, 6, 7),
    *[datetime.strptime(t, "%H:%M").time() for t in ("08:00", "20:00")],
)
WEEKDAYS_9_TO_18 = BusinessHours(
    "Asia/Shanghai",
    (1, 2, 3, 4, 5),
    *[datetime.strptime(t, "%H:%M").time() for t in ("09:00", "18:00")],
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_deadline_inside_the_day_is_plain_addition() -> None:
    start = utc("2026-11-23T10:00:00+08:00")
    assert add_business_minutes(start, 120, SHANGHAI_8_TO_20) == utc("2026-11-23T12:00:00+08:00")


def test_a_deadline_carries_over_the_night_and_the_weekend() -> None:
    friday_5pm = utc("2026-11-27T17:00:00+08:00")
    # 1 hour on Friday, then Monday from 09:00.
    assert add_business_minutes(friday_5pm, 120, WEEKDAYS_9_TO_18) == utc(
        "2026-11-30T10:00:00+08:00"
    )
    saturday = utc("2026-11-28T23:00:00+08:00")
    assert add_business_minutes(saturday, 30, WEEKDAYS_9_TO_18) == utc("2026-11-30T09:30:00+08:00")


def test_the_definition_applies_its_business_hours() -> None:
    flow = parse_workflow(INSTALLATION)
    at_night = utc("2026-11-23T22:00:00+08:00")
    assert flow.deadline("new", at_night) == utc("2026-11-24T08:30:00+08:00")
    assert flow.assignment.state == "assigned"
    assert flow.deadline("completed", at_night) is None


@given(
    st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(min_value=1, max_value=60 * 24 * 30),
    st.integers(min_value=1, max_value=600),
)
def test_business_minutes_add_up(start: datetime, a: int, b: int) -> None:
    """Counting a then b minutes is counting a + b; never earlier than the plain sum."""
    hours = WEEKDAYS_9_TO_18
    both = add_business_minutes(start, a + b, hours)
    assert add_business_minutes(add_business_minutes(start, a, hours), b, hours) == both
    assert both >= start + timedelta(minutes=a + b)
