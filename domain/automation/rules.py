"""An automation rule's definition (自动化 SOP): a trigger, optional conditions and the actions
to take, checked here so a bad definition is a 422 naming the part at fault
(`actions[1].send_message.channel`). Pure: no clock, no I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.shared import InvalidInput, require_slug

# What an event trigger names, and the log events behind each.
EVENTS = {
    "order_completed": ("OrderCompleted",),
    "segment_entered": ("SegmentMembershipEntered", "SegmentMembershipReentered"),
    "ticket_closed": ("TicketTransitioned",),  # into a final state other than cancelled
}
TRIGGERS = ("event", "time", "schedule", "metric")
ACTIONS = ("add_tags", "remove_tags", "assign_owner", "open_ticket", "send_message")
CHANNELS = ("wecom", "official_account")
METRICS = ("channel_dropoff",)  # 1 - contacts added / scans of channel codes, over a window
OPS = (">=", ">", "<=", "<")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_ACTIONS = 10
MAX_DAYS = 3660
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class Rule:
    trigger: dict[str, Any]
    conditions: dict[str, Any]
    actions: tuple[dict[str, Any], ...]

    @property
    def kind(self) -> str:
        return str(self.trigger["kind"])

    @property
    def needs_customer(self) -> bool:
        return self.kind != "metric"


def parse(raw: Any) -> Rule:
    if not isinstance(raw, Mapping):
        raise InvalidInput("a rule is an object", field="definition")
    _only(raw, {"trigger", "conditions", "actions"}, "")
    trigger = _trigger(raw.get("trigger"))
    conditions = _conditions(raw.get("conditions") or {})
    actions_raw = raw.get("actions")
    if not isinstance(actions_raw, list) or not 1 <= len(actions_raw) <= MAX_ACTIONS:
        raise InvalidInput(f"actions is a list of 1 to {MAX_ACTIONS} actions", field="actions")
    actions = tuple(_action(a, f"actions[{i}]") for i, a in enumerate(actions_raw))
    if trigger["kind"] == "metric":
        if conditions:
            raise InvalidInput("a metric trigger concerns no customer", field="conditions")
        for i, action in enumerate(actions):
            if "open_ticket" not in action:
                raise InvalidInput(
                    "a metric trigger concerns no customer: its actions open tickets",
                    field=f"actions[{i}]",
                )
    return Rule(trigger, conditions, actions)


def _only(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidInput(f"unknown field {unknown[0]!r}", field=f"{where}{unknown[0]}")


def _days(raw: Mapping[str, Any], name: str, where: str, default: int | None = None) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise InvalidInput(
            f"{name} is a whole number of days from 1 to {MAX_DAYS}", field=f"{where}.{name}"
        )
    return value


def _zone(raw: Mapping[str, Any], w: str) -> str:
    zone = raw.get("timezone", "Asia/Shanghai")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidInput(f"unknown timezone {zone!r}", field=f"{w}.timezone") from None
    return str(zone)


def _trigger(raw: Any) -> dict[str, Any]:
    w = "trigger"
    if not isinstance(raw, Mapping):
        raise InvalidInput("trigger is an object with a kind", field=w)
    kind = raw.get("kind")
    if kind not in TRIGGERS:
        raise InvalidInput(f"trigger.kind is one of {', '.join(TRIGGERS)}", field=f"{w}.kind")
    if kind == "event":
        _only(raw, {"kind", "event", "segment_id", "workflow"}, f"{w}.")
        if raw.get("event") not in EVENTS:
            raise InvalidInput(f"trigger.event is one of {', '.join(EVENTS)}", field=f"{w}.event")
        out = {"kind": kind, "event": raw["event"]}
        if raw.get("segment_id") is not None:
            if raw["event"] != "segment_entered":
                raise InvalidInput("segment_id goes with segment_entered", field=f"{w}.segment_id")
            out["segment_id"] = require_slug(raw["segment_id"], f"{w}.segment_id")
        if raw.get("workflow") is not None:
            if raw["event"] != "ticket_closed":
                raise InvalidInput("workflow goes with ticket_closed", field=f"{w}.workflow")
            out["workflow"] = require_slug(raw["workflow"], f"{w}.workflow")
        return out
    if kind == "time":
        _only(
            raw,
            {"kind", "silent_days", "birthday", "days_after_purchase", "within_days", "timezone"},
            f"{w}.",
        )
        given = [k for k in ("silent_days", "days_after_purchase", "birthday") if k in raw]
        if len(given) != 1:
            raise InvalidInput(
                "a time trigger names one of silent_days, days_after_purchase, birthday",
                field=w,
            )
        if given[0] == "birthday":
            if raw["birthday"] is not True:
                raise InvalidInput(
                    "trigger.birthday is true: the rule fires on each customer's birthday",
                    field=f"{w}.birthday",
                )
            if "within_days" in raw:
                raise InvalidInput(
                    "within_days goes with days_after_purchase", field=f"{w}.within_days"
                )
            # Whose calendar decides what day it is: the business's, not UTC's.
            return {"kind": kind, "birthday": True, "timezone": _zone(raw, w)}
        if "timezone" in raw:
            raise InvalidInput("timezone goes with birthday or a schedule", field=f"{w}.timezone")
        out = {"kind": kind, given[0]: _days(raw, given[0], w)}
        if given[0] == "days_after_purchase":
            out["within_days"] = _days(raw, "within_days", w, 7)
        elif "within_days" in raw:
            raise InvalidInput(
                "within_days goes with days_after_purchase", field=f"{w}.within_days"
            )
        return out
    if kind == "schedule":
        _only(raw, {"kind", "every", "at", "timezone", "weekday"}, f"{w}.")
        every = raw.get("every")
        if every not in ("daily", "weekly"):
            raise InvalidInput("trigger.every is daily or weekly", field=f"{w}.every")
        at = raw.get("at", "09:00")
        if not isinstance(at, str) or not _HHMM.match(at):
            raise InvalidInput("trigger.at is a time of day, HH:MM", field=f"{w}.at")
        out = {"kind": kind, "every": every, "at": at, "timezone": _zone(raw, w)}
        if every == "weekly":
            if raw.get("weekday") not in WEEKDAYS:
                raise InvalidInput(
                    f"trigger.weekday is one of {', '.join(WEEKDAYS)}", field=f"{w}.weekday"
                )
            out["weekday"] = raw["weekday"]
        elif "weekday" in raw:
            raise InvalidInput("weekday goes with a weekly schedule", field=f"{w}.weekday")
        return out
    _only(
        raw,
        {"kind", "metric", "channel_code", "window_days", "op", "threshold", "compare"},
        f"{w}.",
    )
    if raw.get("metric") not in METRICS:
        raise InvalidInput(f"trigger.metric is one of {', '.join(METRICS)}", field=f"{w}.metric")
    if raw.get("op", ">=") not in OPS:
        raise InvalidInput(f"trigger.op is one of {', '.join(OPS)}", field=f"{w}.op")
    try:
        threshold = Decimal(str(raw.get("threshold")))
    except InvalidOperation:
        raise InvalidInput('threshold is a number, e.g. "0.1"', field=f"{w}.threshold") from None
    if not threshold.is_finite() or isinstance(raw.get("threshold"), bool):
        raise InvalidInput('threshold is a number, e.g. "0.1"', field=f"{w}.threshold")
    compare = raw.get("compare", "value")
    if compare not in ("value", "previous_window"):
        raise InvalidInput(
            "compare is value or previous_window (the rise over the window before)",
            field=f"{w}.compare",
        )
    out = {
        "kind": kind,
        "metric": raw["metric"],
        "window_days": _days(raw, "window_days", w, 7),
        "op": raw.get("op", ">="),
        "threshold": str(threshold),
        "compare": compare,
    }
    if raw.get("channel_code") is not None:
        out["channel_code"] = require_slug(raw["channel_code"], f"{w}.channel_code")
    return out


def _tags(value: Any, field: str) -> list[str]:
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 20
        or not all(isinstance(t, str) and 0 < len(t.strip()) <= 40 for t in value)
    ):
        raise InvalidInput("a list of 1 to 20 tags of 1 to 40 characters", field=field)
    return [t.strip() for t in value]


def _conditions(raw: Any) -> dict[str, Any]:
    w = "conditions"
    if not isinstance(raw, Mapping):
        raise InvalidInput("conditions is an object", field=w)
    _only(raw, {"segment_id", "tags_all", "tags_none"}, f"{w}.")
    out: dict[str, Any] = {}
    if raw.get("segment_id") is not None:
        out["segment_id"] = require_slug(raw["segment_id"], f"{w}.segment_id")
    for name in ("tags_all", "tags_none"):
        if raw.get(name) is not None:
            out[name] = _tags(raw[name], f"{w}.{name}")
    return out


def _text(raw: Mapping[str, Any], name: str, where: str, max_len: int, default: Any = None) -> str:
    value = raw.get(name, default)
    if not isinstance(value, str) or not 0 < len(value.strip()) <= max_len:
        raise InvalidInput(f"{name} is 1 to {max_len} characters", field=f"{where}.{name}")
    return value.strip()


def _action(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in ACTIONS:
        raise InvalidInput(f"an action is an object with one of {', '.join(ACTIONS)}", field=where)
    kind, body = next(iter(raw.items()))
    w = f"{where}.{kind}"
    if kind in ("add_tags", "remove_tags"):
        return {kind: _tags(body, w)}
    if not isinstance(body, Mapping):
        raise InvalidInput(f"{kind} is an object", field=w)
    if kind == "assign_owner":
        _only(body, {"staff", "department"}, f"{w}.")
        if ("staff" in body) == ("department" in body):
            raise InvalidInput(
                "assign_owner names a staff member or a department (round-robin)", field=w
            )
        name = "staff" if "staff" in body else "department"
        return {kind: {name: _text(body, name, w, 80)}}
    if kind == "open_ticket":
        _only(body, {"workflow", "service_type", "region", "description", "urgency"}, f"{w}.")
        urgency = body.get("urgency", "normal")
        if urgency not in ("normal", "urgent"):
            raise InvalidInput("urgency is normal or urgent", field=f"{w}.urgency")
        return {
            kind: {
                "workflow": require_slug(body.get("workflow", ""), f"{w}.workflow"),
                "service_type": require_slug(body.get("service_type", ""), f"{w}.service_type"),
                "region": _text(body, "region", w, 80, "unknown"),
                "description": _text(body, "description", w, 2000),
                "urgency": urgency,
            }
        }
    _only(body, {"channel", "template", "params"}, f"{w}.")
    if body.get("channel") not in CHANNELS:
        raise InvalidInput(f"channel is one of {', '.join(CHANNELS)}", field=f"{w}.channel")
    params = body.get("params", {})
    if (
        not isinstance(params, Mapping)
        or not all(
            isinstance(k, str) and isinstance(v, str | int) and len(str(v)) <= 200
            for k, v in params.items()
        )
        or len(params) > 20
    ):
        raise InvalidInput(
            "params maps up to 20 names to texts or numbers of at most 200 characters",
            field=f"{w}.params",
        )
    return {
        kind: {
            "channel": body["channel"],
            "template": require_slug(body.get("template", ""), f"{w}.template"),
            "params": dict(params),
        }
    }


def action_kind(action: Mapping[str, Any]) -> str:
    return str(next(iter(action)))
