"""Automation's service layer: publish, pause and resume rules; start a run for a trigger
once; record each action's outcome once, in the same transaction as the change it made to a
customer; schedule outreach and record what the gateway answered."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.automation.aggregates import AutomationRule, AutomationRun, MetricWatch, Outreach
from domain.automation.rules import Rule, action_kind, parse
from domain.customers.aggregates import Customer, Staff
from domain.ports import OutreachGateway
from domain.shared import DomainError, Meta, Recorded, require_slug, require_text
from domain.store import ScrmApplication

# Which identity a channel reaches a customer by.
RECIPIENT_KINDS = {"wecom": "wecom_external_userid", "official_account": "openid"}


class AutomationApp(ScrmApplication):
    def __init__(self, env: dict[str, str] | None = None, *, share_with: Any = None):
        super().__init__(env, share_with=share_with)
        self._parsed: dict[tuple[str, int], Rule] = {}  # a recorded version never changes

    # --- rules -----------------------------------------------------------------------------

    def publish_rule(
        self,
        key: str,
        definition: Any,
        *,
        effective_from: datetime,
        expected_version: int | None,
        meta: Meta,
    ) -> Recorded:
        return self.publish_version(
            AutomationRule,
            key,
            definition,
            parse=parse,
            effective_from=effective_from,
            expected_version=expected_version,
            meta=meta,
        )

    def rule(self, key: str) -> AutomationRule:
        require_slug(key, "key")
        return self.load(AutomationRule, AutomationRule.create_id(key), f"automation rule {key}")

    def pause(self, key: str, *, reason: str, meta: Meta) -> Recorded:
        return self._toggle(key, reason, meta, pause=True)

    def resume(self, key: str, *, reason: str, meta: Meta) -> Recorded:
        return self._toggle(key, reason, meta, pause=False)

    def _toggle(self, key: str, reason: str, meta: Meta, *, pause: bool) -> Recorded:
        why = require_text(reason, "reason", max_len=500, allow_empty=True)

        def attempt() -> Recorded:
            rule = self.rule(key)
            (rule.pause if pause else rule.resume)(why, meta)
            return Recorded(key, self.save_all(rule), rule.version)

        return self.retrying(attempt)

    def active_rule(self, key: str, at: datetime) -> tuple[int, Rule] | None:
        """The version of a rule that decides a trigger at `at`: None before its first
        version, or while it was paused."""
        found = self.find(AutomationRule, AutomationRule.create_id(key))
        version = found.active_at(at) if found is not None else None
        if version is None:
            return None
        number = int(version["rule_version"])
        if (key, number) not in self._parsed:
            self._parsed[(key, number)] = parse(version["definition"])
        return number, self._parsed[(key, number)]

    # --- runs --------------------------------------------------------------------------------

    def start_run(
        self,
        rule_key: str,
        rule_version: int,
        rule: Rule,
        trigger_key: str,
        customer_id: str | None,
        cause: str,
        meta: Meta,
    ) -> tuple[AutomationRun, bool]:
        """The run of this rule for this trigger, and whether this call recorded it (the
        first time) or found it."""

        def attempt() -> tuple[AutomationRun, bool]:
            run_id = AutomationRun.create_id(rule_key, trigger_key)
            found = self.find(AutomationRun, run_id)
            if found is not None:
                return found, False
            run = AutomationRun(
                rule_key=rule_key,
                rule_version=rule_version,
                trigger_key=trigger_key,
                customer_id=customer_id,
                cause=cause,
                actions=[dict(a) for a in rule.actions],
                meta=meta,
            )
            self.save_all(run)
            return run, True

        return self.retrying(attempt)

    def run(self, run_id: UUID) -> AutomationRun:
        return self.load(AutomationRun, run_id, f"automation run {run_id}")

    def act_on_customer(self, run_id: UUID, index: int, staff_id: str | None, meta: Meta) -> None:
        """Tags or the owner of the run's customer, with the action's outcome, in one
        transaction. `staff_id`: the owner a round-robin chose."""

        def attempt() -> None:
            run = self.run(run_id)
            if index in run.outcomes:
                return
            action = run.actions[index]
            kind = action_kind(action)
            try:
                customer = self._customer(str(run.customer_id))
                if kind == "add_tags":
                    done: Any = customer.tag(list(action[kind]), meta)
                elif kind == "remove_tags":
                    done = customer.untag(list(action[kind]), meta)
                else:
                    staff = staff_id or str(action[kind].get("staff") or "")
                    found = self.find(Staff, Staff.create_id(staff)) if staff else None
                    if found is None or found.departed:
                        run.failed(index, f"no_active_staff:{staff or '-'}", meta)
                        self.save_all(run)
                        return
                    changed = customer.assign_owner(staff, f"automation:{run.rule_key}", meta)
                    done = staff if changed else None
            except DomainError as exc:  # erased, restricted, merged away
                run.failed(index, exc.code, meta)
                self.save_all(run)
                return
            run.took(index, {"customer_id": str(customer.id), "changed": done}, meta)
            self.save_all(run, customer)

        self.retrying(attempt)

    def _customer(self, customer_id: str) -> Customer:
        customer = self.load(Customer, UUID(customer_id), f"customer {customer_id}")
        if customer.merged_into is not None:  # act on the one it was merged into
            customer = self.load(Customer, customer.merged_into, "customer")
        customer.check_processing_allowed()
        return customer

    def record_outcome(
        self,
        run_id: UUID,
        index: int,
        *,
        result: dict[str, Any] | None,
        reason: str | None,
        meta: Meta,
    ) -> None:
        """An action done elsewhere (a ticket opened with an idempotency key): its outcome."""

        def attempt() -> None:
            run = self.run(run_id)
            moved = (
                run.took(index, result or {}, meta)
                if reason is None
                else run.failed(index, reason, meta)
            )
            if moved:
                self.save_all(run)

        self.retrying(attempt)

    def schedule_outreach(self, run_id: UUID, index: int, meta: Meta) -> UUID | None:
        """The message recorded as scheduled, with the action taken, in one transaction;
        the outreach's id (None when the action had an outcome already)."""

        def attempt() -> UUID | None:
            run = self.run(run_id)
            if index in run.outcomes:
                return None
            body = run.actions[index]["send_message"]
            key = Outreach.key_of(run_id, index)
            outreach_id = Outreach.create_id(key)
            outreach = Outreach(
                outreach_key=key,
                run_id=str(run_id),
                rule_key=run.rule_key,
                customer_id=str(run.customer_id),
                channel=body["channel"],
                template=body["template"],
                params=dict(body["params"]),
                idempotency_key=f"automation:{outreach_id}",
                meta=meta,
            )
            run.took(index, {"outreach_id": str(outreach_id)}, meta)
            self.save_all(run, outreach)
            return outreach_id

        return self.retrying(attempt)

    # --- outreach ------------------------------------------------------------------------------

    def dispatch(self, outreach_id: UUID, gateway: OutreachGateway, meta: Meta) -> str | None:
        """Send one outreach if its own state says it is due; answers the status recorded
        (None when it was not due). The gateway is asked with the outreach's idempotency key,
        so a send repeated after a crash is the same message."""
        outreach = self.find(Outreach, outreach_id)
        if outreach is None or not outreach.due:
            return None
        recipient = self._recipient(outreach)
        if recipient is None:
            outreach.failed(f"no_{RECIPIENT_KINDS[outreach.channel]}", meta, final=True)
        else:
            answer = gateway.send(
                outreach.idempotency_key,
                outreach.channel,
                recipient,
                outreach.template,
                dict(outreach.params),
            )
            if answer.status == "sent":
                outreach.sent(answer.reference or "", meta)
            else:
                outreach.failed(answer.reason or "gateway_error", meta)
        self.save_all(outreach)
        return outreach.status

    def _recipient(self, outreach: Outreach) -> str | None:
        try:
            customer = self._customer(outreach.customer_id)
        except DomainError:
            return None
        kind = RECIPIENT_KINDS[outreach.channel]
        return next((i["value"] for i in customer.identities if i["kind"] == kind), None)

    # --- metrics -------------------------------------------------------------------------------

    def observe_metric(self, rule_key: str, over: bool, value: str, meta: Meta) -> int | None:
        """The crossing's number when the rule's metric has just gone past its threshold."""

        def attempt() -> int | None:
            watch = self.find(MetricWatch, MetricWatch.create_id(rule_key))
            if watch is None:
                if not over:
                    return None
                watch = MetricWatch(rule_key=rule_key, meta=meta)
            crossing = watch.observe(over, value, meta)
            self.save_all(watch)
            return crossing

        return self.retrying(attempt)
