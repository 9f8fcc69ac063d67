"""Segments (智能分组): a versioned rule over portrait fields, and each customer's membership.

A `Segment` is configuration that changes behaviour, so it is event-sourced like a retention
policy: defined at version 1, each revision of its rule is the next version (with who, when
and why), and it can be retired. Its optional `auto_tag` is put on customers who enter.

A `SegmentMembership` is one customer in one segment over time, its id derived from both, so
two evaluators deciding the same entry race for the same stream and the store lets one win.
Each decision records the segment version that made it, the facts the rule read, and the log
position those facts were read at (`as_of_position`): a decision made from older facts than
the last one recorded is stale and refused, so a slow evaluator never undoes a newer one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.customers.aggregates import normalise_tags
from domain.segments import rules
from domain.shared import Conflict, Gone, Meta, ScrmAggregate, derived_id, require_text


class Segment(ScrmAggregate):
    @classmethod
    def define(cls, name: str, rule: Any, auto_tag: str | None, meta: Meta) -> Segment:
        name = require_text(name, "name", max_len=80)
        parsed = rules.parse(rule)
        tag = normalise_tags([auto_tag], "auto_tag")[0] if auto_tag is not None else None
        return cls(
            name=name, rule=rules.to_json(parsed), auto_tag=tag, segment_version=1, meta=meta
        )

    @event("Defined")
    def __init__(
        self,
        name: str,
        rule: dict[str, Any],
        auto_tag: str | None,
        segment_version: int,
        meta: Meta,
    ):
        self.name = name
        self.rule = rule
        self.auto_tag = auto_tag
        self.segment_version = segment_version
        self.retired = False

    def revise(self, rule: Any, reason: str, expected_version: int | None, meta: Meta) -> None:
        """The next version of the rule. `expected_version` is the version the author saw."""
        if self.retired:
            raise Gone("this segment is retired", code="segment_retired")
        if expected_version is not None and expected_version != self.segment_version:
            raise Conflict(
                f"stale version: expected {expected_version}, current is {self.segment_version}",
                code="stale_version",
                field="expected_version",
            )
        new_rule = rules.to_json(rules.parse(rule))
        why = require_text(reason, "reason", max_len=200)
        if new_rule == self.rule:
            raise Conflict("the rule is unchanged", code="rule_unchanged", field="rule")
        self._revised(
            rule=new_rule, segment_version=self.segment_version + 1, reason=why, meta=meta
        )

    @event("RuleRevised")
    def _revised(self, rule: dict[str, Any], segment_version: int, reason: str, meta: Meta) -> None:
        self.rule = rule
        self.segment_version = segment_version

    def retire(self, reason: str, meta: Meta) -> None:
        if self.retired:
            raise Conflict("this segment is already retired", code="already_retired")
        self._retired(
            reason=require_text(reason, "reason", max_len=200),
            segment_version=self.segment_version,
            meta=meta,
        )

    @event("Retired")
    def _retired(self, reason: str, segment_version: int, meta: Meta) -> None:
        self.retired = True


class SegmentMembership(ScrmAggregate):
    """Entered, left, perhaps entered again (`Reentered`): the customer's history in a segment."""

    @staticmethod
    def create_id(segment_id: UUID, customer_id: UUID) -> UUID:
        return derived_id("segment-membership", f"{segment_id}:{customer_id}")

    @event("Entered")
    def __init__(
        self,
        segment_id: UUID,
        customer_id: UUID,
        segment_version: int,
        facts: dict[str, Any],
        auto_tagged: str | None,  # the tag this entry put on the customer, if any
        as_of_position: int,
        meta: Meta,
    ):
        self.segment_id = segment_id
        self.customer_id = customer_id
        self._entered(segment_version, as_of_position, meta)

    def _entered(self, segment_version: int, as_of_position: int, meta: Meta) -> None:
        self.member = True
        self.segment_version = segment_version
        self.decided = (as_of_position, meta.occurred_at)

    def is_stale(self, as_of_position: int, now: datetime) -> bool:
        """Facts older than those of the last decision recorded: not to act on."""
        return (as_of_position, now) < self.decided

    def enter(
        self,
        segment_version: int,
        facts: dict[str, Any],
        auto_tagged: str | None,
        as_of_position: int,
        meta: Meta,
    ) -> bool:
        if self.member:
            return False
        self._reentered(
            segment_id=self.segment_id,
            customer_id=self.customer_id,
            segment_version=segment_version,
            facts=facts,
            auto_tagged=auto_tagged,
            as_of_position=as_of_position,
            meta=meta,
        )
        return True

    @event("Reentered")
    def _reentered(
        self,
        segment_id: UUID,  # carried on every membership event, so a consumer needs no lookup
        customer_id: UUID,
        segment_version: int,
        facts: dict[str, Any],
        auto_tagged: str | None,
        as_of_position: int,
        meta: Meta,
    ) -> None:
        self._entered(segment_version, as_of_position, meta)

    def leave(
        self,
        segment_version: int,
        reason: str,
        facts: dict[str, Any],
        auto_untagged: str | None,
        as_of_position: int,
        meta: Meta,
    ) -> bool:
        """`reason`: rule_not_matched, segment_retired or customer_inactive (restricted,
        erased or otherwise no longer processed)."""
        if not self.member:
            return False
        self._left(
            segment_id=self.segment_id,
            customer_id=self.customer_id,
            segment_version=segment_version,
            reason=reason,
            facts=facts,
            auto_untagged=auto_untagged,
            as_of_position=as_of_position,
            meta=meta,
        )
        return True

    @event("Left")
    def _left(
        self,
        segment_id: UUID,
        customer_id: UUID,
        segment_version: int,
        reason: str,
        facts: dict[str, Any],
        auto_untagged: str | None,
        as_of_position: int,
        meta: Meta,
    ) -> None:
        self.member = False
        self.segment_version = segment_version
        self.decided = (as_of_position, meta.occurred_at)
