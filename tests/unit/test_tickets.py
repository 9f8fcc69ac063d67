"""Tickets through their workflow: opened under a definition version and kept on it, assigned
by policy, moved only by allowed roles with valid forms from the version seen, completed with
the customer's code and the facts settlement needs, and SLA breaches recorded once."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.scope import Scope
from domain.shared import Conflict, Forbidden, Gone, InvalidInput
from domain.tickets.application import OpenTicket, TicketsApp
from domain.tickets.assignment import Candidate
from domain.tickets.templates import shipped_templates
from infra.bootstrap import Container
from tests.factories import meta

INSTALLATION: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "domain/tickets/library/installation.json").read_text()
)
TEMPLATES = [(1, t) for t in shipped_templates()]
MONDAY_10AM = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
MANAGER = Scope("manager", department="east")


@pytest.fixture
def tickets(container: Container) -> Iterator[TicketsApp]:
    app = TicketsApp(
        container.vault, env=container.settings.event_store_env(), share_with=container.customers
    )
    app.define_workflow(INSTALLATION, meta())
    yield app
    app.close()


def roster(*candidates: Candidate) -> Any:
    return lambda region, service_type, skill: list(candidates)


def open_one(app: TicketsApp, *, at: datetime = MONDAY_10AM, **more: Any) -> str:
    request = OpenTicket(
        workflow="installation",
        service_type="installation",
        region="杭州市",
        description="新买的空调挂机，周六上门安装，需要打孔",
        product="美的 1.5匹 挂机",
        **more,
    )
    opened = app.open_ticket(
        request,
        roster=roster(Candidate("wang", 3, 10), Candidate("li", 1, 20), Candidate("zhao", 1, 5)),
        templates=TEMPLATES,
        meta=meta(at=at),
    )
    return opened.id


def step(
    app: TicketsApp,
    tid: str,
    name: str,
    scope: Scope,
    *,
    at: datetime = MONDAY_10AM,
    form: Any = None,
    code: str | None = None,
    expected: int | None = None,
) -> Any:
    return app.transition(
        UUID(tid),
        name,
        form=form or {},
        confirmation_code=code,
        expected_version=expected,
        scope=scope,
        meta=meta(at=at),
    )


def test_least_open_assignment_and_template_match(tickets: TicketsApp) -> None:
    tid = open_one(tickets)
    ticket = tickets.get_ticket(UUID(tid))
    assert ticket.assignee == "zhao"  # 1 open like li, but assigned longest ago
    # Assigned at once, so the ticket moved on to "assigned", whose SLA is 120 business minutes.
    assert ticket.state == "assigned" and ticket.workflow_version == 1
    assert ticket.deadline == MONDAY_10AM + timedelta(minutes=120)
    assert ticket.version == 3  # opened, assigned, transitioned (assign)


def test_a_new_version_affects_new_tickets_only(tickets: TicketsApp) -> None:
    old = open_one(tickets)
    revised = copy.deepcopy(INSTALLATION)
    revised["states"][1]["sla_minutes"] = 10
    tickets.revise_workflow(
        "installation", revised, reason="faster dispatch", expected_version=1, meta=meta()
    )
    new = open_one(tickets)
    assert tickets.get_ticket(UUID(old)).workflow_version == 1
    assert tickets.get_ticket(UUID(new)).workflow_version == 2
    assert tickets.get_ticket(UUID(new)).deadline == MONDAY_10AM + timedelta(minutes=10)
    with pytest.raises(Conflict) as stale:
        tickets.revise_workflow(
            "installation", INSTALLATION, reason="undo", expected_version=1, meta=meta()
        )
    assert stale.value.code == "stale_version"


def test_roles_forms_and_stale_versions(tickets: TicketsApp) -> None:
    tid = open_one(tickets)
    zhao = Scope("staff", staff_id="zhao")
    li = Scope("staff", staff_id="li")
    version = tickets.get_ticket(UUID(tid)).version
    with pytest.raises(Forbidden):  # schedule: assignee or manager; li is neither
        step(tickets, tid, "schedule", li, form={"visit_on": "2026-11-28"})
    with pytest.raises(InvalidInput) as bad:
        step(tickets, tid, "schedule", zhao, form={"visit_on": "28/11"})
    assert bad.value.field == "form.visit_on"
    step(tickets, tid, "schedule", zhao, form={"visit_on": "2026-11-28"}, expected=version)
    # A second dispatcher working from the version before that is refused.
    with pytest.raises(Conflict) as stale:
        step(tickets, tid, "cancel", MANAGER, form={"reason": "duplicate"}, expected=version)
    assert stale.value.code == "stale_version"
    with pytest.raises(Conflict) as wrong:
        step(tickets, tid, "complete", zhao)
    assert wrong.value.code == "transition_not_allowed"
    assert tickets.get_ticket(UUID(tid)).state == "scheduled"


COMPLETE_FORM = {
    "serial_no": "KFR-35GW-001",
    "distance_km": 12.5,
    "materials": "customer",
    "materials_fee": 0,
    "photos": ["media:photo-0001", "media:photo-0002"],
    "signature": "media:signature-01",
}


def test_completion_needs_the_customers_code_and_records_what_settlement_needs(
    tickets: TicketsApp,
) -> None:
    tid = open_one(tickets, urgency="urgent")
    zhao = Scope("staff", staff_id="zhao")
    step(tickets, tid, "schedule", zhao, form={"visit_on": "2026-11-28"})
    step(tickets, tid, "arrive", zhao, form={"arrival_photo": "media:arrive-001"})
    with pytest.raises(InvalidInput) as no_code:
        step(tickets, tid, "complete", zhao, form=COMPLETE_FORM)
    assert no_code.value.field == "confirmation_code"
    with pytest.raises(Conflict):  # none issued yet
        step(tickets, tid, "complete", zhao, form=COMPLETE_FORM, code="123456")
    code, expires, _ = tickets.issue_confirmation_code(UUID(tid), meta(at=MONDAY_10AM))
    wrong = "000000" if code != "000000" else "111111"
    with pytest.raises(InvalidInput):
        step(tickets, tid, "complete", zhao, form=COMPLETE_FORM, code=wrong)
    late = expires + timedelta(seconds=1)
    with pytest.raises(Gone):
        step(tickets, tid, "complete", zhao, form=COMPLETE_FORM, code=code, at=late)
    at_7am = datetime(2026, 11, 24, 23, 5, tzinfo=UTC)  # 07:05 Wednesday in Shanghai
    step(tickets, tid, "complete", zhao, form=COMPLETE_FORM, code=code, at=at_7am)
    events = list(tickets.events.get(UUID(tid)))
    completed = events[-1]
    assert type(completed).__name__ == "Completed"
    assert completed.local_time == "2026-11-25T07:05" and completed.weekday == 3
    assert (completed.distance_km, completed.materials_supplied_by) == ("12.5", "customer")
    assert (completed.urgency, completed.assignee, completed.region) == ("urgent", "zhao", "杭州市")
    assert completed.template["key"] == "ac_installation"  # its standard materials
    # The signature is personal data: sealed in the event, not in clear.
    transitioned = events[-2]
    assert transitioned.form["signature"] != "media:signature-01"
    # The code worked once.
    with pytest.raises(InvalidInput):
        tickets.rate(UUID(tid), 6, None, meta())
    tickets.rate(UUID(tid), 5, "师傅很专业", meta())
    with pytest.raises(Conflict):
        tickets.rate(UUID(tid), 4, None, meta())


def test_an_sla_breach_is_recorded_once_per_entry(tickets: TicketsApp) -> None:
    tid = open_one(tickets)
    ids = [UUID(tid)]
    early = MONDAY_10AM + timedelta(minutes=119)
    assert tickets.breach_overdue(ids, early, meta(at=early)) == []
    late = MONDAY_10AM + timedelta(minutes=121)
    assert tickets.breach_overdue(ids, late, meta(at=late)) == [tid]
    # The scheduler restarted, or a second one runs: nothing more.
    assert tickets.breach_overdue(ids, late, meta(at=late)) == []
    assert tickets.breach_overdue(ids, late + timedelta(hours=5), meta()) == []
    breach = list(tickets.events.get(UUID(tid)))[-1]
    assert type(breach).__name__ == "SlaBreached"
    assert (breach.state, breach.entry, breach.assignee) == ("assigned", 2, "zhao")
    assert breach.escalated_to == ["manager", "assignee"]


def test_a_departed_assignee_hands_over_to_an_eligible_colleague(tickets: TicketsApp) -> None:
    tid = open_one(tickets)
    moved = tickets.hand_over(
        "zhao", [UUID(tid)], roster(Candidate("zhao", 0, 0), Candidate("li", 1, 20)), meta()
    )
    assert moved == {tid: "li"}
    nobody = tickets.hand_over("li", [UUID(tid)], roster(), meta())
    assert nobody == {tid: None}


def test_an_idempotency_key_opens_one_ticket(tickets: TicketsApp) -> None:
    first = open_one(tickets, idempotency_key="order:123:installation")
    again = open_one(tickets, idempotency_key="order:123:installation")
    assert first == again
