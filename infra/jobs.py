"""Scheduled processes, and the thread that runs them inside `scrm serve`.

Each job is idempotent, so several API processes may run it, and a crash mid-run is finished
by the next run: the domain's version checks decide, never the timing.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

from domain.customers import privacy
from domain.shared import DomainError, Meta
from projections.customers.privacy import last_contact, list_erasures

if TYPE_CHECKING:
    from domain.segments.application import Reconciled
    from infra.bootstrap import Container

log = logging.getLogger("scrm.jobs")


def last_contact_reader(c: Container) -> privacy.LastContact:
    """When the archive last holds a message with a customer (for retention periods)."""

    def read(subjects: list[str]) -> datetime | None:
        found = last_contact(c.read_db, subjects)
        return datetime.fromisoformat(found.replace("Z", "+00:00")) if found else None

    return read


def scheduler_meta(process: str, now: datetime) -> Meta:
    run = uuid.uuid4().hex
    return Meta(
        occurred_at=now,
        actor=f"system:{process}",
        source="scheduler",
        correlation_id=run,
        causation_id=f"schedule:{process}:{run}",
    )


@dataclass
class PrivacyRun:
    erased: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    keys_destroyed: int = 0
    failed: dict[str, str] = field(default_factory=dict)


def apply_erasures(c: Container, now: datetime | None = None) -> PrivacyRun:
    """Every waiting erasure whose retention period ended and whose holds were released is
    carried out; erased customers whose keys a crash left behind lose them now."""
    now = now or datetime.now(UTC)
    meta = scheduler_meta("privacy", now)
    reader = last_contact_reader(c)
    run = PrivacyRun()
    items = list_erasures(c.read_db, limit=100_000)
    # Erased customers are revisited only if a key of theirs survived (a crash between the
    # record and the destruction): one key-store query for all of them.
    alive = c.vault.alive(
        {UUID(k) for item in items if item["status"] == "erased" for k in item["key_ids"]}
    )
    for item in items:
        customer_id = UUID(item["customer_id"])
        if item["status"] == "erased" and not alive.intersection(UUID(k) for k in item["key_ids"]):
            continue
        try:
            outcome = privacy.decide_erasure(
                c.customers, customer_id, now=now, last_contact=reader, meta=meta
            )
        except DomainError as exc:  # one customer's trouble does not stop the others
            run.failed[str(customer_id)] = exc.code
            continue
        run.keys_destroyed += outcome.destroyed
        (run.erased if outcome.status == "erased" else run.waiting).append(str(customer_id))
    return run


class Scheduler:
    """Runs jobs every `interval` seconds on a daemon thread until stopped."""

    def __init__(self, jobs: list[tuple[str, Callable[[], object]]], interval: float):
        self.jobs = jobs
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scrm-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            for name, job in self.jobs:
                try:
                    job()
                except Exception:  # keep the schedule alive; the next tick retries
                    log.exception("scheduled job %s failed", name)


def link_pending_buyers(
    c: Container,
    *,
    unionids: list[str] | None = None,
    phone_keys: list[str] | None = None,
    now: datetime | None = None,
) -> int:
    """Identity resolution for orders that came first: buyers no customer matched when their
    orders arrived are linked once a customer with the same unionid or phone exists. Runs on
    the schedule over all pending buyers, and at once for the values a command just added."""
    from domain.orders.application import PendingBuyer
    from projections.orders.orders import pending_buyers

    found = pending_buyers(c.read_db, unionids=unionids, phone_keys=phone_keys)
    if not found:
        return 0
    meta = scheduler_meta("identity", now or datetime.now(UTC))
    return c.orders.link_pending([PendingBuyer(*row) for row in found], meta)


def sweep_segments(c: Container, now: datetime | None = None) -> Reconciled:
    """Everyone against every segment, for what time alone changes ("silent for 30 days");
    events move customers in between (infra/segments.py)."""
    assert c.segment_evaluator is not None
    return c.segment_evaluator.sweep(now)
