"""Automation's process manager (自动化 SOP; docs/automation.md).

- `Automation` follows the log behind the read models with its own checkpoint and fires the
  rules whose trigger is an event: an order completed, a customer entering a segment, a ticket
  closed.
- `sweep(c, at)` fires the rules that time decides (silent N days, N days after a purchase,
  a customer's birthday in the rule's timezone),
  the schedules (daily, weekly) and the metrics that crossed their threshold; it finishes runs
  a crash left unfinished and sends or retries outreach that is due. Candidates come from the
  read models in set-based, paged queries; the aggregates decide.

A firing is an `AutomationRun` whose id is the rule's key and the trigger key (the causing
event; or the customer and the silence, purchase or period), so a round retried, a restart
from checkpoint 0 or a rebuild of the read models records nothing twice. Each action has one
outcome; a change to a customer is saved with it; a ticket is opened with an idempotency key;
a message is scheduled first, then sent by its own state through the outbound gateway.
"""

from __future__ import annotations

import calendar
import operator
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.automation.rules import EVENTS, WEEKDAYS, Rule, action_kind
from domain.customers.aggregates import birthday_key
from domain.shared import DomainError, Meta
from domain.tickets.application import OpenTicket
from infra.events import EventRecord
from infra.processes import BehindTheReadModels
from projections.automation import automation as read
from projections.automation import candidates
from projections.customers import purchases
from projections.tickets import tickets as tickets_read

if TYPE_CHECKING:
    from infra.bootstrap import Container

ACTOR = "system:automation"
PAGE = 1000  # customers per sweep page
_WATCHED = {name for names in EVENTS.values() for name in names}
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
}  # fmt: skip


class Owners:
    """One pass's memory: round-robin by load within a department (the active member holding
    the fewest active customers as the portrait has them, plus what this pass gave, ties by
    staff id), and how the messages it sent went."""

    def __init__(self, c: Container):
        self.c = c
        self.given: dict[str, int] = {}
        self.outreach: dict[str, int] = {}

    def choose(self, department: str) -> str | None:
        rows = self.c.read_db.query(
            "SELECT s.staff_id, (SELECT COUNT(*) FROM portrait_customers p"
            " WHERE p.owner = s.staff_id AND p.status = 'active') FROM staff_members s"
            " WHERE s.department = ? AND s.departed_at IS NULL",
            (department,),
        )
        if not rows:
            return None
        staff = min(rows, key=lambda r: (int(r[1]) + self.given.get(str(r[0]), 0), str(r[0])))[0]
        self.given[str(staff)] = self.given.get(str(staff), 0) + 1
        return str(staff)


def fire(
    c: Container,
    rule_key: str,
    rule_version: int,
    rule: Rule,
    trigger_key: str,
    customer_id: str | None,
    cause: str,
    meta: Meta,
    owners: Owners,
) -> bool:
    """Run the rule for one trigger, once: True when this call recorded the run."""
    run, created = c.automation.start_run(
        rule_key, rule_version, rule, trigger_key, customer_id, cause, meta
    )
    finish(c, run.id, meta, owners)
    return created


def finish(c: Container, run_id: UUID, meta: Meta, owners: Owners) -> None:
    """Take each action of the run that has no outcome yet, in order."""
    run = c.automation.run(run_id)
    for index in run.pending():
        action = run.actions[index]
        kind = action_kind(action)
        if kind in ("add_tags", "remove_tags", "assign_owner"):
            chosen = None
            if kind == "assign_owner" and "department" in action[kind]:
                chosen = owners.choose(action[kind]["department"])
                if chosen is None:
                    c.automation.record_outcome(
                        run_id, index, result=None, reason="no_receiver", meta=meta
                    )
                    continue
            c.automation.act_on_customer(run_id, index, chosen, meta)
        elif kind == "open_ticket":
            _open_ticket(c, run_id, index, action[kind], run.customer_id, meta)
        else:
            outreach = c.automation.schedule_outreach(run_id, index, meta)
            if outreach is not None:
                dispatch(c, [outreach], meta, owners.outreach)


def _open_ticket(
    c: Container, run_id: UUID, index: int, body: dict[str, Any], customer: str | None, meta: Meta
) -> None:
    try:
        opened = c.tickets.open_ticket(
            OpenTicket(
                workflow=body["workflow"],
                service_type=body["service_type"],
                region=body["region"],
                description=body["description"],
                customer_id=UUID(customer) if customer else None,
                urgency=body["urgency"],
                idempotency_key=f"automation:{run_id}:{index}",  # a retry opens the same one
            ),
            roster=lambda r, s, k: tickets_read.roster(c.read_db, r, s, k),
            templates=tickets_read.templates_in_force(c.read_db),
            meta=meta,
        )
    except DomainError as exc:
        c.automation.record_outcome(run_id, index, result=None, reason=exc.code, meta=meta)
        return
    c.automation.record_outcome(
        run_id, index, result={"ticket_id": opened.id, "assignee": opened.assignee},
        reason=None, meta=meta,
    )  # fmt: skip


