"""The segments context's service layer: define, revise and retire segments; reconcile
customers' memberships with the rules in force.

Reconciling is idempotent and safe to race: each customer's changes (memberships and the
auto-tags they carry) are saved in one transaction, and a save that loses to another
evaluator is retried, finds the work done, and records nothing.

Auto-tags: entering puts the segment's tag on the customer (`Customer.tag`, actor
`system:segments`, causation the membership event) unless they have it already. Leaving takes
it off only if segments put it there — the last change of that tag on the customer was a
`CustomerTagged` by `system:segments` — and no other segment with the same tag still holds
the customer. A tag staff set, or set again after the segment did, stays.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, ClassVar
from uuid import UUID

from domain.customers.aggregates import Customer
from domain.customers.application import CustomersApp
from domain.segments import rules
from domain.segments.aggregates import Segment, SegmentMembership
from domain.shared import ConcurrentUpdate, Conflict, DomainError, Meta
from domain.store import ScrmApplication

ACTOR = "system:segments"


@dataclass(frozen=True)
class SegmentRecorded:
    id: str
    version: int
    position: int | None


@dataclass(frozen=True)
class SegmentVersion:
    """A segment as an evaluator applies it: the rule in force and its auto-tag."""

    segment_id: UUID
    version: int
    rule: rules.Rule
    auto_tag: str | None = None
    retired: bool = False


@dataclass
class Reconciled:
    entered: int = 0
    left: int = 0
    tagged: int = 0
    untagged: int = 0
    stale: int = 0  # decisions not taken: a newer one was already recorded
    failed: dict[str, str] = field(default_factory=dict)  # customer id -> error code
    position: int | None = None  # of the last event recorded

    def add(self, other: Reconciled) -> None:
        for name in ("entered", "left", "tagged", "untagged", "stale"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failed.update(other.failed)
        if other.position is not None:
            self.position = max(self.position or 0, other.position)


def _processable(customer: Customer | None) -> bool:
    if customer is None:
        return False
    try:
        customer.check_processing_allowed()
    except DomainError:
        return False
    return True


class SegmentsApp(ScrmApplication):
    # Customers are saved here too (auto-tags): snapshot them as their own context does.
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {
        Customer: CustomersApp.snapshotting_intervals[Customer],
    }

    # --- commands on segments ------------------------------------------------------------

    def define(self, *, name: str, rule: Any, auto_tag: str | None, meta: Meta) -> SegmentRecorded:
        segment = Segment.define(name, rule, auto_tag, meta)
        return SegmentRecorded(str(segment.id), 1, self.save_all(segment))

    def revise(
        self,
        segment_id: UUID,
        *,
        rule: Any,
        reason: str,
        expected_version: int | None,
        meta: Meta,
    ) -> SegmentRecorded:
        segment = self.get(segment_id)
        segment.revise(rule, reason, expected_version, meta)
        try:
            position = self.save_all(segment)
        except ConcurrentUpdate:  # another revision from the same version was saved first
            raise Conflict(
                f"stale version: segment {segment_id} was revised meanwhile",
                code="stale_version",
                field="expected_version",
            ) from None
        return SegmentRecorded(str(segment.id), segment.segment_version, position)

    def retire(self, segment_id: UUID, *, reason: str, meta: Meta) -> SegmentRecorded:
        segment = self.get(segment_id)
        segment.retire(reason, meta)
        return SegmentRecorded(str(segment.id), segment.segment_version, self.save_all(segment))

    def get(self, segment_id: UUID) -> Segment:
        return self.load(Segment, segment_id, "segment")

    def membership(self, segment_id: UUID, customer_id: UUID) -> SegmentMembership | None:
        return self.find(SegmentMembership, SegmentMembership.create_id(segment_id, customer_id))

    # --- reconciling memberships ----------------------------------------------------------

    def reconcile(
        self,
        segment_versions: Sequence[SegmentVersion],
        features_by_customer: Mapping[str, Mapping[str, Any] | None],
        now: datetime,
        meta: Meta,
        *,
        as_of: int = 0,
        known_members: Mapping[UUID, set[str]] | None = None,
    ) -> Reconciled:
        """Bring each customer's memberships in line with the segments. Features None: the
        customer is no longer processed (restricted, erased), so they leave every segment.
        `as_of`: the log position the features were read at. `known_members` (the read
        model's view, by segment) spares loading memberships that already agree; a wrong
        view costs a load, never a wrong record."""
        done = Reconciled()
        for key, features in features_by_customer.items():
            customer_id = UUID(str(key))
            wanted = {
                s.segment_id: features is not None
                and not s.retired
                and rules.matches(s.rule, features, now)
                for s in segment_versions
            }
            todo = [
                s
                for s in segment_versions
                if known_members is None
                or wanted[s.segment_id] != (str(customer_id) in known_members.get(s.segment_id, ()))
            ]
            if not todo:
                continue
            try:
                one = self.retrying(
                    partial(
                        self._reconcile_one,
                        customer_id,
                        features,
                        wanted,
                        todo,
                        segment_versions,
                        now,
                        as_of,
                        meta,
                    )
                )
            except DomainError as exc:  # one customer's trouble does not stop the others
                done.failed[str(customer_id)] = exc.code
                continue
            done.add(one)
        return done

    def _reconcile_one(
        self,
        customer_id: UUID,
        features: Mapping[str, Any] | None,
        wanted: dict[UUID, bool],
        todo: Sequence[SegmentVersion],
        every: Sequence[SegmentVersion],
        now: datetime,
        as_of: int,
        meta: Meta,
    ) -> Reconciled:
        done = Reconciled()
        found = {s.segment_id: self.membership(s.segment_id, customer_id) for s in todo}
        changes: list[tuple[SegmentVersion, bool]] = []
        for s in todo:
            m = found[s.segment_id]
            if wanted[s.segment_id] == (m is not None and m.member):
                continue
            if m is not None and m.is_stale(as_of, now):
                done.stale += 1
                continue
            changes.append((s, wanted[s.segment_id]))
        if not changes:
            return done
        customer = self.find(Customer, customer_id)
        active = features is not None and _processable(customer)
        # The decision happens at `now`, which is also what later decisions compare with.
        meta = dataclasses.replace(meta, actor=ACTOR, occurred_at=now)
        to_save: list[Any] = []
        # Entries first, so that a tag another segment is about to hold is not taken off.
        for s, enter in sorted(changes, key=lambda c: not c[1]):
            if enter and not active:
                continue  # not processed (the read model had not seen a restriction yet)
            m = found[s.segment_id]
            facts = rules.facts(s.rule, features) if features is not None else {}
            if enter:
                assert customer is not None
                tag = s.auto_tag if s.auto_tag and s.auto_tag not in customer.tags else None
                if m is None:
                    m = SegmentMembership(
                        segment_id=s.segment_id,
                        customer_id=customer_id,
                        segment_version=s.version,
                        facts=facts,
                        auto_tagged=tag,
                        as_of_position=as_of,
                        meta=meta,
                    )
                else:
                    m.enter(s.version, facts, tag, as_of, meta)
                found[s.segment_id] = m
                done.entered += 1
                if tag:
                    customer.tag([tag], _caused_by(meta, m))
                    done.tagged += 1
            else:
                assert m is not None
                tag = None
                if active and self._segments_own(customer, s, every, found):
                    tag = s.auto_tag
                reason = (
                    "segment_retired"
                    if s.retired
                    else "rule_not_matched"
                    if features is not None
                    else "customer_inactive"
                )
                m.leave(s.version, reason, facts, tag, as_of, meta)
                done.left += 1
                if tag:
                    assert customer is not None
                    customer.untag([tag], _caused_by(meta, m))
                    done.untagged += 1
            to_save.append(m)
        if customer is not None and customer.pending_events:
            to_save.append(customer)
        done.position = self.save_all(*to_save) if to_save else None
        return done

    def _segments_own(
        self,
        customer: Customer | None,
        leaving: SegmentVersion,
        every: Sequence[SegmentVersion],
        found: dict[UUID, SegmentMembership | None],
    ) -> bool:
        """Whether the leaving segment's tag is to come off: segments put it there, and no
        other segment with that tag keeps the customer."""
        tag = leaving.auto_tag
        if not tag or customer is None or tag not in customer.tags:
            return False
        for other in every:
            if other.segment_id == leaving.segment_id or other.auto_tag != tag:
                continue
            if other.segment_id not in found:
                found[other.segment_id] = self.membership(other.segment_id, customer.id)
            m = found[other.segment_id]
            if m is not None and m.member:  # it keeps the tag; it takes it off when it goes
                return False
        for e in self.events.get(customer.id, desc=True):
            if isinstance(e, Customer.Tagged) and tag in e.tags:  # type: ignore[attr-defined]
                return bool(e.meta.actor == ACTOR)  # type: ignore[attr-defined]
            touched = [*(getattr(e, "tags", None) or ()), *(getattr(e, "added_tags", None) or ())]
            if tag in touched:  # added with it, brought by a merge, taken off: not segments'
                return False
        return False


def _caused_by(meta: Meta, membership: SegmentMembership) -> Meta:
    """The envelope of an auto-tag: caused by the membership event just triggered."""
    return dataclasses.replace(meta, causation_id=f"event:{membership.id}:{membership.version}")
