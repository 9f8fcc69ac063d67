"""Workflow definitions: the states of a kind of ticket, the transitions between them, who may
make each, the form each requires, each state's SLA and how tickets are assigned.

A definition is written as JSON by an admin and parsed here into an immutable `Workflow`;
every error names the JSON path at fault. Versions are events of `WorkflowDefinition`
(domain/tickets/aggregates.py); a ticket keeps the version it was opened with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.shared import InvalidInput
from domain.tickets.forms import FieldSpec, parse_fields

# Who may make a transition: a role of the API, or the ticket's current assignee.
TRANSITION_ROLES = ("admin", "manager", "staff", "assignee")
ASSIGNMENT_POLICIES = ("round_robin", "least_open")
MATCH_ON = ("region", "service_type", "skill")
MAX_SLA_MINUTES = 60 * 24 * 90
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class State:
    name: str
    label: str = ""
    final: bool = False  # the ticket is done here (no SLA, not open)
    sla_minutes: int | None = None
    escalate_to: tuple[str, ...] = ()  # roles told when the SLA is breached


@dataclass(frozen=True)
class Transition:
    name: str
    sources: tuple[str, ...]
    target: str
    roles: tuple[str, ...]
    form: tuple[FieldSpec, ...] = ()
    # The customer's one-time confirmation code must be given (e.g. completing an installation).
    confirmation: bool = False
    # The job is done: a TicketCompleted with what settlement pays by is recorded with it.
    completes: bool = False


@dataclass(frozen=True)
class BusinessHours:
    timezone: str
    days: tuple[int, ...]  # ISO weekdays, 1 = Monday
    start: time
    end: time


@dataclass(frozen=True)
class Assignment:
    policy: str = "least_open"
    match: tuple[str, ...] = ("region", "service_type")
    # The state a ticket enters when it is first assigned while still in the initial state.
    state: str | None = None


@dataclass(frozen=True)
class Workflow:
    key: str
    name: str
    service_types: tuple[str, ...]
    initial: str
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]
    assignment: Assignment = field(default_factory=Assignment)
    business_hours: BusinessHours | None = None

    def state(self, name: str) -> State:
        return next(s for s in self.states if s.name == name)

    def transition(self, name: str) -> Transition | None:
        return next((t for t in self.transitions if t.name == name), None)

    def deadline(self, state: str, entered_at: datetime) -> datetime | None:
        """When the SLA of `state` entered at `entered_at` runs out (None: no SLA there)."""
        minutes = self.state(state).sla_minutes
        if minutes is None:
            return None
        if self.business_hours is None:
            return entered_at + timedelta(minutes=minutes)
        return add_business_minutes(entered_at, minutes, self.business_hours)


def add_business_minutes(start: datetime, minutes: int, hours: BusinessHours) -> datetime:
    """`start` plus `minutes` counted only inside business hours, in UTC."""
    zone = ZoneInfo(hours.timezone)
    local = start.astimezone(zone)
    left = timedelta(minutes=minutes)
    day = local.date()
    for _ in range(minutes // 60 + 400):  # enough days for any SLA, even one working day a week
        if day.isoweekday() in hours.days:
            opens = datetime.combine(day, hours.start, zone)
            closes = datetime.combine(day, hours.end, zone)
            begin = max(opens, local)
            if begin < closes:
                if begin + left <= closes:
                    return (begin + left).astimezone(UTC)
                left -= closes - begin
        day += timedelta(days=1)
    raise ValueError("business hours never open")  # parse() refuses such hours


# --- parsing ---------------------------------------------------------------------------------


def _bad(where: str, detail: str) -> InvalidInput:
    return InvalidInput(f"{where}: {detail}", field=where)


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise _bad(where, "1-40 lowercase letters, digits or '_', starting with a letter")
    return value


def _names(value: Any, where: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _bad(where, "a non-empty list")
    out = []
    for i, item in enumerate(value):
        if allowed is not None and item not in allowed:
            raise _bad(f"{where}[{i}]", f"must be one of {', '.join(allowed)}")
        out.append(_name(item, f"{where}[{i}]") if allowed is None else item)
    if len(set(out)) != len(out):
        raise _bad(where, "lists a name twice")
    return tuple(out)


def _only(raw: Mapping[str, Any], where: str, known: tuple[str, ...]) -> None:
    for key in raw:
        if key not in known:
            raise _bad(f"{where}.{key}", f"unknown property (known: {', '.join(known)})")


def _object(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise _bad(where, "must be an object")
    return raw


def _label(raw: Mapping[str, Any], where: str, key: str = "label", required: bool = False) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str) or len(value) > 100 or (required and not value.strip()):
        raise _bad(f"{where}.{key}", "a text of 1-100 characters" if required else "a short text")
    return value.strip()


def parse_workflow(raw: Any) -> Workflow:
    """A definition from its JSON, checked as a whole: states and transitions refer to each
    other correctly, every state can be reached, and a final state can be reached."""
    d = _object(raw, "definition")
    _only(
        d,
        "definition",
        (
            "key",
            "name",
            "service_types",
            "initial",
            "states",
            "transitions",
            "assignment",
            "business_hours",
        ),
    )
    key = _name(d.get("key"), "key")
    name = _label(d, "definition", "name", required=True)
    service_types = _names(d.get("service_types"), "service_types")
    if not isinstance(d.get("states"), list) or not d["states"]:
        raise _bad("states", "a non-empty list of states")
    states = tuple(_state(s, f"states[{i}]") for i, s in enumerate(d["states"]))
    state_names = [s.name for s in states]
    for i, n in enumerate(state_names):
        if n in state_names[:i]:
            raise _bad(f"states[{i}].name", f"state {n!r} appears twice")
    initial = d.get("initial")
    if initial not in state_names:
        raise _bad("initial", "must name one of the states")
    if next(s for s in states if s.name == initial).final:
        raise _bad("initial", "must not be a final state")
    if not isinstance(d.get("transitions"), list) or not d["transitions"]:
        raise _bad("transitions", "a non-empty list of transitions")
    transitions = tuple(
        _transition(t, f"transitions[{i}]", tuple(state_names))
        for i, t in enumerate(d["transitions"])
    )
    t_names = [t.name for t in transitions]
    for i, n in enumerate(t_names):
        if n in t_names[:i]:
            raise _bad(f"transitions[{i}].name", f"transition {n!r} appears twice")
    assignment = _assignment(d.get("assignment", {}), tuple(state_names))
    reached = _reachable(initial, transitions, assignment.state)
    for i, s in enumerate(states):
        if s.name not in reached:
            raise _bad(f"states[{i}]", f"state {s.name!r} cannot be reached from {initial!r}")
    if not any(s.final for s in states):
        raise _bad("states", "at least one state must be final")
    if assignment.state is not None and (
        assignment.state == initial or next(s for s in states if s.name == assignment.state).final
    ):
        raise _bad("assignment.state", "must be a state after the initial one, not final")
    hours = _hours(d["business_hours"]) if d.get("business_hours") is not None else None
    return Workflow(
        key=key,
        name=name,
        service_types=service_types,
        initial=initial,
        states=states,
        transitions=transitions,
        assignment=assignment,
        business_hours=hours,
    )


def _reachable(initial: str, transitions: tuple[Transition, ...], assigned: str | None) -> set[str]:
    seen, todo = {initial}, [initial]
    if assigned is not None:
        seen.add(assigned)
        todo.append(assigned)
    while todo:
        here = todo.pop()
        for t in transitions:
            if here in t.sources and t.target not in seen:
                seen.add(t.target)
                todo.append(t.target)
    return seen


def _state(raw: Any, where: str) -> State:
    s = _object(raw, where)
    _only(s, where, ("name", "label", "final", "sla_minutes", "escalate_to"))
    final = s.get("final", False)
    if not isinstance(final, bool):
        raise _bad(f"{where}.final", "true or false")
    sla = s.get("sla_minutes")
    if sla is not None:
        if isinstance(sla, bool) or not isinstance(sla, int) or not 1 <= sla <= MAX_SLA_MINUTES:
            raise _bad(f"{where}.sla_minutes", f"a whole number from 1 to {MAX_SLA_MINUTES}")
        if final:
            raise _bad(f"{where}.sla_minutes", "a final state has no SLA")
    escalate = s.get("escalate_to")
    roles = (
        _names(escalate, f"{where}.escalate_to", ("admin", "manager", "assignee"))
        if (escalate is not None)
        else ()
    )
    if roles and sla is None:
        raise _bad(f"{where}.escalate_to", "escalation needs an sla_minutes")
    return State(
        name=_name(s.get("name"), f"{where}.name"),
        label=_label(s, where),
        final=final,
        sla_minutes=sla,
        escalate_to=roles,
    )


def _transition(raw: Any, where: str, states: tuple[str, ...]) -> Transition:
    t = _object(raw, where)
    _only(t, where, ("name", "from", "to", "roles", "form", "confirmation", "completes"))
    sources = _names(t.get("from"), f"{where}.from", states)
    target = t.get("to")
    if target not in states:
        raise _bad(f"{where}.to", "must name one of the states")
    if target in sources and len(sources) == 1:
        raise _bad(f"{where}.to", "a transition must lead somewhere else")
    confirmation, completes = t.get("confirmation", False), t.get("completes", False)
    for key, flag in (("confirmation", confirmation), ("completes", completes)):
        if not isinstance(flag, bool):
            raise _bad(f"{where}.{key}", "true or false")
    return Transition(
        name=_name(t.get("name"), f"{where}.name"),
        sources=sources,
        target=target,
        roles=_names(t.get("roles"), f"{where}.roles", TRANSITION_ROLES),
        form=parse_fields(t.get("form", []), f"{where}.form"),
        confirmation=confirmation,
        completes=completes,
    )


def _assignment(raw: Any, states: tuple[str, ...]) -> Assignment:
    a = _object(raw, "assignment")
    _only(a, "assignment", ("policy", "match", "state"))
    state = a.get("state")
    if state is not None and state not in states:
        raise _bad("assignment.state", "must name one of the states")
    policy = a.get("policy", "least_open")
    if policy not in ASSIGNMENT_POLICIES:
        raise _bad("assignment.policy", f"must be one of {', '.join(ASSIGNMENT_POLICIES)}")
    match = _names(a["match"], "assignment.match", MATCH_ON) if "match" in a else ()
    return Assignment(policy=policy, match=match or ("region", "service_type"), state=state)


_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _hours(raw: Any) -> BusinessHours:
    h = _object(raw, "business_hours")
    _only(h, "business_hours", ("timezone", "days", "start", "end"))
    zone = h.get("timezone", "Asia/Shanghai")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise _bad("business_hours.timezone", "an IANA time zone, e.g. Asia/Shanghai") from None
    days = h.get("days", [1, 2, 3, 4, 5])
    if (
        not isinstance(days, list)
        or not days
        or any(isinstance(x, bool) or x not in range(1, 8) for x in days)
        or len(set(days)) != len(days)
    ):
        raise _bad("business_hours.days", "distinct ISO weekdays, 1 (Monday) to 7")
    clock = {}
    for key in ("start", "end"):
        value = h.get(key)
        if not isinstance(value, str) or not _CLOCK.match(value):
            raise _bad(f"business_hours.{key}", "a time of day as HH:MM")
        clock[key] = time.fromisoformat(value)
    if clock["start"] >= clock["end"]:
        raise _bad("business_hours.end", "must be after start")
    return BusinessHours(
        timezone=zone, days=tuple(sorted(days)), start=clock["start"], end=clock["end"]
    )
