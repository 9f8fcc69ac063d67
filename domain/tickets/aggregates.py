"""Work orders (工单) and the configuration that runs them.

`WorkflowDefinition` holds every version of one kind of ticket's workflow. A `Ticket` is
opened under one version and keeps it: a new version affects new tickets only. Each change of
a ticket is a past-tense event with the actor who made it, so its whole path is on record.

Public methods decide (and raise); the private `@event` methods only assign state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.shared import Conflict, Forbidden, Gone, InvalidInput, Meta, ScrmAggregate, derived_id
from domain.tickets.workflow import Transition, Workflow, parse_workflow

URGENCIES = ("normal", "urgent", "emergency")


class WorkflowDefinition(ScrmAggregate):
    """Every version of one workflow (key: `installation`, `repair`, ...)."""

    @staticmethod
    def create_id(key: str) -> UUID:
        return derived_id("workflow", key)

    @event("Defined")
    def __init__(self, key: str, definition: dict[str, Any], meta: Meta):
        self.key = key
        self.versions: list[dict[str, Any]] = [definition]
        self.retired = False

    @classmethod
    def define(cls, definition: dict[str, Any], meta: Meta) -> WorkflowDefinition:
        flow = parse_workflow(definition)
        return cls(key=flow.key, definition=definition, meta=meta)

    @property
    def current_version(self) -> int:
        return len(self.versions)

    def workflow(self, version: int | None = None) -> Workflow:
        chosen = self.current_version if version is None else version
        if not 1 <= chosen <= self.current_version:
            raise InvalidInput(
                f"workflow {self.key} has no version {chosen}", field="workflow_version"
            )
        return parse_workflow(self.versions[chosen - 1])

    def revise(
        self, definition: dict[str, Any], reason: str, expected_version: int | None, meta: Meta
    ) -> int:
        if expected_version is not None and expected_version != self.current_version:
            raise Conflict(
                f"workflow {self.key} is at version {self.current_version}, not {expected_version}",
                code="stale_version",
            )
        flow = parse_workflow(definition)
        if flow.key != self.key:
            raise InvalidInput(f"the key must stay {self.key!r}", field="key")
        if definition == self.versions[-1]:
            raise Conflict("this definition is the current version already", code="unchanged")
        self._revised(
            definition=definition,
            workflow_version=self.current_version + 1,
            reason=reason,
            meta=meta,
        )
        return self.current_version

    @event("Revised")
    def _revised(
        self, definition: dict[str, Any], workflow_version: int, reason: str, meta: Meta
    ) -> None:
        self.versions = [*self.versions, definition]


class Ticket(ScrmAggregate):
    """One work order: its state in its workflow version, who has it, and its SLA clock."""

    @event("Opened")
    def __init__(
        self,
        id: UUID,
        workflow_key: str,
        workflow_version: int,
        state: str,
        service_type: str,
        customer_id: UUID | None,
        order_id: UUID | None,
        conversation_msgid: str | None,
        region: str,
        product: str | None,
        summary: str,  # sealed under the customer's key when there is a customer
        urgency: str,
        template: dict[str, Any] | None,
        deadline: datetime | None,
        meta: Meta,
    ):
        self.workflow_key = workflow_key
        self.workflow_version = workflow_version
        self.state = state
        self.service_type = service_type
        self.customer_id = customer_id
        self.order_id = order_id
        self.region = region
        self.product = product
        self.urgency = urgency
        self.template = template  # the standard service matched: steps, materials
        self.assignee: str | None = None
        self.entered_at = meta.occurred_at
        self.entry = 1  # how many times a state was entered: names one SLA clock
        self.deadline = deadline
        self.breached: tuple[int, ...] = ()  # entries whose SLA breach is on record
        self.confirmation: dict[str, Any] | None = None
        self.rating: int | None = None
        self.final = False

    # --- assignment ----------------------------------------------------------------------

    def assign(self, flow: Workflow, staff_id: str, how: str, reason: str, meta: Meta) -> bool:
        """`how`: the policy that chose (round_robin, least_open), `manual`, or `handover`.
        A first assignment moves a ticket still in the initial state on, if the workflow says
        where (e.g. new -> assigned), which starts that state's SLA clock."""
        if self.final:
            raise Conflict(f"the ticket is {self.state}; reopen it first", code="ticket_final")
        if staff_id == self.assignee:
            return False
        self._assigned(staff_id=staff_id, previous=self.assignee, how=how, reason=reason, meta=meta)
        onward = flow.assignment.state
        if onward is not None and self.state == flow.initial:
            self._transitioned(
                transition="assign",
                from_state=self.state,
                to_state=onward,
                form={},
                deadline=flow.deadline(onward, meta.occurred_at),
                final=False,
                entry=self.entry + 1,
                meta=meta,
            )
        return True

    @event("Assigned")
    def _assigned(
        self, staff_id: str, previous: str | None, how: str, reason: str, meta: Meta
    ) -> None:
        self.assignee = staff_id

    def unassign(self, reason: str, meta: Meta) -> None:
        if self.assignee is not None:
            self._unassigned(previous=self.assignee, reason=reason, meta=meta)

    @event("Unassigned")
    def _unassigned(self, previous: str, reason: str, meta: Meta) -> None:
        self.assignee = None

    # --- transitions ---------------------------------------------------------------------

    def allowed_step(
        self, flow: Workflow, name: str, *, role: str, staff_id: str | None
    ) -> Transition:
        """The transition `name`, if this caller may make it from the current state."""
        step = flow.transition(name)
        if step is None:
            raise InvalidInput(
                f"workflow {flow.key} v{self.workflow_version} has no transition {name!r}",
                field="transition",
            )
        if self.state not in step.sources:
            raise Conflict(
                f"{name!r} cannot be made from state {self.state!r}"
                f" (only from {', '.join(step.sources)})",
                code="transition_not_allowed",
            )
        is_assignee = staff_id is not None and staff_id == self.assignee
        if not (role in step.roles or ("assignee" in step.roles and is_assignee)):
            raise Forbidden(
                f"{name!r} may be made by {', '.join(step.roles)}; you are {role}"
                + ("" if is_assignee or "assignee" not in step.roles else ", not the assignee")
            )
        return step

    def transition(
        self,
        flow: Workflow,
        name: str,
        *,
        role: str,
        staff_id: str | None,
        form: dict[str, Any],
        confirmed: bool,
        meta: Meta,
    ) -> None:
        """Move along `name` of this ticket's workflow version. The caller has validated the
        form against the transition's fields and checked any confirmation code."""
        step = self.allowed_step(flow, name, role=role, staff_id=staff_id)
        if step.confirmation and not confirmed:
            raise InvalidInput(
                "the customer's confirmation code is required for this step",
                field="confirmation_code",
            )
        target = flow.state(step.target)
        self._transitioned(
            transition=name,
            from_state=self.state,
            to_state=step.target,
            form=form,
            deadline=flow.deadline(step.target, meta.occurred_at),
            final=target.final,
            entry=self.entry + 1,
            meta=meta,
        )

    @event("Transitioned")
    def _transitioned(
        self,
        transition: str,
        from_state: str,
        to_state: str,
        form: dict[str, Any],
        deadline: datetime | None,
        final: bool,
        entry: int,  # the how-manieth state entered: names this SLA clock
        meta: Meta,
    ) -> None:
        self.state = to_state
        self.entered_at = meta.occurred_at
        self.entry = entry
        self.deadline = deadline
        self.final = final
        if final:
            self.confirmation = None  # a code works once, for one completion

    def record_completion(self, facts: dict[str, Any], meta: Meta) -> None:
        """What settlement pays by (issue 6), recorded with the step that completed the job."""
        self._completed(**facts, meta=meta)

    @event("Completed")
    def _completed(
        self,
        service_type: str,
        region: str,
        distance_km: str | int | None,
        local_time: str,
        weekday: int,
        urgency: str,
        rating: int | None,
        materials_supplied_by: str | None,
        materials_fee: int | None,
        assignee: str | None,
        workflow_version: int,
        template: dict[str, Any] | None,
        meta: Meta,
    ) -> None:
        pass

    # --- confirmation codes, comments, ratings --------------------------------------------

    def issue_confirmation(self, code_hash: str, expires_at: datetime, meta: Meta) -> None:
        """Only the code's keyed hash is kept; the code goes to the customer."""
        if self.final:
            raise Conflict(f"the ticket is {self.state}", code="ticket_final")
        self._confirmation_issued(code_hash=code_hash, expires_at=expires_at, meta=meta)

    @event("ConfirmationCodeIssued")
    def _confirmation_issued(self, code_hash: str, expires_at: datetime, meta: Meta) -> None:
        self.confirmation = {"hash": code_hash, "expires_at": expires_at}

    def check_confirmation(self, code_hash: str, now: datetime) -> None:
        if self.confirmation is None:
            raise Conflict(
                "no confirmation code was issued for this ticket", code="no_confirmation_code"
            )
        if now > self.confirmation["expires_at"]:
            raise Gone("the confirmation code has expired; issue a new one", code="code_expired")
        if code_hash != self.confirmation["hash"]:
            raise InvalidInput("the confirmation code is wrong", field="confirmation_code")

    def comment(self, text: str, meta: Meta) -> None:
        self._commented(text=text, meta=meta)

    @event("Commented")
    def _commented(self, text: str, meta: Meta) -> None:  # text sealed like the summary
        pass

    def rate(self, score: int, comment: str | None, meta: Meta) -> None:
        if not self.final or self.state == "cancelled":
            raise Conflict("only a finished job can be rated", code="not_finished")
        if self.rating is not None:
            raise Conflict(f"the ticket was rated {self.rating} already", code="already_rated")
        self._rated(score=score, comment=comment, meta=meta)

    @event("Rated")
    def _rated(self, score: int, comment: str | None, meta: Meta) -> None:
        self.rating = score

    # --- SLA ------------------------------------------------------------------------------

    def breach_sla(self, now: datetime, escalate_to: tuple[str, ...], meta: Meta) -> bool:
        """Records the breach of the current state's SLA once per entry into the state, so a
        scheduler that runs again (or twice at once) never records it twice."""
        if self.deadline is None or now <= self.deadline or self.entry in self.breached:
            return False
        self._sla_breached(
            state=self.state,
            entry=self.entry,
            entered_at=self.entered_at,
            deadline=self.deadline,
            assignee=self.assignee,
            escalated_to=list(escalate_to),
            meta=meta,
        )
        return True

    @event("SlaBreached")
    def _sla_breached(
        self,
        state: str,
        entry: int,
        entered_at: datetime,
        deadline: datetime,
        assignee: str | None,
        escalated_to: list[str],
        meta: Meta,
    ) -> None:
        self.breached = (*self.breached, entry)
