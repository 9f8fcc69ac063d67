"""The tickets service layer: thin commands over the aggregates of domain/tickets.

What commands need from read models (the roster of eligible workers, the templates in force,
the open tickets of someone who left) is handed in by the caller, so the domain reads no
database of its own and tests can give exactly the world they mean.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import orjson

from domain.ports import PersonalDataVault
from domain.scope import Scope
from domain.shared import (
    ConcurrentUpdate,
    Conflict,
    InvalidInput,
    Meta,
    Recorded,
    derived_id,
    require_slug,
    require_text,
)
from domain.store import ScrmApplication
from domain.tickets import routing
from domain.tickets.aggregates import URGENCIES, Ticket, WorkflowDefinition
from domain.tickets.assignment import Candidate, choose
from domain.tickets.forms import validate_form
from domain.tickets.templates import (
    ServiceTemplate,
    TemplateMatch,
    match_template,
    parse_template,
)
from domain.tickets.workers import Worker
from domain.tickets.workflow import Workflow, parse_workflow

# (region, service type, skill or None) -> the workers who could take the ticket now
Roster = Callable[[str, str, str | None], list[Candidate]]
CONFIRMATION_TTL = timedelta(hours=72)
DEFAULT_TIMEZONE = "Asia/Shanghai"  # local time of a job when the workflow names none


@dataclass(frozen=True)
class OpenTicket:
    workflow: str
    service_type: str
    region: str
    description: str
    customer_id: UUID | None = None
    order_id: UUID | None = None
    conversation_msgid: str | None = None
    product: str | None = None
    urgency: str = "normal"
    skill: str | None = None
    assignee: str | None = None  # chosen by hand; otherwise by the workflow's policy
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Opened:
    id: str
    position: int | None
    version: int
    assignee: str | None
    template: dict[str, Any] | None
    created: bool  # False: the idempotency key named a ticket opened before


@dataclass(frozen=True)
class _Checked:
    """An OpenTicket whose fields and workflow have been checked."""

    request: OpenTicket
    flow: Workflow
    version: int
    service_type: str
    region: str
    description: str
    product: str | None


@lru_cache(maxsize=256)
def _parsed(definition: bytes) -> Workflow:
    return parse_workflow(orjson.loads(definition))


_VERSIONS_KEPT = 1024  # workflow versions cached per application (they are few)


def _flow(aggregate: WorkflowDefinition, version: int | None = None) -> Workflow:
    chosen = aggregate.current_version if version is None else version
    if not 1 <= chosen <= aggregate.current_version:
        aggregate.workflow(chosen)  # raises: no such version
    return _parsed(orjson.dumps(aggregate.versions[chosen - 1]))


class TicketsApp(ScrmApplication):
    def __init__(
        self,
        vault: PersonalDataVault,
        env: dict[str, str] | None = None,
        *,
        share_with: ScrmApplication | None = None,
    ):
        super().__init__(env, share_with=share_with)
        self.vault = vault
        # (key, version) -> that version's workflow. A recorded version never changes (a
        # revision is a new version), so this is never stale; without it every step of every
        # ticket loaded the whole definition aggregate (~2 ms of CPU, most of it
        # eventsourcing deep-copying the definitions as it rebuilt the aggregate).
        self._versions: dict[tuple[str, int], Workflow] = {}

    # --- configuration: workflows, templates, routing rules ------------------------------

    def define_workflow(self, definition: dict[str, Any], meta: Meta) -> Recorded:
        flow = parse_workflow(definition)
        if self.find(WorkflowDefinition, WorkflowDefinition.create_id(flow.key)) is not None:
            raise Conflict(
                f"workflow {flow.key} exists; publish a revision instead", code="already_exists"
            )
        aggregate = WorkflowDefinition.define(definition, meta)
        try:
            position = self.save_all(aggregate)
        except ConcurrentUpdate:
            raise Conflict(f"workflow {flow.key} exists", code="already_exists") from None
        return Recorded(flow.key, position, 1)

    def revise_workflow(
        self,
        key: str,
        definition: dict[str, Any],
        *,
        reason: str,
        expected_version: int | None,
        meta: Meta,
    ) -> Recorded:
        reason = require_text(reason, "reason", max_len=500)

        def attempt() -> Recorded:
            aggregate = self.workflow_definition(key)
            version = aggregate.revise(definition, reason, expected_version, meta)
            return Recorded(key, self.save_all(aggregate), version)

        return self.retrying(attempt)

    def workflow_definition(self, key: str) -> WorkflowDefinition:
        return self.load(WorkflowDefinition, WorkflowDefinition.create_id(key), f"workflow {key}")

    def workflow(self, key: str, version: int | None = None) -> Workflow:
        """A version of a workflow (the current one when `version` is None: that one is
        read from the store, since another process may have published a newer one)."""
        if version is not None:
            found = self._versions.get((key, version))
            if found is not None:
                return found
        aggregate = self.workflow_definition(key)
        flow = _flow(aggregate, version)
        if len(self._versions) >= _VERSIONS_KEPT:
            self._versions.clear()
        self._versions[(key, version or aggregate.current_version)] = flow
        return flow

    def publish_template(
        self, raw: dict[str, Any], *, expected_version: int | None, meta: Meta
    ) -> Recorded:
        template = parse_template(raw)

        def attempt() -> Recorded:
            found = self.find(ServiceTemplate, ServiceTemplate.create_id(template["key"]))
            if found is None:
                if expected_version not in (None, 0):
                    raise Conflict(
                        f"template {template['key']} does not exist yet", code="stale_version"
                    )
                found = ServiceTemplate(key=template["key"], template=template, meta=meta)
            else:
                found.revise(template, expected_version, meta)
            return Recorded(template["key"], self.save_all(found), found.current_version)

        return self.retrying(attempt)

    def retire_template(self, key: str, reason: str, meta: Meta) -> Recorded:
        found = self.load(ServiceTemplate, ServiceTemplate.create_id(key), f"template {key}")
        found.retire(require_text(reason, "reason", max_len=500), meta)
        return Recorded(key, self.save_all(found), found.current_version)

    def publish_routing_rules(
        self, raw: dict[str, Any], *, expected_version: int | None, meta: Meta
    ) -> Recorded:
        rules = routing.parse_rules(raw)

        def attempt() -> Recorded:
            found = self.find(routing.RoutingRules, routing.RoutingRules.create_id())
            if found is None:
                if expected_version not in (None, 0):
                    raise Conflict("no routing rules were published yet", code="stale_version")
                found = routing.RoutingRules(rules=rules.as_dict(), meta=meta)
            else:
                found.revise(rules, expected_version, meta)
            return Recorded("routing-rules", self.save_all(found), found.current_version)

        return self.retrying(attempt)

    def routing_rules(self) -> tuple[int, routing.Rules] | None:
        found = self.find(routing.RoutingRules, routing.RoutingRules.create_id())
        if found is None:
            return None
        return found.current_version, routing.parse_rules(found.versions[-1])

    # --- workers --------------------------------------------------------------------------

    def set_worker_profile(
        self,
        staff_id: str,
        *,
        regions: object,
        service_types: object,
        skills: object,
        capacity: object,
        meta: Meta,
    ) -> Recorded:
        staff_id = require_slug(staff_id, "staff_id")

        def attempt() -> Recorded:
            found = self.find(Worker, Worker.create_id(staff_id))
            if found is None:
                found = Worker.profile(staff_id, regions, service_types, skills, capacity, meta)
            else:
                found.change(regions, service_types, skills, capacity, meta)
            return Recorded(staff_id, self.save_all(found), found.version)

        return self.retrying(attempt)

    # --- tickets --------------------------------------------------------------------------

    def subject(self, ticket: Ticket) -> UUID:
        """Whose key seals the ticket's personal data: the customer's, or the ticket's own."""
        return ticket.customer_id or derived_id("subject", f"ticket:{ticket.id}")

    def open_ticket(
        self,
        request: OpenTicket,
        *,
        roster: Roster,
        templates: Sequence[tuple[int, dict[str, Any]]],
        meta: Meta,
    ) -> Opened:
        checked = self._checked(request)
        ticket_id = (
            derived_id("ticket", require_text(request.idempotency_key, "idempotency_key"))
            if request.idempotency_key
            else uuid4()
        )
        if request.idempotency_key:
            existing = self.find(Ticket, ticket_id)
            if existing is not None:
                return Opened(
                    str(ticket_id), None, existing.version, existing.assignee, None, False
                )
        ticket, match = self._build(checked, ticket_id, roster, templates, meta)
        try:
            position = self.save_all(ticket)
        except ConcurrentUpdate:  # the same idempotency key, at the same moment
            existing = self.load(Ticket, ticket_id, "ticket")
            return Opened(str(ticket_id), None, existing.version, existing.assignee, None, False)
        return Opened(
            str(ticket_id),
            position,
            ticket.version,
            ticket.assignee,
            match.as_dict() if match else None,
            True,
        )

    def prepare_ticket(
        self,
        request: OpenTicket,
        *,
        roster: Roster,
        templates: Sequence[tuple[int, dict[str, Any]]],
        meta: Meta,
        definition: WorkflowDefinition | None = None,
    ) -> Ticket:
        """A new ticket decided exactly as `open_ticket` decides it (checked, matched to a
        template, assigned), not saved: a bulk loader saves many in one transaction
        (`save_aggregates`). No idempotency key: the caller makes new tickets only.
        `definition`: the workflow's definition, when the caller holds it already."""
        if request.idempotency_key:
            raise InvalidInput(
                "a prepared ticket takes no idempotency key", field="idempotency_key"
            )
        checked = self._checked(request, definition)
        return self._build(checked, uuid4(), roster, templates, meta)[0]

    def _checked(
        self, request: OpenTicket, definition: WorkflowDefinition | None = None
    ) -> _Checked:
        if request.urgency not in URGENCIES:
            raise InvalidInput(f"urgency must be one of {', '.join(URGENCIES)}", field="urgency")
        service_type = require_slug(request.service_type, "service_type")
        region = require_text(request.region, "region", max_len=80)
        description = require_text(request.description, "description", max_len=5000)
        product = require_text(request.product, "product", max_len=200) if request.product else None
        key = require_slug(request.workflow, "workflow")
        if definition is None or definition.key != key:
            definition = self.workflow_definition(key)
        version = definition.current_version
        flow = _flow(definition, version)
        if service_type not in flow.service_types:
            raise InvalidInput(
                f"workflow {flow.key} serves {', '.join(flow.service_types)}, not {service_type}",
                field="service_type",
            )
        return _Checked(request, flow, version, service_type, region, description, product)

    def _build(
        self,
        checked: _Checked,
        ticket_id: UUID,
        roster: Roster,
        templates: Sequence[tuple[int, dict[str, Any]]],
        meta: Meta,
    ) -> tuple[Ticket, TemplateMatch | None]:
        request, flow = checked.request, checked.flow
        match = match_template(
            templates,
            service_type=checked.service_type,
            product=checked.product,
            description=checked.description,
        )
        subject = request.customer_id or derived_id("subject", f"ticket:{ticket_id}")
        ticket = Ticket(
            id=ticket_id,
            workflow_key=flow.key,
            workflow_version=checked.version,
            state=flow.initial,
            service_type=checked.service_type,
            customer_id=request.customer_id,
            order_id=request.order_id,
            conversation_msgid=request.conversation_msgid,
            region=checked.region,
            product=checked.product,
            summary=self.vault.seal(subject, checked.description),
            urgency=request.urgency,
            template=match.as_dict() if match else None,
            deadline=flow.deadline(flow.initial, meta.occurred_at),
            meta=meta,
        )
        if request.assignee:
            chosen = require_slug(request.assignee, "assignee")
            ticket.assign(flow, chosen, "manual", "named when opened", meta)
        else:
            self._auto_assign(ticket, flow, roster, request.skill, meta)
        return ticket, match

    def _auto_assign(
        self,
        ticket: Ticket,
        flow: Workflow,
        roster: Roster,
        skill: str | None,
        meta: Meta,
        departed: str | None = None,
    ) -> bool:
        """By the workflow's policy; `departed`: handing over from someone who left."""
        candidates = [
            c for c in roster(ticket.region, ticket.service_type, skill) if c.staff_id != departed
        ]
        chosen = choose(flow.assignment.policy, candidates)
        if chosen is None:
            return False  # stays unassigned, on the dispatchers' board
        if departed is None:
            return ticket.assign(flow, chosen.staff_id, chosen.how, chosen.reason, meta)
        why = f"{departed} departed; {chosen.reason}"
        return ticket.assign(flow, chosen.staff_id, "handover", why, meta)

    def get_ticket(self, ticket_id: UUID) -> Ticket:
        return self.load(Ticket, ticket_id, "ticket")

    def assign(
        self,
        ticket_id: UUID,
        staff_id: str,
        *,
        reason: str,
        expected_version: int | None,
        meta: Meta,
    ) -> Recorded:
        ticket = self.get_ticket(ticket_id)
        ticket.check_version(expected_version)
        flow = self.workflow(ticket.workflow_key, ticket.workflow_version)
        why = require_text(reason, "reason", allow_empty=True)
        ticket.assign(flow, require_slug(staff_id, "staff_id"), "manual", why, meta)
        return Recorded(str(ticket_id), self.save_all(ticket), ticket.version)

    def transition(
        self,
        ticket_id: UUID,
        name: str,
        *,
        form: Any,
        confirmation_code: str | None,
        expected_version: int | None,
        scope: Scope,
        meta: Meta,
    ) -> Recorded:
        """One step along the ticket's own workflow version. `expected_version` is the ticket
        version the request was made from: a stale one is a 409 (two dispatchers dragging the
        same card), and nothing is recorded."""
        ticket = self.get_ticket(ticket_id)
        ticket.check_version(expected_version)
        self.step(
            ticket,
            name,
            form=form,
            confirmation_code=confirmation_code,
            scope=scope,
            meta=meta,
        )
        return Recorded(str(ticket_id), self.save_all(ticket), ticket.version)

    def step(
        self,
        ticket: Ticket,
        name: str,
        *,
        form: Any,
        confirmation_code: str | None,
        scope: Scope,
        meta: Meta,
    ) -> None:
        """`transition`'s decision on a ticket in hand (checked role, form, code; sealed
        personal values; the completion facts), not saved: the caller saves it."""
        flow = self.workflow(ticket.workflow_key, ticket.workflow_version)
        step = ticket.allowed_step(flow, name, role=scope.role, staff_id=scope.staff_id)
        values = validate_form(step.form, form)
        confirmed = False
        if step.confirmation:
            if not confirmation_code:
                raise InvalidInput(
                    "the customer's confirmation code is required for this step",
                    field="confirmation_code",
                )
            ticket.check_confirmation(
                self._code_hash(ticket.id, confirmation_code), meta.occurred_at
            )
            confirmed = True
        subject = self.subject(ticket)
        personal = {f.name for f in step.form if f.personal}
        stored = {
            k: (self.vault.seal(subject, str(v)) if k in personal else v) for k, v in values.items()
        }
        ticket.transition(
            flow,
            name,
            role=scope.role,
            staff_id=scope.staff_id,
            form=stored,
            confirmed=confirmed,
            meta=meta,
        )
        if step.completes:
            ticket.record_completion(self._completion_facts(ticket, flow, values, meta), meta)

    @staticmethod
    def _completion_facts(
        ticket: Ticket, flow: Workflow, values: dict[str, Any], meta: Meta
    ) -> dict[str, Any]:
        """What settlement pays by. Form fields with these names carry the facts:
        distance_km, materials (who supplied them), materials_fee (fen)."""
        zone = ZoneInfo(flow.business_hours.timezone if flow.business_hours else DEFAULT_TIMEZONE)
        local = meta.occurred_at.astimezone(zone)
        return {
            "service_type": ticket.service_type,
            "region": ticket.region,
            "distance_km": values.get("distance_km"),
            "local_time": local.strftime("%Y-%m-%dT%H:%M"),
            "weekday": local.isoweekday(),
            "urgency": ticket.urgency,
            "rating": ticket.rating,
            "materials_supplied_by": values.get("materials"),
            "materials_fee": values.get("materials_fee"),
            "assignee": ticket.assignee,
            "workflow_version": ticket.workflow_version,
            # Which standard service (and so which standard materials) the job was.
            "template": ticket.template,
        }

    def _code_hash(self, ticket_id: UUID, code: str) -> str:
        return self.vault.blind_index("ticket-confirmation", f"{ticket_id}:{code.strip()}")

    def issue_confirmation_code(
        self, ticket_id: UUID, meta: Meta
    ) -> tuple[str, datetime, Recorded]:
        """A fresh six-digit code for the customer to give the installer at completion. Only
        its keyed hash is recorded; a new code replaces the last."""
        ticket = self.get_ticket(ticket_id)
        code, expires = self.issue_code(ticket, meta)
        return code, expires, Recorded(str(ticket_id), self.save_all(ticket), ticket.version)

    def issue_code(self, ticket: Ticket, meta: Meta) -> tuple[str, datetime]:
        """`issue_confirmation_code` on a ticket in hand, not saved."""
        code = f"{secrets.randbelow(1_000_000):06d}"
        expires = meta.occurred_at + CONFIRMATION_TTL
        ticket.issue_confirmation(self._code_hash(ticket.id, code), expires, meta)
        return code, expires

    def comment(self, ticket_id: UUID, text: str, meta: Meta) -> Recorded:
        ticket = self.get_ticket(ticket_id)
        body = require_text(text, "text", max_len=5000)
        ticket.comment(self.vault.seal(self.subject(ticket), body), meta)
        return Recorded(str(ticket_id), self.save_all(ticket), ticket.version)

    def rate(self, ticket_id: UUID, score: int, comment: str | None, meta: Meta) -> Recorded:
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise InvalidInput("score must be a whole number from 1 to 5", field="score")
        ticket = self.get_ticket(ticket_id)
        sealed = None
        if comment and comment.strip():
            sealed = self.vault.seal(
                self.subject(ticket), require_text(comment, "comment", max_len=2000)
            )
        ticket.rate(score, sealed, meta)
        return Recorded(str(ticket_id), self.save_all(ticket), ticket.version)

    # --- scheduled processes ------------------------------------------------------------

    def breach_overdue(self, ticket_ids: Sequence[UUID], now: datetime, meta: Meta) -> list[str]:
        """Records `SlaBreached` for each ticket whose current state's deadline has passed,
        once per entry into that state. Run it again, or in two processes at once: the ticket's
        own record of breaches and the store's version check stop a second record."""
        breached = []
        for ticket_id in ticket_ids:

            def attempt(tid: UUID = ticket_id) -> bool:
                ticket = self.get_ticket(tid)
                flow = self.workflow(ticket.workflow_key, ticket.workflow_version)
                escalate = flow.state(ticket.state).escalate_to
                if not ticket.breach_sla(now, escalate, meta):
                    return False
                self.save_all(ticket)
                return True

            if self.retrying(attempt):
                breached.append(str(ticket_id))
        return breached

    def hand_over(
        self, staff_id: str, ticket_ids: Sequence[UUID], roster: Roster, meta: Meta
    ) -> dict[str, str | None]:
        """A departed assignee's open tickets go to eligible colleagues by each workflow's
        policy; a ticket nobody can take is left unassigned, on the board (value None)."""
        out: dict[str, str | None] = {}
        for ticket_id in ticket_ids:

            def attempt(tid: UUID = ticket_id) -> str | None:
                ticket = self.get_ticket(tid)
                if ticket.assignee != staff_id or ticket.final:
                    return ticket.assignee
                flow = self.workflow(ticket.workflow_key, ticket.workflow_version)
                if not self._auto_assign(ticket, flow, roster, None, meta, departed=staff_id):
                    ticket.unassign(f"{staff_id} departed; nobody eligible is free", meta)
                self.save_all(ticket)
                return ticket.assignee

            out[str(ticket_id)] = self.retrying(attempt)
        return out

    def route_message(
        self,
        message_id: str,
        *,
        customer_id: UUID | None,
        text: str,
        region: str | None,
        product: str | None,
        open_ticket_for: Callable[[routing.Decision], tuple[UUID, str]],
        meta: Meta,
    ) -> tuple[str, routing.Decision | None, int | None]:
        """Routes one incoming message once: ("routed", decision, rules version), or
        ("already_routed" | "no_rules", None, None)."""
        published = self.routing_rules()
        if published is None:
            return "no_rules", None, None
        if self.find(routing.RoutedMessage, routing.RoutedMessage.create_id(message_id)):
            return "already_routed", None, None
        version, rules = published
        decision = routing.route(rules, text=text, region=region, product=product)
        ticket_id, action = (
            open_ticket_for(decision) if decision.action == "open_ticket" else (None, None)
        )
        routed = routing.RoutedMessage(
            id=routing.RoutedMessage.create_id(message_id),
            message_id=message_id,
            customer_id=customer_id,
            decision=decision.as_dict(),
            rules_version=version,
            ticket_id=ticket_id,
            ticket_action=action,
            meta=meta,
        )
        try:
            self.save_all(routed)
        except ConcurrentUpdate:  # routed at the same moment elsewhere (its ticket is the same)
            return "already_routed", None, None
        return "routed", decision, version