def dispatch(
    c: Container, outreach_ids: list[UUID], meta: Meta, counts: dict[str, int] | None = None
) -> dict[str, int]:
    """Send each due message through the gateway; counts by the status recorded."""
    counts = {} if counts is None else counts
    assert c.outreach_gateway is not None
    for outreach_id in outreach_ids:
        status = c.automation.dispatch(outreach_id, c.outreach_gateway, meta)
        if status is not None:
            counts[status] = counts.get(status, 0) + 1
    return counts


class Automation(BehindTheReadModels):
    """Fires event-triggered rules as the read models reach the events (their customer is
    read from them). Nothing is read while no event rule is published."""

    MARK, TABLE = "automated", "automation_positions"

    def concerned(self) -> bool:
        # The round's event rules, read once: `handle` fires them.
        self._keys = [r["rule_key"] for r in read.rules(self.c.read_db, trigger_kind="event")]
        return bool(self._keys)

    def handle(self, records: Sequence[EventRecord]) -> None:
        owners = Owners(self.c)
        for record in records:
            if record.name in _WATCHED:
                self._handle(record, self._keys, owners)

    def _handle(self, r: EventRecord, keys: list[str], owners: Owners) -> None:
        at = r.ts()
        chosen = []
        for key in keys:
            active = self.c.automation.active_rule(key, at)
            if active is None or active[1].kind != "event":
                continue
            trigger = active[1].trigger
            if r.name in EVENTS[trigger["event"]]:
                chosen.append((key, *active))
        if not chosen:
            return
        found = self._subject(r)
        if found is None:
            return
        customer, facts = found
        meta = r.caused(ACTOR, "automation")
        for key, version, rule in chosen:
            wanted = {k: rule.trigger[k] for k in ("segment_id", "workflow") if k in rule.trigger}
            if any(facts.get(k) != v for k, v in wanted.items()):
                continue
            if not candidates.matches(self.c.read_db, customer, rule.conditions):
                continue
            fire(
                self.c, key, version, rule, f"event:{r.originator_id}:{r.originator_version}",
                customer, f"{r.name}:{r.originator_id}", meta, owners,
            )  # fmt: skip

    def _subject(self, r: EventRecord) -> tuple[str, dict[str, str]] | None:
        """The customer an event concerns, and what a trigger may filter it by."""
        db = self.c.read_db
        if r.name == "OrderCompleted":
            worth = purchases.order_worth(db, r.originator_id)
            customer = purchases.buyer_customer(db, worth[0], worth[1]) if worth else None
            return (customer, {}) if customer else None
        if r.name == "TicketTransitioned":
            if not r.data.get("final") or r.data.get("to_state") == "cancelled":
                return None
            rows = db.query(
                "SELECT customer_id, workflow_key FROM tickets_tickets WHERE ticket_id = ?",
                (r.originator_id,),
            )
            if not rows or rows[0][0] is None:
                return None
            return str(rows[0][0]), {"workflow": str(rows[0][1])}
        return str(r.data["customer_id"]), {"segment_id": str(r.data["segment_id"])}


# --- the sweep --------------------------------------------------------------------------------


