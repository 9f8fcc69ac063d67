"""Automation (自动化 SOP): rules as versioned configuration, and what each firing did.

- `AutomationRule`: the versions of one rule (`Versions`), paused and resumed at business
  times; a trigger that comes while it is paused never fires.
- `AutomationRun`: one firing of one rule for one trigger. Its id is derived from the rule and
  the trigger key (the causing event, or the customer and the period), so a trigger fires a
  rule once however often the process sees it; each action has one outcome.
- `Outreach`: a message the run scheduled, sent through the outbound gateway, retried on
  failure with the same idempotency key.
- `MetricWatch`: whether a rule's metric is past its threshold, so it fires on crossing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.shared import Conflict, Meta, ScrmAggregate, Versions, derived_id

MAX_ATTEMPTS = 5  # sends of one outreach before it is given up


class AutomationRule(Versions, ScrmAggregate):
    VERSION, WHAT, NOT_IN_FORCE = "rule_version", "automation rule", "rule_not_in_force"

    @staticmethod
    def create_id(key: str) -> UUID:
        return derived_id("automation-rule", key)

    @event("Published")
    def __init__(self, key: str, definition: dict[str, Any], effective_from: Any, meta: Meta):
        self.key = key
        self.versions = []
        self.pauses: list[tuple[datetime, datetime | None]] = []
        self._add(definition, effective_from, meta)

    def revise(self, definition: dict[str, Any], effective_from: Any, meta: Meta) -> int:
        self._revised(
            definition=definition,
            effective_from=effective_from,
            rule_version=len(self.versions) + 1,
            meta=meta,
        )
        return len(self.versions)

    @event("Revised")
    def _revised(
        self, definition: dict[str, Any], effective_from: Any, rule_version: int, meta: Meta
    ) -> None:
        self._add(definition, effective_from, meta)

    def _add(self, definition: dict[str, Any], effective_from: Any, meta: Meta) -> None:
        self._add_version(
            effective_from, definition=definition, recorded_at=meta.occurred_at, by=meta.actor
        )

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1][1] is None

    def pause(self, reason: str, meta: Meta) -> None:
        if self.paused:
            raise Conflict(f"rule {self.key} is paused already", code="rule_paused")
        self._paused(key=self.key, reason=reason, meta=meta)

    @event("Paused")
    def _paused(self, key: str, reason: str, meta: Meta) -> None:
        self.pauses = [*self.pauses, (meta.occurred_at, None)]

    def resume(self, reason: str, meta: Meta) -> None:
        if not self.paused:
            raise Conflict(f"rule {self.key} is not paused", code="rule_not_paused")
        self._resumed(key=self.key, reason=reason, meta=meta)

    @event("Resumed")
    def _resumed(self, key: str, reason: str, meta: Meta) -> None:
        since, _ = self.pauses[-1]
        self.pauses = [*self.pauses[:-1], (since, meta.occurred_at)]

    def active_at(self, at: datetime) -> dict[str, Any] | None:
        """The version in force at `at`, unless the rule was paused then."""
        for since, until in self.pauses:
            if since <= at and (until is None or at < until):
                return None
        return self.in_force(at)


class AutomationRun(ScrmAggregate):
    @staticmethod
    def create_id(rule_key: str, trigger_key: str) -> UUID:
        return derived_id("automation-run", f"{rule_key}|{trigger_key}")

    @event("Triggered")
    def __init__(
        self,
        rule_key: str,
        rule_version: int,
        trigger_key: str,
        customer_id: str | None,
        cause: str,
        actions: list[dict[str, Any]],
        meta: Meta,
    ):
        self.rule_key = rule_key
        self.rule_version = rule_version
        self.trigger_key = trigger_key
        self.customer_id = customer_id
        self.actions = actions
        self.outcomes: dict[int, str] = {}

    def pending(self) -> list[int]:
        return [i for i in range(len(self.actions)) if i not in self.outcomes]

    def took(self, index: int, result: dict[str, Any], meta: Meta) -> bool:
        """Record what an action did; False when it has an outcome already."""
        if index in self.outcomes:
            return False
        self._action_taken(
            rule_key=self.rule_key,
            customer_id=self.customer_id,
            index=index,
            action=next(iter(self.actions[index])),
            result=result,
            remaining=len(self.pending()) - 1,
            meta=meta,
        )
        return True

    @event("ActionTaken")
    def _action_taken(
        self,
        rule_key: str,
        customer_id: str | None,
        index: int,
        action: str,
        result: dict[str, Any],
        remaining: int,
        meta: Meta,
    ) -> None:
        self.outcomes = {**self.outcomes, index: "taken"}

    def failed(self, index: int, reason: str, meta: Meta) -> bool:
        if index in self.outcomes:
            return False
        self._action_failed(
            rule_key=self.rule_key,
            customer_id=self.customer_id,
            index=index,
            action=next(iter(self.actions[index])),
            reason=reason,
            remaining=len(self.pending()) - 1,
            meta=meta,
        )
        return True

    @event("ActionFailed")
    def _action_failed(
        self,
        rule_key: str,
        customer_id: str | None,
        index: int,
        action: str,
        reason: str,
        remaining: int,
        meta: Meta,
    ) -> None:
        self.outcomes = {**self.outcomes, index: "failed"}


class Outreach(ScrmAggregate):
    """A message to a customer (WeCom message, Official Account template message). Sending is
    decided by this aggregate's state alone: a rebuild of the read models never re-sends."""

    @staticmethod
    def create_id(outreach_key: str) -> UUID:
        return derived_id("outreach", outreach_key)

    @staticmethod
    def key_of(run_id: UUID, index: int) -> str:
        return f"{run_id}:{index}"

    @event("Scheduled")
    def __init__(
        self,
        outreach_key: str,
        run_id: str,
        rule_key: str,
        customer_id: str,
        channel: str,
        template: str,
        params: dict[str, Any],
        idempotency_key: str,
        meta: Meta,
    ):
        self.run_id = run_id
        self.customer_id = customer_id
        self.channel = channel
        self.template = template
        self.params = params
        self.idempotency_key = idempotency_key
        self.status = "scheduled"
        self.attempts = 0

    @property
    def due(self) -> bool:
        return self.status in ("scheduled", "retrying")

    def sent(self, reference: str, meta: Meta) -> None:
        self._sent(
            customer_id=self.customer_id, reference=reference, attempt=self.attempts + 1, meta=meta
        )

    @event("Sent")
    def _sent(self, customer_id: str, reference: str, attempt: int, meta: Meta) -> None:
        self.status = "sent"
        self.attempts = attempt

    def failed(self, reason: str, meta: Meta, *, final: bool = False) -> None:
        attempt = self.attempts + 1
        self._failed(
            customer_id=self.customer_id,
            reason=reason,
            attempt=attempt,
            final=final or attempt >= MAX_ATTEMPTS,
            meta=meta,
        )

    @event("Failed")
    def _failed(self, customer_id: str, reason: str, attempt: int, final: bool, meta: Meta) -> None:
        self.status = "failed" if final else "retrying"
        self.attempts = attempt


class MetricWatch(ScrmAggregate):
    """Whether one rule's metric is past its threshold: it fires once per crossing."""

    @staticmethod
    def create_id(rule_key: str) -> UUID:
        return derived_id("automation-metric", rule_key)

    @event("Started")
    def __init__(self, rule_key: str, meta: Meta):
        self.rule_key = rule_key
        self.over = False
        self.crossings = 0

    def observe(self, over: bool, value: str, meta: Meta) -> int | None:
        """The crossing's number when the metric has just gone past the threshold."""
        if over == self.over:
            return None
        if over:
            self._crossed(
                rule_key=self.rule_key, value=value, crossing=self.crossings + 1, meta=meta
            )
            return self.crossings
        self._cleared(rule_key=self.rule_key, value=value, meta=meta)
        return None

    @event("Crossed")
    def _crossed(self, rule_key: str, value: str, crossing: int, meta: Meta) -> None:
        self.over = True
        self.crossings = crossing

    @event("Cleared")
    def _cleared(self, rule_key: str, value: str, meta: Meta) -> None:
        self.over = False
