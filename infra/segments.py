"""The segment evaluator: keeps memberships current as events arrive, and sweeps everyone on
the schedule for rules that time alone makes true ("silent for 30 days").

A round reads the log from its checkpoint up to where the read models have got, collects the
customers those events touched, reads their features from the read models, and reconciles
them with the segments in force (SegmentsApp.reconcile). Only then does the checkpoint move:
a crash in between re-evaluates the same customers, and finding every decision already
recorded, records nothing.

Who is touched: a customer's own events; an order's events, the customer linked to its buyer;
a channel code scan, the customer scanned; a membership event, its customer (so a decision a
racing evaluator made from older facts is looked at again). A segment's definition, revision
or retirement, or a new RFM model, touches everyone.

It runs in the process that projects: after the embedded follower's batches in `scrm serve`,
after the projector's batches in `scrm project` (server mode); the sweep runs in `scrm serve`'s
scheduler and as `scrm segments evaluate`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

import orjson
from eventsourcing.utils import resolve_topic

from domain.customers.aggregates import ChannelCode, Customer
from domain.customers.rfm import RfmModel
from domain.orders.aggregates import Order
from domain.segments import rules
from domain.segments.aggregates import Segment, SegmentMembership
from domain.segments.application import ACTOR, Reconciled, SegmentVersion
from domain.shared import Meta
from infra.checkpoints import Checkpoints
from infra.events import EventRecord
from projections.customers.purchases import purchase_profiles
from projections.engine import NotCaughtUp
from projections.segments.segments import all_members, last_activity_not_by, members_among

if TYPE_CHECKING:
    from infra.bootstrap import Container

log = logging.getLogger("scrm.segments")

ROUND = 5000  # events per round at most, so a long backlog checkpoints as it goes
CHUNK = 500  # customers whose features are read at once


@lru_cache(maxsize=512)
def _touches(topic: str) -> str | None:
    """What an event of this class touches: 'customer', 'order', 'scan', 'membership',
    'everyone', or nothing."""
    cls = resolve_topic(topic)
    if issubclass(cls, Customer.Event):
        return "customer"
    if issubclass(cls, Order.Event):
        return "order"
    if issubclass(cls, ChannelCode.Scanned):  # type: ignore[attr-defined]
        return "scan"
    if issubclass(cls, SegmentMembership.Event):
        return "membership"
    if issubclass(cls, Segment.Event | RfmModel.Event):
        return "everyone"
    return None


def features_of(
    profile: dict[str, Any] | None, auto_tags: set[str], last_active: str | None, now: datetime
) -> dict[str, Any] | None:
    """What rules read, from a purchase profile (None: not an active customer). Tags that are
    segments' auto-tags are left out, so segments never feed each other (or themselves) in a
    loop; silence is counted from the last activity not recorded by segments."""
    if profile is None:
        return None
    features = dict(profile)
    features["tags"] = [t for t in profile.get("tags") or () if t not in auto_tags]
    rfm = profile.get("rfm") or {}
    for score in ("r", "f", "m"):
        features[f"rfm.{score}"] = rfm.get(score)
    if last_active is not None:
        then = datetime.fromisoformat(last_active.replace("Z", "+00:00"))
        features["days_silent"] = max(int((now - then).total_seconds() // 86_400), 0)
    return features


@dataclass
class Round:
    after: int
    upto: int
    customers: int
    everyone: bool
    outcome: Reconciled


class SegmentEvaluator:
    MARK: ClassVar[str] = "evaluated"

    def __init__(self, c: Container):
        self.c = c
        # "evaluated": the log position every event up to has been evaluated for; "recorded":
        # the position of the last membership change recorded (read-your-writes waits for it).
        self.marks = Checkpoints(
            c.read_db, "segment_evaluator_positions", ["evaluated", "recorded"]
        )
        self._round = threading.Lock()
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # tests move time

    # --- what is in force ---------------------------------------------------------------

    def segments(self) -> list[SegmentVersion]:
        rows = self.c.read_db.query(
            "SELECT segment_id, version, rule, auto_tag, status FROM segments_definitions"
            " ORDER BY position"
        )
        return [
            SegmentVersion(
                segment_id=UUID(r[0]),
                version=int(r[1]),
                rule=rules.parse(orjson.loads(r[2])),
                auto_tag=r[3],
                retired=r[4] == "retired",
            )
            for r in rows
        ]

    # --- rounds ---------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> Round | None:
        """One round over the events the read models have reached and this has not; None
        when there are none."""
        with self._round:
            reached = self.c.engine.low_water_mark()
            done = self.marks.get("evaluated")
            if reached <= done:
                return None
            segments = self.segments()  # as the read models have them, at `reached` or later
            if not segments:  # nothing to evaluate the events against: not even read
                self._checkpoint(reached, Reconciled())
                return Round(done, reached, 0, False, Reconciled())
            records = [r for r in self.c.read_log(done, ROUND) if r.position <= reached]
            upto = records[-1].position if len(records) == ROUND else reached
            customers, everyone = self._touched(records)
            now = now or self.clock()
            meta = _meta(now, f"log:{done + 1}-{upto}")
            chosen = self._everyone() if everyone else sorted(customers)
            outcome = self._evaluate(segments, chosen, now, meta)
            self._checkpoint(upto, outcome)
            return Round(done, upto, len(chosen), everyone, outcome)

    def run_until_caught_up(self, now: datetime | None = None) -> Reconciled:
        total = Reconciled()
        while (done := self.run_once(now)) is not None:
            total.add(done.outcome)
        return total

    def sweep(self, now: datetime | None = None) -> Reconciled:
        """Everyone against every segment: what time alone changed. Idempotent."""
        now = now or self.clock()
        outcome = self._evaluate(self.segments(), self._everyone(), now, _meta(now, None))
        if outcome.position is not None:
            with self.c.read_db.transaction() as cur:
                self.marks.advance(cur, "recorded", outcome.position)
        return outcome

    def _checkpoint(self, upto: int, outcome: Reconciled) -> None:
        with self.c.read_db.transaction() as cur:
            self.marks.advance(cur, "evaluated", upto)
            if outcome.position is not None:
                self.marks.advance(cur, "recorded", outcome.position)

    def _touched(self, records: Sequence[EventRecord]) -> tuple[set[str], bool]:
        customers: set[str] = set()
        orders: set[str] = set()
        for r in records:
            kind = _touches(r.topic)
            if kind == "everyone":
                return set(), True
            if kind == "customer":
                customers.add(r.originator_id)
            elif kind in ("scan", "membership"):
                customers.add(str(r.data["customer_id"]))
            elif kind == "order":
                orders.add(r.originator_id)
        customers.update(self._buyers_of(sorted(orders)))
        return customers, False

    def _buyers_of(self, order_ids: list[str]) -> set[str]:
        """The customers linked to these orders' buyers (a buyer not linked yet touches no one;
        the link, a customer event, will)."""
        found: set[str] = set()
        for start in range(0, len(order_ids), CHUNK):
            part = order_ids[start : start + CHUNK]
            found.update(
                r[0]
                for r in self.c.read_db.query(
                    "SELECT DISTINCT i.customer_id FROM orders_orders o JOIN portrait_identities i"
                    " ON i.kind = o.buyer_kind AND i.value = o.buyer_id"
                    f" WHERE o.order_id IN ({','.join('?' * len(part))})",
                    part,
                )
            )
        return found

    def _everyone(self) -> list[str]:
        active = [
            r[0]
            for r in self.c.read_db.query(
                "SELECT customer_id FROM portrait_customers WHERE status = 'active'"
            )
        ]
        return sorted(set(active).union(all_members(self.c.read_db)))

    def _evaluate(
        self, segments: list[SegmentVersion], customer_ids: list[str], now: datetime, meta: Meta
    ) -> Reconciled:
        total = Reconciled()
        if not segments or not customer_ids:
            return total
        auto_tags = {s.auto_tag for s in segments if s.auto_tag and not s.retired}
        db = self.c.read_db
        for start in range(0, len(customer_ids), CHUNK):
            part = customer_ids[start : start + CHUNK]
            # The features below are read at this position or later: what a decision from
            # them is stamped with, so one from older facts cannot undo it.
            as_of = self.c.engine.low_water_mark()
            profiles = purchase_profiles(db, part, now)
            active = last_activity_not_by(db, [i for i in part if i in profiles], ACTOR)
            features = {
                i: features_of(profiles.get(i), auto_tags, active.get(i), now) for i in part
            }
            known = {UUID(s): ids for s, ids in members_among(db, part).items()}
            total.add(
                self.c.segments.reconcile(
                    segments, features, now, meta, as_of=as_of, known_members=known
                )
            )
        if total.failed:
            log.warning("segment evaluation failed for %d customers", len(total.failed))
        return total

    # --- read-your-writes -------------------------------------------------------------------

    def wait_for(self, position: int, timeout: float, names: Iterable[str] | None = None) -> None:
        """Until every event up to `position` has been evaluated and the membership changes
        that evaluation recorded are in the read models; NotCaughtUp (503) after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            evaluated = self.marks.get("evaluated")
            if evaluated >= position:
                wanted = max(position, self.marks.get("recorded"))
                self.c.engine.wait_for(wanted, max(deadline - time.monotonic(), 0), names)
                return
            if time.monotonic() >= deadline:
                positions = self.c.engine.positions()
                raise NotCaughtUp(position, {"segment_evaluator": evaluated, **positions})
            time.sleep(0.01)


def _meta(now: datetime, log_range: str | None) -> Meta:
    run = uuid.uuid4().hex
    return Meta(
        occurred_at=now,
        actor=ACTOR,
        source="scheduler",
        correlation_id=run,
        causation_id=log_range or f"schedule:segments:{run}",
    )