def sweep(
    c: Container,
    at: datetime | None = None,
    *,
    page: int = PAGE,
    requested: Meta | None = None,
) -> dict[str, int]:
    """One pass of every time, schedule and metric rule at `at` (now by default); then runs
    left unfinished are finished and due messages sent or retried. Answers counts; a second
    pass at the same time records nothing. `requested`: the command that asked for it (the
    API), whose correlation what it records joins."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    run = uuid.uuid4().hex
    if requested is not None:
        meta = Meta(at, ACTOR, requested.source, requested.correlation_id, requested.causation_id)
    else:
        meta = Meta(at, ACTOR, "scheduler", run, f"schedule:automation:{run}")
    counts = {"rules": 0, "candidates": 0, "fired": 0}
    owners = Owners(c)
    for row in read.rules(c.read_db):
        if row["trigger_kind"] == "event":
            continue
        key = row["rule_key"]
        slot = _slot(c, key, at)
        active = c.automation.active_rule(key, slot)
        if active is None:
            continue
        version, rule = active
        counts["rules"] += 1

        def each(
            customer: str, trigger_key: str, cause: str, key: str = key,
            version: int = version, rule: Rule = rule,
        ) -> None:  # fmt: skip
            counts["candidates"] += 1
            if fire(c, key, version, rule, trigger_key, customer, cause, meta, owners):
                counts["fired"] += 1

        if rule.kind == "metric":
            counts["fired"] += _metric(c, key, version, rule, at, meta, owners)
        else:
            _walk(c, key, rule, at, slot, each, page)
    for run_id in read.unfinished(c.read_db):
        finish(c, UUID(run_id), meta, owners)
    sent = dispatch(c, [UUID(i) for i in read.due_outreach(c.read_db)], meta, owners.outreach)
    return {**counts, **{f"outreach_{k}": v for k, v in sorted(sent.items())}}


def _walk(
    c: Container,
    key: str,
    rule: Rule,
    at: datetime,
    slot: datetime,
    each: Callable[[str, str, str], None],
    page: int,
) -> None:
    """Each candidate of a time or schedule rule not fired for its trigger already."""
    db, t = c.read_db, rule.trigger
    if "days_after_purchase" in t:
        hi = at - timedelta(days=t["days_after_purchase"])
        found = candidates.last_purchase_between(
            db, rule.conditions, hi - timedelta(days=t["within_days"]), hi
        )
        for start in range(0, len(found), page):
            part = found[start : start + page]
            _fresh(db, key, [(cid, f"purchase:{when[:10]}:{cid}") for cid, when in part], each)
        return
    days: dict[str, str] = {}
    if t.get("birthday"):
        days = birthdays_on(c, at.astimezone(ZoneInfo(t["timezone"])).date())
    after = ""
    while True:
        if days:
            rows = candidates.birthdays(db, rule.conditions, list(days), after, page)
            keyed = [(cid, f"birthday:{days[k]}:{cid}") for cid, k in rows]
        elif "silent_days" in t:
            rows = candidates.silent(
                db, rule.conditions, at - timedelta(days=t["silent_days"]), after, page
            )
            keyed = [(cid, f"silent:{last[:10]}:{cid}") for cid, last in rows]
        else:
            rows = candidates.audience(db, rule.conditions, after, page)
            keyed = [(cid, f"schedule:{slot.isoformat()}:{cid}") for cid, _ in rows]
        if not rows:
            return
        _fresh(db, key, keyed, each)
        after = rows[-1][0]


def birthdays_on(c: Container, day: date) -> dict[str, str]:
    """The keyed month-days whose birthday it is on `day` -> that day (a birthday rule's
    trigger: once a year each). On 28 February of a year without a 29th, 29 February's too."""
    keys = {birthday_key(c.customers.vault.blind_index, day.month, day.day): day.isoformat()}
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        keys[birthday_key(c.customers.vault.blind_index, 2, 29)] = day.isoformat()
    return keys


def _fresh(
    db: Any, key: str, keyed: list[tuple[str, str]], each: Callable[[str, str, str], None]
) -> None:
    done = read.fired(db, key, [cid for cid, _ in keyed])
    for cid, trigger_key in keyed:
        if (cid, trigger_key) not in done:
            each(cid, trigger_key, trigger_key)


def _slot(c: Container, key: str, at: datetime) -> datetime:
    """A schedule's latest slot at or before `at` (UTC); `at` itself for other triggers."""
    found = c.automation.active_rule(key, at)
    if found is None or found[1].kind != "schedule":
        return at
    t = found[1].trigger
    zone = ZoneInfo(t["timezone"])
    local = at.astimezone(zone)
    hour, minute = (int(x) for x in t["at"].split(":"))
    slot = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if t["every"] == "weekly":
        slot -= timedelta(days=(local.weekday() - WEEKDAYS.index(t["weekday"])) % 7)
    step = timedelta(days=7 if t["every"] == "weekly" else 1)
    while slot > local:
        slot -= step
    return slot.astimezone(UTC)


def _metric(
    c: Container, key: str, version: int, rule: Rule, at: datetime, meta: Meta, owners: Owners
) -> int:
    t = rule.trigger
    days, code = t["window_days"], t.get("channel_code")
    value = candidates.channel_dropoff(c.read_db, at, days, code)
    if t["compare"] == "previous_window":
        value -= candidates.channel_dropoff(c.read_db, at - timedelta(days=days), days, code)
    shown = f"{value:.4f}"
    over = _OPS[t["op"]](Decimal(shown), Decimal(t["threshold"]))
    crossing = c.automation.observe_metric(key, over, shown, meta)
    if crossing is None:
        return 0
    trigger_key = f"metric:{crossing}"
    return int(
        fire(c, key, version, rule, trigger_key, None, f"{t['metric']}={shown}", meta, owners)
    )
